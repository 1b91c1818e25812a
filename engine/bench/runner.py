"""``dif bench``: the paper's detection protocol on any folder of generators, rerunnable by anyone.

ROOT holds one folder of real photos and one folder per generator. For each generator, repeat,
method and train size: seeded group-aware halves (tiles of one photo or images of one prompt never
straddle the split), train on N generated + N real, test on the held-out generated images and as
many held-out real images. Residuals are computed once per image (and cached across runs), then
every method and train size reuses them, so a second run costs only training.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.bench.summary import mean_and_std_by_group
from engine.data.images import list_images, load_images
from engine.data.perturb import PERTURBATIONS, perturb
from engine.data.reference_pool import build_pool
from engine.data.splits import split_half, take
from engine.device import default_device, environment
from engine.errors import ConfigError
from engine.method.calibration import pool_calibration
from engine.method.config import TrainConfig
from engine.method.correlation import rho_matrix
from engine.method.detect import decide, signed_score
from engine.method.metrics import detection_metrics
from engine.method.registry import features, fit, get_method, leave_one_out_rho
from engine.provenance.watermark_match import WatermarkSurvey, mark_share, marked_copies, survey
from engine.residuals.compute import compute_residuals, residual_key
from engine.residuals.registry import DEFAULT_EXTRACTOR, get_extractor

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    data: str
    real: str = "real"
    models: tuple[str, ...] = ()
    train_sizes: tuple[int, ...] = (16, 32, 64)
    methods: tuple[str, ...] = ("dif", "marra18", "joslin20")
    repeats: int = 1
    steps: int = TrainConfig.steps
    extractor: str = DEFAULT_EXTRACTOR
    crop: int = TrainConfig.crop
    border: int = TrainConfig.border
    correlations: tuple[str, ...] = ("plain",)  # detection statistics evaluated on each trained fingerprint
    perturb: tuple[str, ...] = ("none",)
    train_variants: tuple[str, ...] = ("default",)  # see TRAIN_VARIANTS
    reference_pool: bool = True  # also score mu_real calibrated on the reference pool(s)
    pool_dir: str | None = None  # the user's own real photos, added to the default pool
    loss: str = TrainConfig.loss
    margin: float = TrainConfig.margin
    lr: float = TrainConfig.lr


TRAIN_VARIANTS = ("default", "no-wm-match", "mixed")  # plus any perturbation name: train on perturbed images
MIXED_CHOICES = ("none", "jpeg75", "jpeg50")  # the "unknown compression" training mix


@dataclass
class BenchRow:
    model: str
    method: str
    train_size: int
    repeat: int
    perturb: str
    correlation: str
    accuracy: float
    acc_real: float
    acc_fake: float
    auc: float
    ap: float
    n_test_real: int
    n_test_fake: int
    train_seconds: float
    detect_seconds_per_image: float
    mu_real: float
    mu_fake: float
    train_variant: str = "default"
    wm_matched: bool = False
    fpr_watermarked_real: float | None = None  # held-out real photos with the SD watermark embedded, flagged generated
    calibrations: dict = field(default_factory=dict)  # name -> metrics with mu_real from that real set
    extra: dict = field(default_factory=dict)


def _residuals(images, extractor, border, cache, timings: dict) -> torch.Tensor:
    missing = sum(1 for im in images if cache is None or residual_key(extractor, im, border) not in cache)
    start = time.perf_counter()
    res = compute_residuals(images, extractor, border, cache=cache)
    if missing:
        timings.setdefault("residual_seconds", 0.0)
        timings.setdefault("residual_images", 0)
        timings["residual_seconds"] += time.perf_counter() - start
        timings["residual_images"] += missing
    return res


def _validate(cfg: BenchConfig) -> None:
    from engine.method.config import CORRELATIONS

    for name in cfg.perturb:
        if name not in PERTURBATIONS:
            raise ConfigError(f"unknown perturbation {name!r} (choose from {', '.join(PERTURBATIONS)})")
    for mode in cfg.correlations:
        if mode not in CORRELATIONS:
            raise ConfigError(f"unknown correlation {mode!r} (choose from {', '.join(CORRELATIONS)})")
    for variant in cfg.train_variants:
        if variant not in TRAIN_VARIANTS and (variant not in PERTURBATIONS or variant == "none"):
            raise ConfigError(
                f"unknown training variant {variant!r} (choose from {', '.join(TRAIN_VARIANTS)} or a perturbation)"
            )


def training_sets(variant: str, real: list, fake: list, watermark: str | None, seed: int) -> tuple[list, list, bool]:
    """The training images of one variant: (real, generated, watermark-matched?).

    ``default`` is what ``dif train`` does: when the generated images carry a known watermark, the
    real ones get the same mark. ``no-wm-match`` turns that off; a perturbation name perturbs both
    classes (after marking); ``mixed`` gives each image a random one of MIXED_CHOICES.
    """
    matched = watermark is not None and variant != "no-wm-match"
    if matched:
        real = mark_share(real, TrainConfig.watermark_share, seed)
    if variant in ("default", "no-wm-match"):
        return real, fake, matched
    if variant == "mixed":
        rng = random.Random(seed + 11)
        pick = lambda ims: [perturb([im], rng.choice(MIXED_CHOICES))[0] for im in ims]  # noqa: E731
        return pick(real), pick(fake), matched
    return perturb(real, variant), perturb(fake, variant), matched


def _pools(cfg: BenchConfig, say: Progress) -> dict[str, object]:
    if not cfg.reference_pool:
        return {}
    pool = build_pool(cfg.crop, cfg.pool_dir)
    if pool.missing:
        say(f"reference pool: {len(pool.missing)} default photo(s) missing (install the Debian wallpaper packages)")
    return {"pool": pool}


def run_bench(
    cfg: BenchConfig,
    store=None,
    progress: Progress | None = None,
    step_progress: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[list[dict]], None] | None = None,
    resume_rows: list[dict] | None = None,
    max_minutes: float | None = None,
) -> dict:
    """Run the whole grid; returns {"config", "environment", "rows", "summary", "timings", ...}.

    ``progress`` gets one line per stage, each fit numbered against the grid's total;
    ``step_progress(step, steps)`` follows every DIF training step (the CLI draws a bar);
    ``checkpoint(rows)`` gets the rows so far after each fit, so a long run that is stopped keeps them;
    ``resume_rows`` (those rows) are reused instead of refitting; after ``max_minutes`` no new fit
    starts and the result says how many were left out (``timings["fits_not_run"]``).
    """
    say = progress or (lambda msg: None)
    root = Path(cfg.data)
    models = _generator_names(cfg, root)
    _validate(cfg)
    device = default_device()
    extractor = get_extractor(cfg.extractor, device)
    cache = store.residuals if store is not None else None
    timings: dict = {}

    def residuals(images: list) -> torch.Tensor:
        return _residuals(images, extractor, cfg.border, cache, timings)

    rows: list[BenchRow] = []
    surveys: dict = {}
    pools = _pools(cfg, say)
    pool_info = {name: p.summary() for name, p in pools.items()}
    pool_res = {name: residuals(p.images) for name, p in pools.items() if p.images}
    real_files = list_images(root / cfg.real)
    total_fits = len(models) * cfg.repeats * len(cfg.train_variants) * len(cfg.train_sizes) * len(cfg.methods)
    fit_no = skipped_fits = 0
    finished = _rows_by_fit(resume_rows or [])
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    on_step = (lambda p: step_progress(p.step, p.total)) if step_progress else None
    # repeats outermost: a run stopped part-way still holds every generator's first repeat
    for repeat in range(cfg.repeats):
        seed = repeat
        for model in models:
            fold = _prepare_fold(cfg, root / model, real_files, repeat, pool_res, residuals, say)
            surveys.setdefault(model, []).append({"repeat": repeat, **fold.survey.to_dict()})
            for variant in cfg.train_variants:
                if variant == "no-wm-match" and fold.survey.generator is None:
                    say(f"{model}: no known watermark, so no-wm-match equals default; skipped")
                    continue
                real_imgs, fake_imgs, matched = training_sets(
                    variant, fold.sets["real_train"], fold.sets["fake_train"], fold.survey.generator, seed
                )
                tr_all_r, tr_all_f = residuals(real_imgs), residuals(fake_imgs)
                for n in cfg.train_sizes:
                    tr_r, tr_f = _subsample(tr_all_r, n, seed + 7), _subsample(tr_all_f, n, seed + 8)
                    for method in cfg.methods:
                        fit_no += 1
                        key = (model, method, n, repeat, variant)
                        if key in finished:
                            say(
                                f"fit {fit_no}/{total_fits}: {model} repeat {repeat} [{variant}]: {method} with "
                                f"{n}+{n} kept from the earlier run"
                            )
                            rows += finished[key]
                            continue
                        if deadline is not None and time.time() > deadline:
                            skipped_fits += 1
                            continue
                        say(
                            f"fit {fit_no}/{total_fits}: {model} repeat {repeat} "
                            f"[{variant}{', watermark-matched' if matched else ''}]: {method} with {n}+{n}"
                        )
                        config = _train_config(cfg, method, seed)
                        result = fit(
                            method, tr_r, tr_f, config, device, on_step if get_method(method).learned else None
                        )
                        for mode in cfg.correlations:
                            rows += _evaluate(
                                model,
                                method,
                                n,
                                repeat,
                                variant,
                                matched,
                                mode,
                                result,
                                tr_r,
                                tr_f,
                                fold.test_res,
                                fold.probe_res,
                                fold.pools,
                            )
                        if checkpoint is not None:
                            checkpoint([asdict(r) for r in rows])
    timings["fits_not_run"] = skipped_fits
    if skipped_fits:
        say(f"time limit reached: {skipped_fits} of {total_fits} fits not run; the summary covers the rest")
    _per_unit_timings(timings, rows, cfg.steps)
    return {
        "config": asdict(cfg),
        "environment": {**environment(device), "extractor_id": extractor.cache_id},
        "timings": timings,
        "watermark_surveys": surveys,
        "reference_pools": pool_info,
        "rows": [asdict(r) for r in rows],
        "summary": summarize(rows),
    }


def _generator_names(cfg: BenchConfig, root: Path) -> list[str]:
    """The generator folders to run: the configured ones, else every folder of ROOT but the real one."""
    if not (root / cfg.real).is_dir():
        raise ConfigError(f"{root / cfg.real}: real-photo folder not found")
    models = list(cfg.models) or sorted(
        p.name for p in root.iterdir() if p.is_dir() and p.name != cfg.real and not p.name.startswith(".")
    )
    if not models:
        raise ConfigError(f"{root}: no generator folders besides {cfg.real!r}")
    return models


def _rows_by_fit(resume_rows: list[dict]) -> dict[tuple, list[BenchRow]]:
    """An earlier run's rows by fit (model, method, train size, repeat, variant), to reuse instead of refitting."""
    finished: dict[tuple, list[BenchRow]] = {}
    for r in resume_rows:
        row = BenchRow(**r)
        finished.setdefault((row.model, row.method, row.train_size, row.repeat, row.train_variant), []).append(row)
    return finished


@dataclass
class _Fold:
    """One generator's seeded split for one repeat: the images by role and the residuals every fit reuses."""

    sets: dict[str, list]  # real_train, fake_train, real_test, fake_test, real_half
    survey: WatermarkSurvey  # known watermarks in the generated training images
    test_res: dict[str, tuple[torch.Tensor, torch.Tensor]]  # perturbation -> (real, generated) test residuals
    probe_res: torch.Tensor  # held-out real photos with the SD watermark embedded
    pools: dict[str, torch.Tensor]  # real sets that calibrate mu_real, by name


def _prepare_fold(
    cfg: BenchConfig,
    fake_dir: Path,
    real_files: list,
    repeat: int,
    pool_res: dict[str, torch.Tensor],
    residuals: Callable[[list], torch.Tensor],
    say: Progress,
) -> _Fold:
    """Split, load, survey for watermarks and compute the residuals of one generator's fold (seeded by the repeat)."""
    model = fake_dir.name
    files = _fold_files(real_files, list_images(fake_dir), repeat, max(cfg.train_sizes))
    if not cfg.reference_pool:
        files["real_half"] = []
    say(
        f"{model} repeat {repeat}: loading {len(files['real_train']) + len(files['fake_train'])} train and "
        f"{len(files['real_test']) + len(files['fake_test'])} test images"
    )
    sets = {}
    for key, role_files in files.items():
        images, bad = load_images(role_files, crop=cfg.crop)
        for err in bad:
            say(f"skipped {err}")
        sets[key] = images
    found = survey(sets["fake_train"])
    say(
        f"{model} repeat {repeat}: known watermark in {found.marked}/{found.checked} generated training images"
        + (f" -> {found.generator}" if found.generator else "")
    )
    say(f"{model} repeat {repeat}: residuals ({cfg.extractor})")
    res = {k: residuals(v) for k, v in sets.items() if k != "real_half"}
    probe_res = residuals(marked_copies(sets["real_test"]))
    pools = dict(pool_res)
    if cfg.reference_pool and sets["real_half"]:
        # the user's own photos: here the whole real training half (scenes disjoint from the test half)
        half_res = residuals(sets["real_half"])
        pools["pool+train-half"] = torch.cat([pool_res["pool"], half_res]) if "pool" in pool_res else half_res
    test_res = {}
    for pert in cfg.perturb:
        if pert == "none":
            test_res[pert] = (res["real_test"], res["fake_test"])
        else:
            test_res[pert] = (
                residuals(perturb(sets["real_test"], pert)),
                residuals(perturb(sets["fake_test"], pert)),
            )
    return _Fold(sets, found, test_res, probe_res, pools)


def _fold_files(real_files: list, fake_files: list, seed: int, max_n: int) -> dict[str, list]:
    """Seeded group-aware halves; equal test classes (all generated ones when real suffice); up to max_n to train."""
    real_half, real_test = split_half(real_files, seed)
    fake_train, fake_test = split_half(fake_files, seed)
    n_test = min(len(real_test), len(fake_test))
    return {
        "real_train": take(real_half, max_n, seed),
        "fake_train": take(fake_train, max_n, seed),
        "real_test": take(real_test, n_test, seed),
        "fake_test": take(fake_test, n_test, seed),
        "real_half": real_half,
    }


def _subsample(residuals: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """A seeded subset of n training residuals (all of them when there are fewer), in their original order."""
    count = residuals.shape[0]
    return residuals[torch.tensor(sorted(random.Random(seed).sample(range(count), min(n, count))))]


def _train_config(cfg: BenchConfig, method: str, seed: int) -> TrainConfig:
    return TrainConfig(
        method=method,
        steps=cfg.steps,
        crop=cfg.crop,
        border=cfg.border,
        extractor=cfg.extractor,
        seed=seed,
        loss=cfg.loss,
        margin=cfg.margin,
        lr=cfg.lr,
    )


def _per_unit_timings(timings: dict, rows: list[BenchRow], steps: int) -> None:
    """Residual seconds per image and DIF training seconds per step (first perturbation and statistic only)."""
    if timings.get("residual_images"):
        timings["residual_seconds_per_image"] = timings["residual_seconds"] / timings["residual_images"]
    dif_rows = [
        r for r in rows if r.method == "dif" and r.perturb == rows[0].perturb and r.correlation == rows[0].correlation
    ]
    if dif_rows:
        timings["dif_train_seconds_per_step"] = statistics.mean(r.train_seconds for r in dif_rows) / steps


def _rho(method: str, tensor: torch.Tensor, residuals: torch.Tensor, mode: str) -> np.ndarray:
    return rho_matrix(features(method, residuals), tensor.unsqueeze(0), mode=mode)[:, 0].double().numpy()


def _evaluate(
    model, method, n, repeat, variant, matched, mode, result, tr_r, tr_f, test_res, probe_res, pools
) -> list[BenchRow]:
    """All rows of one trained fingerprint under one detection statistic."""
    fp_tensor = result.tensor
    # the statistic changes detection only: mu_r / mu_f are re-measured with it
    rho_train_r, rho_train_f = train_rho(method, fp_tensor, tr_r, tr_f, mode)
    mu_r, mu_f = float(rho_train_r.mean()), float(rho_train_f.mean())
    rho_probe = _rho(method, fp_tensor, probe_res, mode)
    pool_rho = {name: _rho(method, fp_tensor, res, mode) for name, res in pools.items()}
    rows = []
    for pert, (te_r, te_f) in test_res.items():
        start = time.perf_counter()
        rho = _rho(method, fp_tensor, torch.cat([te_r, te_f]), mode)
        per_image = (time.perf_counter() - start) / len(rho)
        rho_r, rho_f = rho[: te_r.shape[0]], rho[te_r.shape[0] :]
        labels = np.concatenate([np.zeros(len(rho_r)), np.ones(len(rho_f))])
        m = detection_metrics(labels, decide(rho, mu_r, mu_f), signed_score(rho, mu_r, mu_f))
        cals = {"training": calibration_metrics(rho_train_r, rho_train_f, rho_r, rho_f, rho_probe)}
        for name, prho in pool_rho.items():
            cals[name] = calibration_metrics(prho, rho_train_f, rho_r, rho_f, rho_probe)
        rows.append(
            BenchRow(
                model,
                method,
                n,
                repeat,
                pert,
                mode,
                m["accuracy"],
                m["acc_real"],
                m["acc_fake"],
                m["auc"],
                m["ap"],
                m["n_real"],
                m["n_fake"],
                round(result.seconds, 3),
                per_image,
                mu_r,
                mu_f,
                variant,
                matched,
                float(np.mean(decide(rho_probe, mu_r, mu_f))),
                cals,
            )
        )
    return rows


def calibration_metrics(
    real_rho: np.ndarray,
    rho_train_fake: np.ndarray,
    rho_r: np.ndarray,
    rho_f: np.ndarray,
    rho_probe: np.ndarray,
) -> dict:
    """Test metrics with mu_real from one real set ``real_rho`` (training images or a reference pool).

    ``rule``: the paper's closer-mean decision with that mu_real. ``band``: the calibrated verdict
    (Gaussian posterior at level 0.9, real side fitted on the pool), where "inconclusive" is neither
    a detection nor a false positive; its balanced accuracy counts inconclusive as wrong.
    """
    mu_real, band = pool_calibration(real_rho, rho_train_fake)
    mu_f = float(np.mean(rho_train_fake))
    pred_r, pred_f = decide(rho_r, mu_real, mu_f), decide(rho_f, mu_real, mu_f)
    out = {
        "mu_real": mu_real,
        "fpr": float(pred_r.mean()),
        "tpr": float(pred_f.mean()),
        "accuracy": float((1 - pred_r.mean() + pred_f.mean()) / 2),
        "fpr_watermarked_real": float(decide(rho_probe, mu_real, mu_f).mean()),
    }
    if band is not None:
        v_r, v_f = band.verdict(rho_r), band.verdict(rho_f)
        out.update(
            {
                "band_fpr": float(np.mean(v_r == "generated")),
                "band_tpr": float(np.mean(v_f == "generated")),
                "band_inconclusive_real": float(np.mean(v_r == "inconclusive")),
                "band_inconclusive_fake": float(np.mean(v_f == "inconclusive")),
                "band_accuracy": float((np.mean(v_r == "real") + np.mean(v_f == "generated")) / 2),
            }
        )
    return out


def train_rho(
    method: str, tensor: torch.Tensor, tr_r: torch.Tensor, tr_f: torch.Tensor, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """rho of the real and generated training residuals (generated leave-one-out for mean fingerprints)."""
    rho_f = (
        _rho(method, tensor, tr_f, mode)
        if get_method(method).learned or tr_f.shape[0] < 2
        else leave_one_out_rho(method, tensor, tr_f, mode).double().numpy()
    )
    return _rho(method, tensor, tr_r, mode), rho_f


def _flat(row: BenchRow) -> dict[str, float]:
    """The numbers of a row that are averaged over repeats (calibrations flattened as ``name.key``)."""
    out = {k: getattr(row, k) for k in ("accuracy", "acc_real", "acc_fake", "auc", "ap", "train_seconds")}
    if row.fpr_watermarked_real is not None:
        out["fpr_watermarked_real"] = row.fpr_watermarked_real
    for name, metrics in row.calibrations.items():
        out.update({f"{name}.{k}": v for k, v in metrics.items()})
    return out


def _measured(value) -> bool:
    """A number that was measured: not missing (None) and not NaN."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def summarize(rows: list[BenchRow]) -> list[dict]:
    """Mean and spread (sample std over repeats) per (model, method, train size, variant, perturbation, statistic)."""
    return mean_and_std_by_group(
        rows,
        group=lambda r: (r.model, r.method, r.train_size, r.train_variant, r.perturb, r.correlation),
        describe=lambda rs: {
            "model": rs[0].model,
            "method": rs[0].method,
            "train_size": rs[0].train_size,
            "train_variant": rs[0].train_variant,
            "wm_matched": any(r.wm_matched for r in rs),
            "perturb": rs[0].perturb,
            "correlation": rs[0].correlation,
            "repeats": len(rs),
        },
        numbers=_flat,
        counts=_measured,
    )
