"""``dif bench``: the paper's detection protocol on any folder of generators, rerunnable by anyone.

ROOT holds one folder of real photos and one folder per generator. For each generator, repeat,
method and train size: seeded group-aware halves (tiles of one photo or images of one prompt never
straddle the split), train on N generated + N real, test on the held-out generated images and as
many held-out real images. Residuals are computed once per image (and cached across runs), then
every method and train size reuses them, so a second run costs only training.
"""
from __future__ import annotations

import json
import platform
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.config import TrainConfig
from engine.correlation import rho_matrix
from engine.denoisers import DEFAULT_EXTRACTOR, get_extractor
from engine.detect import decide, signed_score
from engine.device import default_device, describe_device
from engine.errors import ConfigError
from engine.images import list_images, load_images
from engine.methods import features, fit, leave_one_out_rho
from engine.metrics import detection_metrics
from engine.perturb import PERTURBATIONS, perturb
from engine.residuals import compute_residuals, residual_key
from engine.splits import split_half, take

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    data: str
    real: str = "real"
    models: tuple[str, ...] = ()
    train_sizes: tuple[int, ...] = (16, 32, 64)
    methods: tuple[str, ...] = ("dif", "marra18", "joslin20")
    repeats: int = 1
    steps: int = 300
    extractor: str = DEFAULT_EXTRACTOR
    crop: int = 256
    border: int = 8
    correlations: tuple[str, ...] = ("plain",)  # detection statistics evaluated on each trained fingerprint
    perturb: tuple[str, ...] = ("none",)


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


def run_bench(cfg: BenchConfig, store=None, progress: Progress | None = None) -> dict:
    """Run the whole grid; returns {"config", "environment", "rows", "summary", "timings"}."""
    say = progress or (lambda msg: None)
    root = Path(cfg.data)
    if not (root / cfg.real).is_dir():
        raise ConfigError(f"{root / cfg.real}: real-photo folder not found")
    models = list(cfg.models) or sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != cfg.real and not p.name.startswith("."))
    if not models:
        raise ConfigError(f"{root}: no generator folders besides {cfg.real!r}")
    for name in cfg.perturb:
        if name not in PERTURBATIONS:
            raise ConfigError(f"unknown perturbation {name!r} (choose from {', '.join(PERTURBATIONS)})")
    from engine.config import CORRELATIONS

    for mode in cfg.correlations:
        if mode not in CORRELATIONS:
            raise ConfigError(f"unknown correlation {mode!r} (choose from {', '.join(CORRELATIONS)})")
    device = default_device()
    extractor = get_extractor(cfg.extractor, device)
    cache = store.residuals if store is not None else None
    timings: dict = {}
    rows: list[BenchRow] = []
    real_files = list_images(root / cfg.real)
    for model in models:
        fake_files = list_images(root / model)
        for repeat in range(cfg.repeats):
            seed = repeat
            real_train_f, real_test_f = split_half(real_files, seed)
            fake_train_f, fake_test_f = split_half(fake_files, seed)
            n_test = min(len(real_test_f), len(fake_test_f))  # equal classes; all generated ones when real suffice
            real_test_f, fake_test_f = take(real_test_f, n_test, seed), take(fake_test_f, n_test, seed)
            max_n = max(cfg.train_sizes)
            real_train_f, fake_train_f = take(real_train_f, max_n, seed), take(fake_train_f, max_n, seed)
            say(f"{model} repeat {repeat}: loading {len(real_train_f) + len(fake_train_f)} train and {len(real_test_f) + len(fake_test_f)} test images")
            sets = {}
            for key, files in (("real_train", real_train_f), ("fake_train", fake_train_f), ("real_test", real_test_f), ("fake_test", fake_test_f)):
                images, bad = load_images(files, crop=cfg.crop)
                for err in bad:
                    say(f"skipped {err}")
                sets[key] = images
            say(f"{model} repeat {repeat}: residuals ({cfg.extractor})")
            res = {k: _residuals(v, extractor, cfg.border, cache, timings) for k, v in sets.items()}
            test_res = {}
            for pert in cfg.perturb:
                if pert == "none":
                    test_res[pert] = (res["real_test"], res["fake_test"])
                else:
                    test_res[pert] = (
                        _residuals(perturb(sets["real_test"], pert), extractor, cfg.border, cache, timings),
                        _residuals(perturb(sets["fake_test"], pert), extractor, cfg.border, cache, timings),
                    )
            for n in cfg.train_sizes:
                idx_r = torch.tensor(sorted(random.Random(seed + 7).sample(range(res["real_train"].shape[0]), min(n, res["real_train"].shape[0]))))
                idx_f = torch.tensor(sorted(random.Random(seed + 8).sample(range(res["fake_train"].shape[0]), min(n, res["fake_train"].shape[0]))))
                tr_r, tr_f = res["real_train"][idx_r], res["fake_train"][idx_f]
                for method in cfg.methods:
                    config = TrainConfig(method=method, steps=cfg.steps, crop=cfg.crop, border=cfg.border, extractor=cfg.extractor, seed=seed)
                    say(f"{model} repeat {repeat}: {method} with {n}+{n}")
                    result = fit(method, tr_r, tr_f, config, device)
                    fp_tensor = result.tensor
                    for mode in cfg.correlations:
                        # the statistic changes detection only: mu_r / mu_f are re-measured with it
                        mu_r, mu_f = _train_means(method, fp_tensor, tr_r, tr_f, mode)
                        for pert, (te_r, te_f) in test_res.items():
                            start = time.perf_counter()
                            rho = rho_matrix(features(method, torch.cat([te_r, te_f])), fp_tensor.unsqueeze(0), mode=mode)[:, 0].double().numpy()
                            per_image = (time.perf_counter() - start) / len(rho)
                            labels = np.concatenate([np.zeros(te_r.shape[0]), np.ones(te_f.shape[0])])
                            m = detection_metrics(labels, decide(rho, mu_r, mu_f), signed_score(rho, mu_r, mu_f))
                            rows.append(
                                BenchRow(model, method, n, repeat, pert, mode, m["accuracy"], m["acc_real"], m["acc_fake"], m["auc"], m["ap"], m["n_real"], m["n_fake"], round(result.seconds, 3), per_image, mu_r, mu_f)
                            )
    env = {"device": describe_device(device), "torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform(), "extractor_id": extractor.cache_id}
    if timings.get("residual_images"):
        timings["residual_seconds_per_image"] = timings["residual_seconds"] / timings["residual_images"]
    dif_rows = [r for r in rows if r.method == "dif" and r.perturb == rows[0].perturb and r.correlation == rows[0].correlation]
    if dif_rows:
        timings["dif_train_seconds_per_step"] = statistics.mean(r.train_seconds for r in dif_rows) / cfg.steps
    return {"config": asdict(cfg), "environment": env, "timings": timings, "rows": [asdict(r) for r in rows], "summary": summarize(rows)}


def _train_means(method: str, tensor: torch.Tensor, tr_r: torch.Tensor, tr_f: torch.Tensor, mode: str) -> tuple[float, float]:
    """mu_real and mu_fake on the training residuals (leave-one-out for mean fingerprints)."""
    mu_r = rho_matrix(features(method, tr_r), tensor.unsqueeze(0), mode=mode)[:, 0].mean().item()
    if method == "dif" or tr_f.shape[0] < 2:
        mu_f = rho_matrix(features(method, tr_f), tensor.unsqueeze(0), mode=mode)[:, 0].mean().item()
    else:
        mu_f = leave_one_out_rho(method, tensor, tr_f, mode).mean().item()
    return mu_r, mu_f


def summarize(rows: list[BenchRow]) -> list[dict]:
    """Mean and spread (sample std over repeats) per (model, method, train size, perturbation)."""
    groups: dict[tuple, list[BenchRow]] = {}
    for r in rows:
        groups.setdefault((r.model, r.method, r.train_size, r.perturb, r.correlation), []).append(r)
    out = []
    for (model, method, n, pert, mode), rs in groups.items():
        entry = {"model": model, "method": method, "train_size": n, "perturb": pert, "correlation": mode, "repeats": len(rs)}
        for key in ("accuracy", "acc_real", "acc_fake", "auc", "ap", "train_seconds"):
            vals = [getattr(r, key) for r in rs]
            entry[key] = statistics.mean(vals)
            entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def markdown_table(result: dict) -> str:
    """The README table: balanced accuracy (AUC) per generator and train size, mean ± std over repeats."""
    summary = result["summary"]
    perts = sorted({s["perturb"] for s in summary}, key=lambda p: (p != "none", p))
    modes = sorted({s["correlation"] for s in summary}, key=lambda m: (m != "plain", m))
    lines = []
    for mode, pert in [(m, p) for m in modes for p in perts]:
        rows = [s for s in summary if s["perturb"] == pert and s["correlation"] == mode]
        models = sorted({s["model"] for s in rows})
        sizes = sorted({s["train_size"] for s in rows})
        methods = [m for m in ("dif", "marra18", "joslin20") if any(s["method"] == m for s in rows)]
        lines.append(f"\n**Test images: {pert}, correlation: {mode}** — balanced accuracy (AUC), mean ± std over {rows[0]['repeats']} repeat(s)\n")
        lines.append("| generator | N | " + " | ".join(methods) + " |")
        lines.append("|---|---|" + "---|" * len(methods))
        for model in models:
            for n in sizes:
                cells = []
                for m in methods:
                    s = next((x for x in rows if x["model"] == model and x["train_size"] == n and x["method"] == m), None)
                    cells.append("—" if s is None else f"{s['accuracy']:.3f} ± {s['accuracy_std']:.3f} ({s['auc']:.3f})")
                lines.append(f"| {model} | {n} | " + " | ".join(cells) + " |")
    t = result["timings"]
    env = result["environment"]
    lines.append("")
    lines.append(f"Device: {env['device']}, torch {env['torch']}, extractor `{env['extractor_id']}`. "
                 + (f"Residuals: {t['residual_seconds_per_image']:.3f} s/image. " if "residual_seconds_per_image" in t else "")
                 + (f"DIF training: {t['dif_train_seconds_per_step']:.3f} s/step." if "dif_train_seconds_per_step" in t else ""))
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "results.json", out_dir / "results.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(markdown_table(result))
    return js, md
