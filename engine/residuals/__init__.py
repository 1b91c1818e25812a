"""Noise residuals: the extractor registry (wavelet, DnCNN, FFDNet) and the cached residual pass."""
