"""CLI sub-command ``dif study run STUDY.toml [--address ADDR] [--backend ...] [--json]``."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable

from engine.cli.common import ProgressBar, open_store, print_json


def cmd_study_run(args) -> int:
    from engine.study.backends import make_backend
    from engine.study.runner import run_study
    from engine.study.spec import load_study

    study = load_study(args.study)
    store = open_store(args)
    bars: dict[str, ProgressBar] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = ProgressBar(f"{stage:12s}", not args.quiet)
        bars[stage].update(done, total)

    # with --json, stdout carries the summary only: whatever Ray prints meanwhile goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        backend = make_backend(args.backend, args.address, log_to_driver=not args.json)
        try:
            summary = run_study(study, store, backend, progress)
        finally:
            backend.close()
    if args.json:
        print_json(summary)
    else:
        print(render(summary))
    return 0 if summary["failed"] == 0 else 1


def render(s: dict[str, Any]) -> str:
    """The human summary: counts, failures with their reasons, families, wall time."""
    where = s["backend"] + (
        f" ({s['nodes']} nodes, {s.get('cpus', 0):g} CPUs, {s.get('gpus', 0):g} GPUs)" if s["backend"] == "ray" else ""
    )
    lines = [
        f"study {s['study']} on {where}: {s['trained']} trained, {s['cached']} cache hits, {s['failed']} failed, "
        f"{s['wall_seconds']:.1f}s wall"
    ]
    for m in s["models"]:
        detail = (
            m["reason"]
            if m["status"] == "failed"
            else (f"{m['seconds']:.1f}s on {m['where']}" if m["status"] == "trained" else "train key already stored")
        )
        lines.append(f"  {m['name']:24s} {m['status']:8s} {detail}")
    for err in s["residual_errors"]:
        lines.append(f"  residual batch failed (its models computed their own): {err}")
    if s["lineage"]:
        for i, fam in enumerate(s["lineage"]["families"]):
            lines.append(f"  family {i}: {', '.join(fam)}")
    st = s["stages"]
    lines.append(
        f"  stages: plan {st['plan_seconds']:.1f}s, residuals {st['residuals_seconds']:.1f}s ({s['residual_images']} "
        f"images, {s['residual_batches']} batches), "
        f"fingerprints {st['fingerprints_seconds']:.1f}s, cross-detection {st['cross_seconds']:.1f}s"
    )
    return "\n".join(lines)


def register(sub, add_common: Callable) -> None:
    """Add ``dif study run`` to ``dif``'s sub-parsers."""
    study = sub.add_parser("study", help="lineage studies of many generators (Ray when installed)")
    study_sub = study.add_subparsers(dest="study_command", required=True)
    p = study_sub.add_parser("run", help="fingerprint every model of a study file, then cross-detect and infer lineage")
    p.add_argument("study", help="study file (TOML; see docs/study-example.toml)")
    p.add_argument(
        "--address", help="Ray cluster address (host:port); default: a local Ray instance, or sequential without Ray"
    )
    p.add_argument(
        "--backend", choices=("auto", "ray", "sequential"), default="auto", help="default auto: Ray when installed"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_common(p)
    p.set_defaults(func=cmd_study_run)
