"""Where a frame's chunks are on disk, and whether they are whole.

A frame of array `doc` at storage `index` lies in one chunk (or shard) file per
y/x tile (`chunk_paths`). It is whole when each file is there, an uncompressed
unsharded chunk has its full size (`raw_chunk_bytes`), and a shard ends with an
intact index (`frame_is_complete`). Used by `validate` and `finalize`.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr.backends._acquire_disk import UNWRITTEN, shard_index

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "chunk_paths",
    "frame_is_complete",
    "grown",
    "inner_chunk_shape",
    "is_torn",
    "raw_chunk_bytes",
]


def chunk_paths(doc: dict[str, Any], index: tuple[int, ...]) -> list[str]:
    """Paths of the chunk/shard files that hold the frame at `index`."""
    shape = doc["shape"]
    grid = doc["chunk_grid"]["configuration"]["chunk_shape"]
    enc = doc.get("chunk_key_encoding", {"name": "default"})
    sep = enc.get("configuration", {}).get(
        "separator", "/" if enc["name"] == "default" else "."
    )
    n_lead = len(shape) - 2
    lead = [i // g for i, g in zip(index[:n_lead], grid[:n_lead], strict=False)]
    ys = range(math.ceil(shape[-2] / grid[-2]))
    xs = range(math.ceil(shape[-1] / grid[-1]))
    paths = []
    for y, x in itertools.product(ys, xs):
        coords = [*lead, y, x]
        key = sep.join(str(c) for c in coords)
        paths.append(f"c{sep}{key}" if enc["name"] == "default" else key)
    return paths


def raw_chunk_bytes(doc: dict[str, Any]) -> int | None:
    """Exact size of an uncompressed, unsharded chunk; None otherwise."""
    codecs = doc.get("codecs", [])
    if [c.get("name") for c in codecs] != ["bytes"]:
        return None
    itemsize = np.dtype(doc["data_type"]).itemsize
    return int(math.prod(doc["chunk_grid"]["configuration"]["chunk_shape"]) * itemsize)


def is_torn(f: Path, doc: dict[str, Any]) -> bool:
    """Whether the existing chunk or shard file `f` of the array `doc` is torn.

    Torn: empty, not the size of an uncompressed chunk, or a shard without an
    intact index (a killed writer's; it can be longer than a chunk).
    """
    size = f.stat().st_size
    if size == 0:
        return True
    index_bytes = _shard_index_bytes(doc)
    if index_bytes is not None:
        return shard_index(f, index_bytes) is None
    exact = raw_chunk_bytes(doc)
    return exact is not None and size != exact


def frame_is_complete(
    root: Path,
    array: str,
    doc: dict[str, Any],
    index: tuple[int, ...],
    grows: bool = False,
    problems: list[str] | None = None,
    *,
    in_index: bool = False,
) -> bool:
    """Whether the chunk files holding frame `index` of `array` are all there.

    `grows`: the array's leading axis may be shorter in `doc` than the frame's
    index (an unbounded `t` whose metadata lags). `in_index`: a shard's index
    must also list the frame's chunks (a partial shard written at a flush may
    not hold it yet; acquire-zarr leaves out chunks of the fill value, so a
    frame of zeros is not listed either). Problems are appended to `problems`
    when given.
    """
    shape = grown(doc, index)["shape"] if grows else doc["shape"]
    if any(i >= s for i, s in zip(index, shape, strict=False)):
        if problems is not None:
            problems.append(
                f"array {array!r}: frame {list(index)} is outside shape {doc['shape']}"
            )
        return False
    exact = raw_chunk_bytes(doc)
    index_bytes = _shard_index_bytes(doc)
    ok = True
    for rel in chunk_paths({**doc, "shape": shape}, index):
        f = root / array / rel
        size = f.stat().st_size if f.is_file() else -1
        if size > 0 and index_bytes is not None:
            # a killed writer can leave a shard file without its index; chunks
            # left out of an intact index read as the fill value (acquire-zarr
            # omits those equal to it)
            entries = shard_index(f, index_bytes)
            what = None if entries is not None else "torn (no intact shard index)"
            if entries is not None and in_index:
                tile = tuple(int(c) for c in rel.replace(".", "/").split("/")[-2:])
                if not _listed(entries, doc, shape, index, tile):
                    what = "not in its shard's index"
        elif size > 0 and (exact is None or size == exact):
            what = None
        else:
            what = "missing" if size < 0 else f"truncated ({size} bytes)"
        if what is None:
            continue
        ok = False
        if problems is not None:
            problems.append(
                f"array {array!r}: chunk {rel} of frame {list(index)} is {what}"
            )
    return ok


def _listed(
    entries: list[tuple[int, int]],
    doc: dict[str, Any],
    shape: list[int],
    index: tuple[int, ...],
    tile: tuple[int, ...],
) -> bool:
    """Whether a shard's index `entries` list every chunk of frame `index`.

    Those of the frame that lie in the shard's y/x `tile` and inside the
    array's `shape`.
    """
    shard = doc["chunk_grid"]["configuration"]["chunk_shape"]
    inner = doc["codecs"][0]["configuration"]["chunk_shape"]
    n_lead = len(index)
    axes = [
        range(i % s // c, i % s // c + 1)
        for i, s, c in zip(index, shard[:n_lead], inner[:n_lead], strict=True)
    ]
    for t, n, s, c in zip(
        tile, shape[n_lead:], shard[n_lead:], inner[n_lead:], strict=True
    ):
        axes.append(range(-(-max(min(n - t * s, s), 0) // c)))
    grid = [-(-s // c) for s, c in zip(shard, inner, strict=True)]
    return all(
        entries[int(np.ravel_multi_index(coords, grid))][0] != UNWRITTEN
        for coords in itertools.product(*axes)
    )


def _sharding(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The `sharding_indexed` codec's configuration of the array `doc`, if any."""
    codec = (doc.get("codecs") or [{}])[0]
    if codec.get("name") != "sharding_indexed":
        return None
    conf: dict[str, Any] = codec.get("configuration", {})
    return conf


def inner_chunk_shape(doc: dict[str, Any]) -> list[int] | None:
    """The shape of a shard's inner chunks of the array `doc`; None unsharded."""
    conf = _sharding(doc)
    return None if conf is None else [int(c) for c in conf.get("chunk_shape", [])]


def _shard_index_bytes(doc: dict[str, Any]) -> int | None:
    """The size of the shard index of the array `doc` describes.

    None unless its shards are indexed at the end with a crc32c, as every
    mmzarr backend writes them.
    """
    conf = _sharding(doc)
    if conf is None:
        return None
    names = [c.get("name") for c in conf.get("index_codecs", [])]
    if conf.get("index_location", "end") != "end" or names != ["bytes", "crc32c"]:
        return None
    shard = doc["chunk_grid"]["configuration"]["chunk_shape"]
    inner = conf["chunk_shape"]
    chunks = math.prod(-(-int(s) // int(c)) for s, c in zip(shard, inner, strict=True))
    return 16 * chunks + 4


def grown(doc: dict[str, Any], index: tuple[int, ...]) -> dict[str, Any]:
    """`doc` with its leading axis long enough for `index`.

    An unbounded `t`'s metadata may lag behind its frames; an image without
    `t`, `c` or `z` has an empty index and nothing to grow.
    """
    if not index:
        return doc
    shape = list(doc["shape"])
    shape[0] = max(shape[0], index[0] + 1)
    return {**doc, "shape": shape}
