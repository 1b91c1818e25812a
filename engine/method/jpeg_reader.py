"""The JPEG reader: a linear template on the residual's RGB 8 x 8 periodic part, fitted on JPEG re-saves.

Why not the fingerprint itself: JPEG quantises each 8 x 8 block, so what survives of an up-sampling
generator's period-8 pattern is its periodic part, attenuated coefficient by coefficient, on top of a
period-8 blocking pattern and 2-periodic chroma up-sampling that every JPEG carries, real or not. The
U-Net fingerprint was fitted on clean images and knows none of that. A linear discriminant fitted on
re-saves of the fit's own images (both classes, so format is never the tell) learns the attenuated
pattern and whitens the JPEG-made part. At JPEG-75 it raised the AUC from 0.853 to 0.907 on
`sd1/` -> `sd1-b/` and from 0.773 to 0.808 on `ldm/` -> `ldm-b/`, and with the sign leans below to 0.936
and 0.888 (3 seeds; docs/RESULTS.md, "Robustness").

Features are the 2-D DCT of the standardised periodic part with each channel's DC dropped; the
discriminant is Fisher's, with Ledoit-Wolf shrinkage of the covariance (192 features from a few
hundred images). Its weights, mapped back to pixels, are a 3 x 8 x 8 template: the score
<template, periodic part> is the ``periodic-rgb`` statistic of a fingerprint that repeats it.
A JPEG card's reader also reads the file's coefficient sign leans (``fit_reader``), which is what
lifted it at every quality (docs/RESULTS.md, "Robustness").

The same discriminant fitted on half-size copies enlarged back is a card's upscaled reader
(``api._upscaled_reader_record``): resampling, like JPEG, leaves an attenuated periodic part.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dctn, idctn
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from engine.method.correlation import periodic_part, standardize

PERIOD = 8


def periodic_features(residuals: torch.Tensor) -> np.ndarray:
    """N x C x H x W residuals -> N x (C * 64): DCT of each channel's periodic part, DC zeroed."""
    part = periodic_part(standardize(residuals.float()), PERIOD).cpu().double().numpy()
    coefficients = dctn(part, axes=(2, 3), norm="ortho")
    coefficients[:, :, 0, 0] = 0.0
    return coefficients.reshape(len(part), -1)


def discriminant() -> LinearDiscriminantAnalysis:
    """The reader's classifier, unfitted: Fisher's discriminant with Ledoit-Wolf shrinkage (a few hundred
    images for up to 255 features). Studies that refit the reader call this so they fit the same one."""
    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


def fit_reader(
    real: np.ndarray, fake: np.ndarray, real_leans: np.ndarray | None = None, fake_leans: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The C x 8 x 8 pixel template whose inner product with a periodic part scores it toward ``fake``
    (unit standard deviation, zero mean per channel as the DC was dropped, generated side positive) and,
    given the JPEGs' coefficient sign leans (``engine/method/jpeg_coefficients.py``), one discriminant over
    both: its weights on the leans come back in the units of the template's ``periodic-rgb`` correlation,
    so that correlation plus leans @ weights is the discriminant's score, scaled (None without leans).

    Why one discriminant: the two see the generator's pattern through different losses (the residual's
    block mean, the rounding's sign), and fitted together the shrunk covariance weighs each by what
    it adds. At JPEG-75, 64 + 64 fit images: `sd1-b/` 71% -> 85% flagged at a cut flagging 10% of
    held-out real photos, `ldm-b/` 54% -> 76% (docs/RESULTS.md, "Robustness").
    """
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("the JPEG reader needs at least two images of each class")
    leans = real_leans is not None and fake_leans is not None
    features = np.concatenate([real, fake])
    if leans:
        features = np.concatenate([features, np.concatenate([real_leans, fake_leans])], axis=1)
    lda = discriminant()
    lda.fit(features, np.r_[np.zeros(len(real)), np.ones(len(fake))])
    coefficients = lda.coef_[0]
    weights = coefficients[: real.shape[1]].reshape(-1, PERIOD, PERIOD).copy()
    weights[:, 0, 0] = 0.0
    template = idctn(weights, axes=(1, 2), norm="ortho")
    scale = template.std() + 1e-12
    # periodic-rgb correlation = <periodic part, template / scale> / size = periodic weights @ features / (scale * size)
    lean_weights = coefficients[real.shape[1] :] / (scale * template.size) if leans else None
    return (template / scale).astype(np.float32), lean_weights


def tile_template(template: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """The template repeated over a C x H x W fingerprint from its top-left corner (the grid
    ``periodic_part`` averages on), so the ``periodic-rgb`` statistic of the tiling reads the template."""
    c, h, w = shape
    reps = (1, -(-h // PERIOD), -(-w // PERIOD))
    return torch.from_numpy(np.tile(template, reps)[:c, :h, :w].copy())
