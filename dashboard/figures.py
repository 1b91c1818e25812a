"""Pictures of tensors and matrices the engine returns (display only: normalising, FFT for viewing).

The fingerprint view is the paper's Fig. 2: the fingerprint as an RGB image next to the centred
log-magnitude spectrum of its channel mean, where a generator's upsampling shows as a grid of peaks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go


def to_rgb8(tensor) -> np.ndarray:
    """A 3 x H x W (or H x W) array as an H x W x 3 uint8 image, each channel stretched to its range."""
    arr = np.asarray(tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else tensor, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    lo = arr.min(axis=(1, 2), keepdims=True)
    hi = arr.max(axis=(1, 2), keepdims=True)
    norm = (arr - lo) / np.maximum(hi - lo, 1e-12)
    img = (norm * 255).round().astype(np.uint8).transpose(1, 2, 0)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def spectrum8(tensor) -> np.ndarray:
    """Centred log-magnitude FFT of the channel mean, as an H x W uint8 image."""
    arr = np.asarray(tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else tensor, dtype=np.float64)
    plane = arr.mean(axis=0) if arr.ndim == 3 else arr
    mag = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(plane - plane.mean()))))
    return to_rgb8(mag)[:, :, 0]


def enlarge(img: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale so small fingerprints are visible pixel by pixel."""
    k = max(1, int(np.ceil(min_side / max(img.shape[0], 1))))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1) if k > 1 else img


def heatmap(names: Sequence[str], accuracy: np.ndarray, title: str = "") -> go.Figure:
    """Annotated cross-detection heatmap (%): row = detector, column = test set; hover shows both directions."""
    acc = np.asarray(accuracy, dtype=float) * 100.0
    reverse = acc.T
    text = [[f"{v:.0f}" for v in row] for row in acc]
    custom = np.dstack([reverse])
    fig = go.Figure(
        go.Heatmap(
            z=acc,
            x=list(names),
            y=list(names),
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            zmin=0,
            zmax=100,
            colorscale="Viridis",
            colorbar={"title": {"text": "balanced acc. %<br>(50 = chance)"}},
            hovertemplate="detector %{y} on %{x}: %{z:.1f}% balanced accuracy<br>detector %{x} on %{y}: "
            "%{customdata[0]:.1f}%<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or None,
        xaxis={"title": {"text": "test set (generated images of)"}, "side": "bottom"},
        yaxis={"title": {"text": "detector (fingerprint of)"}, "autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        height=max(360, 40 * len(names) + 160),
    )
    return fig


def ranking_bars(models: Sequence[str], scores: Sequence[float], highlight: str | None) -> go.Figure:
    """Horizontal bars of per-model scores, best on top, the decided model highlighted."""
    colors = ["#d62728" if m == highlight else "#1f77b4" for m in models]
    fig = go.Figure(
        go.Bar(
            x=list(scores),
            y=list(models),
            orientation="h",
            marker={"color": colors},
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        yaxis={"autorange": "reversed"},
        xaxis={"title": {"text": "score (0 = decision threshold)"}},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        height=max(200, 28 * len(models) + 80),
    )
    return fig


def with_boxes(pixels: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], max_side: int = 768) -> np.ndarray:
    """The image (shrunk to ``max_side`` for display) with each analysed (top, left, h, w) box outlined."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    line = max(2, round(max(img.size) / 150))
    for top, left, h, w in boxes:
        x0, y0 = round(left * scale), round(top * scale)
        x1, y1 = round((left + w) * scale) - 1, round((top + h) * scale) - 1
        draw.rectangle([x0, y0, x1, y1], outline=(255, 40, 40), width=line)
    return np.asarray(img)
