"""``dif``: the command-line interface. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from engine.cli import bench, lineage, models, provenance, serve, study
from engine.cli.common import add_common
from engine.errors import DifError

GROUPS = (models, lineage, bench, serve, provenance, study)  # each adds its sub-commands with register()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dif", description="Deep Image Fingerprint: detect a generator's images and map generator lineage."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub, add_common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except DifError as exc:
        if debug:
            raise
        print(f"dif: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dif: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0
    except Exception as exc:  # last resort: still one line, traceback only with --debug
        if debug:
            raise
        print(f"dif: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
