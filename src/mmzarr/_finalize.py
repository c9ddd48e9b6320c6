"""`finalize(path)`: turn a dataset whose writer died into a valid one.

A killed writer leaves group metadata saying `acquiring`, arrays whose shape may
not match what reached the disk (an unbounded `t`), a frame log whose last
records may name frames that never reached the disk, and possibly a chunk or
shard file that was being written (a shard without its index). Finalizing keeps
every logged frame whose chunks are on disk and decode, sets unbounded arrays'
`t` to the time points that hold data, moves chunk files that do not decode to
`mmzarr/damaged/` (never deletes them), records the frames it could not keep in
`mmzarr/finalize.json` (`LOST_FRAMES`) and rewrites the group metadata with
status `interrupted` and the frames that are there. Only metadata is rewritten;
no intact chunk is touched.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mmzarr import _layout, _metadata
from mmzarr._claim import DatasetLock, lock_holder
from mmzarr._dataset import SETTINGS_FILE, ChannelRanges, write_group_metadata
from mmzarr._pyramid import all_arrays
from mmzarr._routing import Ledger
from mmzarr._settings import AcquisitionSettings
from mmzarr._validate import (
    LOST_FRAMES,
    FrameReader,
    ValidationReport,
    array_documents,
    chunk_paths,
    frame_is_complete,
    frame_key,
    raw_chunk_bytes,
    validate,
)
from mmzarr.errors import DatasetLockedError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DAMAGED_DIR", "finalize"]

#: Where chunk files that do not decode are moved, relative to the dataset root.
DAMAGED_DIR = "mmzarr/damaged"

Frame = tuple[int, tuple[int, ...]]  # (image number, storage index)


def finalize(path: str | Path) -> ValidationReport:
    """Make a crashed mmzarr dataset valid; returns the validation afterwards.

    Idempotent: finalizing again finds the same frames. The dataset is locked
    meanwhile, as a writer locks it, so no writer starts on it.

    Raises
    ------
    FileNotFoundError
        If `path` has no mmzarr settings (not written by mmzarr).
    DatasetLockedError
        (a `StorageError`) If a live writer (or another `finalize`) holds the
        dataset's lock; the message names it.
    """
    root = Path(path)
    settings_file = root / SETTINGS_FILE
    if not settings_file.is_file():
        raise FileNotFoundError(
            f"{str(settings_file)!r} not found: only datasets written by mmzarr can "
            "be finalized"
        )
    lock = _lock(root)
    try:
        return _finalize(root, settings_file)
    finally:
        if lock is not None:
            lock.release()


def _lock(root: Path) -> DatasetLock | None:
    """Lock `root` as a writer would; None where no lock file can be made."""
    try:
        return DatasetLock.acquire(root, purpose="finalizing")
    except DatasetLockedError:
        raise
    except OSError:  # e.g. a read-only parent: still refuse a live writer's
        holder = lock_holder(root)
        if holder is not None:
            raise DatasetLockedError(
                f"{str(root)!r} is locked by another writer: {holder}", holder
            ) from None
        return None


def _finalize(root: Path, settings_file: Path) -> ValidationReport:
    settings = AcquisitionSettings.model_validate_json(
        settings_file.read_text(encoding="utf-8")
    )
    root_attrs = _metadata.read_json(root / "zarr.json").get("attributes", {})
    old = root_attrs.get("mmzarr", {})
    status = old.get("status", "acquiring")
    _remove_stale_temp_files(root)

    logged: list[Frame] = []
    index_of = {im.key: i for i, im in enumerate(settings.images)}
    for rec in _metadata.read_frame_log(root):
        key = frame_key(rec)  # None: not a frame record (an old, clobbered log)
        i = index_of.get(key[0]) if key is not None else None
        if key is None or i is None or rec.get("dropped"):
            continue
        if len(key[1]) == len(settings.images[i].index_dims):
            logged.append((i, key[1]))

    damaged: list[str] = []
    kept, reasons = _on_disk(root, settings, logged, damaged)
    _set_t_sizes(root, settings, kept)
    reader = FrameReader(root)
    ranges = ChannelRanges(settings)  # display windows from the frames kept
    if reader.available:
        for i, index in kept:
            apath = _layout.array_path(settings.images[i])
            pixels, error = reader.read(apath, index)
            if error is not None:
                damaged += _quarantine(root, apath, index)
                reasons[(i, index)] = f"does not decode ({error})"
            elif pixels is not None:
                ranges.update(i, index, pixels)
        damaged += _check_other_chunks(root, settings, kept, reader)
        if damaged:  # frames sharing a moved file are gone too
            kept, more = _on_disk(root, settings, kept, damaged)
            for frame, why in more.items():
                reasons.setdefault(frame, why)
            _set_t_sizes(root, settings, kept)
    written = _mark(settings, kept)

    lost = [
        {"image": settings.images[i].key, "index": list(idx), "reason": why}
        for (i, idx), why in reasons.items()
    ]
    _metadata.write_json_atomic(
        root / LOST_FRAMES,
        {
            "finalized": datetime.datetime.now(datetime.UTC).isoformat(),
            "status_before": status,
            "frames_logged": len(logged),
            "frames_kept": sum(w.count for w in written),
            "reader": reader.engine,
            "lost": lost,
            "damaged_files": damaged,
        },
    )
    if status == "acquiring":
        status = "interrupted"
    write_group_metadata(
        root,
        settings,
        written,
        status=status,
        backend=old.get("backend", "unknown"),
        dropped=int(old.get("frames_dropped", 0)),
        ranges=ranges.by_key(),
    )
    report = validate(root)
    if not reader.available:
        report.notes.append("no tensorstore or zarr-python: chunks were not decoded")
    return report


def _on_disk(
    root: Path,
    settings: AcquisitionSettings,
    frames: Iterable[Frame],
    damaged: list[str],
) -> tuple[list[Frame], dict[Frame, str]]:
    """Split `frames` into those whose chunk files are all there, and the others.

    Truncated chunk files of the others are moved away (added to `damaged`).
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
            damaged += _quarantine(root, apath, index, truncated_only=True)
    return kept, reasons


def _mark(settings: AcquisitionSettings, frames: Iterable[Frame]) -> list[Ledger]:
    written = [Ledger(im) for im in settings.images]
    for i, index in frames:
        written[i].mark(index)
    return written


def _set_t_sizes(
    root: Path, settings: AcquisitionSettings, frames: Iterable[Frame]
) -> None:
    """Set each unbounded array's `t` to the time points that hold `frames`."""
    written = _mark(settings, frames)
    docs = array_documents(root)
    for spec in all_arrays(settings):  # every resolution level
        t_size = written[spec.image].t_size
        doc = docs.get(spec.path)
        if spec.settings.unbounded and doc is not None and doc["shape"][0] != t_size:
            doc["shape"][0] = t_size
            _metadata.write_json_atomic(root / spec.path / "zarr.json", doc)


def _quarantine(
    root: Path, array: str, index: tuple[int, ...], *, truncated_only: bool = False
) -> list[str]:
    """Move the chunk files of frame `index` to `DAMAGED_DIR`; their new paths.

    `truncated_only`: only files that are empty or shorter than an uncompressed
    chunk.
    """
    doc = _metadata.read_json(root / array / "zarr.json")
    shape = list(doc["shape"])
    shape[0] = max(shape[0], index[0] + 1)
    exact = raw_chunk_bytes(doc)
    moved = []
    for rel in chunk_paths({**doc, "shape": shape}, index):
        src = root / array / rel
        if not src.is_file():
            continue
        size = src.stat().st_size
        if not truncated_only or size == 0 or (exact is not None and size != exact):
            dst = root / DAMAGED_DIR / array / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.replace(dst)
            moved.append(dst.relative_to(root).as_posix())
    return moved


def _check_other_chunks(
    root: Path,
    settings: AcquisitionSettings,
    kept: Iterable[Frame],
    reader: FrameReader,
) -> list[str]:
    """Move chunk files that hold no kept frame and do not decode; their paths.

    A writer that died (or failed: disk full) mid-write can leave a torn chunk
    of a frame it never logged; readers of the whole array would fail on it.
    """
    holding: dict[int, set[str]] = {}
    docs = array_documents(root)
    for i, index in kept:
        doc = docs[_layout.array_path(settings.images[i])]
        holding.setdefault(i, set()).update(chunk_paths(doc, index))
    moved: list[str] = []
    for i, im in enumerate(settings.images):
        apath = _layout.array_path(im)
        found = docs.get(apath)
        if found is None:
            continue
        doc = found
        shape = doc["shape"]
        grid = doc["chunk_grid"]["configuration"]["chunk_shape"]
        for f in sorted((root / apath).rglob("*")):
            rel = f.relative_to(root / apath).as_posix()
            parts = rel.split("/")
            if (
                not f.is_file()
                or rel in holding.get(i, set())
                or parts[0] != "c"
                or len(parts) != len(shape) + 1
                or not all(p.isdigit() for p in parts[1:])
            ):
                continue
            start = [int(p) * g for p, g in zip(parts[1:], grid, strict=True)]
            if any(s0 >= n for s0, n in zip(start, shape, strict=True)):
                continue  # outside the array: never read
            region = tuple(
                slice(s0, min(s0 + g, n))
                for s0, g, n in zip(start, grid, shape, strict=True)
            )
            if reader.error(apath, region) is not None:
                dst = root / DAMAGED_DIR / apath / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                f.replace(dst)
                moved.append(dst.relative_to(root).as_posix())
    return moved


def _remove_stale_temp_files(root: Path) -> None:
    """Delete half-written `zarr.json` temp files a killed writer left behind."""
    for tmp in root.rglob(".zarr.json.*.tmp"):
        tmp.unlink(missing_ok=True)
