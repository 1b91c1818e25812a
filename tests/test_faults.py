"""Faults: a training process killed mid-way, concurrent writers and readers, an unusable store.

Real subprocesses run the real ``dif`` CLI against a store on disk; afterwards every entry must load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.storage.store import Store

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
DIF = [sys.executable, "-m", "engine.cli"]


def _train_args(ds, store: Path, name: str, method: str = "marra18", steps: int = 10) -> list[str]:
    return [
        *DIF,
        "train",
        "--name",
        name,
        "--real",
        str(ds["real"]),
        "--fake",
        str(ds["fake"]),
        "--crop",
        "64",
        "--extractor",
        "wavelet",
        "--method",
        method,
        "--steps",
        str(steps),
        "--batch",
        "16",
        "--cache",
        str(store),
    ]


def test_sigkill_during_training_leaves_the_store_as_it_was(tiny_dataset, tmp_path):
    root = tmp_path / "store"
    subprocess.run(_train_args(tiny_dataset, root, "keep"), check=True, env=ENV, capture_output=True)
    before = Store(root).raw("keep")
    proc = subprocess.Popen(
        _train_args(tiny_dataset, root, "victim", method="dif", steps=100000),
        env=ENV,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    seen = b""
    deadline = time.time() + 240
    while b"training" not in seen and time.time() < deadline:  # wait until the training loop runs
        seen += os.read(proc.stderr.fileno(), 4096)
    assert b"training" in seen, seen[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with Store(root) as store:
        assert store.names() == ["keep"]
        assert store.raw("keep") == before
        assert [problem for _, _, problem in store.scan()] == [None]
    # the store is not left locked: a new write goes through
    subprocess.run(_train_args(tiny_dataset, root, "after"), check=True, env=ENV, capture_output=True, timeout=240)
    assert Store(root).names() == ["after", "keep"]


def test_concurrent_training_and_listing_keep_the_store_consistent(tiny_dataset, tmp_path):
    root = tmp_path / "store"
    writers = [
        subprocess.Popen(
            _train_args(tiny_dataset, root, f"w{i}", method=m),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, m in enumerate(["marra18", "joslin20", "marra18"])
    ]
    listings, problems = 0, []
    reader = Store(root)
    while any(w.poll() is None for w in writers):
        # this process reads while three others write; plus one full CLI listing now and then
        for name, fp, problem in reader.scan():
            if problem is not None:
                problems.append(problem)
        listings += 1
        if listings % 20 == 1:
            out = subprocess.run(
                [*DIF, "list", "--json", "--cache", str(root)], env=ENV, capture_output=True, text=True
            )
            if out.returncode != 0 or '"corrupt": []' not in out.stdout:
                problems.append(out.stderr or out.stdout)
        time.sleep(0.05)
    reader.close()
    for w in writers:
        assert w.wait() == 0, w.stderr.read()
    assert listings >= 1 and problems == []
    with Store(root) as store:
        assert store.names() == ["w0", "w1", "w2"]
        for name in store.names():
            assert store.load(name).name == name
    print(f"\nconcurrency: 3 writer processes, {listings} concurrent listings, 0 inconsistent, 0 entries lost")


def test_unusable_store_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open store"):
        Store(blocker / "cache").names()


def test_disk_full_during_training_leaves_the_store_as_it_was(tiny_dataset, tmp_path):
    """RLIMIT_FSIZE makes every write past a few KB fail with EFBIG, as a full disk would."""
    import resource

    root = tmp_path / "store"
    subprocess.run(_train_args(tiny_dataset, root, "keep"), check=True, env=ENV, capture_output=True)
    before = Store(root).raw("keep")

    def tiny_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG errors instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run(
        _train_args(tiny_dataset, root, "big", method="dif", steps=3),
        env=ENV,
        capture_output=True,
        text=True,
        preexec_fn=tiny_disk,
    )
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    with Store(root) as store:
        assert store.names() == ["keep"] and store.raw("keep") == before
    print(f"\ndisk full: write refused with: {proc.stderr.strip()}")
