"""``dif bench``: the benchmark command (see engine/bench.py)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _csv(text: str, cast=str) -> tuple:
    return tuple(cast(x) for x in text.split(",") if x.strip())


def cmd_bench(args) -> int:
    from engine.bench import BenchConfig, markdown_table, run_bench, write_outputs
    from engine.cli import ProgressBar, _store
    from engine.errors import ConfigError

    if args.from_json:
        try:
            result = json.loads(Path(args.from_json).read_text())
            table = markdown_table(result)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{args.from_json}: not a dif bench results.json ({type(exc).__name__}: {exc})") from None
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.md").write_text(table)
        print(table)
        return 0
    if not args.data:
        raise ConfigError("dif bench needs --data ROOT (or --from-json FILE to re-render tables)")

    cfg = BenchConfig(
        data=args.data,
        real=args.real,
        models=_csv(args.models) if args.models else (),
        train_sizes=_csv(args.train_sizes, int),
        methods=_csv(args.methods),
        repeats=args.repeats,
        steps=args.steps,
        extractor=args.extractor,
        crop=args.crop,
        border=args.border,
        correlations=_csv(args.correlation),
        perturb=_csv(args.perturb) if args.perturb else ("none",),
        train_variants=_csv(args.train),
        reference_pool=not args.no_reference_pool,
        pool_dir=args.reference_pool,
    )
    start = time.time()

    def say(msg: str) -> None:
        print(f"[{time.time() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    bars: list[ProgressBar] = []

    def on_step(step: int, steps: int) -> None:
        if step == 1:  # a new fit: a fresh bar, so its rate and ETA are this fit's
            bars[:] = [ProgressBar("  DIF steps", sys.stderr.isatty())]
        bars[0].update(step, steps)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / "rows.partial.json"

    def keep(rows: list[dict]) -> None:
        tmp = partial.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows) + "\n")
        tmp.replace(partial)

    resume = json.loads(partial.read_text()) if args.resume and partial.is_file() else None
    if resume is not None:
        say(f"resuming: {len(resume)} rows from {partial}")
    result = run_bench(cfg, _store(args), say, on_step, keep, resume, args.max_minutes)
    partial.unlink(missing_ok=True)
    result["timings"]["total_seconds"] = round(time.time() - start, 1)
    js, md = write_outputs(result, Path(args.out))
    print(markdown_table(result))
    print(f"wrote {js} and {md}", file=sys.stderr)
    return 0


def register(sub, add_common) -> None:
    from engine.config import CORRELATIONS
    from engine.denoisers import DEFAULT_EXTRACTOR, available_extractors
    from engine.perturb import PERTURBATIONS

    p = sub.add_parser("bench", help="benchmark DIF and the baselines on ROOT/<real> vs ROOT/<generator> folders")
    p.add_argument("--data", help="folder with one real-photo folder and one folder per generator")
    p.add_argument("--from-json", metavar="FILE", help="only re-render the tables of an earlier run's results.json into OUT/results.md")
    p.add_argument("--real", default="real")
    p.add_argument("--models", help="comma-separated generator folders (default: all but --real)")
    p.add_argument("--train-sizes", default="16,32,64")
    p.add_argument("--methods", default="dif,marra18,joslin20")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--extractor", choices=available_extractors(), default=DEFAULT_EXTRACTOR)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--border", type=int, default=8)
    p.add_argument("--correlation", default="plain", help=f"comma-separated detection statistics to evaluate: {','.join(CORRELATIONS)}")
    p.add_argument("--perturb", help=f"comma-separated test-time perturbations: {','.join(PERTURBATIONS)}")
    p.add_argument("--train", default="default", help="comma-separated training variants: default (watermark-matched when a known watermark is found), "
                   "no-wm-match, mixed (random JPEG 75/50/none per image), or a perturbation name (train on perturbed images)")
    p.add_argument("--reference-pool", metavar="DIR", help="your own real photos, added to the default reference pool")
    p.add_argument("--no-reference-pool", action="store_true", help="skip the reference-pool calibration rows")
    p.add_argument("--out", default="artifacts/bench")
    p.add_argument("--resume", action="store_true", help="reuse the fits kept in OUT/rows.partial.json by an earlier, stopped run of the same grid")
    p.add_argument("--max-minutes", type=float, help="start no new fit after this many minutes; the report covers the fits done")
    add_common(p)
    p.set_defaults(func=cmd_bench)
