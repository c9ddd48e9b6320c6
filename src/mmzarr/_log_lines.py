"""The frame log read for checking: the frames it names, and the lines it cannot use.

`finalize` keeps the frames a dataset's frame log names and lists the lines it
skipped in `mmzarr/finalize.json` (`skipped_log_lines`: the first
`MAX_LISTED_SKIPPED`, all counted); `validate` checks the frames and notes the
skipped lines. A line is skipped when it holds no record (torn by a kill, a
block of NULs), a record that is no frame record (an old log whose writer
fields a front end overwrote, an edit), or one naming no frame of the
dataset's settings. A skipped line costs at most a frame's metadata, not its
pixels: neither rewrites the log, which is the user's record of the run.
Records of dropped frames (`"dropped": true`) name no frame written and are not
skipped lines either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmzarr._metadata import frame_log_lines, parse_record

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location

__all__ = [
    "MAX_LISTED_SKIPPED",
    "FrameLogRead",
    "SkippedLine",
    "frame_key",
    "read_frames",
]

#: A frame as the log names it: (image key, storage index).
FrameKey = tuple[str, tuple[int, ...]]
#: Skipped lines `finalize.json` lists (it counts them all): never 100,000
MAX_LISTED_SKIPPED = 1000
#: The longest excerpt of a record a reason quotes.
_EXCERPT = 60


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A frame-log line that names no frame of the dataset."""

    file: str  # relative to the dataset root
    line: int  # from 1
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"

    def entry(self) -> dict[str, Any]:
        """As `finalize.json` lists it."""
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class FrameLogRead:
    """What `read_frames` found in a frame log."""

    #: every record (a JSON object) in order, as `read_frame_log` returns them
    records: list[dict[str, Any]]
    #: the frames the records name, in order (dropped frames left out)
    frames: list[FrameKey]
    skipped: list[SkippedLine]


def frame_key(record: dict[str, Any]) -> FrameKey | None:
    """(image key, storage index) of a frame-log record, or None if it has none.

    A record whose writer fields were overwritten by a front end's metadata (an
    old log: `append(metadata={"index": ...})`) has none.
    """
    image, index = record.get("image"), record.get("index")
    if not isinstance(image, str) or not isinstance(index, list):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in index):
        return None
    if any(v < 0 for v in index):
        return None
    return image, tuple(index)


def read_frames(
    root: Path | Location, settings: AcquisitionSettings | None = None
) -> FrameLogRead:
    """The frames the frame log at `root` names, and the lines it skipped.

    With `settings`, a record must also name one of its images, with an index
    of that image's dimensions.
    """
    dims = (
        {im.key: len(im.index_dims) for im in settings.images}
        if settings is not None
        else None
    )
    records: list[dict[str, Any]] = []
    frames: list[FrameKey] = []
    skipped: list[SkippedLine] = []
    for file, number, line in frame_log_lines(root):
        record = parse_record(line)
        if record is None:
            reason = f"not a JSON object ({_excerpt(line)})"
            skipped.append(SkippedLine(file, number, reason))
            continue
        records.append(record)
        if record.get("dropped"):
            continue
        frame = _frame_of(record, dims)
        if isinstance(frame, str):
            skipped.append(SkippedLine(file, number, frame))
        else:
            frames.append(frame)
    return FrameLogRead(records, frames, skipped)


def _frame_of(record: dict[str, Any], dims: dict[str, int] | None) -> FrameKey | str:
    """The frame `record` names, or why it names none of the dataset's.

    `dims`: the number of index dimensions of each image, if known.
    """
    key = frame_key(record)
    if key is None:
        image, index = record.get("image"), record.get("index")
        return f"not a frame record (image {_excerpt(image)}, index {_excerpt(index)})"
    if dims is None:
        return key
    image, index = key
    if image not in dims:
        return f"image {_excerpt(image)} is none of the dataset's"
    if len(index) != dims[image]:
        return (
            f"index {_excerpt(list(index))} does not fit image {image!r} "
            f"({dims[image]} dimension{'' if dims[image] == 1 else 's'})"
        )
    return key


def _excerpt(value: Any) -> str:
    """`value`'s repr, cut to `_EXCERPT` characters."""
    text = repr(value)
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 3] + "..."
