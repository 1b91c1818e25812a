"""The study driver: plan every model, extract residuals once, fit fingerprints as tasks, then cross-detect.

Stages (each with its progress), for a chunk of models at a time:
plan (decide each model's images and train key; a stored key is a cache hit and is not fitted again),
residuals (every image not yet in the store, once per geometry, in batches), fingerprints (one task
per model to fit), cross-detection and lineage (here, from the gathered fingerprints). Only this
driver writes the store, through ``Store``, as results arrive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.api import crop_images, held_out_metrics, measure_jpeg_rates, train_fingerprint
from engine.data.images import LoadedImage
from engine.errors import DifError
from engine.residuals.compute import residual_key
from engine.residuals.registry import get_extractor
from engine.storage.fingerprint import Fingerprint, parse_fingerprint
from engine.storage.store import Store
from engine.study.backends import Outcome, RayBackend, SequentialBackend
from engine.study.plan import Plan, plan_model
from engine.study.spec import Study
from engine.study.tasks import Blob, FitJob, ResidualBatch, fit_task, residual_task

Progress = Callable[[str, int, int], None]
RESIDUAL_BATCH = 64  # images per residual task: big enough to amortise a task, small enough to spread


@dataclass
class ModelResult:
    name: str
    status: str = "pending"  # trained | cached | failed
    reason: str | None = None
    train_key: str | None = None
    seconds: float | None = None
    where: str | None = None
    skipped: list[str] = field(default_factory=list)


def run_study(
    study: Study, store: Store, backend: SequentialBackend | RayBackend, progress: Progress | None = None
) -> dict[str, Any]:
    """Run ``study`` on ``backend`` into ``store``; returns the summary (also what ``--json`` prints).

    Models go through the stages ``study.chunk`` at a time, so the driver holds the decoded images
    of one chunk only, whatever the size of the study; residuals already stored are not recomputed
    in later chunks.
    """
    start = time.time()
    tick = progress or (lambda stage, done, total: None)
    results = {m.name: ModelResult(m.name) for m in study.models}
    run = _Run(study, store, backend, tick, results)
    for first in range(0, len(study.models), study.chunk):
        run.chunk(list(study.models[first : first + study.chunk]), first)
    t0 = time.time()
    lineage = _lineage(study, results, store, tick)
    run.stages["cross_seconds"] = round(time.time() - t0, 3)
    return {
        "study": study.name,
        "file": str(study.path),
        **backend.describe(),
        "models": [vars(r) for r in results.values()],
        "trained": sum(r.status == "trained" for r in results.values()),
        "cached": sum(r.status == "cached" for r in results.values()),
        "failed": sum(r.status == "failed" for r in results.values()),
        "residual_batches": run.batches,
        "residual_images": run.images,
        "residual_errors": run.residual_errors,
        "lineage": lineage,
        "stages": run.stages,
        "wall_seconds": round(time.time() - start, 3),
    }


class _Run:
    """The state of one study run across its chunks: results, stage times, residual problems."""

    def __init__(
        self,
        study: Study,
        store: Store,
        backend: SequentialBackend | RayBackend,
        tick: Progress,
        results: dict[str, ModelResult],
    ):
        self.study, self.store, self.backend, self.tick, self.results = study, store, backend, tick, results
        self.stages = {"plan_seconds": 0.0, "residuals_seconds": 0.0, "fingerprints_seconds": 0.0}
        self.batches = self.images = 0
        self.residual_errors: list[str] = []
        self.gpus = 1 if backend.gpus() > 0 else 0  # a task per GPU where the cluster has them
        # cross-detection correlates every cross model's test images with every cross model at its geometry
        self.cross_geometries = sorted(
            {(m.config.extractor, m.config.crop, m.config.border) for m in study.models if m.name in study.cross}
        )

    def _time(self, stage: str, t0: float) -> None:
        self.stages[stage] = round(self.stages[stage] + time.time() - t0, 3)

    def chunk(self, specs: list, first: int) -> None:
        study, store, results, tick = self.study, self.store, self.results, self.tick
        t0 = time.time()
        plans: dict[str, Plan] = {}
        for k, spec in enumerate(specs):
            try:
                plans[spec.name] = plan = plan_model(spec)
                results[spec.name].train_key, results[spec.name].skipped = plan.key, plan.skipped
            except DifError as exc:
                results[spec.name].status, results[spec.name].reason = "failed", str(exc)
            tick("plan", first + k + 1, len(study.models))
        todo = []
        for name, plan in plans.items():
            if store.find_by_train_key(plan.key) is None:
                todo.append(name)
                continue
            # train_fingerprint finds the key and only renames / updates the card where needed
            fp, _ = train_fingerprint(
                name,
                plan.fit_real,
                plan.fit_fake,
                plan.spec.config,
                store,
                metadata=plan.spec.metadata,
                calibration=plan.calibration,
            )
            _finish(fp, plan, store)
            results[name].status = "cached"
        self._time("plan_seconds", t0)

        t0 = time.time()
        blobs, folder_of = _blobs(plans, todo, study.shared_fs, self.backend)
        cross_plans = [plans[n] for n in study.cross if n in plans]
        batches = _residual_batches([plans[n] for n in todo], cross_plans, self.cross_geometries, store)
        self.batches += len(batches)
        self.images += sum(len(b.sources) for b in batches)
        calls = [(b, study.num_cpus, *[blobs[f] for f in sorted({folder_of[s] for s in b.sources})]) for b in batches]
        gathered: list[tuple[set[str], Any]] = []  # (residual keys, handle) per batch, for the fitting tasks

        def store_residuals(out: Outcome) -> None:
            if out.error:
                self.residual_errors.append(out.error)  # the fitting task computes what is missing itself
                return
            for key, value in out.value.items():
                store.residuals.set(key, value)
            gathered.append((set(out.value), out.handle))

        self.backend.map(
            residual_task,
            calls,
            study.num_cpus,
            self.gpus,
            study.max_retries,
            lambda d, t: tick("residuals", d, t),
            store_residuals,
        )
        self._time("residuals_seconds", t0)

        t0 = time.time()
        calls = []
        for name in todo:
            plan = plans[name]
            keys = _keys_of(plan.train_images(), plan.spec.config)
            parts = [h for ks, h in gathered if ks & keys]
            folders = [str(plan.spec.real), str(plan.spec.generated)]
            cal = plan.calibration
            job = FitJob(
                name,
                plan.spec.config,
                plan.spec.metadata,
                _src(plan.fit_real),
                _src(plan.fit_fake),
                _src(cal[0]) if cal else None,
                _src(cal[1]) if cal else None,
            )
            calls.append((job, study.num_cpus, len(folders), *[blobs[f] for f in folders], *parts))

        def store_fingerprint(out: Outcome) -> None:
            name = todo[out.index]
            res, value = results[name], out.value or {}
            res.seconds, res.where = (
                value.get("seconds"),
                f"{value['host']}:{value['pid']}" if "host" in value else None,
            )
            error = out.error or value.get("error")
            if error:
                res.status, res.reason = "failed", error
                return
            try:
                fp = parse_fingerprint(value["fingerprint"], f"fingerprint of {name!r} from {res.where}")
                _finish(fp, plans[name], store)
                res.status = "trained"
            except DifError as exc:
                res.status, res.reason = "failed", str(exc)

        self.backend.map(
            fit_task,
            calls,
            study.num_cpus,
            self.gpus,
            study.max_retries,
            lambda d, t: tick("fingerprints", d, t),
            store_fingerprint,
        )
        self._time("fingerprints_seconds", t0)


def _src(images: list[LoadedImage]) -> tuple[str, ...]:
    return tuple(im.source for im in images)


def _finish(fp: Fingerprint, plan: Plan, store: Store) -> None:
    """The held-out metrics and JPEG rates ``dif train`` records (test halves only), then the save."""
    measure_jpeg_rates(fp, plan.calibration, store)
    metrics = held_out_metrics(fp, plan.test_real, plan.test_fake, None, store)
    fp.test_metrics = metrics
    fp.test_files = {"real": list(_src(plan.test_real)), "fake": list(_src(plan.test_fake))}
    store.save(fp)


def _blobs(plans: dict[str, Plan], todo: list[str], shared_fs: bool, backend) -> tuple[dict[str, Any], dict[str, str]]:
    """One object per folder holding the bytes of every file a task will read from it (or just the
    paths, on a shared file system); and each file's folder."""
    files: dict[str, dict[str, None]] = {}
    for name in todo:
        plan = plans[name]
        for folder, images in (
            (str(plan.spec.real), plan.fit_real + plan.test_real),
            (str(plan.spec.generated), plan.fit_fake + plan.test_fake),
        ):
            files.setdefault(folder, {}).update(dict.fromkeys(im.source for im in images))
        if plan.calibration:
            files[str(plan.spec.real)].update(dict.fromkeys(im.source for im in plan.calibration[0]))
            files[str(plan.spec.generated)].update(dict.fromkeys(im.source for im in plan.calibration[1]))
    for plan in plans.values():  # cross-detection's test images
        for folder, images in ((str(plan.spec.real), plan.test_real), (str(plan.spec.generated), plan.test_fake)):
            files.setdefault(folder, {}).update(dict.fromkeys(im.source for im in images))
    out, folder_of = {}, {}
    for folder, sources in files.items():
        blob: Blob = dict(sources) if shared_fs else {s: _read(s) for s in sources}
        out[folder] = backend.put(blob)
        folder_of.update(dict.fromkeys(sources, folder))
    return out, folder_of


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _keys_of(images: list[LoadedImage], config) -> set[str]:
    ext = get_extractor(config.extractor, _cpu())
    return {residual_key(ext, im, config.border) for im in crop_images(images, config.crop, config.pad)}


def _cpu():
    import torch

    return torch.device("cpu")


def _residual_batches(
    fits: list[Plan], cross: list[Plan], geometries: list[tuple[str, int, int]], store: Store
) -> list[ResidualBatch]:
    """Every (image, geometry) a fit or the cross-detection will need and the store lacks, once, in batches."""
    wanted: dict[tuple, dict[str, str]] = {}  # geometry -> residual key -> source

    def want(images: list[LoadedImage], extractor: str, crop: int, border: int, pad: bool) -> None:
        ext = get_extractor(extractor, _cpu())
        usable = [im for im in images if pad or min(im.pixels.shape[:2]) >= crop]
        for im, cropped in zip(usable, crop_images(usable, crop, pad)):
            wanted.setdefault((extractor, crop, border, pad), {}).setdefault(
                residual_key(ext, cropped, border), im.source
            )

    for plan in fits:
        c = plan.spec.config
        want(plan.train_images() + plan.test_real + plan.test_fake, c.extractor, c.crop, c.border, c.pad)
    test_images = [im for p in cross for im in p.test_real + p.test_fake]
    for extractor, crop, border in geometries:
        want(test_images, extractor, crop, border, False)
    batches = []
    for (extractor, crop, border, pad), keys in sorted(wanted.items()):
        missing = list(dict.fromkeys(src for key, src in keys.items() if key not in store.residuals))
        for i in range(0, len(missing), RESIDUAL_BATCH):
            batches.append(ResidualBatch(extractor, crop, border, pad, tuple(missing[i : i + RESIDUAL_BATCH])))
    return batches


def _lineage(study: Study, results: dict[str, ModelResult], store: Store, tick: Progress) -> dict[str, Any] | None:
    """Cross-detection and lineage over the study's cross-detect models that have a fingerprint."""
    from engine.lineage.cross import cross_detect
    from engine.lineage.infer import LineageParams, families, infer_lineage

    names = [n for n in study.cross if results[n].status in ("trained", "cached")]
    if len(names) < 2:
        return None
    fps = [store.load(n) for n in names]
    cross = cross_detect(fps, store, progress=lambda d, t: tick("cross-detect", d, t))
    metadata = {fp.name: fp.metadata for fp in fps}
    graph = infer_lineage(cross, metadata, LineageParams(), cards={fp.name: fp.summary() for fp in fps})
    edges = [
        {"source": u, "target": v, "c_ij": d.get("c_ij"), "c_ji": d.get("c_ji"), "directed": d.get("directed")}
        for u, v, d in graph.edges(data=True)
    ]
    return {"models": names, "families": families(graph), "edges": edges, "cross": cross.to_dict()}
