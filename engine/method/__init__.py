"""The fingerprint method: config, the DIF fit and the mean baselines, correlation, decision, calibration, metrics."""
