"""What `validate` reads of `finalize`'s record, `mmzarr/finalize.json`.

- `lost_frames`: the frames `finalize` could not keep (`lost`): not problems
  of a finalized dataset, their pixels are gone for good;
- `levels_missing`: the kept frames whose resolution levels `finalize` could
  not write again, and why; their missing level chunks stay problems (a level
  reads the fill value where level 0 has the frame, and the next finalize can
  write them), and `levels_missing_note` says why and what to do.

The record itself (what is written, and when) is `_finalize_record`'s.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LOST_FRAMES", "levels_missing", "levels_missing_note", "lost_frames"]

#: What `finalize` found missing or damaged, relative to the dataset root.
LOST_FRAMES = "mmzarr/finalize.json"

#: A frame as the record names it: (image key, storage index).
FrameKey = tuple[str, tuple[int, ...]]


def _entries(root: Path, name: str) -> list[Any]:
    """The list `name` of the record; empty if there is none or it is unreadable."""
    try:
        doc = json.loads((root / LOST_FRAMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = doc.get(name) if isinstance(doc, dict) else None
    return entries if isinstance(entries, list) else []


def _frame(entry: Any) -> FrameKey | None:
    """The frame a record entry (`{"image", "index", ...}`) names, if it is one."""
    try:
        return str(entry["image"]), tuple(int(i) for i in entry["index"])
    except (KeyError, TypeError, ValueError):
        return None


def lost_frames(root: Path) -> set[FrameKey]:
    """(image key, storage index) of the frames `finalize` recorded as lost."""
    return {f for x in _entries(root, "lost") if (f := _frame(x)) is not None}


def levels_missing(root: Path) -> dict[FrameKey, str]:
    """The frames whose levels `finalize` could not write, and why, in its order."""
    out: dict[FrameKey, str] = {}
    for x in _entries(root, "levels_missing"):
        if (f := _frame(x)) is not None:
            out[f] = str(x.get("reason", "no reason recorded"))
    return out


def levels_missing_note(reasons: list[str]) -> str:
    """Why the levels of frames are missing (`reasons`, one each) and the fix."""
    n = len(reasons)
    return (
        f"the resolution levels of {n} kept frame{'' if n == 1 else 's'} were not "
        f"written again by finalize ({reasons[0]}): listed as `levels_missing` in "
        f"{LOST_FRAMES}; run `mmzarr finalize` again once that is fixed"
    )
