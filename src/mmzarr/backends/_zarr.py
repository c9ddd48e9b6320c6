"""zarr-python backend: one zarr v3 array per image, optionally through zarrs.

Owns the array `zarr.json` and chunk/shard files of each image, created with the
codecs acquire-zarr writes (bytes little-endian, blosc level 1 with byte shuffle,
`sharding_indexed` with a crc32c index at the end) so arrays from either backend
have the same metadata. Group documents, routing and frame validation stay in
`Stream`; each array gets its own `LocalStore`, so zarr-python never writes
(implicit) parent groups.

When the `zarrs` package is importable, array I/O runs through its Rust codec
pipeline. zarr-python picks the pipeline from its global config when an array
object is built, so the setting is applied with `zarr.config.set(...)` as a
context manager around this backend's own calls only (not thread-isolated: other
threads using zarr at that moment see it too).

Frames are gathered in memory per shard (`_ShardGatherer`; per chunk when an
unsharded chunk holds several frames) and each shard is written once, when its
last planned frame arrives or at `close`: writing a frame into an existing shard
reads, decodes and rewrites the whole shard. When a shard (chunk) holds one
frame, frames go straight to storage. zarr-python and zarrs do not fsync, so
`close` fsyncs every file and directory of the arrays. An unbounded `t` starts
at 1, grows as frames arrive and ends at the count `close` receives. The gathering
code is repeated in `_tensorstore.py` (each backend module may import only its own
optional library).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

from mmzarr._layout import array_path
from mmzarr.errors import MissingDependencyError, PlanError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = ["ZarrPythonBackend"]

_BLOSC_CNAME: dict[str, Literal["lz4", "zstd"]] = {
    "blosc-lz4": "lz4",
    "blosc-zstd": "zstd",
}
_ZARRS_PIPELINE = "zarrs.ZarrsCodecPipeline"


def _fsync_tree(path: Path) -> None:
    """Call fsync on every file and directory under `path` (directories: POSIX only)."""
    for dirpath, _, files in os.walk(path):
        names = [os.path.join(dirpath, f) for f in files]
        if os.name != "nt":
            names.append(dirpath)
        for name in names:
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# ---- shard gathering (the same code is in _tensorstore.py) ----------------------
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
    """One image's open zarr array and its write state."""

    array: zarr.Array[Any]
    path: Path
    image: ImageSettings
    gatherer: _ShardGatherer
    t_seen: int = 0  # time points with a frame (received, maybe still buffered)


class ZarrPythonBackend:
    """Write every image as a zarr-python 3 array on the local file system.

    Parameters
    ----------
    use_zarrs
        Run array I/O through the zarrs codec pipeline. `None` (default): when
        the `zarrs` package is installed.

    Raises
    ------
    MissingDependencyError
        For `use_zarrs=True` without the `zarrs` package.
    fsync
        fsync the arrays' files at `close`; turn off only for scratch data.
    """

    def __init__(self, *, use_zarrs: bool | None = None, fsync: bool = True) -> None:
        installed = importlib.util.find_spec("zarrs") is not None
        if use_zarrs and not installed:
            raise MissingDependencyError(
                'use_zarrs=True needs the zarrs package: pip install "mmzarr[zarr]"'
            )
        self._use_zarrs = installed if use_zarrs is None else use_zarrs
        self._fsync = fsync
        self._arrays: list[_Array] = []
        self._closed = False

    # ---- protocol ---------------------------------------------------------------
    def open(self, root: Path, settings: AcquisitionSettings) -> None:
        """Create one zarr v3 array per image under `root`."""
        dtype = np.dtype(settings.dtype)
        compressors: list[BloscCodec] | None = None
        if settings.compression != "none":
            compressors = [
                BloscCodec(
                    cname=_BLOSC_CNAME[settings.compression],
                    clevel=1,
                    shuffle="shuffle",
                    typesize=dtype.itemsize,
                    blocksize=0,
                )
            ]
        self._arrays = []
        for im in settings.images:
            sharded = any(d.shard is not None for d in im.dimensions)
            path = root / array_path(im)
            try:
                with self._config():
                    array = zarr.create_array(
                        LocalStore(path),
                        shape=tuple(d.size or 1 for d in im.dimensions),
                        chunks=tuple(d.chunk_size for d in im.dimensions),
                        shards=(
                            tuple(d.shard_size for d in im.dimensions)
                            if sharded
                            else None
                        ),
                        dtype=dtype,
                        fill_value=0,
                        filters=None,
                        compressors=compressors,
                        serializer=BytesCodec(endian="little"),
                        dimension_names=im.dim_names,
                        # all-zero chunks are stored too, as acquire-zarr does
                        # (and checking for them costs time)
                        config={"write_empty_chunks": True},
                    )
            except (ValueError, TypeError) as e:
                raise PlanError(f"zarr-python rejected image {im.key!r}: {e}") from e
            self._arrays.append(_Array(array, path, im, _ShardGatherer(im, dtype)))

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
        # unsharded, or a late frame for a shard already written (zarr then reads
        # and rewrites that shard once)
        self._put(arr, index, frame.reshape((1,) * len(index) + frame.shape))

    def flush(self) -> None:
        """Write the shards still gathering (again, in full, once complete)."""
        for arr in self._arrays:
            for blk in arr.gatherer.open.values():
                self._put(arr, blk.start, blk.data)

    def close(self, t_sizes: dict[int, int] | None = None) -> None:
        """Write incomplete shards, set the final t sizes, fsync (idempotent)."""
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
                if self._fsync:
                    _fsync_tree(arr.path)
            except Exception as e:  # finish the other arrays, raise the first error
                errors.append(e)
        self._arrays = []
        if errors:
            raise errors[0]

    def memory_bytes(self) -> int:
        """Bytes of frames held in shard buffers."""
        return sum(a.gatherer.nbytes for a in self._arrays)

    # ---- helpers ----------------------------------------------------------------
    @contextlib.contextmanager
    def _config(self) -> Iterator[None]:
        """The zarr config for this backend's calls (the codec pipeline)."""
        if not self._use_zarrs:
            yield
            return
        with zarr.config.set({"codec_pipeline.path": _ZARRS_PIPELINE}):
            yield

    def _put(self, arr: _Array, start: tuple[int, ...], data: np.ndarray) -> None:
        """Write `data` (non-spatial extent + y, x) at `start`; grow t as needed."""
        if arr.image.unbounded:
            # a shard along t may reach past the last time point acquired
            data = data[: max(0, arr.t_seen - start[0])]
            if data.shape[0] == 0:
                return
            self._resize_t(arr, max(arr.array.shape[0], start[0] + data.shape[0]))
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape, strict=False))
        with self._config():
            arr.array[region] = data

    def _resize_t(self, arr: _Array, t: int) -> None:
        shape = arr.array.shape
        if t != shape[0]:
            with self._config():
                arr.array.resize((t, *shape[1:]))
