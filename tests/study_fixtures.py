"""A 4-model study of tiny fingerprints over the tiny zoo's images, shared by the study tests."""

from __future__ import annotations

from pathlib import Path

from zoo_fixtures import tiny_zoo

from engine.storage.fingerprint import Fingerprint
from engine.storage.store import Store

MODELS = ("zoo-base", "zoo-ft-a", "zoo-seed2", "zoo-shuffle")
# small enough for seconds per fit on one core, long enough (about 2 s) to be caught mid-task
DEFAULTS = 'method = "dif"\nsteps = 60\nbatch = 16\ncrop = 32\nborder = 0\ntrain_size = 16\nwatermark_match = false\n'


def write_study(
    folder: Path,
    name: str = "tiny4",
    extra_head: str = "",
    models: tuple[str, ...] = MODELS,
    overrides: dict[str, str] | None = None,
) -> Path:
    """A study file over the tiny zoo's folders (absolute paths); ``overrides``: model -> extra TOML lines."""
    _, manifest = tiny_zoo()
    root = Path(manifest["root"])
    lines = [f'[study]\nname = "{name}"\nnum_cpus = 1\n{extra_head}', f"[defaults]\n{DEFAULTS}"]
    for m in models:
        lines.append(
            f'[[models]]\nname = "s-{m}"\nreal = "{root / "real"}"\ngenerated = '
            f'"{root / m}"\n{(overrides or {}).get(m, "")}'
        )
        lines.append(f'[models.metadata]\nzoo_model = "{m}"\n')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def same_fingerprint(a: Fingerprint, b: Fingerprint) -> list[str]:
    """What differs between two fits of one model, beyond when and how long they ran (empty: identical)."""
    problems = []
    if a.tensor.numpy().tobytes() != b.tensor.numpy().tobytes():
        problems.append("tensor bytes")
    ca, cb = a.card(), b.card()
    problems += [k for k in ca if k not in ("created", "seconds") and ca[k] != cb.get(k)]
    return problems


def compare_stores(a: Store, b: Store, names) -> dict[str, list[str]]:
    return {n: same_fingerprint(a.load(n), b.load(n)) for n in names}
