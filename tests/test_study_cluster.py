"""``dif study run`` on a real two-node Ray cluster on loopback: same bytes as sequential, a killed
worker costs no result, a rerun is all cache hits.

Both nodes are ``ray start`` processes with one CPU each. Ray rewrites 127.0.0.1 to the host's
network address for a multi-node cluster, so the nodes use two other loopback addresses
(127.0.0.2, 127.0.0.3): nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra (bash scripts/install.sh --test installs it)")

from study_fixtures import MODELS, compare_stores, write_study  # noqa: E402

from engine.storage.store import Store  # noqa: E402
from engine.study.backends import SequentialBackend  # noqa: E402
from engine.study.runner import run_study  # noqa: E402
from engine.study.spec import load_study  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HEAD, WORKER = "127.0.0.2", "127.0.0.3"
NAMES = [f"s-{m}" for m in MODELS]


TOKEN = secrets.token_hex(32)  # this cluster's own token: every process of the test presents it


def _env() -> dict[str, str]:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=TOKEN,
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    ray_cli = Path(sys.executable).with_name("ray")
    cmd = [str(ray_cli) if ray_cli.exists() else "ray", *args]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each, small object stores; stopped at the end."""
    port = _free_port(HEAD)
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats"]
    try:
        _ray("start", "--head", "--node-ip-address", HEAD, "--port", str(port), "--include-dashboard=false", *common)
        _ray("start", "--address", f"{HEAD}:{port}", "--node-ip-address", WORKER, *common)
        yield f"{HEAD}:{port}"
    finally:
        subprocess.run(["ray", "stop", "--force"], env=_env(), capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study run sequentially in this process: the bytes the cluster must reproduce."""
    folder = tmp_path_factory.mktemp("study")
    path = write_study(folder)
    store = Store(folder / "sequential")
    summary = run_study(load_study(path), store, SequentialBackend())
    assert summary["trained"] == 4
    yield path, store
    store.close()


def _dif(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(proc: subprocess.Popen, timeout: float = 240) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def test_cluster_gives_the_sequential_bytes(cluster, reference, tmp_path):
    path, ref = reference
    summary = _summary(
        _dif(["study", "run", str(path), "--address", cluster, "--json", "--quiet", "--cache", str(tmp_path / "store")])
    )
    assert (summary["backend"], summary["nodes"], summary["trained"], summary["failed"]) == ("ray", 2, 4, 0)
    assert len({m["where"] for m in summary["models"]}) >= 2  # the fits ran in more than one worker
    with Store(tmp_path / "store") as store:
        assert compare_stores(ref, store, NAMES) == {n: [] for n in NAMES}
    assert (
        summary["lineage"]["families"] == run_study(load_study(path), ref, SequentialBackend())["lineage"]["families"]
    )


def test_an_unreachable_address_is_a_one_line_error_at_once(tmp_path):
    port = _free_port(HEAD)  # nothing listens there
    start = time.time()
    proc = _dif(
        [
            "study",
            "run",
            str(write_study(tmp_path, models=MODELS[:1])),
            "--address",
            f"{HEAD}:{port}",
            "--cache",
            str(tmp_path / "s"),
        ]
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and time.time() - start < 60
    assert err.strip().count("\n") == 0 and f"cannot reach a Ray cluster at {HEAD}:{port}" in err


def _fit_workers() -> list[int]:
    """Ray workers running a fingerprint fit right now (Ray titles a busy worker ``ray::<task>``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::fit_task"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _kill_a_fit(proc: subprocess.Popen) -> int | None:
    """SIGKILL the first worker caught fitting (twice seen, half a second apart) while ``proc`` runs."""
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline:
        busy = _fit_workers()
        if busy:
            time.sleep(0.5)  # well inside the fit
            if busy[0] in _fit_workers():
                os.kill(busy[0], signal.SIGKILL)
                return busy[0]
        time.sleep(0.05)
    return None


def test_a_killed_worker_costs_no_result_and_a_rerun_is_all_cache_hits(cluster, reference, tmp_path):
    path, ref = reference
    store_dir = str(tmp_path / "store")
    proc = _dif(["study", "run", str(path), "--address", cluster, "--json", "--quiet", "--cache", store_dir])
    killed = _kill_a_fit(proc)
    summary = _summary(proc)
    assert killed is not None, "no fingerprint task was caught running"
    assert (summary["trained"], summary["failed"]) == (4, 0)
    assert all(m["where"] and not m["where"].endswith(f":{killed}") for m in summary["models"])  # retried elsewhere
    with Store(store_dir) as store:
        assert compare_stores(ref, store, NAMES) == {n: [] for n in NAMES}
    again = _summary(_dif(["study", "run", str(path), "--address", cluster, "--json", "--quiet", "--cache", store_dir]))
    assert (again["trained"], again["cached"], again["failed"], again["residual_batches"]) == (0, 4, 0, 0)


def test_without_retries_a_killed_worker_fails_its_model_only(cluster, reference, tmp_path):
    """max_retries = 0: the killed fit is that model's one-line failure; the other three are stored."""
    path = write_study(tmp_path, name="noretry", extra_head="max_retries = 0\n")
    store_dir = str(tmp_path / "store")
    proc = _dif(["study", "run", str(path), "--address", cluster, "--json", "--quiet", "--cache", store_dir])
    killed = _kill_a_fit(proc)
    out, err = proc.communicate(timeout=240)
    assert killed is not None, "no fingerprint task was caught running"
    summary = json.loads(out)
    assert proc.returncode == 1 and (summary["trained"], summary["failed"]) == (3, 1), err[-2000:]
    failed = next(m for m in summary["models"] if m["status"] == "failed")
    assert "\n" not in failed["reason"] and "Worker" in failed["reason"], failed["reason"]
    with Store(store_dir) as store:
        assert sorted(store.names()) == sorted(n for n in NAMES if n != failed["name"])


def test_without_address_a_local_instance_gives_the_same_bytes(cluster, reference, tmp_path):
    """No --address: a new local Ray instance (not the running cluster), stopped when the study ends."""
    path, ref = reference
    summary = _summary(_dif(["study", "run", str(path), "--json", "--quiet", "--cache", str(tmp_path / "store")]))
    assert (summary["backend"], summary["nodes"], summary["trained"], summary["failed"]) == ("ray", 1, 4, 0)
    with Store(tmp_path / "store") as store:
        assert compare_stores(ref, store, NAMES) == {n: [] for n in NAMES}


def _raylet_of(node_ip: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"/raylet") and f"--node_ip_address={node_ip}".encode() in cmd:
                return int(entry.name)
    raise AssertionError(f"no raylet of {node_ip}")


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_a_killed_node_costs_no_result(cluster, reference, tmp_path):
    """The second node's raylet is SIGKILLed while one of its workers fits: Ray reruns the task on
    the head. Runs last: the cluster has one node after it."""
    path, ref = reference
    raylet = _raylet_of(WORKER)
    store_dir = str(tmp_path / "store")
    proc = _dif(["study", "run", str(path), "--address", cluster, "--json", "--quiet", "--cache", store_dir])
    killed = False
    deadline = time.time() + 180
    while not killed and proc.poll() is None and time.time() < deadline:
        if any(_parent(pid) == raylet for pid in _fit_workers()):
            time.sleep(0.3)
            os.kill(raylet, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    summary = _summary(proc)
    assert killed, "no fit was caught running on the second node"
    assert (summary["trained"], summary["failed"]) == (4, 0)
    with Store(store_dir) as store:
        assert compare_stores(ref, store, NAMES) == {n: [] for n in NAMES}
