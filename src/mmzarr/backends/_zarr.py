"""zarr-python backend: one zarr v3 array per array, optionally through zarrs.

Owns the array `zarr.json` and chunk/shard files of each array, created with
the codecs acquire-zarr writes (bytes little-endian, blosc at `BLOSC_CLEVEL`
with byte shuffle, `sharding_indexed` with a crc32c index at the end) so arrays
from either backend have the same metadata. Each array gets its own store
(`LocalStore`, or `FsspecStore` over s3fs on S3), so zarr-python never writes
(implicit) parent groups.

Writes run on one writer thread (`_zarr_writer.BatchWriter`), so that `write`
returns at once with the frame in flight (the shared backpressure bounds them,
`_shards.GatheringBackend`): consecutive writes of regions not written before
are awaited together on zarr's event loop; a resize or a region written again
runs alone, in order. When the `zarrs` package is
importable, array I/O runs through its Rust codec pipeline. zarr-python takes
the pipeline from its global config when an array object is built, so each
array is built at `open` inside `zarr.config.set(...)` (on the calling thread;
not thread-isolated: another thread using zarr at that moment sees it too) and
keeps that pipeline; the writes themselves change no global config.

zarrs writes a file in place; zarr-python's `LocalStore` writes a new file and
renames it. A region whose files may exist and be read meanwhile (a shard
written by a flush, then again; a late frame for a written shard) therefore
goes through the same array built with zarr-python's own pipeline
(`GatheredArray.replacer`), so a reader never sees a torn shard of frames
already reported readable. zarrs 0.2 also leaves out chunks equal to the fill
value even with `write_empty_chunks`; acquire-zarr and tensorstore store them,
and a missing chunk cannot be told from a frame never written: such a region
goes through zarr-python's pipeline too.

zarr-python and zarrs do not fsync: the files written before each flush are
fsynced on a second thread, and at the final flush the files written since,
each array's `zarr.json` and every directory of the arrays, several at once
(`Limits.durable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import itertools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import zarr
import zarr.core.array
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from mmzarr._array_docs import BLOSC_CLEVEL
from mmzarr.backends._base import Capabilities
from mmzarr.backends._fsync import fsync_at_once, fsync_files
from mmzarr.backends._gather import ShardGatherer
from mmzarr.backends._shards import GatheredArray, GatheringBackend
from mmzarr.backends._zarr_writer import BatchWriter
from mmzarr.errors import MissingDependencyError, PlanError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mmzarr._pyramid import ArraySpec
    from mmzarr._storage import Location
    from mmzarr.backends._base import Arrays
    from mmzarr.backends._shards import Pending, Write

__all__ = ["ZarrPythonBackend"]

_BLOSC_CNAME: dict[str, Literal["lz4", "zstd"]] = {
    "blosc-lz4": "lz4",
    "blosc-zstd": "zstd",
}
_ZARRS_PIPELINE = "zarrs.ZarrsCodecPipeline"
_OWN_PIPELINE = "zarr.core.codec_pipeline.BatchedCodecPipeline"


def holds_empty_chunk(
    data: np.ndarray, start: tuple[int, ...], chunks: tuple[int, ...]
) -> bool:
    """Whether a chunk of `data`, written at `start`, is all zeros (the fill value).

    `chunks`: the array's (inner) chunk shape, whose grid starts at 0. zarrs
    leaves such a chunk out. A frame that is one chunk costs one look at its
    first pixel when that is not 0; a frame of several chunks with no zero
    pixel, one pass.
    """
    if data.flat[0] == 0 and not data.any():
        return True  # empty as a whole
    start = (*start, *[0] * (data.ndim - len(start)))  # y, x from 0
    one = all(
        s0 % c + n <= c for s0, c, n in zip(start, chunks, data.shape, strict=True)
    )
    if one or data.all():
        return False  # one chunk (not empty), or no zero anywhere
    cuts = [
        sorted({0, n, *range((-s0) % c or c, n, c)})
        for s0, c, n in zip(start, chunks, data.shape, strict=True)
    ]
    for block in itertools.product(*(itertools.pairwise(c) for c in cuts)):
        if not data[tuple(slice(a, b) for a, b in block)].any():
            return True
    return False


class ZarrPythonBackend(GatheringBackend):
    """Write every array as a zarr-python 3 array (local disk or S3).

    Parameters
    ----------
    use_zarrs
        Run array I/O through the zarrs codec pipeline. `None` (default): when
        the `zarrs` package is installed.

    Raises
    ------
    MissingDependencyError
        For `use_zarrs=True` without the `zarrs` package.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(object_storage=True)

    def __init__(self, *, use_zarrs: bool | None = None) -> None:
        installed = importlib.util.find_spec("zarrs") is not None
        if use_zarrs and not installed:
            raise MissingDependencyError(
                'use_zarrs=True needs the zarrs package: pip install "mmzarr[zarr]"'
            )
        self._use_zarrs = installed if use_zarrs is None else use_zarrs
        super().__init__()
        self._writer: BatchWriter | None = None
        self._dirty: set[str] = set()  # files written, not yet fsynced
        self._dirty_lock = threading.Lock()
        self._syncer: ThreadPoolExecutor | None = None
        self._syncs: list[Future[None]] = []

    # ---- arrays -----------------------------------------------------------------
    def _create(self, location: Location, arrays: Arrays) -> list[GatheredArray]:
        root = location.path
        if root is not None:

            def make_store(path: str) -> Any:
                return LocalStore(root / path)

        else:
            s3 = location.s3
            assert s3 is not None
            if importlib.util.find_spec("s3fs") is None:
                raise MissingDependencyError(
                    'zarr-python on S3 needs s3fs: pip install "mmzarr[s3]"'
                )
            opts = s3.storage_options()

            def make_store(path: str) -> Any:
                return FsspecStore.from_url(f"{s3.url}/{path}", storage_options=opts)

        dtype = np.dtype(arrays.dtype)
        compressors: list[BloscCodec] | None = None
        if arrays.compression != "none":
            compressors = [
                BloscCodec(
                    cname=_BLOSC_CNAME[arrays.compression],
                    clevel=BLOSC_CLEVEL[arrays.compression],
                    shuffle="shuffle",
                    typesize=dtype.itemsize,
                    blocksize=0,
                )
            ]

        def create(spec: ArraySpec) -> Any:  # a coroutine: all run at once
            im = spec.settings
            return zarr.core.array.create_array(
                make_store(spec.path),
                shape=tuple(d.size or 1 for d in im.dimensions),
                chunks=tuple(d.chunk_size for d in im.dimensions),
                shards=(
                    tuple(d.shard_size for d in im.dimensions) if im.sharded else None
                ),
                dtype=dtype,
                fill_value=0,
                filters=None,
                compressors=compressors,
                serializer=BytesCodec(endian="little"),
                dimension_names=im.dim_names,
                # all-zero chunks are stored too, as acquire-zarr does (and
                # checking for them costs time)
                config={"write_empty_chunks": True},
            )

        async def create_all() -> list[Any]:
            coros = [create(spec) for spec in arrays.specs]
            return await asyncio.gather(*coros, return_exceptions=True)

        with self._config(self._use_zarrs):
            created = sync(create_all())
        out = []
        for spec, array in zip(arrays.specs, created, strict=True):
            if isinstance(array, (ValueError, TypeError)):
                raise PlanError(
                    f"zarr-python rejected image {spec.settings.key!r}: {array}"
                ) from array
            if isinstance(array, BaseException):
                raise array
            path = None if root is None else root / spec.path
            gatherer = ShardGatherer(spec.settings, dtype)
            out.append(GatheredArray(zarr.Array(array), spec, gatherer, path))
        self._writer = BatchWriter("mmzarr-zarr-write")
        return out

    @staticmethod
    @contextlib.contextmanager
    def _config(use_zarrs: bool) -> Iterator[None]:
        """The zarr config while an array object is built: its codec pipeline."""
        with zarr.config.set(
            {"codec_pipeline.path": _ZARRS_PIPELINE if use_zarrs else _OWN_PIPELINE}
        ):
            yield

    # ---- writes (on the writer thread) ------------------------------------------
    def _submit(self, write: Write) -> Pending:
        assert self._writer is not None
        if not write.owned:  # the caller may change it once `write`/`flush` returns
            write = dataclasses.replace(
                write, data=np.array(write.data, copy=True), owned=True
            )
        if write.rewrite or (
            self._use_zarrs
            and holds_empty_chunk(
                write.data,
                tuple(r.start for r in write.region),
                write.arr.store.chunks,
            )
        ):
            # a region written before, or empty chunks: zarr-python's own
            # pipeline (files replaced whole, empty chunks stored), alone
            return self._writer.submit(lambda: self._replace(write), alone=True)
        return self._writer.submit(lambda: self._store(write), alone=False)

    async def _store(self, write: Write) -> None:
        """Write a region no earlier write touched (on zarr's event loop)."""
        await write.arr.store.async_array.setitem(write.region, write.data)
        self._written(write)

    def _replace(self, write: Write) -> None:
        """Write through the replacer (on the writer thread, alone)."""
        arr = write.arr
        replacer = self._replacer(arr)
        if replacer.shape != arr.store.shape:  # it follows resizes lazily
            replacer.resize(arr.store.shape)
        replacer[write.region] = write.data
        self._written(write)

    def _written(self, write: Write) -> None:
        arr = write.arr
        if self._limits.durable and arr.path is not None:
            files = _chunk_files(arr, write.region)
            with self._dirty_lock:
                self._dirty.update(files)

    def _replacer(self, arr: GatheredArray) -> Any:
        """`arr` opened through zarr-python's own pipeline (made when first needed)."""
        if arr.replacer is None:
            with self._config(False):
                replacer = zarr.open_array(arr.store.store_path, mode="r+")
            arr.replacer = replacer.with_config({"write_empty_chunks": True})
        return arr.replacer

    def _abandon(self, future: Pending) -> bool:
        # queued behind a write that failed: it would wait its turn to fail too
        # (each write to an S3 server that is gone fails after ~5 s of retries)
        assert isinstance(future, Future)
        return future.cancel()

    def _resize_t(self, arr: GatheredArray, t: int) -> None:
        if t == arr.t_size:
            return
        arr.t_size = t
        assert self._writer is not None
        # alone: after the writes before it, before those after
        resize = self._writer.submit(lambda: self._resize(arr, t), alone=True)
        self._pending.append((resize, 0, 0, []))

    def _resize(self, arr: GatheredArray, t: int) -> None:
        shape = arr.store.shape
        if t != shape[0]:
            # nothing was written past the final t: no chunks to delete (which
            # zarr would look for over every chunk of the array)
            sync(
                arr.store.async_array.resize(
                    (t, *shape[1:]), delete_outside_chunks=False
                )
            )

    # ---- durability ---------------------------------------------------------------
    def _flushed(self) -> None:
        """fsync, on a thread, the files whose writes completed so far."""
        with self._dirty_lock:
            if not self._dirty:
                return
            paths, self._dirty = sorted(self._dirty), set()
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="mmzarr-fsync")
        for done in [f for f in self._syncs if f.done()]:
            self._syncs.remove(done)
            done.result()  # a failed fsync is reported at the next flush
        self._syncs.append(self._syncer.submit(fsync_files, paths, missing_ok=True))

    def _finish(self, arrays: list[GatheredArray]) -> None:
        if self._syncer is not None:  # the background syncs first (errors raise)
            syncs, self._syncs = self._syncs, []
            for f in syncs:
                f.result()
        paths = [a.path for a in arrays if a.path is not None]
        if self._limits.durable and paths:
            # the chunk files written since the last background fsync, each
            # array's document and every directory (their new entries)
            names = sorted(self._dirty) + [str(p / "zarr.json") for p in paths]
            if os.name != "nt":
                names += [d for p in paths for d, _, _ in os.walk(p)]
            fsync_at_once(names, missing_ok=True)

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.shutdown()
        if self._syncer is not None:
            self._syncer.shutdown(wait=False)
        self._writer = self._syncer = None


def _chunk_files(arr: GatheredArray, region: tuple[slice, ...]) -> list[str]:
    """Paths of the chunk (shard) files that `region` (non-spatial axes) touches."""
    assert arr.path is not None
    grid = [d.shard_size for d in arr.image.dimensions]  # elements per file
    spans = [
        range(r.start // g, -(-r.stop // g)) for r, g in zip(region, grid, strict=False)
    ]
    for size, g in zip(arr.image.frame_shape, grid[len(region) :], strict=True):
        spans.append(range(-(-size // g)))
    root = str(arr.path / "c")
    return [
        "/".join([root, *(str(i) for i in key)]) for key in itertools.product(*spans)
    ]
