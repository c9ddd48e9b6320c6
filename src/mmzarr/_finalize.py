"""`finalize(path)`: turn a dataset whose writer died into a valid one.

A killed writer leaves group metadata saying `acquiring`, arrays whose shape may
not match what reached the disk (an unbounded `t`), a frame log whose last
records may name frames that never reached the disk, and possibly a chunk or
shard file that was being written (a shard without its index). Finalizing keeps
every logged frame whose chunks are on disk and decode (and, where a chunk file
holds one frame, every frame on disk that the writer died, or a storage failure
stopped it, before logging: the log is written every `flush_interval_s / 2`;
not one all of the fill value, which is how acquire-zarr stores a slot given up),
sets unbounded arrays' `t` to the
time points that hold data, moves chunk files that do not decode (and
tensorstore's temporary files of writes it never finished) to
`mmzarr/damaged/` (never deletes them), writes again the resolution levels of
kept frames that lack them (`_level_repair`: computed from level 0), records
the frames it could not keep in `mmzarr/finalize.json` (`LOST_FRAMES`) and
rewrites the group metadata with
status `interrupted` (a `failed` status stays). Only metadata and levels are
written: those kept frames lack, and those of the frames the writer was writing
the levels of when it stopped (a shard it wrote may hold them as the fill
value; the same pixels are written again). No level-0 chunk is written. The
frame log is only read: its lines that name no frame (torn, not a frame
record) are skipped and listed (`skipped_log_lines`).

Every step is recorded before it is done, and each is idempotent: the record
(`finalize.json`, `"state": "in progress"`) is written first, with the chunk
files about to be moved, and completed last (`"state": "done"`). A finalize
that cannot write its record (a full disk) changes nothing but what the writer
left for it (the space it kept, its temporary files); one interrupted after
moving files is finished by the next, which still lists them. The writer's
leftovers are removed first: its reserved space (`_storage.RESERVE_FILE`), its
half-written documents (`.NAME.PID.TID.tmp`) and acquire-zarr's hidden sibling
(`.NAME.mmzarr-acquire-zarr`, links only).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr import _layout, _metadata
from mmzarr._array_docs import array_document
from mmzarr._dataset import (
    SETTINGS_FILE,
    ChannelRanges,
    read_summary,
    write_group_metadata,
)
from mmzarr._finalize_record import FinalizeRecord, read_json_object
from mmzarr._finalize_said import LOST_FRAMES
from mmzarr._frame_reader import FrameReader
from mmzarr._kept_frames import (
    Frame,
    chunk_files,
    engine_temp_files,
    frame_entry,
    is_fill,
    kept_records,
    on_disk,
    other_chunks,
    split,
    unlogged,
)
from mmzarr._leftovers import opening_leftovers, replaced_copies
from mmzarr._level_repair import damaged_level_files, level_files, rebuild_levels
from mmzarr._locations import as_location
from mmzarr._lock import DatasetLock, canonical, lock_holder
from mmzarr._log_lines import MAX_LISTED_SKIPPED, read_frames
from mmzarr._omexml import OME_XML, has_ome_xml, render_ome_xml
from mmzarr._pyramid import all_arrays
from mmzarr._routing import Ledger
from mmzarr._stream_close import CLOSING_STATUSES
from mmzarr._validate import (
    ValidationReport,
    array_documents,
    read_settings,
    validate,
)
from mmzarr._writable import check_writable, not_writable
from mmzarr._writes import atomic_temp_pattern
from mmzarr.backends._acquire_disk import remove_sibling, sibling_path
from mmzarr.backends._base import last_time_point
from mmzarr.errors import DatasetLockedError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mmzarr._settings import AcquisitionSettings

__all__ = ["DAMAGED_DIR", "finalize"]

logger = logging.getLogger("mmzarr")

#: Where chunk files that do not decode are moved, relative to the dataset root.
DAMAGED_DIR = "mmzarr/damaged"
_RECORD_DIR = LOST_FRAMES.rsplit("/", 1)[0]
#: The statuses of a dataset its writer closed, or a finalize made valid
CLOSED = (*CLOSING_STATUSES, "interrupted")
_OME_DIR, _OME_NAME = OME_XML.rsplit("/", 1)
#: `write_file_atomic`'s temporary files (`.NAME.PID.THREAD.tmp`) of the files
#: mmzarr writes: a group's or array's `zarr.json` anywhere, its own files under
#: `mmzarr/` and the OME-XML. A user's file of another name is never deleted.
_TEMP = re.compile(
    rf"^(?:.+/)?{atomic_temp_pattern(re.escape('zarr.json'))}$"
    rf"|^mmzarr/(?:.+/)?{atomic_temp_pattern('[^/]+')}$"
    rf"|^{re.escape(_OME_DIR)}/{atomic_temp_pattern(re.escape(_OME_NAME))}$"
)


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
    OSError
        When its record cannot be written (a full disk): nothing was changed.
    PermissionError
        (an `OSError`) In one line naming the folder it cannot write (read-only):
        nothing was changed, or, found later, the next finalize finishes.
    """
    root = canonical(Path(path))  # the readers refuse "..": resolved as the kernel does
    settings_file = root / SETTINGS_FILE
    kept = [str(p) for p in replaced_copies(root)]
    where = f"; the dataset it was replacing is kept at {kept}" if kept else ""
    if not settings_file.is_file() and opening_leftovers(root):
        raise FileNotFoundError(
            f"{str(settings_file)!r} not found: the writer died while opening "
            f"{str(root)!r}, before writing its settings; nothing was acquired "
            f"(overwrite=True replaces it){where}"
        )
    if not settings_file.is_file():
        raise FileNotFoundError(
            f"{str(settings_file)!r} not found: only datasets written by mmzarr can "
            f"be finalized{where}"
        )
    if not (root / "zarr.json").is_file():
        raise FileNotFoundError(
            f"{str(root / 'zarr.json')!r} not found: the writer died while opening "
            f"{str(root)!r}, before its first frame{where}"
        )
    lock = _lock(root)
    try:
        # its record and the root's metadata: or it stops before changing anything
        try:
            check_writable(root, ("", _RECORD_DIR))
        except PermissionError:
            # read-only: a dataset that needs nothing is said valid, not refused
            if (report := _closed_and_valid(root)) is not None:
                return report
            raise
        return _finalize(root)
    except OSError as e:
        said = not_writable(e)  # in one line, naming the folder
        if said is None:
            raise
        raise said from e
    finally:
        if lock is not None:
            lock.release()


def _closed_and_valid(root: Path) -> ValidationReport | None:
    """The validation of a closed, valid dataset; None for any other.

    Closed by its writer or finalized, with no finalize of it unfinished: it
    needs no repair (a finalize would only record what it found).
    """
    attrs = read_json_object(root / "zarr.json").get("attributes")
    mm = attrs.get("mmzarr") if isinstance(attrs, dict) else None
    status = mm.get("status") if isinstance(mm, dict) else None
    record = root / LOST_FRAMES
    if status not in CLOSED or (
        record.is_file() and read_json_object(record).get("state") != "done"
    ):
        return None
    report = validate(root)
    return report if report.ok else None


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


def _finalize(root: Path) -> ValidationReport:
    settings = _read_settings(root)
    # a root document that does not parse (torn, or not an object) is written
    # again below: the writer is taken to have died while acquiring
    root_attrs = read_json_object(root / "zarr.json").get("attributes")
    old = root_attrs.get("mmzarr") if isinstance(root_attrs, dict) else None
    old = old if isinstance(old, dict) else {}
    status = old.get("status", "acquiring")
    # what the writer left for this: the space it kept, its half-written
    # documents, acquire-zarr's links (nothing of the dataset's content)
    as_location(root).release_space()
    _remove_stale_temp_files(root)
    try:
        remove_sibling(sibling_path(root))
    except OSError as e:  # not ours after all: keep it, say so
        logger.warning("mmzarr: %s", e)
    record = FinalizeRecord(root, status)
    record.write(step="reading")  # raises on a full disk: nothing changed yet

    # a line naming no frame of the settings is skipped and listed, the log
    # left as it is: it is the user's record of the run
    log = read_frames(root, settings)
    index_of = {im.key: i for i, im in enumerate(settings.images)}
    logged: list[Frame] = [(index_of[image], index) for image, index in log.frames]
    records = log.records

    moves: set[str] = set()  # chunk files to move aside
    # acquire-zarr rewrites an array's zarr.json in place: a writer killed
    # meanwhile leaves it torn, and every frame of the array would be lost;
    # one killed while opening may have written the root before every array
    _rewrite_torn_array_documents(root, settings, old.get("backend"))
    # acquire-zarr leaves a bounded array shaped by its complete time points:
    # its planned shape first, so that later frames on disk are looked at
    _set_t_sizes(root, settings, logged)
    kept, reasons = on_disk(root, settings, logged, moves)
    before = record.doc["status_before"]
    written = old.get("frames_written")
    if before == "acquiring" or (
        # the frame log has fewer records than the writer wrote frames:
        # storage failed before it had every one, or it lost some since
        isinstance(written, int) and len(logged) < written
    ):
        # the writer died: frames written within flush_interval_s before may
        # be on disk without their record; kept when a chunk file holds just
        # them or a shard's index lists them (a writer that closed wrote every
        # record first, unless storage failed)
        found, _ = on_disk(root, settings, unlogged(root, settings, logged), set())
        kept += found
    recovered = set(kept) - set(logged)
    _set_t_sizes(root, settings, kept)  # metadata only: to read what is kept
    reader = FrameReader(root)
    docs = array_documents(root)
    ranges = ChannelRanges(settings)  # display windows from the frames kept
    fill: list[Frame] = []  # unlogged, all of the fill value: no frame known
    if reader.available:
        decoded: list[Frame] = []
        for i, index in kept:
            apath = _layout.array_path(settings.images[i])
            pixels, error = reader.read(apath, index)
            if error is not None:
                moves.update(chunk_files(root, apath, index))
                reasons[(i, index)] = f"does not decode ({error})"
            elif (i, index) in recovered and is_fill(pixels, docs.get(apath)):
                # a slot the writer gave up (its frame went beside, or never
                # came), stored as the fill value, or a frame of only that
                # value (a dark frame of 0s): not counted, listed as such, and
                # inside the array (an unbounded t is not cut before it)
                fill.append((i, index))
            else:
                decoded.append((i, index))
                if pixels is not None:
                    ranges.update(i, index, pixels)
        kept = decoded
        moves.update(other_chunks(root, settings, kept, reader))
        # a level chunk of a kept frame that does not decode: rebuilt below
        moves.update(damaged_level_files(root, settings, kept, reader))
        # frames sharing a file moved aside are gone too
        kept, gone = split(root, settings, kept, moves)
        for frame, why in gone.items():
            reasons.setdefault(frame, why)
    # a lost frame's levels go too (aside), or a viewer would show it zoomed
    # out and black at full resolution; kept frames sharing those files have
    # their levels written again below
    kept_set = set(kept)
    moves.update(level_files(root, settings, [f for f in reasons if f not in kept_set]))
    # a write tensorstore never renamed into place: aside, as a torn chunk
    moves.update(engine_temp_files(root, settings))

    planned = {src: _destination(root, src) for src in sorted(moves)}
    # why each frame is lost, before its files move: once moved they are
    # "missing", and a finalize interrupted here is finished by the next; a
    # frame an earlier finalize lost keeps the reason it gave
    lost = [
        frame_entry(
            settings,
            f,
            reason=record.earlier_reasons.get((settings.images[f[0]].key, f[1]), why),
        )
        for f, why in reasons.items()
        if f not in recovered  # never logged: not known to be lost
    ]
    record.write(step="moving", damaged_files=sorted(planned.values()), lost=lost)
    for src, dst in planned.items():
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        (root / src).replace(root / dst)
    _set_t_sizes(root, settings, kept, fill)
    rebuilt, not_rebuilt = rebuild_levels(
        root,
        settings,
        kept,
        reader,
        pending=record.pending,
        before=lambda todo: record.write(step="writing levels", levels_pending=todo),
    )
    written = _mark(settings, kept, reach=fill)
    record.write(
        step="done",
        state="done",
        frames_logged=len(logged),
        skipped_log_lines=[x.entry() for x in log.skipped[:MAX_LISTED_SKIPPED]],
        skipped_log_lines_count=len(log.skipped),
        frames_not_logged=[frame_entry(settings, f) for f in kept if f in recovered],
        fill_not_logged=[
            frame_entry(settings, f, reason=FILL_NOT_LOGGED) for f in fill
        ],
        frames_kept=sum(w.count for w in written),
        reader=reader.engine,
        lost=lost,
        damaged_files=sorted(planned.values()),
        levels_rebuilt=record.rebuilt
        + [
            entry
            for f in rebuilt
            if (entry := frame_entry(settings, f)) not in record.rebuilt
        ],
        levels_missing=[
            frame_entry(settings, f, reason=why) for f, why in not_rebuilt.items()
        ],
        levels_pending=[],
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
        keep_user_attributes=True,
        # a plane per frame the arrays hold: none for a lost one, a bare one
        # for a kept frame the log never had
        ome_xml=has_ome_xml(settings)
        and render_ome_xml(
            settings,
            kept_records(settings, records, kept),
            read_summary(as_location(root)),
            last_time_point(w.t_size for w in written),
        ),
    )
    report = validate(root)
    if fill:
        report.notes.append(
            f"{len(fill)} slot(s) on disk hold only the fill value and have no "
            f"frame-log record, counted missing: {FILL_NOT_LOGGED} "
            "(`fill_not_logged` in mmzarr/finalize.json)"
        )
    if not reader.available:
        report.notes.append("no tensorstore or zarr-python: chunks were not decoded")
    # the levels it could not write (`levels_missing`): validate says why
    return report


def _read_settings(root: Path) -> AcquisitionSettings:
    """The writer's settings; a `ValueError` in one line if they do not parse."""
    try:
        return read_settings(root)
    except ValueError as e:
        raise ValueError(
            f"{e}: finalize needs the settings its writer wrote; nothing was changed"
        ) from None


#: what a slot on disk of only the fill value, without its log record, is
FILL_NOT_LOGGED = (
    "a slot the writer gave up (its frame kept beside, or never acquired) or a "
    "frame of only that value (e.g. a dark frame of 0s) whose log line was "
    "lost; either reads the same"
)


def _mark(
    settings: AcquisitionSettings, frames: Iterable[Frame], reach: Iterable[Frame] = ()
) -> list[Ledger]:
    """The ledgers of `frames`; an unbounded `t` also reaches the slots `reach`."""
    written = [Ledger(im) for im in settings.images]
    for i, index in frames:
        written[i].mark(index)
    for i, index in reach:
        if settings.images[i].unbounded:
            written[i].t_size = max(written[i].t_size, index[0] + 1)
    return written


def _set_t_sizes(
    root: Path,
    settings: AcquisitionSettings,
    frames: Iterable[Frame],
    reach: Iterable[Frame] = (),
) -> None:
    """Give every array the shape to read what is kept.

    An unbounded `t` is the `last_time_point` of those that hold `frames` (or
    the slots `reach`); a bounded array has its planned shape.
    """
    written = _mark(settings, frames, reach)
    t_size = last_time_point(w.t_size for w in written)
    docs = array_documents(root)
    for spec in all_arrays(settings):  # every resolution level
        doc = docs.get(spec.path)
        if doc is None:
            continue
        shape = [t_size if d.size is None else d.size for d in spec.settings.dimensions]
        if list(doc["shape"]) != shape:
            doc["shape"] = shape
            _metadata.write_json_atomic(root / spec.path / "zarr.json", doc)


#: `Stream.backend_name` of the backend that shards every array
_ALWAYS_SHARDED = "AcquireZarrBackend"
_BACKENDS = ("AcquireZarrBackend", "TensorStoreBackend", "ZarrPythonBackend")


def _rewrite_torn_array_documents(
    root: Path, settings: AcquisitionSettings, backend: Any
) -> None:
    """Write again, from the settings, each array `zarr.json` missing or torn.

    Only where the writer's backend is known (the root document names it):
    it decides whether the chunk files are shards. The shape is set after
    (`_set_t_sizes`).
    """
    if backend not in _BACKENDS:
        return
    for spec in all_arrays(settings):
        doc_path = root / spec.path / "zarr.json"
        try:
            doc = json.loads(doc_path.read_bytes())
            why = "not an array document"
        except FileNotFoundError:
            doc, why = None, "missing"
        except ValueError:
            doc, why = None, "torn"
        if isinstance(doc, dict) and doc.get("node_type") == "array":
            continue
        logger.warning("mmzarr: %s is %s: written again", doc_path, why)
        doc_path.parent.mkdir(parents=True, exist_ok=True)
        sharded = backend == _ALWAYS_SHARDED or spec.settings.sharded
        _metadata.write_json_atomic(
            doc_path,
            array_document(
                spec.settings, settings.dtype, settings.compression, sharded=sharded
            ),
        )


def _destination(root: Path, src: str) -> str:
    """Where chunk file `src` goes in `DAMAGED_DIR` (never over another file)."""
    dst = f"{DAMAGED_DIR}/{src}"
    n = 0
    while (root / dst).exists():
        n += 1
        dst = f"{DAMAGED_DIR}/{src}.{n}"
    return dst


def _remove_stale_temp_files(root: Path) -> None:
    """Delete the half-written documents a killed writer left behind."""
    for tmp in root.rglob(".*.tmp"):
        if _TEMP.match(tmp.relative_to(root).as_posix()) and tmp.is_file():
            tmp.unlink(missing_ok=True)
