"""Lineage studies of many generators: ``dif study run STUDY.toml`` on Ray, or sequentially without it.

spec (the study file), plan (each model's images and train key), tasks (the work sent to workers),
backends (in-process or Ray), runner (the driver: stages, store writes, summary).
"""
