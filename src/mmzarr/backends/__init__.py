"""Backend registry: names, the extra each needs, and lazy construction.

Backend names live here and only here (`BACKENDS`, `DEFAULT_BACKEND`); the
settings, the front ends and the CLI take their choices from this table. A
backend's module is imported only when it is constructed (`get_backend`);
whether it can be is known without importing it (`BackendInfo.is_available`).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from mmzarr.backends._base import (
    ArrayBackend,
    Arrays,
    Capabilities,
    Limits,
    Progress,
)
from mmzarr.errors import MissingDependencyError

if TYPE_CHECKING:
    from typing import Any

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "ArrayBackend",
    "Arrays",
    "BackendInfo",
    "BackendName",
    "Capabilities",
    "Limits",
    "Progress",
    "backend_for",
    "get_backend",
]

BackendName = Literal["acquire-zarr", "tensorstore", "zarr-python"]
DEFAULT_BACKEND: BackendName = "acquire-zarr"


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend lives and what it needs."""

    module: str
    class_name: str
    #: Modules it imports that are not core dependencies of mmzarr.
    requires: tuple[str, ...]
    #: The extra that installs them (None: a core dependency).
    extra: str | None

    def is_available(self) -> bool:
        """Whether every module this backend imports is installed."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    @property
    def install_hint(self) -> str:
        """How to install what is missing."""
        if self.extra is None:
            return "reinstall mmzarr"
        return f'pip install "mmzarr[{self.extra}]"'


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


def get_backend(name: str, **options: Any) -> ArrayBackend:
    """Construct the backend called `name` (importing its module now).

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
        raise MissingDependencyError(
            f"backend {name!r} needs {', '.join(info.requires)}: {info.install_hint}"
        )
    module = importlib.import_module(info.module)
    backend: ArrayBackend = getattr(module, info.class_name)(**options)
    return backend


def backend_for(settings: AcquisitionSettings, reorder: int | None = None) -> str:
    """The backend for `settings` when none is asked for.

    `DEFAULT_BACKEND`, unless acquire-zarr would hold more than its default
    reorder window of frames until their turn (a plan that acquires an axis
    outside the one acquire-zarr appends first, `_acquire_array.reorder_bytes`,
    or `reorder` when the caller has it): then tensorstore, or zarr-python,
    whichever is installed.
    """
    from mmzarr.backends._acquire_array import default_window, reorder_bytes

    if reorder is None:
        reorder = reorder_bytes(settings)
    if reorder <= default_window(settings.max_buffer_bytes):
        return DEFAULT_BACKEND
    for name in ("tensorstore", "zarr-python"):
        if BACKENDS[name].is_available():
            return name
    return DEFAULT_BACKEND
