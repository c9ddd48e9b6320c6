"""Validate a dataset: OME-Zarr metadata, and every acquired frame on disk.

Three independent kinds of check, each reported as a problem line:
1. metadata: yaozarrs `validate_zarr_store` (NGFF v0.5 spec and structure) and
   every `zarr.json` parses;
2. chunks: for every frame the frame log says was written, the chunk (or shard)
   files that hold it, at every resolution level, exist, an uncompressed
   unsharded chunk has its full size, and a shard ends with an intact index
   (crc32c);
3. reads: every array is read in full (tensorstore, else zarr-python);
4. the OME-XML of a collection or plate parses and has the arrays' sizes
   (`_validate_xml`).
A dataset whose writer never closed (status `acquiring`: the process died, or
it still runs: it holds the dataset's lock) is reported as incomplete, with the
number of frames that are on disk (and, when reading, decode). Frame-log
lines that name no frame of the dataset (torn, or an old log whose fields a
front end overwrote: `_log_lines`) are named in a note, not problems: what
such a line costs is a frame's metadata, not its pixels. Frames that
`finalize` recorded as lost (`LOST_FRAMES`) are not problems of a finalized
dataset; they are counted in a note, as is a dataset in the fallback layout
(valid, its frames in arrival order) and why. The levels of frames that
`finalize` could not write (`levels_missing`) stay problems (a level reads the
fill value where level 0 has the frame; finalizing again writes them), and a
note says why (`_finalize_said`).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr._chunk_files import frame_is_complete
from mmzarr._dataset import SETTINGS_FILE
from mmzarr._finalize_said import (
    LOST_FRAMES,
    levels_missing,
    levels_missing_note,
    lost_frames,
)
from mmzarr._frame_reader import FrameReader, have_reader
from mmzarr._layout import array_path, is_file_folder
from mmzarr._leftovers import replaced_copies, replaced_note
from mmzarr._lock import lock_holder
from mmzarr._log_lines import read_frames
from mmzarr._replaceable import zarr_v2_note
from mmzarr._unplaced import unplaced_siblings
from mmzarr._validate_xml import ome_xml_problems

if TYPE_CHECKING:
    from mmzarr._log_lines import SkippedLine
    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "LOST_FRAMES",
    "ValidationReport",
    "array_documents",
    "lost_frames",
    "read_settings",
    "validate",
]


@dataclass
class ValidationReport:
    """What `validate` found.

    Attributes
    ----------
    path
        The dataset.
    problems
        One line per problem; empty when valid.
    layout
        `image`, `collection`, `plate` or None if unknown.
    arrays
        Array path -> shape, for every array found.
    status
        The writer's status (`complete`, `cancelled`, `acquiring`, `failed`), if
        the dataset was written by mmzarr.
    frames_logged
        Frames the frame log says were written.
    frames_complete
        Of those, frames whose chunks are on disk.
    notes
        Information that is not a problem (reader used, skipped checks).
    """

    path: Path
    problems: list[str] = field(default_factory=list)
    layout: str | None = None
    arrays: dict[str, tuple[int, ...]] = field(default_factory=dict)
    status: str | None = None
    frames_logged: int = 0
    frames_complete: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    @property
    def incomplete(self) -> bool:
        """True when the writer never closed the dataset (a crash)."""
        return self.status == "acquiring"

    def format(self) -> str:
        """A human-readable summary."""
        n = len(self.problems)
        head = "valid" if self.ok else f"INVALID ({n} problem{'' if n == 1 else 's'})"
        lines = [f"{self.path}: {head}"]
        if self.layout:
            k = len(self.arrays)
            lines.append(f"  layout: {self.layout}, {k} array{'' if k == 1 else 's'}")
        if self.status:
            lines.append(f"  status: {self.status}")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def array_documents(root: Path) -> dict[str, dict[str, Any]]:
    """`{array_path: zarr.json}` for every image array under `root`.

    The folders of mmzarr's own files (`mmzarr/`, a plate's `OME/`) are
    declared as empty arrays (`_layout.file_folder`): they are left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for zj in sorted(_zarr_documents(root)):
        try:
            doc = json.loads(zj.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(doc, dict)
            and doc.get("node_type") == "array"
            and not is_file_folder(doc)
        ):
            out[zj.parent.relative_to(root).as_posix()] = doc
    return out


def _zarr_documents(root: Path) -> list[Path]:
    """Every `zarr.json` below `root`, also through a link to a zarr node.

    A user who moved an array (or a group) to another disk and linked it back
    has not removed it: `rglob` does not follow links, and finalize took its
    frames for lost (and moved their levels aside). A linked directory is
    followed only when it holds a `zarr.json`, each directory once.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == "zarr.json" and entry.is_file():
                found.append(folder / entry.name)
            elif entry.is_dir(follow_symlinks=False):
                todo.append(folder / entry.name)
            elif entry.is_symlink() and entry.is_dir():
                if os.path.isfile(os.path.join(entry.path, "zarr.json")):
                    todo.append(folder / entry.name)
    return found


def _layout_of(attrs: dict[str, Any]) -> str | None:
    ome = attrs.get("ome", {})
    if "multiscales" in ome:
        return "image"
    if "bioformats2raw.layout" in ome:
        return "collection"
    if "plate" in ome:
        return "plate"
    return None


def validate(path: str | Path, *, read: bool = True) -> ValidationReport:
    """Check an OME-Zarr dataset; see the module docstring for what is checked.

    Parameters
    ----------
    path
        The dataset root.
    read
        Also read every array in full.
    """
    root = Path(path)
    report = ValidationReport(path=root)
    root_json = root / "zarr.json"
    if not root_json.is_file():
        report.problems.append(f"{root_json} is missing: not a zarr v3 group")
        for note in (zarr_v2_note(root), replaced_note(root)):
            if note:
                report.problems.append(note)
        return report
    for zj in sorted(root.rglob("zarr.json")):
        try:
            json.loads(zj.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            report.problems.append(f"{zj.relative_to(root)}: unreadable JSON ({e})")
    try:
        root_doc = json.loads(root_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        root_doc = None  # said above: unreadable JSON
    attrs = root_doc.get("attributes", {}) if isinstance(root_doc, dict) else {}
    attrs = attrs if isinstance(attrs, dict) else {}
    report.layout = _layout_of(attrs)
    mm = attrs.get("mmzarr")
    report.status = mm.get("status") if isinstance(mm, dict) else None
    fallback = mm.get("fallback") if isinstance(mm, dict) else None
    if fallback:  # valid, but not the plan's layout: say so, as `info` does
        report.notes.append(
            f"fallback layout: {fallback}; frames are in arrival order along t, "
            "each frame's own index is in mmzarr/frames.jsonl"
        )
    settings = None  # to tell a frame of the dataset in the frame log
    if isinstance(mm, dict) and (root / SETTINGS_FILE).is_file():
        try:
            settings = read_settings(root)
        except ValueError as e:
            report.problems.append(
                f"{e}: `mmzarr finalize` cannot repair the dataset without it "
                "(restore it from a copy)"
            )
    if not attrs and (root / SETTINGS_FILE).is_file():
        # acquire-zarr's close rewrites groups bare; its writer died before
        # writing them again: as incomplete as a writer that never closed
        report.status = "acquiring"
        if isinstance(root_doc, dict):
            report.problems.append(
                "the root group has no metadata: its writer died while closing "
                "(acquire-zarr had rewritten the groups bare)"
            )

    try:
        import yaozarrs

        yaozarrs.validate_zarr_store(str(root))
    except Exception as e:
        report.problems.append(f"OME-Zarr metadata: {_error_text(e)}")

    docs = array_documents(root)
    report.arrays = {k: tuple(v.get("shape", ())) for k, v in docs.items()}
    if isinstance(mm, dict) and not report.incomplete:
        report.notes.extend(_holes(mm, docs))
    if isinstance(mm, dict) and (siblings := unplaced_siblings(root)):
        report.notes.append(
            f"frames that did not fit this dataset are kept beside it in {siblings}"
        )
    if not report.incomplete:  # an unfinished writer writes it at close
        report.problems.extend(ome_xml_problems(root, report.arrays))
    reader = FrameReader(root) if read and report.incomplete else None
    _check_frames(root, docs, report, reader, settings)
    holder = lock_holder(root) if report.incomplete else None
    if holder is not None:
        report.problems.append(
            f"incomplete: still being written by {holder}; "
            f"{report.frames_complete} of {report.frames_logged} logged frames "
            "are complete so far"
        )
    elif report.incomplete:
        report.problems.append(
            f"incomplete: the writer never closed this dataset (crash?); "
            f"{report.frames_complete} of {report.frames_logged} logged frames are "
            "complete; run `mmzarr finalize` to make it valid"
        )
    aside = [str(p) for p in replaced_copies(root)]
    if aside:
        report.notes.append(
            f"the dataset this one replaced is still kept at {aside} (its writer "
            "was stopped while replacing it): move it back or delete it"
        )
    if read and not have_reader():
        report.notes.append(
            'arrays were not read: install a reader (pip install "mmzarr[tensorstore]")'
        )
    elif read:
        reader = reader or FrameReader(root)  # keeps the arrays it opened above
        for name in docs:
            why = reader.error(name, (Ellipsis,))  # the whole array
            if why is not None:
                report.problems.append(f"array {name!r} cannot be read: {why}")
    if report.status == "failed" and settings is not None and report.problems:
        # storage failed while frames it had accepted were on their way: the
        # root counts them, some chunks are torn or missing
        report.problems.append(
            "failed: the writer stopped on an error (storage?) and counted frames "
            "it had accepted; some did not reach storage whole: run `mmzarr "
            "finalize` to keep those that did and make it valid"
        )
    return report


#: Missing slots `validate` names per image (the root's status lists more).
_NAMED_HOLES = 5


def _holes(mm: dict[str, Any], docs: dict[str, dict[str, Any]]) -> list[str]:
    """A note per image with planned slots that hold no frame (the root's status).

    A closed dataset may be valid and still miss frames: the camera failed to
    snap one, the run was cancelled, a frame was dropped. They read as the
    fill value.
    """
    images = mm.get("images")
    out: list[str] = []
    for key, entry in (images if isinstance(images, dict) else {}).items():
        n = entry.get("missing_count") if isinstance(entry, dict) else None
        if not isinstance(n, int) or n <= 0:
            continue
        doc = docs.get(array_path(key), {})
        listed = entry.get("missing") or []
        named = [
            _slot_text(doc, idx)
            for idx in listed[:_NAMED_HOLES]
            if isinstance(idx, list)
        ]
        more = f" and {n - len(named)} more" if named and n > len(named) else ""
        which = f": {', '.join(named)}{more}" if named else ""  # too many listed
        out.append(
            f"image {key or '(root)'!r}: {n} planned frame{'' if n == 1 else 's'} "
            f"never written (read as the fill value){which}"
        )
    return out


def _slot_text(doc: dict[str, Any], idx: list[int]) -> str:
    """A storage index as ``{t: 1, c: 0}``: the array's dimensions before y, x."""
    names = doc.get("dimension_names")
    names = names[:-2] if isinstance(names, list) else []
    if len(names) != len(idx):  # an image of one frame has the index [0]
        return str(idx)
    return "{" + ", ".join(f"{n}: {i}" for n, i in zip(names, idx, strict=True)) + "}"


def _check_frames(
    root: Path,
    docs: dict[str, dict[str, Any]],
    report: ValidationReport,
    reader: FrameReader | None,
    settings: AcquisitionSettings | None,
) -> None:
    """Count (incomplete dataset) or check (closed dataset) every logged frame.

    `reader`: also decode each complete frame inside its array's shape. A line
    that names no frame of the dataset (`settings`, if known) is noted: what
    it cost is that frame's metadata, not its pixels.
    """
    log = read_frames(root, settings)
    if log.skipped:
        report.notes.append(_skipped_note(log.skipped))
    report.frames_logged = len(log.frames)
    problems: list[str] | None = None if report.incomplete else report.problems
    lost = lost_frames(root)
    if lost:
        report.notes.append(
            f"{len(lost)} logged frames were lost when the writer stopped "
            f"(listed in {LOST_FRAMES})"
        )
    if why_levels := levels_missing(root):  # their level chunks: still problems
        report.notes.append(levels_missing_note(list(why_levels.values())))
    missing_arrays: set[str] = set()
    for key, index in log.frames:
        if (key, index) in lost:
            continue
        array = array_path(key)
        doc = docs.get(array)
        if doc is None:
            if problems is not None and array not in missing_arrays:
                problems.append(f"array {array!r} (logged frames) is missing")
            missing_arrays.add(array)
            continue
        if len(index) != len(doc.get("shape", ())) - 2:
            report.problems.append(
                f"array {array!r}: logged frame {list(index)} does not fit its "
                f"shape {doc.get('shape')}"
            )
            continue
        ok = frame_is_complete(root, array, doc, index, report.incomplete, problems)
        for level in itertools.count(1):  # its resolution levels, if any
            level_doc = docs.get(lpath := f"{key}/{level}" if key else str(level))
            if level_doc is None:
                break
            ok &= frame_is_complete(
                root, lpath, level_doc, index, report.incomplete, problems
            )
        inside = all(i < s for i, s in zip(index, doc["shape"], strict=False))
        if ok and reader is not None and reader.available and inside:
            ok = reader.error(array, index) is None
        report.frames_complete += ok


#: Skipped frame-log lines `validate` names (`finalize.json` lists more).
_NAMED_LINES = 5


def _skipped_note(skipped: list[SkippedLine]) -> str:
    """The note on the frame-log lines that name no frame (`_log_lines`)."""
    n = len(skipped)
    named = "; ".join(str(s) for s in skipped[:_NAMED_LINES])
    more = f"; and {n - _NAMED_LINES} more" if n > _NAMED_LINES else ""
    return (
        f"{n} frame-log line{'' if n == 1 else 's'} name{'s' if n == 1 else ''} "
        f"no frame of this dataset, skipped (at most a frame's metadata is lost, "
        f"not its pixels): {named}{more}"
    )


def read_settings(root: Path) -> AcquisitionSettings:
    """The settings the writer of the dataset at `root` wrote.

    Raises
    ------
    FileNotFoundError
        When `mmzarr/settings.json` is missing.
    ValueError
        In one line, naming the file, when it does not parse (torn, edited).
    """
    from mmzarr._settings import AcquisitionSettings

    path = root / SETTINGS_FILE
    try:
        return AcquisitionSettings.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as e:  # pydantic's ValidationError, UnicodeDecodeError
        raise ValueError(f"{str(path)!r} is damaged ({_error_text(e)})") from None


def _error_text(e: Exception, most: int = 10) -> str:
    """`e` on one line; a pydantic error as its failures (`where: what`).

    pydantic's own text spans lines, with a link after each failure.
    """
    try:
        failures = e.errors()  # type: ignore[attr-defined]
        said = [
            f"{'.'.join(str(p) for p in f.get('loc', ())) or '(root)'}: {f['msg']}"
            for f in failures
        ]
    except Exception:  # not pydantic's: its own text
        return f"{type(e).__name__}: {' '.join(str(e).split())}"
    more = f"; and {len(said) - most} more" if len(said) > most else ""
    return f"{type(e).__name__}: {'; '.join(said[:most])}{more}"
