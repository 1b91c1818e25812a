"""Secure server defaults, as configured: loopback only, XSRF on, uploads capped — in both places they live.

``.streamlit/config.toml`` applies when the dashboard is started from the checkout; ``dif serve`` repeats
the same settings on the streamlit command line so they hold from any directory. The running server is
probed for the same properties in test_dashboard_load.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomllib

from engine.cli.common import add_common
from engine.cli.serve import MAX_UPLOAD_MB, is_loopback, register, serve_env, streamlit_command

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".streamlit" / "config.toml"
README = ROOT / "README.md"


def _flags(cmd: list[str]) -> dict[str, str]:
    return {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].startswith("--")}


def test_config_toml_binds_loopback_keeps_xsrf_and_caps_uploads():
    server = tomllib.loads(CONFIG.read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True
    assert (
        server.get("enableCORS", True) is True
    )  # streamlit forces it back on while XSRF is on: keep the file saying what runs
    assert 1 <= server["maxUploadSize"] <= MAX_UPLOAD_MB
    assert server["maxMessageSize"] <= MAX_UPLOAD_MB
    assert server["headless"] is True and server["runOnSave"] is False


def test_dif_serve_defaults_are_the_same():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), add_common)
    args = parser.parse_args(["serve", "--no-demo"])
    assert args.address == "127.0.0.1"
    flags = _flags(streamlit_command(args.port, args.address))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert int(flags["--server.maxUploadSize"]) == MAX_UPLOAD_MB <= 200
    assert flags["--server.headless"] == "true" and flags["--client.showErrorDetails"] == "none"
    assert "--server.enableCORS" not in flags or flags["--server.enableCORS"] == "true"
    config = tomllib.loads(CONFIG.read_text())["server"]
    assert int(flags["--server.maxUploadSize"]) == config["maxUploadSize"]  # one cap, not two


def test_exposing_the_server_is_explicit_and_narrows_what_it_offers():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), add_common)
    args = parser.parse_args(["serve", "--address", "0.0.0.0"])
    assert not is_loopback(args.address)
    assert serve_env(args)["DIF_SERVER_PATHS"] == "0"  # no server folder browsing for remote users
    assert _flags(streamlit_command(args.port, args.address))["--server.enableXsrfProtection"] == "true"
    for address in ("127.0.0.1", "127.8.0.1", "::1", "localhost"):
        assert is_loopback(address)
    for address in ("0.0.0.0", "::", "10.0.0.5", "example.org"):
        assert not is_loopback(address)


def test_readme_says_how_to_expose_it_to_a_team():
    text = README.read_text()
    assert "## Exposing the dashboard to a team" in text
    section = text.split("## Exposing the dashboard to a team", 1)[1].split("\n## ", 1)[0]
    for needle in ("127.0.0.1", "TLS", "auth", "XSRF", "maxUploadSize"):
        assert needle in section, needle
    assert text.index("## Exposing the dashboard to a team") < text.index("## Tests")


def test_sigterm_to_dif_serve_stops_the_server_and_frees_the_port(tmp_path):
    """What a service manager does: SIGTERM to the `dif serve` process must not leave Streamlit holding the port."""
    import signal
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def port_open() -> bool:
        with socket.socket() as c:
            c.settimeout(0.5)
            return c.connect_ex(("127.0.0.1", port)) == 0

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from engine.cli.main import main; raise SystemExit(main())",
            "serve",
            "--no-demo",
            "--port",
            str(port),
            "--cache",
            str(tmp_path / "store"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while not port_open():
            assert proc.poll() is None and time.time() < deadline, "dif serve did not start listening"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.time() + 15
        while port_open() and time.time() < deadline:
            time.sleep(0.5)
        assert not port_open(), f"port {port} still held after SIGTERM to dif serve"
    finally:
        if proc.poll() is None:
            proc.kill()
