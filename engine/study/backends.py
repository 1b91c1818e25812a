"""Where a study's tasks run: in this process, one after another, or as Ray tasks.

Both backends take the same task functions and arguments and report outcomes as tasks finish,
so the driver code is one. Ray is optional: ``pip install .[cluster]``. We write no scheduler:
placement, object transfer and retries of tasks whose worker or node died are Ray's.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.errors import ConfigError
from engine.study.tasks import task_threads

Done = Callable[[int, int], None]
Each = Callable[["Outcome"], None]


@dataclass
class Outcome:
    """A finished task: its value (or error line) and a handle later tasks can take as an argument."""

    index: int
    value: Any = None
    error: str | None = None
    handle: Any = None


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class SequentialBackend:
    """Every task in this process, in order; a handle is the value itself."""

    name = "sequential"

    def describe(self) -> dict:
        return {"backend": self.name, "nodes": 1}

    def put(self, value: Any) -> Any:
        return value

    def gpus(self) -> int:
        return 0

    def map(
        self,
        fn: Callable,
        calls: Sequence[tuple],
        num_cpus: int,
        num_gpus: int = 0,
        retries: int = 0,
        done: Done | None = None,
        each: Each | None = None,
    ) -> list[Outcome]:
        """Outcomes in call order; ``each`` sees every outcome as it finishes (then its value is dropped)."""
        out = []
        for i, args in enumerate(calls):
            try:
                with task_threads(num_cpus):
                    value = fn(*args)
                outcome = Outcome(i, value, None, value)
            except Exception as exc:
                outcome = Outcome(i, None, f"{type(exc).__name__}: {exc}".splitlines()[0])
            out.append(_handed(outcome, each))
            if done:
                done(i + 1, len(calls))
        return out

    def close(self) -> None:
        pass


class RayBackend:
    """Tasks on a Ray cluster (``address``) or on a local Ray instance started here (no address)."""

    name = "ray"

    def __init__(self, address: str | None = None, log_to_driver: bool = True):
        """``log_to_driver=False`` keeps workers' and raylets' lines off stdout (``--json``)."""
        import ray

        self.ray = ray
        self.owned = False
        if not ray.is_initialized():
            if address:
                _reachable(address)
            kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": log_to_driver}
            kwargs["address"] = address or "local"  # "local": a new instance, never a cluster found by chance
            if not address:  # a local instance: its workers import the engine from where this driver does
                root = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
                kwargs.update(include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach a Ray cluster at {address or 'a new local instance'} ({str(exc).splitlines()[0]})"
                ) from None
            self.owned = True
        self._remote: dict[Callable, Any] = {}

    def describe(self) -> dict:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        res = self.ray.cluster_resources()
        return {"backend": self.name, "nodes": len(nodes), "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0)}

    def gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def put(self, value: Any) -> Any:
        return self.ray.put(value)

    def map(
        self,
        fn: Callable,
        calls: Sequence[tuple],
        num_cpus: int,
        num_gpus: int = 0,
        retries: int = 3,
        done: Done | None = None,
        each: Each | None = None,
    ) -> list[Outcome]:
        """Outcomes in call order; ``each`` sees every outcome as it finishes (then its value is dropped)."""
        ray = self.ray
        if fn not in self._remote:
            self._remote[fn] = ray.remote(fn)
        remote = self._remote[fn].options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=retries, retry_exceptions=False
        )
        refs = [remote.remote(*args) for args in calls]
        index = {ref: i for i, ref in enumerate(refs)}
        out: list[Outcome] = []
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = index[ref]
                try:
                    outcome = Outcome(i, ray.get(ref), None, ref)
                except Exception as exc:  # worker or node lost past the retries, or the task raised
                    cause = getattr(exc, "cause", None) or exc
                    line = next((ln for ln in str(cause).splitlines() if ln.strip()), "")
                    outcome = Outcome(i, None, f"{type(cause).__name__}: {line}"[:300])
                out.append(_handed(outcome, each))
                if done:
                    done(len(out), len(refs))
        return sorted(out, key=lambda o: o.index)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one line, at once, when nothing listens at ``host:port`` (ray.init would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # another address form (ray://, auto): left to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); is `ray start --head` running there?"
        ) from None


def _handed(outcome: Outcome, each: Each | None) -> Outcome:
    """Give ``outcome`` to ``each`` at once (the driver stores results as they arrive, so an
    interrupted study keeps them), then drop the value it held (the handle stays)."""
    if each is None:
        return outcome
    each(outcome)
    outcome.value = None
    return outcome


def make_backend(
    kind: str = "auto", address: str | None = None, log_to_driver: bool = True
) -> SequentialBackend | RayBackend:
    """``auto``: Ray when installed (the cluster at ``address``, else a local instance), else sequential."""
    if kind not in ("auto", "ray", "sequential"):
        raise ConfigError(f"unknown backend {kind!r} (choose from auto, ray, sequential)")
    if kind == "sequential":
        if address:
            raise ConfigError("--address needs the Ray backend, not --backend sequential")
        return SequentialBackend()
    if not ray_available():
        if kind == "ray" or address:
            raise ConfigError("Ray is not installed: pip install '.[cluster]' (or run without --address, sequentially)")
        return SequentialBackend()
    return RayBackend(address, log_to_driver)
