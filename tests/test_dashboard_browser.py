"""Real-browser test: ``streamlit run`` on 127.0.0.1 with the tiny store, driven by Playwright + Debian chromium.

Opens every page, uploads a generated image on Attribute and checks its generator is ranked first,
shares a Lineage view and opens the ``?report=`` link in a fresh browser context, and saves the
screenshots the README shows (docs/screenshots/). Needs ``apt-get install chromium`` and
``pip install playwright`` (never ``playwright install``: the system chromium is used).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the CI image
    sync_playwright = None

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)", allow_module_level=True)
if sync_playwright is None:
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> float:
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.time() - start
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


@contextmanager
def _streamlit(store: Path, demo: bool) -> Iterator[str]:
    """A real ``streamlit run`` of the app on a free loopback port, serving ``store``; yields its URL."""
    from engine.cli.serve import streamlit_command

    port = _free_port()
    env = dict(os.environ, DIF_CACHE_DIR=str(store), DIF_DEMO="1" if demo else "0", DIF_SERVER_PATHS="1")
    proc = subprocess.Popen(
        streamlit_command(port, "127.0.0.1"),
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_dashboard import shared_tiny_store

    info = shared_tiny_store(tmp_path_factory)
    with _streamlit(info["store"], demo=False) as url:
        yield {"url": url, **info}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """What a new user gets from scripts/run_demo.sh: an empty store, the demo zoo built on first start."""
    with _streamlit(tmp_path_factory.mktemp("demo") / "store", demo=True) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def _open(page, url: str, title: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=60_000)
    _settle(page)


def _settle(page, timeout: float = 90) -> None:
    """Wait until the script run finishes (Streamlit shows a 'running' status widget meanwhile)."""
    page.wait_for_timeout(500)
    deadline = time.time() + timeout
    while time.time() < deadline and page.locator('[data-testid="stStatusWidget"]').count() > 0:
        page.wait_for_timeout(300)
    page.wait_for_timeout(300)


def _no_traceback(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def test_every_page_renders(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a deep link as the very first request still goes through the router (sidebar frame, demo bootstrap)
    _open(page, server["url"] + "/attribute", "Attribute")
    expect(page.get_by_text("Engine device").first).to_be_visible()
    for path, title in (
        ("/", "Models"),
        ("/cross", "Cross-detection"),
        ("/lineage", "Lineage"),
        ("/attribute", "Attribute"),
    ):
        _open(page, server["url"] + path, title)
        _no_traceback(page)
    _open(page, server["url"] + "/", "Models")
    for name in server["names"]:
        expect(page.get_by_text(name).first).to_be_attached()
    page.close()


def test_models_address_answers(server, browser):
    """Issue 13 point 1: /models used to pop up 'Page not found' and run the main page instead."""
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    _open(page, server["url"] + "/models", "Models")
    _no_traceback(page)
    assert "Page not found" not in page.content()
    expect(page.get_by_text("recognises which image generator made an image").first).to_be_visible()
    page.close()


def test_attribute_upload_ranks_its_model_first(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    _open(page, server["url"] + "/attribute", "Attribute")
    image = sorted(server["fake_dirs"]["gen1"].glob("*.png"))[-1]
    page.locator('input[type="file"]').first.set_input_files(str(image))
    expect(page.get_by_text(re.compile(r"from\s+gen1,\s+confidence\s+\d\.\d\d")).first).to_be_visible(timeout=120_000)
    _settle(page)
    expect(page.get_by_text("Download case report (HTML)").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
    page.get_by_text("Residual and spectrum").first.click()
    page.get_by_text("Metadata (EXIF, XMP, software, C2PA)").first.click()
    expect(page.get_by_text("C2PA manifest present").first).to_be_visible(timeout=30_000)
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
    page.wait_for_timeout(800)
    _no_traceback(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "attribute.png"), full_page=True)
    page.close()


def test_lineage_share_link_opens_same_view(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    _open(page, server["url"] + "/lineage", "Lineage")
    _no_traceback(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("button", name="Share this view").click()
    expect(page.get_by_text("Saved as report").first).to_be_visible(timeout=60_000)
    page.wait_for_function("() => location.search.includes('report=')", timeout=30_000)
    report_id = re.search(r"report=([0-9a-f]+)", page.url).group(1)
    # issue 13 point 7: the link to send is a full address, not "/lineage?report=..."
    expect(page.locator("code").filter(has_text=f"{server['url']}/lineage?report={report_id}").first).to_be_visible(
        timeout=30_000
    )
    page.close()
    context = browser.new_context(viewport={"width": 1400, "height": 1200})  # a teammate: fresh session, no cookies
    other = context.new_page()
    _open(other, f"{server['url']}/?report={report_id}", "Lineage")
    expect(other.get_by_text(f"Shared report {report_id}").first).to_be_visible(timeout=60_000)
    expect(other.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
    _no_traceback(other)
    context.close()


def _number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settle(page)


def test_training_shows_progress_and_cancels(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    _open(page, server["url"] + "/", "Models")
    page.get_by_test_id("stExpander").filter(has_text="Add a model").locator("summary").first.click()
    page.get_by_label("Model name", exact=True).fill("cancel-me")
    page.get_by_label("Model name", exact=True).press("Enter")
    fake = sorted(server["fake_dirs"]["gen1"].glob("*.png"))[:4]
    real = sorted(server["real"].glob("*.png"))[:4]
    uploaders = page.get_by_test_id("stFileUploader")
    uploaders.filter(has_text="Generated images").locator('input[type="file"]').set_input_files([str(p) for p in fake])
    _settle(page)
    uploaders.filter(has_text="Real photos").locator('input[type="file"]').set_input_files([str(p) for p in real])
    _settle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Residual extractor").click()
    page.keyboard.type("wavelet")  # the option list is virtualised: filter it so the option is rendered
    page.get_by_role("option", name="wavelet").click()
    _settle(page)
    _number(page, "Crop", 64)
    _number(page, "Batch", 4)
    _number(page, "Steps", 100000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile(r"Step \d+/100000")).first).to_be_visible(timeout=120_000)
    expect(
        page.get_by_role("button", name="Train", exact=True)
    ).to_be_disabled()  # issue 13 point 4: no second run meanwhile
    page.get_by_role("button", name="Cancel training").click()
    expect(page.get_by_text("Training cancelled").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled(timeout=30_000)
    _no_traceback(page)
    from engine.storage.store import Store

    with Store(server["store"]) as store:
        assert not store.exists("cancel-me")
    page.close()


def test_demo_first_minutes_sample_and_lineage_truth(demo_server, browser):
    """A new user's path on the demo: the landing sample is attributed in one click (point 7), and the
    lineage page shows the zoo's truth beside the inferred graph with its ARI (point 6)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    _open(page, demo_server + "/", "Models")
    expect(page.get_by_role("button", name="Attribute this").first).to_be_visible(
        timeout=180_000
    )  # after the zoo build
    _settle(page)
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "models.png"), full_page=False)
    page.get_by_role("button", name="Attribute this").first.click()
    expect(page.get_by_role("heading", name="Attribute").first).to_be_visible(timeout=60_000)
    expect(
        page.get_by_text(re.compile(r"(from\s+zoo-[a-z0-9-]+,\s+confidence\s+\d\.\d\d)|unknown")).first
    ).to_be_visible(timeout=120_000)
    _no_traceback(page)
    _open(page, demo_server + "/lineage", "Lineage")
    expect(page.get_by_text("Families recovered (ARI)").first).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1.00")
    expect(page.get_by_text("Ground truth (how the zoo was built)").first).to_be_attached(timeout=60_000)
    expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=60_000)
    _settle(page)
    _no_traceback(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lineage.png"), full_page=False)
    page.close()
