"""Which frames a writer that died left on disk, and which chunk files go aside.

`finalize`'s reading of the arrays: `on_disk` splits frames into those whose
chunk files are all there and the others; `unlogged` finds frames on disk that
the frame log never named (`is_fill` tells a slot stored as the fill value);
`other_chunks` finds chunk files of no kept frame that must go aside (they do
not decode, or are a lower level's); `engine_temp_files` finds the temporary
files of a write tensorstore never renamed into place; `split` drops the
frames that share a file going aside.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr import _layout, _metadata
from mmzarr._chunk_files import (
    chunk_paths,
    frame_is_complete,
    grown,
    inner_chunk_shape,
    is_torn,
)
from mmzarr._log_lines import frame_key
from mmzarr._pyramid import all_arrays
from mmzarr._validate import array_documents

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from mmzarr._frame_reader import FrameReader
    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "Frame",
    "chunk_files",
    "engine_temp_files",
    "frame_entry",
    "is_fill",
    "kept_records",
    "on_disk",
    "other_chunks",
    "split",
    "unlogged",
]

#: A frame of a dataset: (image number, storage index).
Frame = tuple[int, tuple[int, ...]]


def frame_entry(
    settings: AcquisitionSettings, frame: Frame, **extra: Any
) -> dict[str, Any]:
    """`frame` as `finalize.json` lists it: `{"image": key, "index": [...]}`."""
    i, index = frame
    return {"image": settings.images[i].key, "index": list(index), **extra}


def is_fill(pixels: np.ndarray | None, doc: dict[str, Any] | None) -> bool:
    """Whether `pixels` (read from the array of document `doc`) are all its fill value.

    acquire-zarr stores a slot the writer gave up (`Stream.abandon`: its frame
    went to the unplaced sibling, or the camera never gave it) or filled at
    `close` as a chunk of the fill value. Without its frame-log record such a
    chunk looks like an unlogged frame; one that holds only the fill value is
    not taken for one (kept or not, it reads the same).
    """
    if pixels is None or doc is None:
        return False
    try:
        fill = np.asarray(doc.get("fill_value", 0)).astype(pixels.dtype)
    except (TypeError, ValueError):
        return False
    if pixels.dtype.kind in "fc" and np.isnan(fill):
        return bool(np.isnan(pixels).all())
    return bool((pixels == fill).all())


def kept_records(
    settings: AcquisitionSettings,
    records: Iterable[dict[str, Any]],
    kept: Iterable[Frame],
) -> list[dict[str, Any]]:
    """The frame-log records of the `kept` frames, and a bare one for each unlogged.

    For the OME-XML after `finalize`: one plane per frame the arrays hold, no
    plane for a lost frame (a kept frame that never reached the log has no
    metadata but its place).
    """
    kept = set(kept)
    number = {im.key: i for i, im in enumerate(settings.images)}
    out: list[dict[str, Any]] = []
    for rec in records:
        key = frame_key(rec)
        frame = (number.get(key[0], -1), key[1]) if key is not None else None
        if frame in kept and not rec.get("dropped"):
            kept.discard(frame)
            out.append(rec)
    return out + [frame_entry(settings, f) for f in sorted(kept)]


def on_disk(
    root: Path,
    settings: AcquisitionSettings,
    frames: Iterable[Frame],
    moves: set[str],
) -> tuple[list[Frame], dict[Frame, str]]:
    """Split `frames` into those whose chunk files are all there, and the others.

    Truncated chunk files of the others are to be moved (added to `moves`).
    """
    docs = array_documents(root)
    kept: list[Frame] = []
    reasons: dict[Frame, str] = {}
    for i, index in frames:
        im = settings.images[i]
        apath = _layout.array_path(im)
        doc = docs.get(apath)
        problems: list[str] = []
        if doc is None:
            reasons[(i, index)] = f"array {apath!r} is missing"
        elif frame_is_complete(root, apath, doc, index, im.unbounded, problems):
            kept.append((i, index))
        else:
            reasons[(i, index)] = "; ".join(problems)
            moves.update(chunk_files(root, apath, index, truncated_only=True))
    return kept, reasons


def split(
    root: Path,
    settings: AcquisitionSettings,
    frames: Iterable[Frame],
    moves: set[str],
) -> tuple[list[Frame], dict[Frame, str]]:
    """Frames none of whose chunk files is to be moved, and why the others go."""
    docs = array_documents(root)
    kept: list[Frame] = []
    gone: dict[Frame, str] = {}
    for i, index in frames:
        apath = _layout.array_path(settings.images[i])
        doc = docs[apath]
        files = [f"{apath}/{rel}" for rel in chunk_paths(grown(doc, index), index)]
        moved = [f for f in files if f in moves]
        if moved:
            gone[(i, index)] = f"its chunk file {moved[0]} does not decode"
        else:
            kept.append((i, index))
    return kept, gone


def chunk_files(
    root: Path, array: str, index: tuple[int, ...], *, truncated_only: bool = False
) -> list[str]:
    """The chunk files of frame `index` that exist, relative to the root.

    `truncated_only`: only files cut short (`is_torn`).
    """
    doc = _metadata.read_json(root / array / "zarr.json")
    out = []
    for rel in chunk_paths(grown(doc, index), index):
        src = root / array / rel
        if src.is_file() and (not truncated_only or is_torn(src, doc)):
            out.append(f"{array}/{rel}")
    return out


def other_chunks(
    root: Path,
    settings: AcquisitionSettings,
    kept: Iterable[Frame],
    reader: FrameReader,
) -> list[str]:
    """Chunk files of no kept frame that do not decode, or are of a lower level.

    They are to be moved aside. A writer that died (or failed: disk full)
    mid-write can leave a torn chunk of a frame it never logged; readers of the
    whole array would fail on it. A level's chunk of a frame whose full
    resolution is not kept would show that frame zoomed out only.
    """
    docs = array_documents(root)
    specs = [s for s in all_arrays(settings) if s.path in docs]
    holding: dict[str, set[str]] = {s.path: set() for s in specs}
    by_image: dict[int, list[str]] = {}
    for spec in specs:
        by_image.setdefault(spec.image, []).append(spec.path)
    for i, index in kept:
        for path in by_image.get(i, ()):  # every level: its own chunks checked
            holding[path].update(chunk_paths(docs[path], index))
    found: list[str] = []
    for spec in specs:
        apath = spec.path
        array_doc = docs[apath]
        shape = array_doc["shape"]
        grid = array_doc["chunk_grid"]["configuration"]["chunk_shape"]
        for rel, coords in _files_of(root / apath, len(shape)):
            if rel in holding[apath]:
                continue
            start = [c * g for c, g in zip(coords, grid, strict=True)]
            if any(s0 >= n for s0, n in zip(start, shape, strict=True)):
                continue  # outside the array: never read
            region = tuple(
                slice(s0, min(s0 + g, n))
                for s0, g, n in zip(start, grid, shape, strict=True)
            )
            # a level's chunk of no kept frame shows what level 0 lacks
            if spec.level or reader.error(apath, region) is not None:
                found.append(f"{apath}/{rel}")
    return found


#: tensorstore writes a file as `<key>.__lock` and renames it into place: a
#: writer killed in between leaves it (a whole or partial chunk or document)
ENGINE_TEMP_SUFFIX = ".__lock"


def engine_temp_files(root: Path, settings: AcquisitionSettings) -> list[str]:
    """The temporary files tensorstore left of a dataset's chunks and documents.

    `<chunk key>.__lock` in an array of `settings`, `zarr.json.__lock` in any
    group or array (`mmzarr/` is not looked in); a user's other file of that
    suffix is not one.
    """
    arrays = [spec.path + "/c/" for spec in all_arrays(settings)]
    found = []
    for f in sorted(root.rglob("*" + ENGINE_TEMP_SUFFIX)):
        rel = f.relative_to(root).as_posix()
        if rel.startswith("mmzarr/") or not f.is_file():
            continue
        stem = rel.removesuffix(ENGINE_TEMP_SUFFIX)
        chunk = any(
            stem.startswith(a) and all(p.isdigit() for p in stem[len(a) :].split("/"))
            for a in arrays
        )
        if chunk or stem.rpartition("/")[2] == "zarr.json":
            found.append(rel)
    return found


def _files_of(array: Path, ndim: int) -> list[tuple[str, tuple[int, ...]]]:
    """The chunk files of an array (default key encoding), with their grid coords."""
    out = []
    for f in sorted(array.rglob("*")):
        rel = f.relative_to(array).as_posix()
        parts = rel.split("/")
        if (
            f.is_file()
            and parts[0] == "c"
            and len(parts) == ndim + 1
            and all(p.isdigit() for p in parts[1:])
        ):
            out.append((rel, tuple(int(p) for p in parts[1:])))
    return out


def unlogged(
    root: Path, settings: AcquisitionSettings, logged: Iterable[Frame]
) -> list[Frame]:
    """Frames that have a chunk file of their own on disk but no log record.

    The frame log is written every `flush_interval_s / 2`: a writer killed
    meanwhile leaves frames on disk that it never logged. Where every chunk
    (or shard) file holds one frame (mmzarr's default), each file names its
    frame, and slots of the plan that hold one are kept (`on_disk` then checks
    them like logged frames). Where a shard holds several frames, one inner
    chunk each, its index lists those written (every backend writes a shard
    whole, or renames it into place): those are kept. Where a chunk holds
    several frames, nothing tells the acquired ones from the fill value:
    those are not recovered.
    """
    docs = array_documents(root)
    known = set(logged)
    found: list[Frame] = []
    for i, im in enumerate(settings.images):
        apath = _layout.array_path(im)
        doc = docs.get(apath)
        n_lead = len(im.index_dims)
        if doc is None or len(doc["shape"]) != n_lead + 2:
            continue
        grid = doc["chunk_grid"]["configuration"]["chunk_shape"][:n_lead]
        per_file = [1] * n_lead
        if any(g != 1 for g in grid):
            inner = inner_chunk_shape(doc)
            if inner is None or any(c != 1 for c in inner[:n_lead]):
                continue
            per_file = grid  # a frame per inner chunk: the shard's index says
        sizes = [d.size for d in im.index_dims]
        frames = {
            tuple(
                c * n + k
                for c, n, k in zip(coords[:n_lead], per_file, off, strict=True)
            )
            for _, coords in _files_of(root / apath, n_lead + 2)
            for off in itertools.product(*(range(n) for n in per_file))
        }
        for index in sorted(frames):
            if (i, index) in known or not im.is_acquired(index):
                continue
            if not all(n is None or x < n for x, n in zip(index, sizes, strict=True)):
                continue
            if per_file != [1] * n_lead and not frame_is_complete(
                root, apath, doc, index, grows=True, in_index=True
            ):
                continue
            found.append((i, index))
    return found
