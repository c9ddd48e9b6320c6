"""`mmzarr/finalize.json`: what `finalize` is doing, and did.

Written before each step (`"state": "in progress"`, with the chunk files about
to be moved) and completed last (`"state": "done"`); what an earlier finalize
recorded (the files it moved, why it lost each frame, the levels it wrote or
was writing or could not write, the status it found) is carried over, so that
finalizing again finds the same, and a finalize interrupted on a finalized
dataset leaves what `validate` reads of it (`lost`, `levels_missing`).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from mmzarr import _metadata
from mmzarr._finalize_said import LOST_FRAMES

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FinalizeRecord", "read_json_object"]


class FinalizeRecord:
    """`finalize.json`: written before each step, completed at the end."""

    def __init__(self, root: Path, status: str) -> None:
        self.path = root / LOST_FRAMES
        earlier = read_json_object(self.path)
        # files an earlier finalize moved are listed again (where they are),
        # and the status the writer left is the one it found: finalizing again
        # finds the same frames
        self.moved: list[str] = [
            f
            for f in earlier.get("damaged_files", [])
            if isinstance(f, str) and (root / f).is_file()
        ]
        #: why an earlier finalize lost each frame: its file has been moved
        #: since, and is not "missing" now
        self.earlier_reasons: dict[tuple[str, tuple[int, ...]], str] = {}
        for x in earlier.get("lost", []):
            try:
                key = (str(x["image"]), tuple(int(i) for i in x["index"]))
                self.earlier_reasons[key] = str(x["reason"])
            except (KeyError, TypeError, ValueError):
                continue
        #: frames whose levels an earlier finalize wrote: listed again
        rebuilt = earlier.get("levels_rebuilt")
        self.rebuilt: list[Any] = rebuilt if isinstance(rebuilt, list) else []
        #: frames whose levels an interrupted finalize was writing: written
        #: again (a shard it wrote may hold them as the fill value)
        pending = (
            earlier.get("levels_pending") if earlier.get("state") != "done" else []
        )
        self.pending: list[Any] = pending if isinstance(pending, list) else []
        before = earlier.get("status_before")
        self.doc: dict[str, Any] = {
            "finalized": datetime.datetime.now(datetime.UTC).isoformat(),
            "state": "in progress",
            "status_before": before if isinstance(before, str) else status,
        }
        # what validate reads (`_finalize_said`) stays until this finalize
        # replaces it: interrupted before, the frames an earlier one lost
        # (their files moved aside) read as missing, and the next one said
        # they were lost for being missing
        for name in ("lost", "levels_missing"):
            if isinstance(said := earlier.get(name), list):
                self.doc[name] = said

    def write(self, **fields: Any) -> None:
        """Record `fields` (and the files moved so far); raise if it cannot.

        The files this finalize is moving stay listed in the records written
        after the one that names them (a kill then leaves them listed, and the
        next finalize lists them again).
        """
        files = fields.get("damaged_files", self.doc.get("damaged_files", []))
        self.doc.update(fields)
        self.doc["damaged_files"] = self.moved + [
            f for f in files if f not in self.moved
        ]
        _metadata.write_json_atomic(self.path, self.doc)


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; empty if it is missing, torn or no object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
