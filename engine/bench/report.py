"""``dif bench`` reports: the README's Markdown tables and the results files, rendered from a run's result dict.

Rendering needs only the result (``results.json``), so ``dif bench --from-json`` redraws the tables
without running anything.
"""

from __future__ import annotations

import json
from pathlib import Path


def _pm(entry: dict, key: str, most: int = 1) -> str:
    """mean ± std; a dagger marks a cell with fewer repeats than the run asked for (time limit)."""
    if key not in entry:
        return "—"
    spread = entry.get(f"{key}_std", 0.0)
    return (
        f"{entry[key]:.3f}"
        + (f" ± {spread:.3f}" if entry["repeats"] > 1 else "")
        + ("†" if entry["repeats"] < most else "")
    )


def _perturb_order(result: dict) -> list[str]:
    """Perturbations in the order the run asked for them (``none`` first)."""
    present = {s["perturb"] for s in result["summary"]}
    asked = [p for p in result["config"].get("perturb", []) if p in present]
    rest = sorted(present - set(asked))
    return sorted(asked + rest, key=lambda p: p != "none")


def robustness_matrix(result: dict) -> list[str]:
    """One table per method at the largest train size: (generator, training, statistic) x test perturbation."""
    summary = result["summary"]
    most = result["config"].get("repeats", 1)
    perts = _perturb_order(result)
    if len(perts) < 2 and len({s["train_variant"] for s in summary}) < 2:
        return []
    n = max(s["train_size"] for s in summary)
    lines = []
    for method in [m for m in ("dif", "marra18", "joslin20") if any(s["method"] == m for s in summary)]:
        rows = [s for s in summary if s["method"] == method and s["train_size"] == n]
        keys = sorted(
            {(s["model"], s["train_variant"], s["correlation"]) for s in rows},
            key=lambda k: (k[0], k[1] != "default", k[1], k[2] != "plain", k[2]),
        )
        lines.append(
            f"\n**Robustness, {method}, N={n}** — balanced accuracy by test-time perturbation (both classes "
            "perturbed, so JPEG columns are also the format-matched control)\n"
        )
        lines.append("| generator | training | statistic | " + " | ".join(perts) + " |")
        lines.append("|---|---|---|" + "---|" * len(perts))
        for model, variant, mode in keys:
            cells = []
            for pert in perts:
                e = next(
                    (
                        s
                        for s in rows
                        if (s["model"], s["train_variant"], s["correlation"], s["perturb"])
                        == (model, variant, mode, pert)
                    ),
                    None,
                )
                cells.append("—" if e is None else _pm(e, "accuracy", most))
            wm = (
                " (wm-matched)"
                if any(s["wm_matched"] for s in rows if (s["model"], s["train_variant"]) == (model, variant))
                else ""
            )
            lines.append(f"| {model} | {variant}{wm} | {mode} | " + " | ".join(cells) + " |")
    return lines


def markdown_table(result: dict) -> str:
    """The README tables: robustness matrices, accuracy per generator / train size / method, false positives
    and watermark sensitivity."""
    summary = result["summary"]
    most = result["config"].get("repeats", 1)
    perts = _perturb_order(result)
    modes = sorted({s["correlation"] for s in summary}, key=lambda m: (m != "plain", m))
    variants = sorted({s["train_variant"] for s in summary}, key=lambda v: (v != "default", v))
    if not summary:
        return "No fits were run.\n"
    lines = robustness_matrix(result)
    for variant, mode, pert in [(v, m, p) for v in variants for m in modes for p in perts]:
        rows = [
            s for s in summary if s["perturb"] == pert and s["correlation"] == mode and s["train_variant"] == variant
        ]
        if not rows:
            continue
        models = sorted({s["model"] for s in rows})
        sizes = sorted({s["train_size"] for s in rows})
        methods = [m for m in ("dif", "marra18", "joslin20") if any(s["method"] == m for s in rows)]
        lines.append(
            f"\n**Training: {variant}; test images: {pert}; correlation: {mode}** — balanced accuracy (AUC), mean ± "
            f"std over {most} repeat(s)\n"
        )
        lines.append("| generator | N | " + " | ".join(methods) + " |")
        lines.append("|---|---|" + "---|" * len(methods))
        for model in models:
            for n in sizes:
                cells = []
                for m in methods:
                    s = next(
                        (x for x in rows if x["model"] == model and x["train_size"] == n and x["method"] == m), None
                    )
                    cells.append("—" if s is None else f"{_pm(s, 'accuracy', most)} ({s['auc']:.3f})")
                wm = " (wm-matched)" if any(x["wm_matched"] for x in rows if x["model"] == model) else ""
                lines.append(f"| {model}{wm} | {n} | " + " | ".join(cells) + " |")
    base = [s for s in summary if s["perturb"] == perts[0] and s["correlation"] == modes[0]]
    pools = [
        k[: -len(".fpr")]
        for k in (base[0] if base else {})
        if k.endswith(".fpr") and not k.endswith("_std") and k != "training.fpr"
    ]
    if base:
        lines.append(
            f"\n**False positives on unseen real scenes and watermark sensitivity** (test images: {perts[0]}; "
            f"correlation: {modes[0]}). "
            "FPR = held-out real photos (scenes never trained on) called generated; wm-FPR = the same photos with the "
            "SD watermark embedded; "
            "band = calibrated verdict at level 0.9 (inconclusive is neither)\n"
        )
        head = ["generator", "training", "N", "method", "FPR (train mu_real)", "wm-FPR"]
        for name in pools:
            head += [f"FPR ({name} mu_real)", f"bal. acc ({name})", f"band FPR / TPR / inconcl. ({name})"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for s in sorted(
            base,
            key=lambda x: (
                x["model"],
                x["train_variant"] != "default",
                x["train_variant"],
                x["train_size"],
                x["method"],
            ),
        ):
            cells = [
                s["model"],
                s["train_variant"] + (" (wm-matched)" if s["wm_matched"] else ""),
                str(s["train_size"]),
                s["method"],
                _pm(s, "training.fpr", most),
                _pm(s, "fpr_watermarked_real", most),
            ]
            for name in pools:
                band = (
                    "—"
                    if f"{name}.band_fpr" not in s
                    else f"{s[f'{name}.band_fpr']:.3f} / {s[f'{name}.band_tpr']:.3f} / "
                    f"{(s[f'{name}.band_inconclusive_real'] + s[f'{name}.band_inconclusive_fake']) / 2:.3f}"
                )
                cells += [_pm(s, f"{name}.fpr", most), _pm(s, f"{name}.accuracy", most), band]
            lines.append("| " + " | ".join(cells) + " |")
    for name, info in result.get("reference_pools", {}).items():
        lines.append(
            f"\nReference pool `{name}`: {info['n_images']} images from {info['n_scenes']} scenes "
            f"({', '.join(info['sources'])})"
            + (f"; {len(info['missing'])} default photo(s) missing" if info["missing"] else "")
            + ". `pool+train-half` adds the real training half (scenes disjoint from the test half)."
        )
    t = result["timings"]
    env = result["environment"]
    if any(s["repeats"] < most for s in summary):
        lines.append(
            f"\n† fewer than {most} repeats: the run's time limit (`--max-minutes`) stopped it first; "
            f"{t.get('fits_not_run', 0)} fit(s) not run."
        )
    lines.append("")
    lines.append(
        f"Device: {env['device']}, torch {env['torch']}, {env['threads']} thread(s), extractor "
        f"`{env['extractor_id']}`. "
        + (f"Residuals: {t['residual_seconds_per_image']:.3f} s/image. " if "residual_seconds_per_image" in t else "")
        + (f"DIF training: {t['dif_train_seconds_per_step']:.3f} s/step. " if "dif_train_seconds_per_step" in t else "")
        + (f"Whole run: {t['total_seconds'] / 60:.1f} min." if "total_seconds" in t else "")
    )
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "results.json", out_dir / "results.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(markdown_table(result))
    return js, md
