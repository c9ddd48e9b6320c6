"""tensorstore backend: one zarr3 TensorStore (file kvstore) per image.

Owns the array `zarr.json` and chunk/shard files of each image, created with the
codecs acquire-zarr writes (bytes little-endian, blosc level 1 with byte shuffle,
`sharding_indexed` with a crc32c index at the end) so arrays from either backend
have the same metadata (tensorstore leaves out default fields such as
`index_location`; parsed, the documents are equal). Group documents, routing and
frame validation stay in `Stream`. An unbounded `t` starts at 1, grows by
metadata-only resizes as frames arrive and ends at the count `close` receives.

Frames are gathered in memory per shard (`_ShardGatherer`; per chunk when an
unsharded chunk holds several frames) and each shard is written once, when its
last planned frame arrives or at `close`: a frame written into an existing shard
would make tensorstore read, decode and rewrite the whole shard. When a shard
(chunk) holds one frame, frames go straight to storage. Every write waits for its
commit and the context has `file_io_sync`, so data is on disk when `write` (or
`close`, for buffered shards) returns. The gathering code is repeated in
`_zarr.py` (each backend module may import only its own optional library).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorstore as ts

from mmzarr._layout import array_path
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = ["TensorStoreBackend"]

_BLOSC_CNAME = {"blosc-lz4": "lz4", "blosc-zstd": "zstd"}


def _codecs(image: ImageSettings, compression: str, itemsize: int) -> list[Any]:
    """The zarr v3 codecs of an image's array, as acquire-zarr 0.10 writes them."""
    inner: list[Any] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if compression != "none":
        inner.append(
            {
                "name": "blosc",
                "configuration": {
                    "cname": _BLOSC_CNAME[compression],
                    "clevel": 1,
                    "shuffle": "shuffle",
                    "typesize": itemsize,
                    "blocksize": 0,
                },
            }
        )
    if not any(d.shard is not None for d in image.dimensions):
        return inner
    return [
        {
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": [d.chunk_size for d in image.dimensions],
                "codecs": inner,
                "index_codecs": [
                    {"name": "bytes", "configuration": {"endian": "little"}},
                    {"name": "crc32c"},
                ],
                "index_location": "end",
            },
        }
    ]


# ---- shard gathering (the same code is in _zarr.py) ---------------------------
@dataclass
class _Block:
    """The frames of one shard gathered so far."""

    start: tuple[int, ...]
    data: np.ndarray  # shard extent (non-spatial) + (y, x), fill value 0
    filled: np.ndarray  # bool, shard extent (non-spatial)
    missing: int  # planned frames not yet received


@dataclass
class _ShardGatherer:
    """Holds frames of one array per shard until the shard is complete.

    A shard is complete when every index the plan acquires in it has a frame
    (`ImageSettings.is_acquired`); slots the plan skips stay at the fill value.
    Shards that were written are remembered, so a late frame for one is
    recognised (the caller then writes it alone).
    """

    image: ImageSettings
    dtype: np.dtype[Any]
    block: tuple[int, ...] = field(init=False)  # shard extent (non-spatial)
    open: dict[tuple[int, ...], _Block] = field(init=False, default_factory=dict)
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

    def add(self, index: tuple[int, ...], frame: np.ndarray) -> _Block | None:
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

    def _new(self, key: tuple[int, ...]) -> _Block:
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
        return _Block(
            start=start,
            data=np.zeros(extent + self.image.frame_shape, dtype=self.dtype),
            filled=np.zeros(extent, dtype=bool),
            missing=planned,
        )


# ---- backend --------------------------------------------------------------------
@dataclass
class _Array:
    """One image's open TensorStore and its write state."""

    store: Any  # ts.TensorStore
    image: ImageSettings
    gatherer: _ShardGatherer
    t_size: int = 1  # current t extent of an unbounded array
    t_seen: int = 0  # time points with a frame (received, maybe still buffered)


class TensorStoreBackend:
    """Write every image as a tensorstore zarr3 array on the local file system.

    Parameters
    ----------
    file_io_sync
        fsync every write (tensorstore's `file_io_sync` context option); turn off
        only for scratch data.
    """

    def __init__(self, *, file_io_sync: bool = True) -> None:
        self._context = ts.Context({"file_io_sync": file_io_sync})
        self._arrays: list[_Array] = []
        self._closed = False

    # ---- protocol ---------------------------------------------------------------
    def open(self, root: Path, settings: AcquisitionSettings) -> None:
        """Create one zarr3 array per image under `root`."""
        dtype = np.dtype(settings.dtype)
        self._arrays = []
        for im in settings.images:
            sharded = any(d.shard is not None for d in im.dimensions)
            grid = [d.shard_size if sharded else d.chunk_size for d in im.dimensions]
            spec = {
                "driver": "zarr3",
                "kvstore": {"driver": "file", "path": str(root / array_path(im))},
                "metadata": {
                    "shape": [1 if d.size is None else d.size for d in im.dimensions],
                    "data_type": dtype.name,
                    "chunk_grid": {
                        "name": "regular",
                        "configuration": {"chunk_shape": grid},
                    },
                    "chunk_key_encoding": {
                        "name": "default",
                        "configuration": {"separator": "/"},
                    },
                    "fill_value": 0,
                    "codecs": _codecs(im, settings.compression, dtype.itemsize),
                    "dimension_names": list(im.dim_names),
                },
                "create": True,
                # all-zero chunks are stored too, as acquire-zarr does
                "store_data_equal_to_fill_value": True,
            }
            try:
                store = ts.open(spec, context=self._context).result()
            except ValueError as e:
                raise PlanError(f"tensorstore rejected image {im.key!r}: {e}") from e
            self._arrays.append(_Array(store, im, _ShardGatherer(im, dtype)))

    def write(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Write `frame` now, or copy it into its shard's buffer."""
        arr = self._arrays[image]
        if arr.image.unbounded:
            arr.t_seen = max(arr.t_seen, index[0] + 1)
        g = arr.gatherer
        if g.active and g.key(index) not in g.written:
            blk = g.add(index, frame)
            if blk is not None:
                self._put(arr, blk.start, blk.data)
            return
        # unsharded, or a late frame for a shard already written (tensorstore then
        # reads and rewrites that shard once)
        self._put(arr, index, frame.reshape((1,) * len(index) + frame.shape))

    def flush(self) -> None:
        """Write the shards still gathering (again, in full, once complete)."""
        for arr in self._arrays:
            for blk in arr.gatherer.open.values():
                self._put(arr, blk.start, blk.data)

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
                arr.gatherer.open.clear()
                if arr.image.unbounded:
                    self._resize_t(arr, arr.t_seen)
            except Exception as e:  # finish the other arrays, raise the first error
                errors.append(e)
        self._arrays = []
        if errors:
            raise errors[0]

    def memory_bytes(self) -> int:
        """Bytes of frames held in shard buffers."""
        return sum(a.gatherer.nbytes for a in self._arrays)

    # ---- helpers ----------------------------------------------------------------
    def _put(self, arr: _Array, start: tuple[int, ...], data: np.ndarray) -> None:
        """Write `data` (non-spatial extent + y, x) at `start`; grow t as needed."""
        if arr.image.unbounded:
            # a shard along t may reach past the last time point acquired
            data = data[: max(0, arr.t_seen - start[0])]
            if data.shape[0] == 0:
                return
            self._resize_t(arr, max(arr.t_size, start[0] + data.shape[0]))
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape, strict=False))
        arr.store[region].write(data).result()

    def _resize_t(self, arr: _Array, t: int) -> None:
        if t == arr.t_size:
            return
        # metadata only: nothing is ever written past the final t
        arr.store = arr.store.resize(
            exclusive_max=[t] + [None] * (arr.store.rank - 1),
            resize_metadata_only=True,
        ).result()
        arr.t_size = t
