"""Fingerprint extraction: optimise a U-Net so its output correlates with one generator's residuals.

The U-Net output is computed once per step and correlated with the whole batch (the reference code
repeats it per batch element, 3-4x slower for the same result). Residuals are standardised once,
so a step costs one U-Net forward/backward and one matrix-vector product.

The fingerprint F is an exponential moving average (0.99) of the U-Net output. It starts from zero
and is divided by 1 - 0.99^t (as Adam debiases its moments): initialised with the first output
instead, the untrained random U-Net output would keep a weight of 0.99^t (5% after 300 steps).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from engine.device import seed_everything
from engine.errors import ConfigError
from engine.method.config import TrainConfig
from engine.method.correlation import standardize
from engine.method.losses import contrastive_correlation_loss
from engine.method.unet import UNet


class TrainingCancelled(Exception):
    """Raised when a progress callback asks to stop; nothing is stored."""


@dataclass
class TrainProgress:
    """What a progress callback sees after each step: the loss and the batch means of rho per class."""

    step: int
    total: int
    loss: float
    batch_mu_real: float
    batch_mu_fake: float
    elapsed: float


ProgressFn = Callable[[TrainProgress], "bool | None"]


@dataclass
class FitResult:
    tensor: torch.Tensor  # 3 x s x s, float32, CPU
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)  # step -> EMA fingerprint at that step


def _pick(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """k distinct indices when n >= k, otherwise a permutation topped up with repeats."""
    if n >= k:
        return torch.randperm(n, generator=gen)[:k]
    extra = torch.randint(0, n, (k - n,), generator=gen)
    return torch.cat([torch.randperm(n, generator=gen), extra])


def fit_dif(
    real: torch.Tensor,
    fake: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    progress: ProgressFn | None = None,
    history_every: int = 10,
    snapshot_steps: tuple[int, ...] = (),
) -> FitResult:
    """Train the DIF fingerprint on residuals ``real`` and ``fake`` (N x 3 x s x s each).

    ``snapshot_steps`` keeps copies of the EMA fingerprint at those steps: one long run then shows
    how accuracy depends on the step count (scripts/step_convergence.py) at the cost of one run.
    """
    if real.shape[0] < 1 or fake.shape[0] < 1:
        raise ConfigError("training needs at least one real and one generated image")
    size = config.size
    if real.shape[-1] != size or fake.shape[-1] != size:
        raise ConfigError(f"residual side {real.shape[-1]} does not match config size {size}")
    gen = seed_everything(config.seed)
    unet = UNet(config.z_channels, 3, config.unet_base, config.unet_pools).to(device)
    z = (config.z_scale * torch.rand(1, config.z_channels, size, size, generator=gen)).to(device)
    channels_last = device.type == "cpu"
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    optim = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    real_std = standardize(real).reshape(real.shape[0], -1).to(device)
    fake_std = standardize(fake).reshape(fake.shape[0], -1).to(device)
    half = config.batch // 2
    numel = real_std.shape[1]
    ema = torch.zeros(3, size, size, device=device)
    history: list[dict] = []
    snapshots: dict[int, torch.Tensor] = {}
    start = time.time()
    use_autocast = device.type == "cuda"
    for step in range(1, config.steps + 1):
        idx_r, idx_f = _pick(real_std.shape[0], half, gen), _pick(fake_std.shape[0], half, gen)
        batch = torch.cat([real_std[idx_r.to(device)], fake_std[idx_f.to(device)]])
        labels = torch.cat([torch.zeros(half), torch.ones(half)])
        order = torch.randperm(config.batch, generator=gen)
        batch, labels = batch[order.to(device)], labels[order].to(device)
        noisy_z = z + (torch.randn(z.shape, generator=gen) * config.z_noise).to(device)
        if channels_last:
            noisy_z = noisy_z.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_autocast):
            out = unet(noisy_z)
        out = out.float()[0]
        corr = batch @ standardize(out.unsqueeze(0)).reshape(-1) / numel
        same = (labels[:half] == labels[half:]).float()
        loss = contrastive_correlation_loss(corr[:half], corr[half:], same, config.margin, config.loss)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        with torch.no_grad():
            detached = out.detach()
            ema.mul_(config.ema).add_(detached, alpha=1 - config.ema)
            mu_r = corr[labels == 0].mean().item()
            mu_f = corr[labels == 1].mean().item()
            if step in snapshot_steps:
                snapshots[step] = (ema / (1 - config.ema**step)).cpu()
        info = TrainProgress(step, config.steps, loss.item(), mu_r, mu_f, time.time() - start)
        if step % history_every == 0 or step == config.steps:
            history.append(
                {
                    "step": step,
                    "loss": round(info.loss, 6),
                    "batch_mu_real": round(mu_r, 6),
                    "batch_mu_fake": round(mu_f, 6),
                }
            )
        if progress is not None and progress(info) is False:
            raise TrainingCancelled(f"training cancelled at step {step}")
    fingerprint = ema / (1 - config.ema**config.steps)
    return FitResult(fingerprint.cpu().contiguous(), history, time.time() - start, snapshots)
