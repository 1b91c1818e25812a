"""Wall times of one study of 8 fingerprints: sequentially in-process, then on a 2-node Ray cluster on loopback.

    OMP_NUM_THREADS=1 python3 scripts/bench_study.py [--steps 100] [--crop 64] [--train-size 24]

Builds the demo zoo (default size, 64-px images) in a temporary store, writes a study of its 8
generators, runs it with the sequential backend, then starts two ``ray start`` nodes (one CPU each,
127.0.0.2 and 127.0.0.3), runs the same study into a fresh store and stops the cluster. Both runs
start from empty stores (no cached residuals). Prints per-stage times, the mean fit time per
fingerprint, and whether the two runs gave byte-identical fingerprints. Both nodes share this
machine's cores, so the speed-up is bounded by them, not by Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.storage.store import Store  # noqa: E402
from engine.study.backends import RayBackend, SequentialBackend  # noqa: E402
from engine.study.runner import run_study  # noqa: E402
from engine.study.spec import load_study  # noqa: E402
from engine.zoo.demo import MODELS, ZooConfig, build_demo  # noqa: E402


def write_study(folder: Path, zoo_root: Path, args) -> Path:
    lines = [
        '[study]\nname = "bench8"\nnum_cpus = 1\n',
        f'[defaults]\nmethod = "dif"\nsteps = {args.steps}\nbatch = 16\ncrop = {args.crop}\nborder = 0\n'
        f"train_size = {args.train_size}\nwatermark_match = false\n",
    ]
    for m in MODELS:
        lines.append(
            f'[[models]]\nname = "b-{m.name}"\nreal = "{zoo_root / "real"}"\ngenerated = "{zoo_root / m.name}"\n'
        )
    path = folder / "bench8.toml"
    path.write_text("\n".join(lines))
    return path


def ray_cli(*args: str, env: dict) -> None:
    exe = Path(sys.executable).with_name("ray")
    subprocess.run([str(exe) if exe.exists() else "ray", *args], env=env, check=True, capture_output=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=24)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dif-bench-study-"))
    manifest = build_demo(Store(tmp / "zoo"), config=ZooConfig())
    path = write_study(tmp, Path(manifest["root"]), args)
    study = load_study(path)
    report: dict = {
        "models": len(study.models),
        "steps": args.steps,
        "crop": args.crop,
        "train_size": args.train_size,
        "cpu_cores": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }

    with Store(tmp / "sequential") as store:
        seq = run_study(study, store, SequentialBackend())
    report["sequential"] = {
        "wall_seconds": seq["wall_seconds"],
        **seq["stages"],
        "mean_fit_seconds": round(sum(m["seconds"] for m in seq["models"]) / len(seq["models"]), 2),
    }

    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    os.environ.update({k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats"]
    try:
        t0 = time.time()
        ray_cli(
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.2",
            "--port",
            str(port),
            "--include-dashboard=false",
            *common,
            env=env,
        )
        ray_cli("start", "--address", f"127.0.0.2:{port}", "--node-ip-address", "127.0.0.3", *common, env=env)
        report["cluster_start_seconds"] = round(time.time() - t0, 2)
        backend = RayBackend(f"127.0.0.2:{port}", log_to_driver=False)
        with Store(tmp / "cluster") as store:
            t0 = time.time()
            ray_run = run_study(study, store, backend)
            report["ray_2_nodes"] = {
                "wall_seconds": ray_run["wall_seconds"],
                **ray_run["stages"],
                "connect_and_run_seconds": round(time.time() - t0, 2),
                "mean_fit_seconds": round(sum(m["seconds"] for m in ray_run["models"]) / len(ray_run["models"]), 2),
                "workers": sorted({m["where"] for m in ray_run["models"]}),
            }
        backend.close()
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
    with Store(tmp / "sequential") as a, Store(tmp / "cluster") as b:
        report["byte_identical"] = all(
            a.load(n).tensor.numpy().tobytes() == b.load(n).tensor.numpy().tobytes() for n in a.names()
        )
    report["speed_up"] = round(report["sequential"]["wall_seconds"] / report["ray_2_nodes"]["wall_seconds"], 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
