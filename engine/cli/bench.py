"""``dif bench``: the benchmark command (engine/bench/runner.py runs, engine/bench/report.py renders)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from engine.cli.common import ProgressBar, open_store, progress_bar


def _csv(text: str, cast=str) -> tuple:
    return tuple(cast(x) for x in text.split(",") if x.strip())


def cmd_bench(args) -> int:
    from engine.bench.report import markdown_table, write_outputs
    from engine.bench.runner import BenchConfig, run_bench
    from engine.bench.transfer import markdown as transfer_markdown
    from engine.errors import ConfigError

    if args.from_json:
        try:
            result = json.loads(Path(args.from_json).read_text())
            table = transfer_markdown(result) if result.get("protocol") == "transfer" else markdown_table(result)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{args.from_json}: not a dif bench results.json ({type(exc).__name__}: {exc})") from None
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.md").write_text(table)
        print(table)
        return 0
    if not args.data:
        raise ConfigError("dif bench needs --data ROOT (or --from-json FILE to re-render tables)")
    if args.protocol == "transfer":
        return _cmd_transfer(args)

    cfg = BenchConfig(
        data=args.data,
        real=args.real,
        models=_csv(args.models) if args.models else (),
        train_sizes=_csv(args.train_sizes, int) if args.train_sizes else (16, 32, 64),
        methods=_csv(args.methods) if args.methods else ("dif", "marra18", "joslin20"),
        repeats=args.repeats or 1,
        steps=args.steps,
        extractor=args.extractor,
        crop=args.crop,
        border=args.border,
        correlations=_csv(args.correlation) if args.correlation else ("plain",),
        perturb=_csv(args.perturb) if args.perturb else ("none",),
        train_variants=_csv(args.train),
        reference_pool=not args.no_reference_pool,
        pool_dir=args.reference_pool,
        **{k: v for k, v in _train_overrides(args).items() if k in ("loss", "margin", "lr")},
    )
    start = time.time()

    def say(msg: str) -> None:
        print(f"[{time.time() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    bars: list[ProgressBar] = []

    def on_step(step: int, steps: int) -> None:
        if step == 1:  # a new fit: a fresh bar, so its rate and ETA are this fit's
            bars[:] = [progress_bar("  DIF steps")]
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
    result = run_bench(cfg, open_store(args), say, on_step, keep, resume, args.max_minutes)
    partial.unlink(missing_ok=True)
    result["timings"]["total_seconds"] = round(time.time() - start, 1)
    js, md = write_outputs(result, Path(args.out))
    print(markdown_table(result))
    print(f"wrote {js} and {md}", file=sys.stderr)
    return 0


# TrainConfig fields dif bench passes on when given (None: dif train's default)
TRAIN_OVERRIDES = (
    "loss",
    "margin",
    "lr",
    "decision",
    "target_fpr",
    "jpeg_target_fpr",
    "watermark_share",
    "unet_pools",
    "augment_copies",
)


def _train_overrides(args) -> dict:
    """TrainConfig fields given on the command line (the rest keep dif train's defaults)."""
    out = {"steps": args.steps, "crop": args.crop, "border": args.border, "extractor": args.extractor}
    if getattr(args, "no_watermark_match", False):
        out["watermark_match"] = False
    for key in TRAIN_OVERRIDES:
        value = getattr(args, key)
        if value is not None:
            out[key] = value
    return out


def _cmd_transfer(args) -> int:
    """The transfer protocol (engine/bench/transfer.py): train the dif-train way on each set, detect on every set."""
    from engine.bench.transfer import TransferConfig, markdown, run_transfer
    from engine.data.perturb import PERTURBATIONS
    from engine.errors import ConfigError
    from engine.method.config import OFFSETS, TrainConfig
    from engine.storage.store import Store

    train = _train_overrides(args)
    TrainConfig(**train)  # refuse a bad setting before any work
    cfg = TransferConfig(
        data=args.data,
        real=args.real,
        train_sets=_csv(args.train_sets) if args.train_sets else (_csv(args.models) if args.models else ()),
        test_sets=_csv(args.test_sets) if args.test_sets else (),
        methods=_csv(args.methods) if args.methods else ("dif", "marra18"),
        train_size=max(_csv(args.train_sizes, int)) if args.train_sizes else 64,
        seeds=tuple(range(args.repeats)) if args.repeats else (0, 1, 2),
        train=train,
        reference_pool=not args.no_reference_pool,
        pool_dir=args.reference_pool,
        augments=_csv(args.augment) if args.augment else (),
        statistics=_csv(args.correlation) if args.correlation else (),
        perturbations=_csv(args.perturb) if args.perturb else ("none",),
    )
    for name in cfg.perturbations:
        if name not in PERTURBATIONS:
            raise ConfigError(f"unknown perturbation {name!r} (choose from {', '.join(PERTURBATIONS)})")
    for aug in cfg.augments:
        TrainConfig(**{**train, "augment": aug})
    for stat in cfg.statistics:
        TrainConfig(**{**train, "correlation": "plain" if stat == OFFSETS else stat})
    user_store = open_store(args)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the benchmark's fingerprints stay out of the user's models; residuals are shared with their cache
    store = Store(out_dir / "store", residuals_root=user_store.root)
    start = time.time()

    def say(msg: str) -> None:
        print(f"[{time.time() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    bars: list[ProgressBar] = []

    def on_step(step: int, steps: int) -> None:
        if step == 1:
            bars[:] = [progress_bar("  DIF steps")]
        bars[0].update(step, steps)

    result = run_transfer(cfg, store, say, on_step)
    result["total_seconds"] = round(time.time() - start, 1)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out_dir / "results.md").write_text(table)
    print(table)
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}", file=sys.stderr)
    return 0


def register(sub, add_common) -> None:
    from engine.data.augment import POLICIES
    from engine.data.perturb import PERTURBATIONS
    from engine.method.config import CORRELATIONS, DECISIONS, OFFSETS, TrainConfig
    from engine.method.losses import LOSSES
    from engine.residuals.registry import DEFAULT_EXTRACTOR, available_extractors

    d = TrainConfig()  # the fit settings default to dif train's

    p = sub.add_parser("bench", help="benchmark DIF and the baselines on ROOT/<real> vs ROOT/<generator> folders")
    p.add_argument("--data", help="folder with one real-photo folder and one folder per generator")
    p.add_argument(
        "--protocol",
        choices=("transfer", "grid"),
        default="transfer",
        help="transfer (default): train each set the dif-train way, detect every set the dif-detect way; "
        "grid: the in-set grid of train sizes, perturbations and training variants",
    )
    p.add_argument(
        "--train-sets", help="transfer: comma-separated folders to train on (default: every generator folder)"
    )
    p.add_argument("--test-sets", help="transfer: comma-separated folders to test on (default: every generator folder)")
    p.add_argument("--loss", choices=LOSSES, help="DIF loss (default: dif train's)")
    p.add_argument("--margin", type=float, help="DIF margin (default: dif train's)")
    p.add_argument("--lr", type=float, help="DIF learning rate (default: dif train's)")
    p.add_argument("--decision", choices=DECISIONS, help="transfer: decision rule (default: dif train's)")
    p.add_argument("--target-fpr", type=float, help="transfer: target FPR of the real-fpr rule (default: dif train's)")
    p.add_argument(
        "--jpeg-target-fpr", type=float, help="transfer: the JPEG reading's own target FPR (default: dif train's)"
    )
    p.add_argument(
        "--watermark-share",
        type=float,
        help="transfer: share of real training images marked when matching a watermark (default: dif train's)",
    )
    p.add_argument(
        "--unet-pools",
        type=int,
        help="transfer: U-Net depth (default: dif train's 4, the reference; 3 was this project's earlier U-Net)",
    )
    p.add_argument("--no-watermark-match", action="store_true", help="transfer: train without watermark matching")
    p.add_argument(
        "--from-json",
        metavar="FILE",
        help="only re-render the tables of an earlier run's results.json into OUT/results.md",
    )
    p.add_argument("--real", default="real")
    p.add_argument("--models", help="comma-separated generator folders (default: all but --real)")
    p.add_argument("--train-sizes", help="grid: comma-separated N (default 16,32,64); transfer: N (default 64)")
    p.add_argument(
        "--methods", help="comma-separated methods (default: grid dif,marra18,joslin20; transfer dif,marra18)"
    )
    p.add_argument("--repeats", type=int, help="seeds 0..R-1 (default: grid 1, transfer 3)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--extractor", choices=available_extractors(), default=DEFAULT_EXTRACTOR)
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--border", type=int, default=d.border)
    p.add_argument(
        "--correlation",
        help=f"comma-separated detection statistics to evaluate: {','.join(CORRELATIONS)}, or {OFFSETS} "
        "(the plain fit read as dif detect reads it; plain alone reads at the crop's grid only, as dif detect "
        f"--no-offsets) (default: {OFFSETS} for a plain fit)",
    )
    p.add_argument(
        "--augment",
        help=f"transfer: comma-separated training augmentations to compare: {','.join(POLICIES)} (default: dif "
        "train's)",
    )
    p.add_argument(
        "--augment-copies", type=int, help="transfer: degraded copies per training image (default: dif train's)"
    )
    p.add_argument("--perturb", help=f"comma-separated test-time perturbations: {','.join(PERTURBATIONS)}")
    p.add_argument(
        "--train",
        default="default",
        help="comma-separated training variants: default (watermark-matched when a known watermark is found), "
        "no-wm-match, mixed (random JPEG 75/50/none per image), or a perturbation name (train on perturbed images)",
    )
    p.add_argument("--reference-pool", metavar="DIR", help="your own real photos, added to the default reference pool")
    p.add_argument("--no-reference-pool", action="store_true", help="skip the reference-pool calibration rows")
    p.add_argument(
        "--out",
        default="artifacts/bench",
        help="results.json / results.md (transfer: and the benchmark's own fingerprint store)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse the fits kept in OUT/rows.partial.json by an earlier, stopped run of the same grid",
    )
    p.add_argument(
        "--max-minutes", type=float, help="start no new fit after this many minutes; the report covers the fits done"
    )
    add_common(p)
    p.set_defaults(func=cmd_bench)
