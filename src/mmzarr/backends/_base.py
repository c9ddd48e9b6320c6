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
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "ArrayBackend",
    "FreeSpaceGuard",
    "SupportsBackpressure",
    "SupportsFlush",
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


class FreeSpaceGuard:
    """Refuse a write that cannot fit on the disk, without a `statvfs` per frame.

    Backends that write on background threads (acquire-zarr, tensorstore with
    writes in flight) learn of a full disk only after accepting frames they
    then lose; checking first, with the bytes still in flight, refuses the first
    frame that cannot fit instead (`OSError(ENOSPC)` naming the root).

    The free space measured last, minus the bytes accepted since, is a lower
    bound while nothing else writes to the disk. The disk is measured again when
    that bound comes within `margin` bytes of what is needed, or after `max_age_s`
    (other writers): so a nearly full disk is measured for every frame, and the
    first frame that cannot fit is still refused.
    """

    def __init__(
        self, root: Path, *, margin: int = 64 * 1024**2, max_age_s: float = 0.25
    ) -> None:
        self.root = root
        self._margin = margin
        self._max_age = max_age_s
        self._free = -1
        self._since = 0
        self._at = 0.0

    def check(self, nbytes: int, in_flight: int = 0) -> None:
        """Accept `nbytes` more (with `in_flight` bytes not yet on disk) or raise."""
        needed = nbytes + in_flight
        now = time.monotonic()
        if self._free - self._since < needed + self._margin or (
            now - self._at > self._max_age
        ):
            st = os.statvfs(self.root)
            self._free, self._since, self._at = st.f_bavail * st.f_frsize, 0, now
            if self._free < needed:
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on device: {self._free} bytes free, "
                    f"{needed} needed",
                    str(self.root),
                )
        self._since += nbytes
