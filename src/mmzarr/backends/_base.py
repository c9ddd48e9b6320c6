"""The array backend protocol: the small contract every storage engine fulfils.

A backend creates one array per image (at `_layout.array_path`), writes frames at
storage indices and closes. Group metadata, routing, validation of frames and
frame metadata stay above it, in `Stream`. Lifecycle: `open` -> `write`* ->
`close` (idempotent). Optional abilities are separate `runtime_checkable`
protocols.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "ArrayBackend",
    "SupportsBackpressure",
    "SupportsFlush",
    "ensure_free_space",
]


@runtime_checkable
class ArrayBackend(Protocol):
    """What `Stream` needs from a storage engine."""

    def open(self, root: Path, settings: AcquisitionSettings) -> None:
        """Create the arrays of every image under `root` (groups already exist)."""

    def write(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Write `frame` (y, x) at the non-spatial storage `index` of image `image`.

        The frame has the settings' dtype and shape. The backend must have copied
        or consumed it when this returns.
        """

    def close(self, t_sizes: dict[int, int] | None = None) -> None:
        """Flush everything to storage and release resources (idempotent).

        `t_sizes` gives, for images with an unbounded `t`, how many time points
        were acquired, so the array's final shape can be set.
        """


@runtime_checkable
class SupportsFlush(Protocol):
    """A backend that can push buffered frames to storage on demand."""

    def flush(self) -> None:
        """Write every buffered frame to storage."""


@runtime_checkable
class SupportsBackpressure(Protocol):
    """A backend that buffers frames and can tell when its buffer is full."""

    def has_room(self, nbytes: int) -> bool:
        """Whether `nbytes` more fit in the backend's buffer budget."""

    def wait_for_room(self, nbytes: int, timeout: float | None = None) -> bool:
        """Block until `nbytes` more fit (True) or `timeout` passes (False)."""


def ensure_free_space(root: Path, needed: int) -> None:
    """Raise `OSError(ENOSPC)` naming `root` when fewer than `needed` bytes are free.

    Backends that write on background threads (acquire-zarr, tensorstore with
    writes in flight) learn of a full disk only after accepting frames they
    then lose; checking first, with the bytes still in flight, refuses the first
    frame that cannot fit instead.
    """
    st = os.statvfs(root)
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: {free} bytes free, {needed} needed",
            str(root),
        )
