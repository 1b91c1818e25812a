"""The on-disk store (diskcache): fingerprints, cached residuals, shared reports.

Layout under the store root (``cache/`` of the checkout by default, ``DIF_CACHE_DIR`` or
``--cache`` to move it):

- ``fingerprints/``: name -> fingerprint file bytes (the export format); ``key:<train key>`` -> name,
  so training the same files with the same config is a cache hit. Never evicted.
- ``residuals/``: residual key -> float16 bytes. Evicted least-recently-stored past a size limit.
- ``reports/``: report id -> JSON text (dashboard "Share").

diskcache commits each write in one SQLite transaction (values past a size go to a file written
before the row that points to it), so a process killed mid-write leaves the previous entry in place,
and several processes can read and write at once. The ``SafeDisk`` below refuses to store or read
pickled values: everything kept is bytes or text.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import diskcache
import numpy as np

from engine.errors import StoreError
from engine.storage.fingerprint import Fingerprint, parse_fingerprint
from engine.storage.names import validate_name

DEFAULT_RESIDUAL_LIMIT = int(os.environ.get("DIF_RESIDUAL_CACHE_BYTES", 8 * 1024**3))


class SafeDisk(diskcache.Disk):
    """A diskcache Disk that only ever handles str/bytes keys and values: no pickle in, no pickle out."""

    def put(self, key):
        if not isinstance(key, str):
            raise StoreError(f"store keys must be text, got {type(key).__name__}")
        return super().put(key)

    def get(self, key, raw):
        if not raw:
            raise StoreError("store entry has a pickled key; refusing to read it")
        return super().get(key, raw)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not read and not isinstance(value, (bytes, str)):
            raise StoreError(f"store values must be bytes or text, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise StoreError("store entry is pickled; refusing to read it")
        return super().fetch(mode, filename, value, read)


def default_root() -> Path:
    """``DIF_CACHE_DIR``, else ``cache/`` next to the engine package in a checkout, else ~/.cache."""
    env = os.environ.get("DIF_CACHE_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists():
        return checkout / "cache"
    return Path.home() / ".cache" / "dif-lineage"


def _open(path: Path, **settings) -> diskcache.Cache:
    try:
        path.mkdir(parents=True, exist_ok=True)
        return diskcache.Cache(str(path), disk=SafeDisk, timeout=60, **settings)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"{path}: cannot open store ({type(exc).__name__}: {exc})") from None


class Store:
    """Fingerprints, residuals and reports under one root."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        residual_limit: int = DEFAULT_RESIDUAL_LIMIT,
        residuals_root: str | os.PathLike | None = None,
    ):
        """``residuals_root``: another store's root whose residual cache this one shares (the benchmark
        keeps its fingerprints apart from the user's models but reuses their residuals)."""
        self.root = Path(root) if root is not None else default_root()
        self.residuals_root = Path(residuals_root) if residuals_root is not None else self.root
        self._fingerprints: diskcache.Cache | None = None
        self._residuals: diskcache.Cache | None = None
        self._reports: diskcache.Cache | None = None
        self._residual_limit = residual_limit

    # -- sub-stores, opened lazily so a read-only listing never creates the residual cache
    @property
    def fingerprints(self) -> diskcache.Cache:
        if self._fingerprints is None:
            self._fingerprints = _open(self.root / "fingerprints", eviction_policy="none", size_limit=2**62)
        return self._fingerprints

    @property
    def residuals(self) -> diskcache.Cache:
        if self._residuals is None:
            self._residuals = _open(
                self.residuals_root / "residuals",
                size_limit=self._residual_limit,
                eviction_policy="least-recently-stored",
            )
        return self._residuals

    @property
    def reports(self) -> diskcache.Cache:
        if self._reports is None:
            self._reports = _open(self.root / "reports", eviction_policy="none", size_limit=2**62)
        return self._reports

    def close(self) -> None:
        for cache in (self._fingerprints, self._residuals, self._reports):
            if cache is not None:
                cache.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- fingerprints
    def save(self, fp: Fingerprint, overwrite: bool = True) -> None:
        """Store ``fp`` under its name (one transaction: the entry and its train-key alias)."""
        validate_name(fp.name)
        data = fp.to_bytes()
        parse_fingerprint(data, f"fingerprint {fp.name!r}")  # never store what we could not read back
        cache = self.fingerprints
        try:
            with cache.transact():
                if not overwrite and f"fp:{fp.name}" in cache:
                    raise StoreError(
                        f"a model named {fp.name!r} already exists (remove it first or choose another name)"
                    )
                cache.set(f"fp:{fp.name}", data)
                cache.set(f"key:{fp.train_key}", fp.name)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"{self.root}: cannot write fingerprint {fp.name!r} ({type(exc).__name__}: {exc})"
            ) from None

    def load(self, name: str) -> Fingerprint:
        validate_name(name)
        data = self._read_entry(f"fp:{name}")
        if data is None:
            raise StoreError(f"no model named {name!r} in {self.root} (see 'dif list')")
        if not isinstance(data, bytes):
            raise StoreError(f"model {name!r}: stored entry is not a fingerprint file")
        return parse_fingerprint(data, f"model {name!r}")

    def _read_entry(self, key: str, attempts: int = 5) -> Any:
        """The stored value, or None. Why the retries: diskcache keeps a large value in a file of its
        own and replaces that file when the entry is overwritten (a card re-saved with its metrics), so
        a reader in another process can find the row and miss the file for a moment; the key is still
        there, and a read an instant later sees the new value."""
        for attempt in range(attempts):
            data = self.fingerprints.get(key)
            if data is not None or key not in self.fingerprints:
                return data
            time.sleep(0.01 * (attempt + 1))
        return None

    def raw(self, name: str) -> bytes:
        validate_name(name)
        data = self._read_entry(f"fp:{name}")
        if not isinstance(data, bytes):
            raise StoreError(f"no model named {name!r} in {self.root}")
        parse_fingerprint(data, f"model {name!r}")
        return data

    def exists(self, name: str) -> bool:
        return f"fp:{validate_name(name)}" in self.fingerprints

    def find_by_train_key(self, train_key: str) -> Fingerprint | None:
        """A stored fingerprint trained on exactly these files with exactly this config."""
        name = self.fingerprints.get(f"key:{train_key}")
        if not isinstance(name, str):
            return None
        try:
            fp = self.load(name)
        except Exception:
            return None
        return fp if fp.train_key == train_key else None

    def names(self) -> list[str]:
        return sorted(k[3:] for k in self.fingerprints.iterkeys() if isinstance(k, str) and k.startswith("fp:"))

    def scan(self) -> Iterator[tuple[str, Fingerprint | None, str | None]]:
        """(name, fingerprint or None, problem or None) for every entry; corrupt ones are reported."""
        for name in self.names():
            try:
                yield name, self.load(name), None
            except Exception as exc:  # a corrupt entry never stops a listing
                if f"fp:{name}" in self.fingerprints:  # one removed since the names were read is not corrupt
                    yield name, None, str(exc)

    def list(self) -> list[Fingerprint]:
        return [fp for _, fp, problem in self.scan() if fp is not None]

    def delete(self, name: str) -> None:
        validate_name(name)
        cache = self.fingerprints
        with cache.transact():
            data = cache.get(f"fp:{name}")
            if data is None:
                raise StoreError(f"no model named {name!r} in {self.root}")
            try:
                key = parse_fingerprint(data, name).train_key
                if cache.get(f"key:{key}") == name:
                    cache.delete(f"key:{key}")
            except StoreError:
                pass
            cache.delete(f"fp:{name}")

    def save_held_out(self, name: str, real: Sequence[Any], fake: Sequence[Any]) -> dict[str, list[str]]:
        """Write held-out images (``LoadedImage``: decoded pixels, as PNG named by content hash) under
        ``heldout/<name>/``, so cross-detection can use them like a folder-trained model's test files."""
        from PIL import Image

        validate_name(name)
        out: dict[str, list[str]] = {}
        for kind, images in (("real", real), ("fake", fake)):
            folder = self.root / "heldout" / name / kind
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for im in images:
                path = folder / f"{im.sha256[:24]}.png"
                if not path.exists():
                    Image.fromarray(np.ascontiguousarray(im.pixels)).save(path)
                paths.append(str(path))
            out[kind] = paths
        return out

    def export(self, name: str, path: str | os.PathLike) -> Path:
        """Write the model as one file a teammate can ``dif import`` (atomic rename)."""
        data = self.raw(name)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{path}: cannot write ({exc.strerror or exc})") from None
        return path

    def import_bytes(self, data: bytes, source: str, name: str | None = None, overwrite: bool = False) -> Fingerprint:
        """Validate and add an exported fingerprint; on any problem nothing in the store changes."""
        fp = parse_fingerprint(data, source)
        if name is not None:
            fp.name = validate_name(name)
        self.save(fp, overwrite=overwrite)
        return fp

    def import_file(self, path: str | os.PathLike, name: str | None = None, overwrite: bool = False) -> Fingerprint:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from None
        from engine.storage.fingerprint import MAX_FILE_BYTES

        if size > MAX_FILE_BYTES:
            raise StoreError(f"{path}: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        try:
            data = path.read_bytes()
        except OSError as exc:  # a directory, a file removed meanwhile, no permission
            raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from None
        return self.import_bytes(data, str(path), name=name, overwrite=overwrite)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Fingerprint:
        """Replace a model's user metadata (release date, declared base, notes)."""
        fp = self.load(name)
        json.dumps(metadata)  # must be JSON
        fp.metadata = dict(metadata)
        self.save(fp)
        return fp

    # -- reports
    def save_report(self, report_id: str, payload: dict[str, Any]) -> None:
        validate_name(report_id, "report id")
        self.reports.set(f"report:{report_id}", json.dumps(payload, sort_keys=True))

    def load_report(self, report_id: str) -> dict[str, Any]:
        validate_name(report_id, "report id")
        text = self.reports.get(f"report:{report_id}")
        if not isinstance(text, str):
            raise StoreError(f"no report with id {report_id!r}")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise StoreError(f"report {report_id!r} is corrupt") from None
