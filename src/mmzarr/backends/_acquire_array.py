"""One acquire-zarr array: its append order, reorder buffer and shard geometry.

acquire-zarr appends each array's frames in the order of its declared
dimensions (`ArrayCursor.order`). A frame's storage index maps to a position in
that order (`linear`) and back (`index_of`); the cursor keeps the next position
acquire-zarr expects, the early frames held until it gets there, the frames
batched for one `append` call, and which shard, made of which files, holds each
position (`shard_key`, `new_shard`, `shard_files`).
"""

from __future__ import annotations

import collections
import math
import sys
from typing import TYPE_CHECKING, Any

from mmzarr._pyramid import all_arrays
from mmzarr.backends._acquire_disk import Shard
from mmzarr.backends._space import INDEX_ENTRY, file_disk_bytes

if TYPE_CHECKING:
    import numpy as np

    from mmzarr._pyramid import ArraySpec
    from mmzarr._settings import AcquisitionSettings, Dimension, ImageSettings

__all__ = ["ArrayCursor", "append_order", "default_window", "reorder_bytes"]


def default_window(max_buffer_bytes: int) -> int:
    """The reorder window's default size: a quarter of `max_buffer_bytes`."""
    return max_buffer_bytes // 4


def append_order(image: ImageSettings) -> tuple[str, ...]:
    """acquire-zarr's declared order: acquisition order where it may reorder.

    acquire-zarr reorders to storage order (`storage_dimension_order`) except
    the first axis: when the first acquired axis is not the first stored one,
    the array is declared in storage order and frames wait for their turn.
    """
    storage = tuple(d.name for d in image.index_dims)
    acq = tuple(image.acquisition_order or storage)
    return acq if not storage or acq[0] == storage[0] else storage


def reorder_bytes(settings: AcquisitionSettings) -> int:
    """The most bytes of frames in acquisition order that acquire-zarr holds.

    Frames that come in the settings' acquisition order wait in the reorder
    window (`max_reorder_bytes`) only for an image acquire-zarr cannot take in
    that order (`append_order`), e.g. a z-stack acquired outside `t`: every
    frame (all levels) of such an image is counted, at worst held until the
    slots before it in storage order are acquired. `sys.maxsize` when such an
    image has an unbounded `t`.
    """
    total = 0
    for spec in all_arrays(settings):
        im = spec.settings
        storage = tuple(d.name for d in im.index_dims)
        if append_order(im) != tuple(im.acquisition_order or storage):
            if im.unbounded:
                return sys.maxsize
            frames = math.prod(int(d.size or 1) for d in im.index_dims)
            total += frames * math.prod(im.frame_shape) * settings.itemsize
    return total


class ArrayCursor:
    """Append position of one array, its reorder buffer and its open shards."""

    def __init__(
        self,
        spec: ArraySpec,
        append_order: tuple[str, ...],
        dtype: np.dtype[Any],
        compressed: bool,
    ) -> None:
        image = spec.settings
        self.image = image
        self.key = spec.path
        #: the array's key in acquire-zarr's stream (its link in the sibling)
        self.stream_key = spec.path
        self.base = spec.level == 0
        self.order = append_order
        sizes: dict[str, int | None] = {d.name: d.size for d in image.index_dims}
        # strides of the linear position over append_order (t may be unbounded:
        # it is always outermost, so its size is never needed)
        self.strides: dict[str, int] = {}
        stride = 1
        for name in reversed(append_order):
            self.strides[name] = stride
            stride *= int(sizes[name] or 1)
        self.sizes = sizes
        self.storage_names: tuple[str, ...] = tuple(d.name for d in image.index_dims)
        self.next = 0
        #: frames accepted but not yet handed to acquire-zarr (`batch[:batched]`)
        self.batch: np.ndarray | None = None
        self.batched = 0
        #: early frames (copies) by append position, with their write number
        self.pending: dict[int, tuple[np.ndarray, int]] = {}
        #: positions written with the fill value because the window overflowed
        self.overflowed: set[int] = set()
        self.frame_bytes = math.prod(image.frame_shape) * dtype.itemsize
        dims: dict[str, Dimension] = {d.name: d for d in image.dimensions}
        self.shard: dict[str, int] = {n: dims[n].shard_size for n in self.storage_names}
        ny = math.ceil(image.frame_shape[0] / dims["y"].shard_size)
        nx = math.ceil(image.frame_shape[1] / dims["x"].shard_size)
        self.tiles = [f"{y}/{x}" for y in range(ny) for x in range(nx)]
        chunks = math.prod(d.shard_size // d.chunk_size for d in image.dimensions)
        self.index_bytes = INDEX_ENTRY * chunks + 4
        #: disk bytes reserved per shard: every tile file at its largest
        self.shard_disk = len(self.tiles) * file_disk_bytes(
            image, dtype.itemsize, compressed=compressed, sharded=True
        )
        #: shards holding a slot below `reserved` that are not complete yet
        self.shards: dict[tuple[int, ...], Shard] = {}
        self.reserved = 0
        #: slots per index along the first axis ("row"); 0: no index axis
        self.row_slots = self.strides[append_order[0]] if append_order else 0
        #: (row, shard holding the row's last slot), oldest first
        self.row_ends: collections.deque[tuple[int, Shard]] = collections.deque()
        self.rows_landed = 0  # leading rows whose last slot's shard is on disk
        #: leading rows readable: written, and inside the array's shape on disk
        self.rows_confirmed = 0 if append_order else 2**62
        first = append_order[0] if append_order else None
        self.first = first
        #: (storage position, stride) of each axis, in append order
        self.walk = [(self.storage_names.index(n), self.strides[n]) for n in self.order]
        self.shard_steps = [self.shard[n] for n in self.storage_names]
        self.full_slots = math.prod(self.shard_steps)
        # whether some shard ends early at the array's edge (see `new_shard`)
        self.edges = any(
            n != first and sizes[n] is not None and int(sizes[n] or 1) % self.shard[n]
            for n in self.storage_names
        )
        # acquire-zarr may wait for a "slab" (one shard along the first append
        # axis, everything along the others) before writing its shards
        self.slab_frames: int = math.prod(
            [
                (self.shard[n] if n == first else int(sizes[n] or 1))
                for n in append_order
            ]
        )

    def linear(self, index: tuple[int, ...]) -> int:
        """Position of storage `index` in append order."""
        named = dict(zip(self.storage_names, index, strict=True))
        return sum(named[n] * self.strides[n] for n in self.order)

    def index_of(self, linear: int) -> tuple[int, ...]:
        """Storage index at append position `linear`."""
        index = [0] * len(self.storage_names)
        for pos, stride in self.walk:
            index[pos], linear = divmod(linear, stride)
        return tuple(index)

    def unacquired_end(self, stop: int) -> int:
        """The first slot from `next` on, before `stop`, that will get a frame.

        The slots between `next` and it are ones the plan never acquires
        (`ImageSettings.is_acquired`), none holding a frame: they are written
        with the fill value. `next` itself when the plan acquires every slot.
        """
        slot = self.next
        if not self.image.skipped:
            return slot
        is_acquired, pending = self.image.is_acquired, self.pending
        while (
            slot < stop and slot not in pending and not is_acquired(self.index_of(slot))
        ):
            slot += 1
        return slot

    def shard_key(self, linear: int) -> tuple[int, ...]:
        """Grid coordinates of the shard holding append position `linear`."""
        index = self.index_of(linear)
        return tuple(v // s for v, s in zip(index, self.shard_steps, strict=True))

    def new_shard(self, key: tuple[int, ...]) -> Shard:
        """The shard at `key`, with the slots acquire-zarr waits for to write it.

        A shard ends at the array's edge along every axis but the first declared
        one, where acquire-zarr writes a shard reaching past the end only at close.
        """
        files = self.shard_files(key)
        if not self.edges:
            return Shard(self, files, self.full_slots, self.shard_disk)
        slots = 1
        for n, k in zip(self.storage_names, key, strict=True):
            size, step = self.sizes[n], self.shard[n]
            slots *= (
                step if n == self.first or size is None else min(step, size - k * step)
            )
        return Shard(self, files, slots, self.shard_disk)

    def shard_files(self, key: tuple[int, ...]) -> list[str]:
        """Paths, relative to the root, of the files of the shard at `key`."""
        prefix = "/".join([self.key, "c", *(str(k) for k in key)])
        return [f"{prefix}/{t}" for t in self.tiles]
