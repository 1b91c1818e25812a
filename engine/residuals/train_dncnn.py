"""Train the project's own DnCNN on real photos (the weights shipped in ``weights/``).

Recipe from the DnCNN paper, scaled to a CPU: 48x48 crops of clean photos, additive Gaussian noise
with sigma uniform in [5, 15]/255, the network regresses the noise (MSE), Adam with cosine decay.
Photos are first downscaled by an integer factor so their JPEG blocking fades (a denoiser trained
on blocky "clean" targets would learn to keep the blocks). Held-out photos give the PSNR card.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from engine.data.images import content_hash
from engine.residuals.dncnn import DnCNN


@dataclass
class DenoiserTrainConfig:
    """Everything that decides the trained weights (recorded in the card)."""

    steps: int = 3000
    batch: int = 16
    patch: int = 48
    sigma_min: float = 5.0
    sigma_max: float = 15.0
    lr: float = 1e-3
    lr_min: float = 1e-5
    seed: int = 0
    max_minutes: float | None = None
    target_short_side: int = 768
    extra_skimage_photos: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket")
    eval_sigmas: tuple[float, ...] = field(default=(5.0, 10.0, 15.0))


def _load_clean_photo(path: Path | None, target_short_side: int, array: np.ndarray | None = None) -> np.ndarray:
    """Load an RGB photo as float32 [0,1], downscaled by an integer factor toward ``target_short_side``."""
    img = Image.fromarray(array) if array is not None else Image.open(path).convert("RGB")
    factor = max(1, math.ceil(min(img.size) / target_short_side))
    if factor > 1:
        img = img.resize((img.width // factor, img.height // factor), Image.Resampling.LANCZOS)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _skimage_photos(names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    out = []
    for name in names:
        arr = getattr(data, name)()
        if arr.ndim == 3 and arr.shape[2] == 3:
            out.append((f"skimage.data.{name}", arr))
    return out


def _random_patches(photos: list[np.ndarray], count: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random crops with random flips / 90-degree turns, N x 3 x p x p."""
    out = np.empty((count, 3, patch, patch), dtype=np.float32)
    weights = np.array([p.shape[0] * p.shape[1] for p in photos], dtype=np.float64)
    choice = rng.choice(len(photos), size=count, p=weights / weights.sum())
    for k, idx in enumerate(choice):
        photo = photos[idx]
        y = rng.integers(0, photo.shape[0] - patch + 1)
        x = rng.integers(0, photo.shape[1] - patch + 1)
        crop = photo[y : y + patch, x : x + patch]
        crop = np.rot90(crop, rng.integers(0, 4))
        if rng.integers(0, 2):
            crop = crop[:, ::-1]
        out[k] = crop.transpose(2, 0, 1)
    return out


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a - b) ** 2).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.inference_mode()
def evaluate_psnr(
    model: DnCNN, clean: torch.Tensor, sigmas: Sequence[float], seed: int = 123
) -> dict[str, dict[str, float]]:
    """PSNR of the noisy input and of the denoised output on held-out clean crops, per sigma."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    table = {}
    for sigma in sigmas:
        noisy = clean + torch.randn(clean.shape, generator=gen) * sigma / 255.0
        denoised = noisy - model(noisy)
        table[f"sigma_{sigma:g}"] = {
            "noisy_psnr": round(_psnr(noisy, clean), 3),
            "denoised_psnr": round(_psnr(denoised, clean), 3),
        }
    model.train()
    return table


def train_dncnn(
    train_photos: Sequence[Path],
    holdout_photos: Sequence[Path],
    out_path: Path,
    config: DenoiserTrainConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train, evaluate on held-out photos, write ``out_path`` (.safetensors) and its ``.json`` card."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train = [_load_clean_photo(Path(p), config.target_short_side) for p in train_photos]
    train_names = [str(p) for p in train_photos]
    train_hashes = [content_hash(Path(p).read_bytes()) for p in train_photos]
    for name, arr in _skimage_photos(config.extra_skimage_photos):
        train.append(_load_clean_photo(None, config.target_short_side, arr))
        train_names.append(name)
        train_hashes.append(content_hash(arr.tobytes()))
    held = [_load_clean_photo(Path(p), config.target_short_side) for p in holdout_photos]
    eval_rng = np.random.default_rng(10_000 + config.seed)
    eval_clean = torch.from_numpy(_random_patches(held, 32, 64, eval_rng))

    model = DnCNN()
    # Start from "predict no noise" instead of large random outputs (initial loss ~100x the noise
    # variance otherwise): the first steps then go to learning, not to undoing the initialisation.
    torch.nn.init.zeros_(model.body[-1].weight)
    model = model.to(memory_format=torch.channels_last)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=config.steps, eta_min=config.lr_min)
    start = time.time()
    before = evaluate_psnr(model, eval_clean, config.eval_sigmas)
    steps_done = 0
    losses = []
    for step in range(config.steps):
        clean = torch.from_numpy(_random_patches(train, config.batch, config.patch, rng))
        sigma = (
            torch.from_numpy(
                rng.uniform(config.sigma_min, config.sigma_max, size=(config.batch, 1, 1, 1)).astype(np.float32)
            )
            / 255.0
        )
        noise = torch.randn(clean.shape) * sigma
        noisy = (clean + noise).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.mse_loss(model(noisy), noise)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
        steps_done = step + 1
        losses.append(loss.item())
        if progress:
            progress(steps_done, config.steps, loss.item())
        if config.max_minutes is not None and time.time() - start > 60 * config.max_minutes:
            break
    seconds = time.time() - start
    after = evaluate_psnr(model, eval_clean, config.eval_sigmas)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_path))
    card = {
        "model": "DnCNN",
        "layers": model.depth,
        "features": 64,
        "color": True,
        "predicts": "noise (residual = network output)",
        "config": asdict(config),
        "steps_done": steps_done,
        "seconds": round(seconds, 1),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])) if losses else None,
        "train_photos": [{"source": n, "sha256": h} for n, h in zip(train_names, train_hashes)],
        "holdout_photos": [{"source": str(p), "sha256": content_hash(Path(p).read_bytes())} for p in holdout_photos],
        "psnr_holdout_before_training": before,
        "psnr_holdout": after,
        "eval": "32 random 64x64 crops of the held-out photos, Gaussian noise per sigma (0-255 scale)",
        "weights_sha256": content_hash(out_path.read_bytes()),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
