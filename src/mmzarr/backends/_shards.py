"""Gathering a shard's frames in memory so each shard is written once.

Writing one frame into an existing shard makes tensorstore and zarr-python read,
decode and rewrite the whole shard; `ShardGatherer` holds a shard's frames until
every frame the plan acquires in it has arrived, then hands back the block to
write in one call. Used by the tensorstore and zarr-python backends.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr.backends._base import FreeSpaceGuard, file_disk_bytes, tiles_per_frame

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from mmzarr._settings import ImageSettings

__all__ = [
    "Block",
    "GatheredArray",
    "GatheringBackend",
    "ShardGatherer",
    "fsync_files",
    "fsync_tree",
    "shard_disk_bytes",
]


@dataclass
class Block:
    """The frames of one shard gathered so far."""

    start: tuple[int, ...]
    data: np.ndarray  # shard extent (non-spatial) + (y, x), fill value 0
    filled: np.ndarray  # bool, shard extent (non-spatial)
    missing: int  # planned frames not yet received


@dataclass
class ShardGatherer:
    """Holds frames of one array per shard until the shard is complete.

    A shard is complete when every index the plan acquires in it has a frame
    (`ImageSettings.is_acquired`); slots the plan skips stay at the fill value.
    Shards that were written are remembered, so a late frame for one is
    recognised (the caller then writes it alone).
    """

    image: ImageSettings
    dtype: np.dtype[Any]
    block: tuple[int, ...] = field(init=False)  # shard extent (non-spatial)
    open: dict[tuple[int, ...], Block] = field(init=False, default_factory=dict)
    written: set[tuple[int, ...]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.block = tuple(d.shard_size for d in self.image.index_dims)

    @property
    def active(self) -> bool:
        """Whether a shard holds more than one frame (else nothing is gathered)."""
        return math.prod(self.block) > 1

    @property
    def nbytes(self) -> int:
        """Bytes of frames held."""
        return sum(b.data.nbytes for b in self.open.values())

    def key(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """Grid coordinates of the shard holding `index`."""
        return tuple(i // b for i, b in zip(index, self.block, strict=True))

    def add(self, index: tuple[int, ...], frame: np.ndarray) -> Block | None:
        """Copy `frame` into its shard; return the shard once it is complete."""
        key = self.key(index)
        blk = self.open.get(key)
        if blk is None:
            blk = self.open[key] = self._new(key)
        local = tuple(i - s for i, s in zip(index, blk.start, strict=True))
        blk.data[local] = frame
        if not blk.filled[local]:
            blk.filled[local] = True
            if self.image.is_acquired(index):
                blk.missing -= 1
        if blk.missing > 0:
            return None
        del self.open[key]
        self.written.add(key)
        return blk

    def _new(self, key: tuple[int, ...]) -> Block:
        start = tuple(k * b for k, b in zip(key, self.block, strict=True))
        extent = tuple(
            b if d.size is None else min(b, d.size - s)
            for b, d, s in zip(self.block, self.image.index_dims, start, strict=True)
        )
        planned = sum(
            self.image.is_acquired(
                tuple(s + o for s, o in zip(start, off, strict=True))
            )
            for off in np.ndindex(*extent)
        )
        return Block(
            start=start,
            data=np.zeros(extent + self.image.frame_shape, dtype=self.dtype),
            filled=np.zeros(extent, dtype=bool),
            missing=planned,
        )


@dataclass
class GatheredArray:
    """One image's open array (`store`) and its write state."""

    store: Any
    image: ImageSettings
    gatherer: ShardGatherer
    path: Path | None = None
    t_size: int = 1  # current t extent of an unbounded array
    t_seen: int = 0  # time points with a frame (received, maybe still buffered)
    #: disk space of one shard (chunk) at its largest, every y/x tile file
    disk: int = 0


class GatheringBackend:
    """write/flush/close for backends that write regions of random-access arrays.

    Subclasses open `self._arrays` and implement `_write_region` and
    `_resize_t`; `_finish` runs per array at close (e.g. fsync).

    Free space (`self._space`, local disks): a frame is accepted only when the
    disk can take the files it will be written to, with everything accepted
    before and not yet on disk: a shard's files are reserved, at their largest,
    when its first frame arrives (the partial writes of `flush` stay within
    them) and released once the complete shard is written
    (`_disk_in_flight` adds the subclass' writes still in flight).
    """

    def __init__(self) -> None:
        self._arrays: list[GatheredArray] = []
        self._closed = False
        self._space: FreeSpaceGuard | None = None
        self._reserved = 0  # disk bytes of the shards gathering

    def write(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Write `frame` now, or copy it into its shard's buffer.

        Raises `OSError(ENOSPC)`, having accepted nothing, when the frame's files
        may not fit on the disk.
        """
        arr = self._arrays[image]
        g = arr.gatherer
        if g.active and g.key(index) not in g.written:
            if g.key(index) not in g.open:  # a new shard: reserve its files
                self._check_space(arr.disk)
                self._reserved += arr.disk
            self._see(arr, index)
            blk = g.add(index, frame)
            if blk is not None:
                self._reserved -= arr.disk
                self._put(arr, blk.start, blk.data, arr.disk)
            return
        # unsharded, or a late frame for a shard already written (the library
        # then reads and rewrites that shard once)
        self._check_space(arr.disk)
        self._see(arr, index)
        self._put(arr, index, frame.reshape((1,) * len(index) + frame.shape), arr.disk)

    def flush(self) -> None:
        """Write the shards still gathering (again, in full, once complete)."""
        for arr in self._arrays:
            for blk in arr.gatherer.open.values():
                self._put(arr, blk.start, blk.data)

    @staticmethod
    def _see(arr: GatheredArray, index: tuple[int, ...]) -> None:
        if arr.image.unbounded:
            arr.t_seen = max(arr.t_seen, index[0] + 1)

    def _check_space(self, nbytes: int) -> None:
        """Raise `OSError(ENOSPC)` unless `nbytes` more can reach the disk."""
        if self._space is not None:
            self._space.check(
                nbytes,
                self._reserved + self._disk_in_flight(refresh=False),
                lambda: self._reserved + self._disk_in_flight(refresh=True),
            )

    def _disk_in_flight(self, *, refresh: bool) -> int:
        """Disk bytes of writes handed to the library but not yet complete.

        `refresh`: collect the writes that completed first.
        """
        return 0

    def close(self, t_sizes: dict[int, int] | None = None) -> None:
        """Write incomplete shards, set the final t sizes (idempotent)."""
        if self._closed:
            return
        self._closed = True
        errors: list[Exception] = []
        for i, arr in enumerate(self._arrays):
            try:
                if arr.image.unbounded and t_sizes is not None:
                    arr.t_seen = t_sizes.get(i, 0)
                for blk in arr.gatherer.open.values():
                    self._put(arr, blk.start, blk.data)
                    self._reserved -= arr.disk
                arr.gatherer.open.clear()
                if arr.image.unbounded:
                    self._resize_t(arr, arr.t_seen)
                self._finish(arr)
            except Exception as e:  # finish the other arrays, raise the first error
                errors.append(e)
        self._arrays = []
        if errors:
            raise errors[0]

    def wait_for_writes(self) -> None:
        """Block until every write handed to storage has completed."""

    def memory_bytes(self) -> int:
        """Bytes of frames held in shard buffers."""
        return sum(a.gatherer.nbytes for a in self._arrays)

    def _put(
        self,
        arr: GatheredArray,
        start: tuple[int, ...],
        data: np.ndarray,
        disk: int = 0,
    ) -> None:
        """Write `data` (non-spatial extent + y, x) at `start`; grow t as needed.

        `disk`: the reservation the write takes over (0: still held elsewhere).
        """
        if arr.image.unbounded:
            # a shard along t may reach past the last time point acquired
            data = data[: max(0, arr.t_seen - start[0])]
            if data.shape[0] == 0:
                return
            self._resize_t(arr, max(arr.t_size, start[0] + data.shape[0]))
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape, strict=False))
        self._write_region(arr, region, data, disk)

    def _write_region(
        self,
        arr: GatheredArray,
        region: tuple[slice, ...],
        data: np.ndarray,
        disk: int,
    ) -> None:
        """Write `data` at `region`; `disk` bytes stay reserved until it completes."""
        raise NotImplementedError

    def _resize_t(self, arr: GatheredArray, t: int) -> None:
        raise NotImplementedError

    def _finish(self, arr: GatheredArray) -> None:
        """Per-array work at close, after the last write."""


def shard_disk_bytes(image: ImageSettings, itemsize: int, *, compressed: bool) -> int:
    """Disk space of one shard (chunk when unsharded) of `image`: all its tiles."""
    per_file = file_disk_bytes(
        image, itemsize, compressed=compressed, sharded=image.sharded
    )
    return tiles_per_frame(image) * per_file


def fsync_files(paths: Iterable[str], *, missing_ok: bool = False) -> None:
    """Call fsync on each path (file or, on POSIX, directory).

    `missing_ok`: skip a path that no longer exists.
    """
    for name in paths:
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            if missing_ok:
                continue
            raise
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: Path) -> None:
    """Call fsync on every file and directory under `path` (directories: POSIX only)."""
    for dirpath, _, files in os.walk(path):
        names = [os.path.join(dirpath, f) for f in files]
        if os.name != "nt":
            names.append(dirpath)
        fsync_files(names)
