"""Bounded load test: 8 analysts upload different images on the Attribute page of one live server at once.

The server is the real ``dif serve`` command line on 127.0.0.1 (``server`` fixture of the browser test,
tiny store of the dashboard tests). One chromium, 8 browser contexts (separate cookies and sessions),
driven concurrently with Playwright's asyncio API. Every session must get its own image's generator as
the verdict, never see another session's upload, and the server must still serve afterwards. While the
sessions are live, the running server is also probed for its secure defaults: loopback-only listening
socket, uploads refused without the XSRF token, and over-cap uploads refused before the body is read.
Prints sessions, requests, errors and the slowest answer.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.cli.serve import MAX_UPLOAD_MB

pytestmark = pytest.mark.browser

from test_dashboard_browser import CHROMIUM, LAUNCH_ARGS, server  # noqa: E402,F401  (skips the module without chromium/playwright)

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - depends on the CI image
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

SESSIONS = 8
# Streamlit's frontend, opened on /attribute, first tries /attribute/_stcore/... to find its base path
BASE_PATH_PROBE = re.compile(r"^/[a-z]+/_stcore/(health|host-config)$")
VERDICT = re.compile(r"^(?P<file>\S+): from (?P<model>[^,\s]+)(,|$)")  # the headline goes on: ", confidence 0.97; ..."


@dataclass
class Session:
    """What one analyst's browser saw."""

    image: Path
    truth: str
    http_requests: int = 0
    ws_messages: int = 0
    errors: list[str] = field(default_factory=list)
    verdict: str | None = None
    headings: list[str] = field(default_factory=list)
    body_text: str = ""
    seconds: float = 0.0
    upload_url: str | None = None
    cookies: list[dict] = field(default_factory=list)


def pick_images(store_root: Path, per_model: int) -> list[tuple[Path, str]]:
    """Held-out generated images of gen0 and gen1, each with the verdict the engine gives it alone.

    gen0-ft is gen0's fine-tune, so a gen0 image may go to either; what the concurrent sessions must
    show is the answer a single, undisturbed call gives for *their* image.
    """
    from engine.data.images import load_image
    from engine.lineage.attribution import attribute
    from engine.storage.store import Store

    with Store(store_root) as store:
        fingerprints = store.list()
        out = []
        for name in ("gen0", "gen1"):
            files = sorted(store.load(name).test_files["fake"])[:per_model]
            results = attribute([load_image(f, crop=None) for f in files], fingerprints, store)
            out += [(Path(f), r.verdict) for f, r in zip(files, results)]
    assert any(v == "gen1" for _, v in out) and any(v in ("gen0", "gen0-ft") for _, v in out), out
    return out


async def analyst(browser, url: str, s: Session, all_uploaded: asyncio.Event, done: list[int]):
    """One analyst: open Attribute, upload, read the verdict, then look again once everyone has uploaded."""
    context = await browser.new_context(viewport={"width": 1200, "height": 1400})
    page = await context.new_page()
    page.on("request", lambda r: _on_request(s, r))
    page.on("response", lambda r: _on_response(s, url, r))
    page.on("requestfailed", lambda r: r.url.startswith(url) and s.errors.append(f"failed {r.url}: {r.failure}"))
    page.on("pageerror", lambda e: s.errors.append(f"page error: {e}"))
    page.on("websocket", lambda ws: ws.on("framesent", lambda _f: _count_ws(s)))
    try:
        await page.goto(url + "/attribute")
        await page.get_by_role("heading", name="Attribute").first.wait_for(timeout=90_000)
        start = time.time()
        await page.locator('input[type="file"]').first.set_input_files(str(s.image))
        heading = page.locator("h4").filter(has_text=s.image.name)
        await heading.first.wait_for(timeout=90_000)
        s.seconds = time.time() - start
        m = VERDICT.match((await heading.first.inner_text()).strip())
        s.verdict = m.group("model") if m and m.group("file") == s.image.name else None
        done.append(1)
        if len(done) == SESSIONS:
            all_uploaded.set()
        await asyncio.wait_for(all_uploaded.wait(), 120)
        await page.wait_for_timeout(1500)  # let any stray rerun caused by another session land
        s.headings = [t.strip() for t in await page.locator("h4").all_inner_texts()]
        s.body_text = await page.inner_text("body")
        s.cookies = await context.cookies()
    except Exception as exc:  # recorded, then asserted on: one session failing must not hide the others
        s.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        all_uploaded.set()
    return context


def _on_request(s: Session, request) -> None:
    s.http_requests += 1
    if request.method == "PUT" and "/_stcore/upload_file/" in request.url:
        s.upload_url = request.url


def _on_response(s: Session, url: str, response) -> None:
    """4xx/5xx from our server are errors, except the frontend's base-path probe on a deep link."""
    path = response.url.removeprefix(url)
    if (
        response.status >= 400
        and response.url.startswith(url)
        and not (response.status == 404 and BASE_PATH_PROBE.match(path))
    ):
        s.errors.append(f"HTTP {response.status} {response.url}")


def _count_ws(s: Session) -> None:
    s.ws_messages += 1


async def run_sessions(url: str, sessions: list[Session]) -> tuple[float, list]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        all_uploaded, done = asyncio.Event(), []
        start = time.time()
        contexts = await asyncio.gather(*(analyst(browser, url, s, all_uploaded, done) for s in sessions))
        wall = time.time() - start
        probes = live_probes(url, sessions)  # while the sessions are still alive
        for context in contexts:
            await context.close()
        await browser.close()
    return wall, probes


def live_probes(url: str, sessions: list[Session]) -> dict[str, int]:
    """Status codes of raw upload requests: without the XSRF token, and with it but over the size cap."""
    host, port = url.removeprefix("http://").split(":")
    target = next(s for s in sessions if s.upload_url and s.cookies)
    path = target.upload_url.removeprefix(url)
    token = next(c["value"] for c in target.cookies if c["name"] == "_streamlit_xsrf")
    out = {}
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PUT", path, body=b"x" * 16, headers={"Content-Type": "application/octet-stream"})
    out["no_xsrf"] = conn.getresponse().status
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("PUT", path)
    conn.putheader("Cookie", f"_streamlit_xsrf={token}")
    conn.putheader("X-Xsrftoken", token)
    conn.putheader("Content-Length", str((MAX_UPLOAD_MB + 1) * 1024 * 1024))
    conn.endheaders()  # no body sent: the server must refuse from the header alone
    out["over_cap"] = conn.getresponse().status
    conn.close()
    return out


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(address)
    return found


def test_eight_concurrent_sessions_attribute_their_own_uploads(server):
    images = pick_images(server["store"], SESSIONS // 2)
    assert len({p.name for p, _ in images}) == SESSIONS
    sessions = [Session(image=p, truth=t) for p, t in images]
    wall, probes = asyncio.run(run_sessions(server["url"], sessions))
    http_total = sum(s.http_requests for s in sessions)
    ws_total = sum(s.ws_messages for s in sessions)
    errors = [e for s in sessions for e in s.errors]
    slowest = max(s.seconds for s in sessions)
    print(
        f"\ndashboard load: {SESSIONS} concurrent sessions, {http_total} HTTP requests + {ws_total} websocket "
        "messages sent, "
        f"{len(errors)} errors, slowest answer {slowest:.1f} s, all answered in {wall:.1f} s wall"
    )
    print(
        f"live probes: upload without XSRF token -> {probes['no_xsrf']}, over {MAX_UPLOAD_MB} MB -> "
        f"{probes['over_cap']}"
    )
    assert errors == [], errors
    for s in sessions:
        assert s.verdict == s.truth, (s.image.name, s.verdict, s.truth)
        assert len(s.headings) == 1 and s.headings[0].startswith(f"{s.image.name}: from {s.truth}, confidence"), (
            s.image.name,
            s.headings,
        )
        others = [o.image.name for o in sessions if o is not s]
        assert not any(name in s.body_text for name in others), s.image.name
    # the server is still up: healthy, and a fresh session gets a full page
    with urllib.request.urlopen(server["url"] + "/_stcore/health", timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(server["url"] + "/attribute", timeout=10) as r:
        assert r.status == 200 and b"<html" in r.read().lower()
    # secure defaults of the running server
    assert probes == {"no_xsrf": 403, "over_cap": 413}
    port = int(server["url"].rsplit(":", 1)[1])
    bound = listening_addresses(port)
    if bound:  # Linux: the only listening socket is on 127.0.0.1
        assert bound == {"0100007F"}, bound
