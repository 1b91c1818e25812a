"""``pip install .`` without extras: ``dif train`` and ``dif detect`` run with the dashboard's and the
provenance readers' packages unimportable (streamlit, plotly, OpenCV, invisible-watermark, c2pa)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import tiny_train_args

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("streamlit", "plotly", "cv2", "imwatermark", "c2pa")
BLOCKER = textwrap.dedent(
    f"""
    import sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    from engine.cli.main import main
    code = main(sys.argv[1:])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
    assert not loaded, loaded
    sys.exit(code)
    """
)


def dif(*args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)  # keep carried packages
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, env=env, timeout=600)


def test_train_and_detect_need_no_dashboard_or_provenance_packages(tiny_dataset, tmp_path):
    cache = str(tmp_path / "store")
    train = dif(
        "train",
        "--name",
        "engine-only",
        *tiny_train_args(tiny_dataset, cache),
        *("--steps", "5", "--batch", "8", "--train-size", "8", "--quiet", "--json"),
    )
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout)
    assert summary["name"] == "engine-only" and "mu_fake" in summary
    assert "invisible-watermark" in summary["watermark"]["reason"] or not summary["watermark"]["matched"]
    detect = dif("detect", "--name", "engine-only", str(tiny_dataset["fake"]), "--json", "--cache", cache)
    assert detect.returncode == 0, detect.stderr
    rows = json.loads(detect.stdout)["results"]
    assert rows and {r["label"] for r in rows} <= {"real", "generated"}
