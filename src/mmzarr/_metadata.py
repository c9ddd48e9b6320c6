"""Writing group metadata and the per-frame metadata log.

Owns the files mmzarr writes itself (array data belongs to the backends):
every group's `zarr.json`, written atomically (temp file + rename, so a crash
leaves the old or the new document, never half of one), and the append-only
per-frame metadata log `mmzarr/frames.jsonl` inside the dataset.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "FRAMES_LOG",
    "FrameLog",
    "read_frame_log",
    "read_json",
    "write_groups",
    "write_json_atomic",
]

#: Path of the per-frame metadata log, relative to the dataset root.
FRAMES_LOG = "mmzarr/frames.jsonl"


def write_json_atomic(path: Path, doc: Any, *, fsync: bool = True) -> None:
    """Write `doc` as JSON to `path` via a temporary file and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False, default=_json_default)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_groups(root: Path, docs: Mapping[str, Mapping[str, Any]]) -> None:
    """Write every group document (`{group_path: zarr.json}`) under `root`."""
    for key, doc in docs.items():
        write_json_atomic(root / key / "zarr.json" if key else root / "zarr.json", doc)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


class FrameLog:
    """Append-only JSON-lines log of per-frame metadata, flushed as it goes.

    Each line is one frame: image key, storage index and whatever metadata the
    front end gave (event index, timestamps, stage positions, properties...).
    The file is flushed to the OS on every line and fsynced at most every
    `fsync_interval_s`, so a killed process loses at most that much.
    """

    def __init__(self, path: Path, *, fsync_interval_s: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "a", encoding="utf-8")
        self._interval = fsync_interval_s
        self._last_sync = time.monotonic()

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record."""
        line = json.dumps(record, ensure_ascii=False, default=_json_default)
        self._f.write(line + "\n")
        self._f.flush()
        now = time.monotonic()
        if now - self._last_sync >= self._interval:
            os.fsync(self._f.fileno())
            self._last_sync = now

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


def read_frame_log(root: Path) -> list[dict[str, Any]]:
    """Records of a dataset's frame log (a torn last line is ignored)."""
    path = root / FRAMES_LOG
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records
