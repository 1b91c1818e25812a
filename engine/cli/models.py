"""``dif train``, ``dif detect`` and the model commands: ``list``, ``show``, ``export``, ``import``, ``rm``,
``extractors``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from typing import Callable

from engine.cli.common import OFFSETS_HELP, ProgressBar, add_table_format, open_store, print_json, round_metrics


def _reference_pool(args, crop: int):
    """The default pool plus the user's folder (``--reference-pool DIR``), unless ``--no-reference-pool``."""
    from engine.data.reference_pool import build_pool

    return None if args.no_reference_pool else build_pool(crop, args.reference_pool)


def cmd_train(args) -> int:
    from engine.api import train_from_folders
    from engine.device import default_device, describe_device
    from engine.method.config import TrainConfig
    from engine.method.registry import get_method

    config = TrainConfig(
        method=args.method,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        border=args.border,
        extractor=args.extractor,
        seed=args.seed,
        correlation=args.correlation,
        pad=args.pad,
        watermark_match=not args.no_watermark_match,
        loss=args.loss,
        margin=args.margin,
        lr=args.lr,
        decision=args.decision,
        target_fpr=args.target_fpr,
        jpeg_target_fpr=args.jpeg_target_fpr,
        watermark_share=args.watermark_share,
        augment=args.augment,
        augment_copies=args.augment_copies,
        resave_jpeg=args.resave_jpeg,
    )
    store = open_store(args)
    show = not args.quiet
    res_bar = ProgressBar("residuals", show)
    train_bar = ProgressBar("training ", show)

    def on_step(p) -> None:
        train_bar.update(
            p.step, p.total, f"loss {p.loss:.3f} batch mu_real {p.batch_mu_real:+.4f} mu_fake {p.batch_mu_fake:+.4f}"
        )

    metadata = json.loads(args.metadata) if args.metadata else None
    start = time.time()
    result = train_from_folders(
        args.name,
        args.real,
        args.fake,
        config,
        args.train_size,
        store,
        default_device(),
        on_step,
        res_bar.update,
        args.strict,
        metadata,
        reference_pool=_reference_pool(args, config.crop),
    )
    fp = result["fingerprint"]
    summary = {
        "name": fp.name,
        "method": fp.method,
        "extractor": fp.extractor,
        "device": describe_device(),
        "cached": result["cached"],
        "mu_real": fp.mu_real,
        "mu_fake": fp.mu_fake,
        "train_size": min(fp.n_real, fp.n_fake),
        "n_real": fp.n_real,
        "n_fake": fp.n_fake,
        "steps": config.steps if get_method(fp.method).learned else 0,
        "seconds": round(time.time() - start, 2),
        "train_seconds": fp.seconds,
        "skipped": result["skipped"],
        "watermark": fp.watermark,
        "reference_pool": {k: v for k, v in fp.reference_pool.items() if k != "scenes"},
        "decision": fp.decision,
        "calibration_set": {k: v for k, v in fp.calibration_set.items() if k not in ("real", "fake")},
        "statistic": fp.correlation,
        "warnings": result["warnings"],
    }
    summary.update(
        {(f"test_{k}" if k in ("n_real", "n_fake") else k): v for k, v in round_metrics(result["test_metrics"]).items()}
    )
    if args.json:
        print_json(summary)
    else:
        for line in result["skipped"]:
            print(f"skipped: {line}", file=sys.stderr)
        for line in result["warnings"]:
            print(f"warning: {line}", file=sys.stderr)
        t = result["test_metrics"] or {}
        print(
            f"{fp.name}: method {fp.method}, {fp.n_fake} generated + {fp.n_real} real training images, "
            f"{'cache hit' if result['cached'] else f'trained in {fp.seconds:.1f}s'}"
        )
        print(
            f"  mu_real {fp.mu_real:+.5f}  mu_fake {fp.mu_fake:+.5f}  (from "
            f"{fp.calibration_set.get('source', 'training images')})"
        )
        if fp.threshold is not None:
            d = fp.decision
            print(
                f"  decision: rho past {fp.threshold:+.5f}, the cut that flags {d['target_fpr']:.0%} of the "
                f"{d['reference']} ({d['n_reference']} images)"
            )
        else:
            print(
                "  decision: closer of mu_real / mu_fake"
                + (f" ({fp.decision['reason']})" if fp.decision.get("reason") else "")
            )
        if fp.watermark.get("matched"):
            print(f"  watermark-matched training: {fp.watermark['reason']}")
        if fp.reference_pool:
            rp = fp.reference_pool
            print(
                f"  mu_real calibrated on a reference pool of {rp['n_images']} real images from {rp['n_scenes']} "
                f"scenes (training photos alone gave {rp['mu_real_training']:+.5f})"
            )
        if t:
            print(
                f"  held-out: balanced accuracy {t['accuracy']:.3f} (real {t['acc_real']:.3f}, generated "
                f"{t['acc_fake']:.3f}), AUC {t['auc']:.3f}, AP {t['ap']:.3f}  [{t['n_real']} real, {t['n_fake']} "
                "generated]"
            )
    return 0


def cmd_detect(args) -> int:
    from engine.api import detect
    from engine.data.images import expand_sources, load_images
    from engine.errors import ConfigError

    store = open_store(args)
    fp = store.load(args.name)
    images, bad = load_images(expand_sources(args.images), crop=None, strict=args.strict)
    if args.tiles < 1:
        raise ConfigError(f"--tiles {args.tiles}: must be at least 1")
    rows = detect(fp, images, store, pad=args.pad, max_tiles=args.tiles, offsets=args.offsets) if images else []
    errors = [{"file": e.source, "error": e.problem} for e in bad]
    if args.json:
        print_json({"model": fp.name, "results": rows, "errors": errors})
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "rho", "score", "label", "confidence", "calibrated", "warnings", "error"])
        for r in rows:
            writer.writerow(
                [
                    r["file"],
                    f"{r['rho']:.6f}",
                    f"{r['score']:.4f}",
                    r["label"],
                    f"{r.get('confidence', float('nan')):.4f}",
                    r.get("calibrated", ""),
                    "; ".join(r.get("warnings", [])),
                    "",
                ]
            )
        for e in errors:
            writer.writerow([e["file"], "", "", "", "", "", "", e["error"]])
    else:
        for r in rows:
            conf = f" confidence {r['confidence']:.2f} ({r['calibrated']})" if "confidence" in r else ""
            print(f"{r['label']:9s} score {r['score']:+7.3f} rho {r['rho']:+.5f}{conf}  {r['file']}")
            for line in r.get("warnings", []):
                print(f"warning: {r['file']}: {line}", file=sys.stderr)
        for e in errors:
            print(f"error     {e['file']}: {e['error']}", file=sys.stderr)
    return 0 if rows or not errors else 1


def cmd_list(args) -> int:
    store = open_store(args)
    rows, problems = [], []
    for name, fp, problem in store.scan():
        if fp is None:
            problems.append({"name": name, "problem": problem})
        else:
            rows.append(fp.summary())
    if args.json:
        print_json({"models": rows, "corrupt": problems})
        return 0
    if not rows and not problems:
        print(f"no models in {store.root}")
    for r in rows:
        acc = r["test_accuracy"]
        print(
            f"{r['name']:32s} {r['method']:9s} {r['extractor']:8s} crop {r['crop']:4d}  n {r['n_fake']}+{r['n_real']} "
            f" acc {acc if acc is None else f'{acc:.3f}'}  {r['created']}"
        )
    for p in problems:
        print(f"corrupt: {p['problem']}", file=sys.stderr)
    return 0


def cmd_show(args) -> int:
    fp = open_store(args).load(args.name)
    card = fp.card()
    if not args.history:
        card.pop("history", None)
        card["train_files"] = {k: f"{len(v)} files" for k, v in card["train_files"].items()}
        for key in ("jpeg_reading", "offset_reading", "upscaled_reading"):
            reading = card.get(key, {})
            if isinstance(reading.get("rho_fake"), list):  # the calibration values, like the file lists, on --history
                card[key] = reading = {**reading, "rho_fake": f"{len(reading['rho_fake'])} values"}
            if isinstance(reading.get("template"), list):  # a reader's 3 x 8 x 8 numbers, likewise
                card[key] = reading = {**reading, "template": "3 x 8 x 8 values"}
            if isinstance(reading.get("coefficient_weights"), list):  # the JPEG reader's weights on sign leans
                card[key] = {**reading, "coefficient_weights": f"{len(reading['coefficient_weights'])} values"}
    print_json(card)
    return 0


def cmd_export(args) -> int:
    path = open_store(args).export(args.name, args.file)
    print(f"exported {args.name} to {path}")
    return 0


def cmd_import(args) -> int:
    fp = open_store(args).import_file(args.file, name=args.name, overwrite=args.force)
    print(f"imported {fp.name} ({fp.method}, {fp.extractor}, crop {fp.crop})")
    return 0


def cmd_rm(args) -> int:
    store = open_store(args)
    for name in args.names:
        store.delete(name)
        print(f"removed {name}")
    return 0


def cmd_extractors(args) -> int:
    from engine.residuals.registry import available_extractors, dncnn_card

    card = dncnn_card()
    print(", ".join(available_extractors()))
    if card:
        print(json.dumps({"dncnn_psnr_holdout": card.get("psnr_holdout"), "steps": card.get("steps_done")}, indent=2))
    return 0


def register(sub, add_common: Callable) -> None:
    from engine.data.augment import POLICIES
    from engine.data.tiles import DEFAULT_MAX_TILES
    from engine.method.config import CORRELATIONS, DECISIONS, METHODS, TrainConfig
    from engine.method.losses import LOSSES
    from engine.residuals.registry import DEFAULT_EXTRACTOR, available_extractors

    d = TrainConfig()

    p = sub.add_parser(
        "train", help="train a fingerprint from a folder of generated images and a folder of real photos"
    )
    p.add_argument("--name", required=True)
    p.add_argument("--real", required=True, help="folder of real photos")
    p.add_argument("--fake", required=True, help="folder of the generator's images")
    p.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="N generated + N real training images (default: the whole train half)",
    )
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--border", type=int, default=d.border)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--method", choices=METHODS, default=d.method)
    p.add_argument("--extractor", choices=available_extractors(), default=DEFAULT_EXTRACTOR)
    p.add_argument("--correlation", choices=CORRELATIONS, default=d.correlation)
    p.add_argument(
        "--loss", choices=LOSSES, default=d.loss, help="DIF loss on correlation distance (hinge: paper Eq. 6)"
    )
    p.add_argument("--margin", type=float, default=d.margin, help="DIF loss margin m")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate of the DIF U-Net")
    p.add_argument(
        "--decision",
        choices=DECISIONS,
        default=d.decision,
        help="real-fpr: flag past the cut that flags --target-fpr of real photos; closer-mean: the paper's "
        "closer-mean rule",
    )
    p.add_argument(
        "--target-fpr",
        type=float,
        default=d.target_fpr,
        help="false-positive rate on the reference real photos for --decision real-fpr",
    )
    p.add_argument(
        "--jpeg-target-fpr",
        type=float,
        default=d.jpeg_target_fpr,
        help="the JPEG reading's own false-positive rate, among the calibration photos re-saved as JPEG "
        "(default 0: --target-fpr). At 0.1 a default sd1 card found 80%% of sd1-b/ JPEG-75 re-saves (63.5%% at "
        "the default), and the 3-seed bench flagged 13.5-14.3%% of held-out real JPEG-75 photos (docs/RESULTS.md)",
    )
    p.add_argument(
        "--augment",
        choices=tuple(POLICIES),
        default=d.augment,
        help="fit degraded copies of both classes too (jpeg: JPEG quality 60-95; world: JPEG, rescale, blur, offsets, "
        "noise)",
    )
    p.add_argument(
        "--augment-copies", type=int, default=d.augment_copies, help="degraded copies per training image with --augment"
    )
    p.add_argument(
        "--resave-jpeg",
        type=int,
        default=d.resave_jpeg,
        metavar="Q",
        help="re-save both classes as JPEG at quality Q first (when one class is JPEG and the other is not)",
    )
    p.add_argument("--pad", action="store_true", help="pad images smaller than the crop instead of skipping them")
    p.add_argument(
        "--no-watermark-match",
        action="store_true",
        help="do not embed a known watermark found in the generated images into the real ones",
    )
    p.add_argument(
        "--watermark-share",
        type=float,
        default=d.watermark_share,
        help="share of the real training images that get the watermark when matching",
    )
    p.add_argument(
        "--reference-pool",
        metavar="DIR",
        help="your own real photos, added to the default reference pool mu_real is calibrated on",
    )
    p.add_argument("--no-reference-pool", action="store_true", help="keep mu_real from the training photos only")
    p.add_argument(
        "--metadata", help='JSON object of user metadata, e.g. {"release_date": "2023-01-01", "base_model": "sd1"}'
    )
    p.add_argument("--strict", action="store_true", help="stop at the first bad image instead of skipping it")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("detect", help="is each image from this model's generator?")
    p.add_argument("--name", required=True)
    p.add_argument("images", nargs="+", help="image files or folders")
    add_table_format(p)
    p.add_argument("--pad", action="store_true")
    p.add_argument(
        "--tiles",
        type=int,
        default=DEFAULT_MAX_TILES,
        metavar="N",
        help="score an image larger than two crops on up to N tiles and average them (1: the centre crop only)",
    )
    p.add_argument("--offsets", action=argparse.BooleanOptionalAction, default=True, help=OFFSETS_HELP)
    p.add_argument("--strict", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("list", help="list stored models")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print a model's card")
    p.add_argument("name")
    p.add_argument("--history", action="store_true", help="include the training history and file hashes")
    add_common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write a model to one shareable file")
    p.add_argument("name")
    p.add_argument("file")
    add_common(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="add a model from an exported file")
    p.add_argument("file")
    p.add_argument("--name", help="store it under another name")
    p.add_argument("--force", action="store_true", help="replace a model of the same name")
    add_common(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("rm", help="remove models")
    p.add_argument("names", nargs="+")
    add_common(p)
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("extractors", help="list residual extractors and the DnCNN card")
    add_common(p)
    p.set_defaults(func=cmd_extractors)
