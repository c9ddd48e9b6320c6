"""Backend registry: names, the extra each needs, and lazy construction.

Backend names live here and only here (`BACKENDS`); the settings and the CLI take
their choices from this table.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from mmzarr.backends._base import (
    ArrayBackend,
    SupportsBackpressure,
    SupportsFlush,
    SupportsReadable,
)
from mmzarr.errors import MissingDependencyError

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BACKENDS",
    "ArrayBackend",
    "BackendName",
    "SupportsBackpressure",
    "SupportsFlush",
    "SupportsReadable",
    "available_backends",
    "get_backend",
]

BackendName = Literal["acquire-zarr", "tensorstore", "zarr-python"]


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend lives and what it needs."""

    module: str
    class_name: str
    requires: tuple[str, ...]
    extra: str | None

    def is_available(self) -> bool:
        """Whether every module this backend imports is installed."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)


BACKENDS: dict[str, BackendInfo] = {
    "acquire-zarr": BackendInfo(
        "mmzarr.backends._acquire", "AcquireZarrBackend", ("acquire_zarr",), None
    ),
    "tensorstore": BackendInfo(
        "mmzarr.backends._tensorstore",
        "TensorStoreBackend",
        ("tensorstore",),
        "tensorstore",
    ),
    "zarr-python": BackendInfo(
        "mmzarr.backends._zarr", "ZarrPythonBackend", ("zarr",), "zarr"
    ),
}
assert set(BACKENDS) == set(get_args(BackendName))


def available_backends() -> list[str]:
    """Names of the backends whose dependencies are installed."""
    return [name for name, info in BACKENDS.items() if info.is_available()]


def get_backend(name: str, **options: Any) -> ArrayBackend:
    """Construct the backend called `name`.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    MissingDependencyError
        When the backend's optional dependency is missing (names the extra).
    """
    info = BACKENDS.get(name)
    if info is None:
        raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    if not info.is_available():
        extra = f'pip install "mmzarr[{info.extra}]"' if info.extra else "reinstall"
        raise MissingDependencyError(
            f"backend {name!r} needs {', '.join(info.requires)}: {extra}"
        )
    module = importlib.import_module(info.module)
    backend: ArrayBackend = getattr(module, info.class_name)(**options)
    return backend
