"""Disk space: what a frame's files may take, and refusing what cannot fit.

Backends that write on background threads (acquire-zarr, tensorstore,
zarr-python) or hold frames in memory (incomplete shards) learn of a full disk
only after accepting frames they then lose. `FreeSpaceGuard` lets them refuse
the first frame that may not fit instead, counting every byte accepted but not
yet on disk, as whole chunk (shard) files rounded up to the filesystem block.
"""

from __future__ import annotations

import errno
import math
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mmzarr._settings import ImageSettings

__all__ = [
    "BLOCK",
    "INDEX_ENTRY",
    "FreeSpaceGuard",
    "disk_bytes",
    "file_disk_bytes",
    "shard_disk_bytes",
    "tiles_per_frame",
]

#: Allocation unit a file's size is rounded up to on disk (ext4, xfs, tmpfs pages).
BLOCK = 4096
#: Bytes blosc may add to a chunk it cannot compress (its header).
BLOSC_OVERHEAD = 32
#: Bytes of a `sharding_indexed` index entry (offset and length, two uint64).
INDEX_ENTRY = 16


def disk_bytes(nbytes: int) -> int:
    """Disk space a new file of `nbytes` may take.

    Its size rounded up to `BLOCK`, plus one block for what creating it may add
    (a directory block for a new chunk directory on ext4 or xfs).
    """
    return -(-nbytes // BLOCK) * BLOCK + BLOCK


def file_disk_bytes(
    image: ImageSettings, itemsize: int, *, compressed: bool, sharded: bool
) -> int:
    """Upper bound of the disk space of one chunk (or shard) file of `image`.

    Edge chunks are stored whole, so every file holds at most the shard's chunks
    at full size, each with blosc's overhead when compressed, plus the shard
    index (`sharded`), rounded up by `disk_bytes`.
    """
    chunks = math.prod(d.shard_size // d.chunk_size for d in image.dimensions)
    chunk = math.prod(d.chunk_size for d in image.dimensions) * itemsize
    size = chunks * (chunk + (BLOSC_OVERHEAD if compressed else 0))
    if sharded:
        size += INDEX_ENTRY * chunks + 4
    return disk_bytes(size)


def tiles_per_frame(image: ImageSettings) -> int:
    """Chunk (shard) files one frame spans along y and x."""
    y, x = image.dim("y"), image.dim("x")
    return math.ceil((y.size or 1) / y.shard_size) * math.ceil(
        (x.size or 1) / x.shard_size
    )


class FreeSpaceGuard:
    """Refuse a write that cannot reach the disk, without a `statvfs` per frame.

    Backends that write on background threads (acquire-zarr, tensorstore with
    writes in flight) or hold frames in memory (gathered shards) learn of a full
    disk only after accepting frames they then lose; checking first, with every
    byte accepted but not yet on disk (`in_flight`, in `disk_bytes` units),
    refuses the first frame that cannot fit instead (`OSError(ENOSPC)` naming
    the root). `reserve` bytes stay free for what is written beside the frames
    (the frame log, metadata documents, the final status at close).

    The free space measured last, minus the bytes accepted since, is a lower
    bound while nothing else writes to the disk. The disk is measured again when
    that bound comes within `margin` bytes of what is needed, or after `max_age_s`
    (other writers): so a nearly full disk is measured for every frame, and the
    first frame that cannot fit is still refused. `refresh`, when given, is
    called at each measurement for an up-to-date (smaller) `in_flight`.
    """

    def __init__(
        self,
        root: Path,
        *,
        margin: int = 64 * 1024**2,
        max_age_s: float = 0.25,
        reserve: int = 256 * 1024,
    ) -> None:
        self.root = root
        self._margin = margin
        self._max_age = max_age_s
        self.reserve = reserve
        self._free = -1
        self._since = 0
        self._at = 0.0

    def check(
        self,
        nbytes: int,
        in_flight: int = 0,
        refresh: Callable[[], int] | None = None,
    ) -> None:
        """Accept `nbytes` more (with `in_flight` bytes not yet on disk) or raise."""
        needed = nbytes + in_flight + self.reserve
        now = time.monotonic()
        if self._free - self._since < needed + self._margin or (
            now - self._at > self._max_age
        ):
            if refresh is not None:
                needed = nbytes + refresh() + self.reserve
            st = os.statvfs(self.root)
            self._free, self._since, self._at = st.f_bavail * st.f_frsize, 0, now
            if self._free < needed:
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on device: {self._free} bytes free, "
                    f"{needed} needed ({self.reserve} kept free for metadata)",
                    str(self.root),
                )
        self._since += nbytes


def shard_disk_bytes(image: ImageSettings, itemsize: int, *, compressed: bool) -> int:
    """Disk space of one shard (chunk when unsharded) of `image`: all its tiles."""
    per_file = file_disk_bytes(
        image, itemsize, compressed=compressed, sharded=image.sharded
    )
    return tiles_per_frame(image) * per_file
