"""The `zarr.json` of an image's array: its shape, chunk grid and codec chain.

The documents acquire-zarr writes (bytes little-endian, blosc at
`BLOSC_CLEVEL` with byte shuffle, `sharding_indexed` with a crc32c index at
the end), which the other backends write the same way and `finalize` rewrites
when it trims an array. The group documents are `_layout`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mmzarr._settings import ImageSettings

__all__ = ["BLOSC_CLEVEL", "array_document", "codecs"]


#: blosc level per compression, chosen on camera-like uint16 frames (byte
#: shuffle, one thread; measurements in benchmarks/README.md): lz4 runs at the
#: same speed at every level, so the level that stores less; zstd's speed
#: halves from level 1 to 3 for a few percent fewer bytes, so level 1.
BLOSC_CLEVEL: dict[str, int] = {"blosc-lz4": 5, "blosc-zstd": 1}


def codecs(
    image: ImageSettings, dtype: str, compression: str, *, sharded: bool
) -> list[dict[str, Any]]:
    """Zarr v3 codec chain for an image array (as acquire-zarr writes it)."""
    inner: list[dict[str, Any]] = [
        {"name": "bytes", "configuration": {"endian": "little"}}
    ]
    if compression != "none":
        inner.append(
            {
                "name": "blosc",
                "configuration": {
                    "cname": compression.split("-", 1)[1],
                    "clevel": BLOSC_CLEVEL[compression],
                    "shuffle": "shuffle",
                    "typesize": np.dtype(dtype).itemsize,
                    "blocksize": 0,
                },
            }
        )
    if not sharded:
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


def array_document(
    image: ImageSettings,
    dtype: str,
    compression: str,
    *,
    sharded: bool,
    t_size: int = 0,
) -> dict[str, Any]:
    """The `zarr.json` of an image's level-0 array.

    An unbounded `t` gets `t_size` (the time points written so far).
    """
    shape = [t_size if d.size is None else d.size for d in image.dimensions]
    grid = [d.shard_size if sharded else d.chunk_size for d in image.dimensions]
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": np.dtype(dtype).name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": codecs(image, dtype, compression, sharded=sharded),
        "attributes": {},
        "dimension_names": list(image.dim_names),
        "storage_transformers": [],
    }
