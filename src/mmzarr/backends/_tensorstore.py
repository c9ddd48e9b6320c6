"""tensorstore backend: one zarr3 TensorStore (file or s3 kvstore) per image.

Owns the array `zarr.json` and chunk/shard files of each image, created from
`_layout.array_document`, the document of acquire-zarr's arrays (bytes
little-endian, blosc at `BLOSC_CLEVEL` with byte shuffle, `sharding_indexed`
with a crc32c index at the end when sharded), so arrays from either backend have
the same metadata (tensorstore leaves out default fields such as
`index_location`; parsed, the documents are equal). Group documents,
routing and frame validation stay in `Stream`. An unbounded `t` starts at 1,
grows by metadata-only resizes as frames arrive and ends at the count `close`
receives.

Frames are gathered in memory per shard (`ShardGatherer`; per chunk when an
unsharded chunk holds several frames) and each shard is written once, when its
last planned frame arrives or at `close`: a frame written into an existing shard
would make tensorstore read, decode and rewrite the whole shard. When a shard
(chunk) holds one frame, frames go straight to storage. Writes stay in flight
(at most `max_buffer_bytes` of them); `flush`, which `Stream` calls every
`flush_interval_s`, and `close` wait for them, and tensorstore fsyncs every file
(`file_io_sync`). Gathering lives in `_shards.py`. On S3 (`open_location`) the
s3 kvstore driver writes each shard as one object; endpoint and region come from
the `Location`, credentials from the AWS environment variables (tensorstore's
default credential chain).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorstore as ts

from mmzarr._layout import array_document
from mmzarr._pyramid import ArraySpec, all_arrays
from mmzarr.backends._base import FreeSpaceGuard
from mmzarr.backends._shards import (
    GatheredArray,
    GatheringBackend,
    ShardGatherer,
    shard_disk_bytes,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location

__all__ = ["TensorStoreBackend"]


class TensorStoreBackend(GatheringBackend):
    """Write every image as a tensorstore zarr3 array on the local file system.

    Parameters
    ----------
    file_io_sync
        fsync every written file on tensorstore's own threads (its
        `file_io_sync` context option; default). Turn off only for scratch data.

    Notes
    -----
    Writes stay in flight: `write` returns once tensorstore has copied the frame
    (the caller may reuse its buffer) and the commit completes in the
    background. At most `max_buffer_bytes` of commits are pending; `flush` and
    `close` wait for all of them. Measured against waiting for every commit:
    2048x2048 uncompressed ~560 -> ~1100 MB/s (benchmarks/run.py).
    """

    def __init__(self, *, file_io_sync: bool = True) -> None:
        super().__init__()
        self._context = ts.Context({"file_io_sync": file_io_sync})
        #: commits in flight: (future, bytes of frames, disk bytes reserved)
        self._pending: collections.deque[tuple[Any, int, int]] = collections.deque()
        self._pending_bytes = 0
        self._pending_disk = 0
        self._max_pending = 256 * 1024**2

    # ---- protocol ---------------------------------------------------------------
    def open(self, root: Path, settings: AcquisitionSettings) -> None:
        """Create one zarr3 array per image under `root`."""
        self._space = FreeSpaceGuard(root)
        self._open(settings, lambda p: {"driver": "file", "path": str(root / p)}, root)

    def open_location(self, location: Location, settings: AcquisitionSettings) -> None:
        """Create one zarr3 array per image under `location` (local or S3)."""
        if location.path is not None:
            self.open(location.path, settings)
            return
        s3 = location.s3
        assert s3 is not None
        s3.export_env("tensorstore")  # its S3 client reads the environment

        def kvstore(path: str) -> dict[str, Any]:
            spec: dict[str, Any] = {
                "driver": "s3",
                "bucket": s3.bucket,
                "path": "/".join(p for p in (s3.prefix, path) if p) + "/",
            }
            if s3.endpoint_url:
                spec["endpoint"] = s3.endpoint_url
            if s3.region:
                spec["aws_region"] = s3.region
            return spec

        self._open(settings, kvstore, None)

    def _open(
        self,
        settings: AcquisitionSettings,
        kvstore: Any,
        root: Path | None,
    ) -> None:
        dtype = np.dtype(settings.dtype)
        self._arrays = []
        self._max_pending = settings.max_buffer_bytes
        specs = all_arrays(settings)
        # every array is created concurrently (one metadata write and fsync
        # each): a 96-well x 4-field plate opens 384 arrays in ~0.1 s, not ~0.6 s
        futures = []
        for spec in specs:
            try:
                futures.append(
                    ts.open(self._spec(spec, settings, kvstore), context=self._context)
                )
            except ValueError as e:
                raise PlanError(f"tensorstore rejected {spec.path!r}: {e}") from e
        for spec, future in zip(specs, futures, strict=True):
            im = spec.settings
            try:
                store = future.result()
            except ValueError as e:
                raise PlanError(f"tensorstore rejected {spec.path!r}: {e}") from e
            self._arrays.append(
                GatheredArray(
                    store,
                    im,
                    ShardGatherer(im, dtype),
                    path=None if root is None else root / spec.path,
                    disk=shard_disk_bytes(
                        im, dtype.itemsize, compressed=settings.compression != "none"
                    ),
                )
            )

    @staticmethod
    def _spec(
        spec: ArraySpec, settings: AcquisitionSettings, kvstore: Any
    ) -> dict[str, Any]:
        """The tensorstore spec that creates the zarr3 array of `spec`."""
        im = spec.settings
        return {
            "driver": "zarr3",
            "kvstore": kvstore(spec.path),
            "metadata": array_document(
                im, settings.dtype, settings.compression, sharded=im.sharded, t_size=1
            ),
            "create": True,
            # all-zero chunks are stored too, as acquire-zarr does
            "store_data_equal_to_fill_value": True,
        }

    # ---- helpers ----------------------------------------------------------------
    def flush(self) -> None:
        """Write the shards still gathering and wait for every pending commit."""
        super().flush()
        self._wait(0)

    def _write_region(
        self,
        arr: GatheredArray,
        region: tuple[slice, ...],
        data: np.ndarray,
        disk: int,
    ) -> None:
        future = arr.store[region].write(data)
        future.copy.result()  # `data` may be reused from here on
        self._pending.append((future.commit, data.nbytes, disk))
        self._pending_bytes += data.nbytes
        self._pending_disk += disk
        self._wait(self._max_pending)

    def _disk_in_flight(self, *, refresh: bool) -> int:
        if refresh:
            while self._pending and self._pending[0][0].done():
                self._collect()
        return self._pending_disk

    def wait_for_writes(self) -> None:
        """Block until every pending commit has completed (raise if one failed)."""
        self._wait(0)

    def _wait(self, limit: int) -> None:
        """Wait for pending commits until at most `limit` bytes are pending.

        Completed commits are collected first; a failed commit raises here.
        """
        while self._pending and (
            self._pending_bytes > limit or self._pending[0][0].done()
        ):
            self._collect()

    def _collect(self) -> None:
        """Wait for the oldest commit (raise if it failed)."""
        commit, nbytes, disk = self._pending.popleft()
        self._pending_bytes -= nbytes
        self._pending_disk -= disk
        commit.result()

    def _finish(self, arr: GatheredArray) -> None:
        self._wait(0)

    def _resize_t(self, arr: GatheredArray, t: int) -> None:
        if t == arr.t_size:
            return
        self._wait(0)  # no resize under writes in flight
        # metadata only: nothing is ever written past the final t
        arr.store = arr.store.resize(
            exclusive_max=[t] + [None] * (arr.store.rank - 1),
            resize_metadata_only=True,
        ).result()
        arr.t_size = t
