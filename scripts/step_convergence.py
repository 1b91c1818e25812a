"""How many DIF training steps are enough? One long run per generator, scored at several step counts.

    python scripts/step_convergence.py --data ../shared/datasets --steps 50,100,150,200,300,400

Uses the benchmark's split (seed 0, group-aware halves, N generated + N real for training, equal
held-out classes) and prints held-out balanced accuracy and AUC of the EMA fingerprint at each
step count; `dif bench`'s default step count was chosen from this table (docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from engine.bench.runner import _rho, train_rho
from engine.data.images import list_images, load_images
from engine.data.splits import split_half, take
from engine.device import default_device
from engine.method.config import TrainConfig
from engine.method.detect import decide, signed_score
from engine.method.dif import fit_dif
from engine.method.metrics import detection_metrics
from engine.residuals.compute import compute_residuals
from engine.residuals.registry import DEFAULT_EXTRACTOR, get_extractor
from engine.storage.store import Store


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--real", default="real")
    ap.add_argument("--models", default="sd1,dalle-mini,ldm")
    ap.add_argument("--train-size", type=int, default=64)
    ap.add_argument("--steps", default="50,100,150,200,300,400")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extractor", default=DEFAULT_EXTRACTOR)
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--out", default="artifacts/step-convergence.json")
    args = ap.parse_args()
    steps = tuple(sorted(int(s) for s in args.steps.split(",")))
    device = default_device()
    extractor = get_extractor(args.extractor, device)
    store = Store(args.cache)
    root = Path(args.data)
    real_files = list_images(root / args.real)
    results = []
    print("| generator | " + " | ".join(f"{s} steps" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for model in args.models.split(","):
        fake_files = list_images(root / model)
        real_tr, real_te = split_half(real_files, args.seed)
        fake_tr, fake_te = split_half(fake_files, args.seed)
        n_test = min(len(real_te), len(fake_te))
        sets = [
            take(real_tr, args.train_size, args.seed),
            take(fake_tr, args.train_size, args.seed),
            take(real_te, n_test, args.seed),
            take(fake_te, n_test, args.seed),
        ]
        res = [compute_residuals(load_images(f, crop=256)[0], extractor, 8, cache=store.residuals) for f in sets]
        config = TrainConfig(steps=max(steps), extractor=args.extractor, seed=args.seed)
        start = time.time()
        fit = fit_dif(res[0], res[1], config, device, snapshot_steps=steps)
        cells = []
        for step in steps:
            tensor = fit.snapshots[step]
            rho_r, rho_f = train_rho("dif", tensor, res[0], res[1], "plain")
            mu_r, mu_f = float(rho_r.mean()), float(rho_f.mean())
            rho = _rho("dif", tensor, torch.cat([res[2], res[3]]), "plain")
            labels = np.concatenate([np.zeros(res[2].shape[0]), np.ones(res[3].shape[0])])
            m = detection_metrics(labels, decide(rho, mu_r, mu_f), signed_score(rho, mu_r, mu_f))
            results.append(
                {
                    "model": model,
                    "steps": step,
                    "accuracy": m["accuracy"],
                    "auc": m["auc"],
                    "seconds_total_run": round(time.time() - start, 1),
                }
            )
            cells.append(f"{m['accuracy']:.3f} ({m['auc']:.3f})")
        print(f"| {model} | " + " | ".join(cells) + " |", flush=True)
        print(f"{model}: {max(steps)} steps in {fit.seconds:.0f} s", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"args": vars(args), "threads": torch.get_num_threads(), "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
