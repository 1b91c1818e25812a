"""The study file (TOML): which generators to fingerprint, with which settings, and which to cross-detect.

    [study]
    name = "zoo-4"
    shared_fs = false      # true: every node reads the folders at these paths; false: images travel as bytes
    cross_detect = true    # true (all models), false, or a list of model names
    num_cpus = 1           # per task; also the torch threads inside it (the same threads give the same bytes)
    max_retries = 3        # Ray re-runs a task whose worker or node died
    chunk = 256            # models planned and run together (the driver holds one chunk's images)

    [defaults]             # any model key below, applied where a model does not set it
    method = "dif"
    train_size = 64

    [[models]]
    name = "zoo-base"
    real = "zoo/real"          # relative paths are relative to the study file
    generated = "zoo/zoo-base"
    seed = 0
    steps = 300                # any TrainConfig field (steps, crop, border, extractor, batch, ...)
    [models.metadata]          # optional: family, parent, base_model, release_date, notes ...
    release_date = "2024-01-01"

A malformed file is refused as a whole, before any work, with one line naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.method.config import TrainConfig
from engine.storage.names import validate_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

STUDY_KEYS = {"name", "shared_fs", "cross_detect", "num_cpus", "max_retries", "chunk"}
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
MODEL_KEYS = {"name", "real", "generated", "train_size", "metadata"} | TRAIN_FIELDS
DEFAULT_KEYS = MODEL_KEYS - {"name", "real", "generated"}


class StudyError(ConfigError):
    """The study file cannot be run; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelSpec:
    """One generator of the study: where its images are and how its fingerprint is trained."""

    name: str
    real: Path
    generated: Path
    config: TrainConfig
    train_size: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file."""

    name: str
    path: Path
    models: tuple[ModelSpec, ...]
    cross: tuple[str, ...]  # models to cross-detect (and infer lineage over) once fingerprinted
    shared_fs: bool = False
    num_cpus: int = 1
    max_retries: int = 3
    chunk: int = 256


def _check_keys(where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise StudyError(f"{where} must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return table


def _int(where: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise StudyError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _model(path: Path, k: int, raw: Any, defaults: dict[str, Any]) -> ModelSpec:
    where = f"{path}: models[{k}]"
    raw = _check_keys(where, raw, MODEL_KEYS)
    if "name" not in raw:
        raise StudyError(f"{where}: missing 'name'")
    try:
        name = validate_name(raw["name"], f"{where} name")
    except ConfigError as exc:
        raise StudyError(str(exc)) from None
    where = f"{path}: model {name!r}"
    merged = {**defaults, **raw}
    folders = []
    for key in ("real", "generated"):
        value = merged.get(key)
        if not isinstance(value, str) or not value:
            raise StudyError(f"{where}: '{key}' must be a folder path")
        folder = Path(value).expanduser()
        folders.append(folder if folder.is_absolute() else (path.parent / folder).resolve())
    train_size = merged.get("train_size")
    if train_size is not None:
        train_size = _int(f"{where}: train_size", train_size, 1)
    metadata = merged.get("metadata", {})
    if not isinstance(metadata, dict):
        raise StudyError(f"{where}: metadata must be a table")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError):
        raise StudyError(f"{where}: metadata must hold text, numbers, booleans, lists and tables only") from None
    try:
        config = TrainConfig(**{k: v for k, v in merged.items() if k in TRAIN_FIELDS})
    except ConfigError as exc:
        raise StudyError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise StudyError(f"{where}: {exc}") from None
    return ModelSpec(name, folders[0], folders[1], config, train_size, dict(metadata))


def parse_study(text: str, path: str | Path = "<study>") -> Study:
    """Validate a study document; every problem is a StudyError naming ``path``."""
    path = Path(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML ({exc})") from None
    _check_keys(str(path), doc, {"study", "defaults", "models"})
    head = _check_keys(f"{path}: [study]", doc.get("study", {}), STUDY_KEYS)
    defaults = _check_keys(f"{path}: [defaults]", doc.get("defaults", {}), DEFAULT_KEYS)
    raw_models = doc.get("models")
    if not isinstance(raw_models, list) or not raw_models:
        raise StudyError(f"{path}: no [[models]] listed")
    models = tuple(_model(path, k, m, defaults) for k, m in enumerate(raw_models))
    names = [m.name for m in models]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise StudyError(f"{path}: model {dup!r} is listed twice")
    name = head.get("name", path.stem)
    try:
        validate_name(name, f"{path}: [study] name")
    except ConfigError as exc:
        raise StudyError(str(exc)) from None
    cross = head.get("cross_detect", True)
    if cross is True:
        cross_names = tuple(names)
    elif cross is False:
        cross_names = ()
    elif isinstance(cross, list) and all(isinstance(c, str) for c in cross):
        missing = [c for c in cross if c not in names]
        if missing:
            raise StudyError(f"{path}: cross_detect names {missing[0]!r}, which is not a model of the study")
        cross_names = tuple(dict.fromkeys(cross))
    else:
        raise StudyError(f"{path}: cross_detect must be true, false or a list of model names")
    shared = head.get("shared_fs", False)
    if not isinstance(shared, bool):
        raise StudyError(f"{path}: shared_fs must be true or false")
    return Study(
        name,
        path,
        models,
        cross_names,
        shared,
        _int(f"{path}: num_cpus", head.get("num_cpus", 1), 1),
        _int(f"{path}: max_retries", head.get("max_retries", 3), 0),
        _int(f"{path}: chunk", head.get("chunk", 256), 1),
    )


def load_study(path: str | Path) -> Study:
    """Read and validate the study file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{path}: study file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_study(text, path.resolve())
