"""tensorstore backend: one zarr3 TensorStore (file or s3 kvstore) per array.

Owns the array `zarr.json` and chunk/shard files of each array, created from
`_array_docs.array_document`, the document of acquire-zarr's arrays (bytes
little-endian, blosc at `BLOSC_CLEVEL` with byte shuffle, `sharding_indexed`
with a crc32c index at the end when sharded), so arrays from either backend
have the same metadata (tensorstore leaves out default fields such as
`index_location`; parsed, the documents are equal). An unbounded `t` starts at
1, grows by metadata-only resizes as frames arrive and ends at the time points
written.

Frames are gathered per shard and written as `_shards.GatheringBackend` says.
A write returns once tensorstore has copied the frame; its commit completes in
the background (`flush` collects it). The file kvstore writes every file to a
temporary name and renames it into place, so a shard rewritten while a reader
reads it is the old or the new one, never part of one; `file_io_sync` fsyncs
it (`Limits.durable`).

On S3 the s3 kvstore writes each shard as one object, with the `Location`'s
endpoint and region and the AWS environment's credentials. Its default retries
(32, with delays growing to 32 s) keep a write to a server that is gone
pending ~15 minutes; `S3_RETRIES` bounds them, so a commit fails within ~8 s.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import tensorstore as ts

from mmzarr._array_docs import array_document
from mmzarr._lock import canonical
from mmzarr.backends._base import Capabilities
from mmzarr.backends._gather import ShardGatherer
from mmzarr.backends._shards import GatheredArray, GatheringBackend
from mmzarr.errors import PlanError, StorageError

if TYPE_CHECKING:
    from mmzarr._pyramid import ArraySpec
    from mmzarr._storage import Location
    from mmzarr.backends._base import Arrays
    from mmzarr.backends._shards import Pending, Write

__all__ = ["TensorStoreBackend"]

#: tensorstore's `s3_request_retries` context resource: a request is tried
#: 6 times over ~8 s (0.25 + 0.5 + 1 + 2 + 4 s between tries).
S3_RETRIES = {"max_retries": 5, "initial_delay": "0.25s", "max_delay": "4s"}
#: S3 requests in flight per stream (tensorstore's default limit)
S3_CONCURRENCY = 32


#: tensorstore status codes of a failed open that are storage's, not the plan's
_STORAGE_CODES = (
    "RESOURCE_EXHAUSTED",
    "PERMISSION_DENIED",
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "DATA_LOSS",
    "INTERNAL",
    "UNKNOWN",
)


def _open_error(path: str, e: ValueError) -> Exception:
    """A `StorageError` for storage's failures (a full disk), else a `PlanError`."""
    text = str(e)
    if text.startswith(_STORAGE_CODES) or "No space left" in text:
        err = errno.ENOSPC if "RESOURCE_EXHAUSTED" in text else errno.EIO
        return StorageError(err, f"tensorstore could not create {path!r}: {text}")
    return PlanError(f"tensorstore rejected {path!r}: {text}")


class TensorStoreBackend(GatheringBackend):
    """Write every array as a tensorstore zarr3 array (local disk or S3)."""

    capabilities: ClassVar[Capabilities] = Capabilities(object_storage=True)

    def __init__(self) -> None:
        super().__init__()
        self._context: Any = None
        self._copies: list[Any] = []  # writes' copies, maybe not done

    def _create(self, location: Location, arrays: Arrays) -> list[GatheredArray]:
        self._context = ts.Context(
            {
                "file_io_sync": self._limits.durable,
                "s3_request_retries": S3_RETRIES,
                # the stream's own limit: tensorstore's default one is shared by
                # the process, so a stream whose storage failed, still retrying
                # its writes, held up every later S3 stream for minutes
                "s3_request_concurrency": {"limit": S3_CONCURRENCY},
            }
        )
        # the parent resolved as the kernel does (`lnk/..` is the link target's
        # parent): os.path.abspath would collapse it to another directory
        root = None if location.path is None else canonical(location.path)
        if root is not None and "\\" in str(root):
            raise PlanError(
                f"tensorstore reads a backslash in a path as a separator and would "
                f"write outside {str(root)!r}; use backend='acquire-zarr' or "
                "'zarr-python', or a path without a backslash"
            )
        if root is not None:

            def kvstore(path: str) -> dict[str, Any]:
                return {"driver": "file", "path": str(root / path)}

        else:
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

        dtype = np.dtype(arrays.dtype)
        # every array is created concurrently (one metadata write and fsync
        # each): a 96-well x 4-field plate opens 384 arrays in ~0.1 s, not ~0.6 s
        futures = []
        for spec in arrays.specs:
            try:
                futures.append(
                    ts.open(
                        self._spec(spec, arrays, kvstore(spec.path)),
                        context=self._context,
                    )
                )
            except ValueError as e:
                raise _open_error(kvstore(spec.path)["path"], e) from e
        out = []
        for spec, future in zip(arrays.specs, futures, strict=True):
            try:
                store = future.result(timeout=self._limits.io_timeout_s)
            except ValueError as e:
                raise _open_error(kvstore(spec.path)["path"], e) from e
            path = None if root is None else root / spec.path
            out.append(
                GatheredArray(store, spec, ShardGatherer(spec.settings, dtype), path)
            )
        return out

    @staticmethod
    def _spec(spec: ArraySpec, arrays: Arrays, kvstore: Any) -> dict[str, Any]:
        """The tensorstore spec that creates the zarr3 array of `spec`."""
        im = spec.settings
        return {
            "driver": "zarr3",
            "kvstore": kvstore,
            "metadata": array_document(
                im, arrays.dtype, arrays.compression, sharded=im.sharded, t_size=1
            ),
            "create": True,
            # all-zero chunks are stored too, as acquire-zarr does
            "store_data_equal_to_fill_value": True,
        }

    def _submit(self, write: Write) -> Pending:
        # tensorstore applies a write to its cache once it has copied the data,
        # so writes given in one order may land in another: a write over a
        # region written before (a late frame for a written shard, a block
        # written again) waits until every earlier write has landed
        if write.rewrite:
            for copy in self._copies:
                copy.result()
            self._copies.clear()
        elif len(self._copies) > 64:
            self._copies = [c for c in self._copies if not c.done()]
        # a frame handed over is referenced, not copied (nobody changes it)
        future = write.arr.store[write.region].write(
            write.data, can_reference_source_data_indefinitely=write.owned
        )
        if not write.owned:  # tensorstore reads `data` until its copy is done
            future.copy.result()
        else:
            self._copies.append(future.copy)
        commit: Pending = future.commit
        return commit

    def _resize_t(self, arr: GatheredArray, t: int) -> None:
        if t == arr.t_size:
            return
        self._wait_all()  # no resize under writes in flight
        # metadata only: nothing is ever written past the final t
        arr.store = arr.store.resize(
            exclusive_max=[t] + [None] * (arr.store.rank - 1),
            resize_metadata_only=True,
        ).result(timeout=self._limits.io_timeout_s)
        arr.t_size = t

    def _release(self) -> None:
        self._context = None
