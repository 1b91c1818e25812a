"""``dif bench`` transfer protocol: does a fingerprint recognise its generator's images made elsewhere?

In-set accuracy (the held-out half of the training folder) can be earned by anything the folder's
images share with each other: prompts, layouts, sampling noise. What lineage and attribution need is
that a fingerprint of set A recognises *other* sets of A's generator and of its fine-tunes, and
nothing else. So for each training set A, seed and method:

- the fingerprint is trained exactly as ``dif train`` trains it (``api.train_from_folders``: seeded
  group-aware halves, N + N fit images, calibration images, the reference pool);
- every test set is scored exactly as ``dif detect`` scores it (``api.detect``): A's held-out half,
  and the whole of every other set, against the held-out real photos (scenes never used in training
  or calibration).

The numbers are therefore the product's. Fingerprints go to a store of their own (residuals are
shared with the user's cache), so a rerun of the same grid costs only detection.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.api import detect, train_from_folders
from engine.bench.summary import mean_and_std_by_group
from engine.data.images import list_images, load_images
from engine.data.perturb import perturb
from engine.data.reference_pool import build_pool
from engine.device import default_device, environment
from engine.errors import ConfigError
from engine.method.config import OFFSETS, TrainConfig
from engine.method.detect import decide
from engine.method.metrics import roc_auc
from engine.provenance.watermark_match import marked_copies

Progress = Callable[[str], None]
WATERMARKED_REAL = "real+SD-watermark"  # pseudo test set: the held-out real photos with the SD watermark embedded


@dataclass(frozen=True)
class TransferConfig:
    data: str
    real: str = "real"
    train_sets: tuple[str, ...] = ()  # fingerprints are trained on these (default: every generator folder)
    test_sets: tuple[str, ...] = ()  # and tested on these (default: every generator folder)
    methods: tuple[str, ...] = ("dif", "marra18")
    train_size: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)
    train: dict = field(
        default_factory=dict
    )  # TrainConfig overrides: loss, margin, lr, steps, extractor, decision, ...
    reference_pool: bool = True
    pool_dir: str | None = None
    # the robustness matrix: training variants (augmentation policies), statistics, test-time degradations
    augments: tuple[str, ...] = ()  # default: the train settings' augment
    statistics: tuple[str, ...] = ()  # default: as dif detect reads the fit (plain: OFFSETS); plain: at the grid only
    perturbations: tuple[str, ...] = ("none",)


@dataclass
class TransferRow:
    train_set: str
    method: str
    seed: int
    test_set: str
    in_set: bool  # the held-out half of the training folder, not another set
    n: int
    n_real: int
    flagged: float  # share of the test set called "generated"
    real_fpr: float  # share of the held-out real photos called "generated"
    accuracy: float  # balanced: (flagged + 1 - real_fpr) / 2
    auc: float
    train_seconds: float
    wall_seconds: float  # the whole dif-train call: residuals (cold or cached), fit, calibration, test
    flagged_closer_mean: float = float("nan")  # the same fingerprint under the paper's closer-mean rule
    real_fpr_closer_mean: float = float("nan")
    augment: str = "none"
    statistic: str = "plain"
    perturb: str = "none"  # applied to the test set and to the held-out real photos alike


def _folders(root: Path, cfg: TransferConfig) -> tuple[list[str], list[str]]:
    if not (root / cfg.real).is_dir():
        raise ConfigError(f"{root / cfg.real}: real-photo folder not found")
    every = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != cfg.real and not p.name.startswith("."))
    train_sets, test_sets = list(cfg.train_sets) or every, list(cfg.test_sets) or every
    for name in set(train_sets) | set(test_sets):
        if not (root / name).is_dir():
            raise ConfigError(f"{root / name}: generator folder not found")
    if not train_sets:
        raise ConfigError(f"{root}: no generator folders besides {cfg.real!r}")
    return train_sets, test_sets


def _model_name(train_set: str, method: str, seed: int, variant: str = "") -> str:
    safe = "".join(c if c.isalnum() or c in "._-+" else "_" for c in train_set).lstrip(".-") or "set"
    return f"{safe[:40]}.{method}{'.' + variant if variant else ''}.s{seed}"


def run_transfer(
    cfg: TransferConfig,
    store,
    progress: Progress | None = None,
    step_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train every (training set, method, seed) the ``dif train`` way; score every test set the ``dif detect`` way."""
    say = progress or (lambda msg: None)
    root = Path(cfg.data)
    train_sets, test_sets = _folders(root, cfg)
    device = default_device()
    pool = build_pool(TrainConfig(**cfg.train).crop, cfg.pool_dir) if cfg.reference_pool else None
    if pool is not None and pool.missing:
        say(f"reference pool: {len(pool.missing)} default photo(s) missing (install the Debian wallpaper packages)")
    loaded: dict[str, list] = {}
    marked: dict[tuple, list] = {}

    def images_of(name: str) -> list:
        if name not in loaded:
            images, bad = load_images(list_images(root / name), crop=None)
            for err in bad:
                say(f"skipped {err}")
            loaded[name] = images
        return loaded[name]

    on_step = (lambda p: step_progress(p.step, p.total)) if step_progress else None
    base = TrainConfig(**cfg.train)
    augments = list(cfg.augments) or [base.augment]
    # by default a plain fit is read as dif detect reads it: with offsets
    stats = list(cfg.statistics) or [OFFSETS if base.correlation == "plain" else base.correlation]
    variants = [(a, st) for a in augments for st in stats]
    default_variant = (base.augment, base.correlation)
    degraded: dict[tuple, list] = {}

    def perturbed(key: tuple, images: list, name: str) -> list:
        if name == "none":
            return images
        if (key, name) not in degraded:
            degraded[(key, name)] = perturb(images, name)
        return degraded[(key, name)]

    rows: list[TransferRow] = []
    total = len(cfg.seeds) * len(train_sets) * len(cfg.methods) * len(variants)
    done = 0
    for seed in cfg.seeds:  # seeds outermost: a stopped run still holds every set's first seed
        for train_set in train_sets:
            for method in cfg.methods:
                for augment, statistic in variants:
                    done += 1
                    correlation = "plain" if statistic == OFFSETS else statistic  # the same fit: a cache hit
                    config = TrainConfig(
                        **{**cfg.train, "method": method, "seed": seed, "augment": augment, "correlation": correlation}
                    )
                    label = statistic if cfg.statistics else correlation  # model names stay as they were
                    tag = "" if (augment, label) == default_variant else f"{augment}-{label}"
                    say(
                        f"fit {done}/{total}: {train_set} {method} {augment} {statistic} seed {seed} "
                        f"({cfg.train_size} + {cfg.train_size})"
                    )
                    start = time.perf_counter()
                    result = train_from_folders(
                        _model_name(train_set, method, seed, tag),
                        root / cfg.real,
                        root / train_set,
                        config,
                        cfg.train_size,
                        store,
                        device,
                        on_step,
                        reference_pool=pool,
                    )
                    wall = time.perf_counter() - start
                    fp = result["fingerprint"]
                    real_test, _ = load_images([Path(p) for p in fp.test_files["real"]], crop=None)
                    held_out = set(fp.test_files["fake"])
                    sets = [
                        (
                            t,
                            t == train_set,
                            [im for im in images_of(t) if im.source in held_out] if t == train_set else images_of(t),
                        )
                        for t in test_sets
                    ]
                    key = tuple(fp.test_files["real"])
                    if (
                        key not in marked
                    ):  # watermark sensitivity: the same held-out real photos, SD-marked (once per split)
                        marked[key] = marked_copies(real_test)
                    sets.append((WATERMARKED_REAL, False, marked[key]))
                    for pert in cfg.perturbations:
                        real_p = perturbed(("real",) + key, real_test, pert)
                        for test_set, in_set, images in sets:
                            if pert != "none" and test_set == WATERMARKED_REAL:
                                continue
                            images_p = perturbed((test_set, in_set, tuple(held_out) if in_set else ()), images, pert)
                            row = TransferRow(
                                train_set,
                                method,
                                seed,
                                test_set,
                                in_set,
                                0,
                                0,
                                0.0,
                                0.0,
                                0.0,
                                0.0,
                                float(fp.seconds),
                                round(wall, 2),
                                augment=augment,
                                statistic=statistic,
                                perturb=pert,
                            )
                            rows.append(_score(fp, real_p, images_p, store, device, row, statistic == OFFSETS))
                        mine = [
                            r
                            for r in rows
                            if r.seed == seed
                            and r.train_set == train_set
                            and r.method == method
                            and r.augment == augment
                            and r.statistic == statistic
                            and r.perturb == pert
                        ]
                        say(
                            f"  {fp.name} [{pert}]: "
                            + ", ".join(f"{r.test_set} {r.flagged:.0%}" for r in mine)
                            + f"; real {mine[-1].real_fpr:.1%}"
                        )
    return {
        "protocol": "transfer",
        "config": asdict(cfg),
        "environment": environment(device),
        "rows": [asdict(r) for r in rows],
        "summary": summarize(rows),
    }


def _score(fp, real_test: list, images: list, store, device, row: TransferRow, offsets: bool = False) -> TransferRow:
    """Fill ``row`` with what ``dif detect`` (``--offsets``) says of ``images`` against the held-out real photos."""
    verdicts = detect(fp, list(real_test) + list(images), store, device, offsets=offsets)
    real_v, set_v = verdicts[: len(real_test)], verdicts[len(real_test) :]
    row.n, row.n_real = len(set_v), len(real_v)
    row.flagged = float(np.mean([v["label"] == "generated" for v in set_v]))
    row.real_fpr = float(np.mean([v["label"] == "generated" for v in real_v]))
    row.accuracy = (row.flagged + 1 - row.real_fpr) / 2
    labels = np.r_[np.zeros(len(real_v)), np.ones(len(set_v))]
    row.auc = roc_auc(labels, np.array([v["score"] for v in real_v + set_v]))
    closer = [decide(np.array([v["rho"] for v in vs]), fp.mu_real, fp.mu_fake) for vs in (real_v, set_v)]
    row.flagged_closer_mean, row.real_fpr_closer_mean = float(np.mean(closer[1])), float(np.mean(closer[0]))
    return row


SUMMARY_NUMBERS = (
    "accuracy",
    "flagged",
    "real_fpr",
    "auc",
    "train_seconds",
    "wall_seconds",
    "flagged_closer_mean",
    "real_fpr_closer_mean",
)


def summarize(rows: list[TransferRow]) -> list[dict]:
    """Mean and spread over seeds per (training set, method, variant, test set, perturbation)."""
    return mean_and_std_by_group(
        rows,
        group=lambda r: (r.train_set, r.method, r.augment, r.statistic, r.test_set, r.perturb),
        describe=lambda rs: {
            "train_set": rs[0].train_set,
            "method": rs[0].method,
            "augment": rs[0].augment,
            "statistic": rs[0].statistic,
            "test_set": rs[0].test_set,
            "perturb": rs[0].perturb,
            "in_set": rs[0].in_set,
            "seeds": len(rs),
            "n": rs[0].n,
        },
        numbers=lambda r: {key: getattr(r, key) for key in SUMMARY_NUMBERS},
    )


def _cell(entry: dict | None, key: str, pct: bool = False) -> str:
    if entry is None:
        return "—"
    value, spread = entry[key], entry[f"{key}_std"]
    if pct:
        return f"{100 * value:.1f}%" + (f" ± {100 * spread:.1f}" if entry["seeds"] > 1 else "")
    return f"{value:.3f}" + (f" ± {spread:.3f}" if entry["seeds"] > 1 else "")


def markdown(result: dict) -> str:
    """The transfer tables: balanced accuracy, share flagged, AUC; in-set cells marked with *."""
    summary = result["summary"]
    if not summary:
        return "No fits were run.\n"
    cfg = result["config"]
    full = summary
    first_aug = next((s.get("augment", "none") for s in summary), "none")
    first_stat = next((s.get("statistic", "plain") for s in summary), "plain")
    summary = [
        s
        for s in summary
        if s.get("perturb", "none") == "none"
        and s.get("augment", "none") == first_aug
        and s.get("statistic", "plain") == first_stat
    ]
    train_sets = list(dict.fromkeys(s["train_set"] for s in summary))
    test_sets = list(dict.fromkeys(s["test_set"] for s in summary))
    methods = list(dict.fromkeys(s["method"] for s in summary))
    find = {(s["train_set"], s["method"], s["test_set"]): s for s in summary}
    seeds = max(s["seeds"] for s in summary)
    lines = []
    settings = ", ".join(f"{k}={v}" for k, v in sorted(cfg["train"].items())) or "defaults"
    if len({(s.get("augment"), s.get("statistic")) for s in full}) > 1:
        settings += f"; training variant {first_aug}, statistic {first_stat}"
    for title, key, pct in (
        ("Balanced accuracy against held-out real photos", "accuracy", False),
        ('Share of each set flagged "generated" (last column: held-out real photos)', "flagged", True),
        ("ROC AUC against held-out real photos", "auc", False),
        ("The same fingerprints under the paper's closer-mean rule: share flagged", "flagged_closer_mean", True),
    ):
        if not all(key in s for s in summary):  # results written before this column existed
            continue
        lines.append(
            f"\n**{title}** — {cfg['train_size']} + {cfg['train_size']} training images, mean ± std over {seeds} "
            "seed(s); "
            f"* = held-out half of the training folder (in-set); settings: {settings}\n"
        )
        real_key = {"flagged": "real_fpr", "flagged_closer_mean": "real_fpr_closer_mean"}.get(key)
        head = ["trained on", "method"] + test_sets + (["real (FPR)"] if real_key else [])
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for train_set in train_sets:
            for method in methods:
                cells = []
                for test_set in test_sets:
                    e = find.get((train_set, method, test_set))
                    cells.append(_cell(e, key, pct) + ("*" if e is not None and e["in_set"] else ""))
                if real_key:
                    e = find.get((train_set, method, train_set)) or next(
                        (s for s in summary if s["train_set"] == train_set and s["method"] == method), None
                    )
                    cells.append(_cell(e, real_key, True))
                lines.append(f"| {train_set} | {method} | " + " | ".join(cells) + " |")
    lines += robustness_matrix(full, cfg)
    timing = [s for s in summary if s["method"] == "dif" and s["in_set"]]
    env = result["environment"]
    lines.append("")
    if timing:
        lines.append(
            f"DIF fit: {statistics.mean(s['train_seconds'] for s in timing):.0f} s per fingerprint on average (U-Net "
            "steps only, "
            "as recorded in each card when it was trained; a rerun reuses stored fingerprints)."
        )
    lines.append(f"Device: {env['device']}, torch {env['torch']}, {env['threads']} thread(s).")
    return "\n".join(lines) + "\n"


def robustness_matrix(summary: list[dict], cfg: dict) -> list[str]:
    """Balanced accuracy by (training set -> test set, method, augmentation, statistic) x test-time degradation.

    Both the test set and the held-out real photos are degraded alike, so a JPEG column also asks
    whether format alone is the tell. The last column is the worst degraded cell relative to clean.
    """
    perts = list(dict.fromkeys(s.get("perturb", "none") for s in summary))
    if perts == ["none"]:
        return []
    keyed = {
        (
            s["train_set"],
            s["test_set"],
            s["method"],
            s.get("augment", "none"),
            s.get("statistic", "plain"),
            s.get("perturb", "none"),
        ): s
        for s in summary
    }
    row_keys = list(
        dict.fromkeys(
            (s["train_set"], s["test_set"], s["method"], s.get("augment", "none"), s.get("statistic", "plain"))
            for s in summary
            if s["test_set"] != WATERMARKED_REAL
        )
    )
    seeds = max(s["seeds"] for s in summary)
    lines = [
        f"\n**Robustness matrix** — balanced accuracy, {cfg['train_size']} + {cfg['train_size']} training images, "
        f"mean over {seeds} seed(s); "
        "the test set and the held-out real photos are degraded alike; * = in-set (held-out half of the training "
        "folder)\n",
        "| trained on | tested on | method | augment | statistic | " + " | ".join(perts) + " |",
        "|" + "---|" * (5 + len(perts)),
    ]
    for train_set, test_set, method, augment, statistic in row_keys:
        cells = []
        for pert in perts:
            e = keyed.get((train_set, test_set, method, augment, statistic, pert))
            cells.append("—" if e is None else f"{e['accuracy']:.3f}")
        star = "*" if keyed.get((train_set, test_set, method, augment, statistic, perts[0]), {}).get("in_set") else ""
        lines.append(
            f"| {train_set} | {test_set}{star} | {method} | {augment} | {statistic} | " + " | ".join(cells) + " |"
        )
    return lines
