"""``dif study run`` without a cluster: the study file, the plan, the sequential backend, failures, resume."""

from __future__ import annotations

import json
import sys

import pytest
from study_fixtures import MODELS, compare_stores, same_fingerprint, write_study

from engine.api import train_from_folders
from engine.cli.main import main
from engine.storage.store import Store
from engine.study.backends import SequentialBackend, make_backend
from engine.study.plan import plan_model
from engine.study.runner import run_study
from engine.study.spec import StudyError, load_study, parse_study
from engine.study.tasks import task_threads


def test_a_study_fingerprint_is_the_one_dif_train_gives(tmp_path):
    """The driver's plan selects exactly what ``dif train`` selects (or resume would never hit), and
    the study's fingerprint is byte for byte the one ``dif train --no-reference-pool`` stores."""
    study = load_study(write_study(tmp_path, models=MODELS[:1]))
    spec = study.models[0]
    plan = plan_model(spec)
    with Store(tmp_path / "train") as store, task_threads(study.num_cpus):  # the same threads give the same bytes
        fp = train_from_folders(
            spec.name, spec.real, spec.generated, spec.config, spec.train_size, store, metadata=spec.metadata
        )["fingerprint"]
        assert plan.key == fp.train_key
        assert fp.test_files == {
            "real": [im.source for im in plan.test_real],
            "fake": [im.source for im in plan.test_fake],
        }
        with Store(tmp_path / "study") as studied:
            run_study(study, studied, SequentialBackend())
            assert same_fingerprint(store.load(spec.name), studied.load(spec.name)) == []


def test_sequential_study_trains_cross_detects_and_resumes(tmp_path):
    path = write_study(tmp_path)
    with Store(tmp_path / "store") as store:
        summary = run_study(load_study(path), store, SequentialBackend())
        assert (summary["trained"], summary["cached"], summary["failed"]) == (4, 0, 0)
        assert sorted(store.names()) == sorted(f"s-{m}" for m in MODELS)
        fp = store.load("s-zoo-base")
        assert fp.metadata == {"zoo_model": "zoo-base"} and fp.test_metrics["accuracy"] > 0.5
        assert len(fp.test_files["real"]) > 0
        lineage = summary["lineage"]
        assert lineage and sorted(lineage["models"]) == sorted(store.names())
        family_of = {n: i for i, fam in enumerate(lineage["families"]) for n in fam}
        assert family_of["s-zoo-base"] == family_of["s-zoo-ft-a"]  # the fine-tune is found in its base's family
        assert family_of["s-zoo-shuffle"] != family_of["s-zoo-base"]
        again = run_study(load_study(path), store, SequentialBackend())
        assert (again["trained"], again["cached"], again["residual_batches"]) == (0, 4, 0)
        assert again["lineage"]["families"] == lineage["families"]


def test_shared_fs_paths_and_chunks_give_the_same_fingerprints(tmp_path):
    """Images as paths instead of bytes, and one model per chunk, change nothing in the results."""
    models = MODELS[:2]
    names = [f"s-{m}" for m in models]
    with Store(tmp_path / "bytes") as a, Store(tmp_path / "paths") as b, Store(tmp_path / "chunks") as c:
        whole = run_study(load_study(write_study(tmp_path / "1", models=models)), a, SequentialBackend())
        run_study(
            load_study(write_study(tmp_path / "2", models=models, extra_head="shared_fs = true\n")),
            b,
            SequentialBackend(),
        )
        chunked = run_study(
            load_study(write_study(tmp_path / "3", models=models, extra_head="chunk = 1\n")), c, SequentialBackend()
        )
        assert compare_stores(a, b, names) == compare_stores(a, c, names) == {n: [] for n in names}
        # the real folder's residuals, extracted with the first chunk, are not extracted again
        assert chunked["residual_images"] == whole["residual_images"] > 0
        assert chunked["lineage"]["families"] == whole["lineage"]["families"]


def test_a_failing_model_does_not_stop_the_others(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    path = write_study(tmp_path, models=MODELS[:2], overrides={"zoo-ft-a": 'method = "marra18"\n'})
    text = path.read_text().replace(str(load_study(path).models[1].generated), str(missing))
    path.write_text(text)
    code = main(
        ["study", "run", str(path), "--backend", "sequential", "--json", "--quiet", "--cache", str(tmp_path / "store")]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    rows = {m["name"]: m for m in out["models"]}
    assert rows["s-zoo-base"]["status"] == "trained"
    assert rows["s-zoo-ft-a"]["status"] == "failed"
    assert str(missing) in rows["s-zoo-ft-a"]["reason"] and "\n" not in rows["s-zoo-ft-a"]["reason"]
    assert out["lineage"] is None  # one fingerprint: nothing to cross-detect


@pytest.mark.parametrize(
    "body, problem",
    [
        ("[study\nname=1", "not valid TOML"),
        (
            '[study]\nname = "x"\n[[models]]\nname = "a"\nreal = "r"\ngenerated = "g"\nstepz = 3\n',
            "unknown key 'stepz'",
        ),
        ('[[models]]\nname = "a"\nreal = "r"\ngenerated = "g"\nmethod = "nope"\n', "unknown method 'nope'"),
        (
            '[[models]]\nname = "a"\nreal = "r"\ngenerated = "g"\n[[models]]\nname = "a"\nreal = "r"\ngenerated = '
            '"g"\n',
            "listed twice",
        ),
        ('[[models]]\nname = "a/b"\nreal = "r"\ngenerated = "g"\n', "invalid name"),
        ('[[models]]\nname = "a"\nreal = "r"\n', "'generated' must be a folder path"),
        (
            '[study]\ncross_detect = ["zz"]\n[[models]]\nname = "a"\nreal = "r"\ngenerated = "g"\n',
            "'zz', which is not a model",
        ),
        (
            '[study]\nnum_cpus = 0\n[[models]]\nname = "a"\nreal = "r"\ngenerated = "g"\n',
            "num_cpus must be an integer >= 1",
        ),
        ("[study]\n", "no [[models]]"),
    ],
)
def test_bad_study_files_are_one_line_errors_naming_the_file(tmp_path, capsys, body, problem):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(StudyError, match="bad.toml"):
        parse_study(body, path)
    assert main(["study", "run", str(path), "--backend", "sequential", "--cache", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and problem in err and "bad.toml" in err


def test_missing_study_file(tmp_path, capsys):
    assert main(["study", "run", str(tmp_path / "nope.toml"), "--cache", str(tmp_path / "s")]) == 2
    assert "nope.toml: study file not found" in capsys.readouterr().err


def test_without_ray_the_study_runs_sequentially_with_the_same_results(tmp_path, monkeypatch, capsys):
    path = write_study(tmp_path, models=MODELS[:2])
    with Store(tmp_path / "ref") as ref:
        run_study(load_study(path), ref, SequentialBackend())
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert isinstance(make_backend("auto"), SequentialBackend)
    assert main(["study", "run", str(path), "--json", "--quiet", "--cache", str(tmp_path / "auto")]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "sequential"
    with Store(tmp_path / "ref") as ref, Store(tmp_path / "auto") as auto:
        assert compare_stores(ref, auto, [f"s-{m}" for m in MODELS[:2]]) == {f"s-{m}": [] for m in MODELS[:2]}
    assert main(["study", "run", str(path), "--address", "127.0.0.1:1", "--cache", str(tmp_path / "x")]) == 2
    assert "Ray is not installed" in capsys.readouterr().err


def test_an_interrupted_study_keeps_what_finished_and_the_rerun_does_the_rest(tmp_path):
    """SIGKILL the driver once a fingerprint is stored: the rerun takes it from the store and fits the rest."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    path = write_study(tmp_path)
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p))
    store_dir = tmp_path / "store"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "study",
            "run",
            str(path),
            "--backend",
            "sequential",
            "--quiet",
            "--cache",
            str(store_dir),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored: list[str] = []
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        if (store_dir / "fingerprints").exists():
            with Store(store_dir) as store:
                stored = store.names()
            if stored:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.1)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and 1 <= len(stored) < 4, (proc.returncode, stored)
    with Store(store_dir) as store:
        summary = run_study(load_study(path), store, SequentialBackend())
        kept = set(store.names())
    assert summary["cached"] >= len(stored) and summary["cached"] + summary["trained"] == 4 and summary["trained"] >= 1
    assert set(stored) <= kept and {m["name"] for m in summary["models"] if m["status"] == "cached"} >= set(stored)
