"""``dif serve``: start the Streamlit dashboard (loopback by default, XSRF on, upload size capped)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Callable

from engine.errors import ConfigError

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
MAX_UPLOAD_MB = 200


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def streamlit_command(port: int, address: str) -> list[str]:
    """The ``streamlit run`` command line; flags repeat .streamlit/config.toml so any working directory gets them."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
    ]


def serve_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if getattr(args, "cache", None):
        env["DIF_CACHE_DIR"] = str(Path(args.cache).resolve())
    env["DIF_DEMO"] = "0" if args.no_demo else "1"
    env["DIF_SERVER_PATHS"] = "1" if is_loopback(args.address) else "0"  # server folders only for a local user
    return env


def cmd_serve(args: argparse.Namespace) -> int:
    if not APP.exists():
        raise ConfigError(f"dashboard not found at {APP} (reinstall dif-lineage from a checkout)")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"port {args.port} out of range 1..65535")
    if not is_loopback(args.address):
        print(
            f"dif serve: listening on {args.address}: anyone who can reach it can use the store; server folder paths "
            "are disabled",
            file=sys.stderr,
        )
    print(f"dif serve: http://{args.address}:{args.port}", file=sys.stderr, flush=True)
    # replace this process with Streamlit: a SIGTERM from a service manager or `kill` then reaches the
    # server itself (a child would keep running and hold the port after its parent died)
    command = streamlit_command(args.port, args.address)
    os.chdir(APP.parent.parent)
    os.execve(command[0], command, serve_env(args))
    return 0  # not reached


def register(sub, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``dif serve`` to the CLI."""
    p = sub.add_parser("serve", help="open the dashboard in a browser (Streamlit)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--no-demo", action="store_true", help="do not build/open the built-in demo zoo")
    add_common(p)
    p.set_defaults(func=cmd_serve)
