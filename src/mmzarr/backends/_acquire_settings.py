"""acquire-zarr's stream settings for the arrays of a dataset.

The only module that imports `acquire_zarr`: the environment it needs must be
set before that import (below).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# acquire-zarr bundles an OpenMP runtime (libgomp) whose idle threads spin for
# a few ms after every task by default: that doubles its CPU per frame and
# starves the camera thread on small machines (measured in benchmarks/README.md,
# "acquire-zarr's settings"). libgomp reads the variable once,
# when acquire_zarr is first imported in the process, so it is set right before
# that import (a value the user set is kept; an import of acquire_zarr
# elsewhere, before this module's, comes too late).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import acquire_zarr as aqz
import numpy as np

from mmzarr._array_docs import BLOSC_CLEVEL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mmzarr._settings import Dimension
    from mmzarr._storage import S3Config
    from mmzarr.backends._acquire_array import ArrayCursor
    from mmzarr.backends._base import Arrays

__all__ = ["open_stream"]

_KINDS = {
    "t": aqz.DimensionType.TIME,
    "c": aqz.DimensionType.CHANNEL,
    "z": aqz.DimensionType.SPACE,
    "y": aqz.DimensionType.SPACE,
    "x": aqz.DimensionType.SPACE,
}


def open_stream(
    store_path: str | None,
    s3: S3Config | None,
    cursors: Sequence[ArrayCursor],
    arrays: Arrays,
    max_threads: int,
) -> Any:
    """A new `ZarrStream` writing every cursor's array.

    Under the local directory `store_path`, or else under `s3`'s prefix
    (whose credentials are exported to the environment, which acquire-zarr's
    S3 client reads). Raises acquire-zarr's `RuntimeError` if it rejects them.
    """
    store: dict[str, Any]
    if store_path is not None:
        store = {"store_path": store_path}
    else:
        assert s3 is not None
        s3.export_env("acquire-zarr")
        store = {
            "store_path": s3.prefix,
            "s3": aqz.S3Settings(
                endpoint=s3.endpoint_url or "",
                bucket_name=s3.bucket,
                region=s3.region or "",
            ),
        }
    return aqz.ZarrStream(
        aqz.StreamSettings(
            **store,
            arrays=[_array_settings(c, arrays) for c in cursors],
            overwrite=False,
            max_threads=max_threads,
        )
    )


def _array_settings(cur: ArrayCursor, arrays: Arrays) -> aqz.ArraySettings:
    """One array, its dimensions declared in `cur`'s append order."""
    im = cur.image
    dims: dict[str, Dimension] = {d.name: d for d in im.dimensions}
    aq_dims = []
    for name in (*cur.order, "y", "x"):
        d = dims[name]
        aq_dims.append(
            aqz.Dimension(
                name=name,
                kind=_KINDS[name],
                array_size_px=0 if d.size is None else d.size,
                chunk_size_px=d.chunk_size,
                shard_size_chunks=max(1, d.shard_size // d.chunk_size),
                unit=d.unit,
                scale=abs(d.scale),  # its own metadata is replaced
            )
        )
    kwargs: dict[str, Any] = {}
    if cur.order != cur.storage_names:
        kwargs["storage_dimension_order"] = [*cur.storage_names, "y", "x"]
    return aqz.ArraySettings(
        output_key=cur.stream_key,
        dimensions=aq_dims,
        data_type=np.dtype(arrays.dtype),
        compression=_compression(arrays.compression),
        **kwargs,
    )


def _compression(name: str) -> aqz.CompressionSettings | None:
    if name == "none":
        return None
    codec = {
        "blosc-lz4": aqz.CompressionCodec.BLOSC_LZ4,
        "blosc-zstd": aqz.CompressionCodec.BLOSC_ZSTD,
    }[name]
    return aqz.CompressionSettings(
        compressor=aqz.Compressor.BLOSC1,
        codec=codec,
        level=BLOSC_CLEVEL[name],
        shuffle=1,
    )
