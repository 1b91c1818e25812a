"""A tiny model-family zoo built once per test process (about 15 s on 2 cores), shared by the zoo,
lineage and attribution tests. It is the real zoo code at a smaller size: 32-pixel crops, 8-channel
generators, a few hundred generator steps."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from engine.storage.store import Store
from engine.zoo.demo import ZooConfig, build_demo

TINY = ZooConfig(
    crop=32, patch=16, width=8, base_steps=200, ckpt_steps=60, finetune_steps=60, style_steps=30, n_train=48, n_test=48
)

_BUILT: dict[str, object] = {}


def tiny_zoo() -> tuple[Store, dict]:
    """(store, manifest) of the tiny zoo; built on first use, removed at exit."""
    if "store" not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix="dif-zoo-test-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        store = Store(root)
        _BUILT["manifest"] = build_demo(store, config=TINY)
        _BUILT["store"] = store
    return _BUILT["store"], _BUILT["manifest"]  # type: ignore[return-value]
