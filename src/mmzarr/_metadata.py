"""Writing group metadata and the per-frame metadata log.

Owns the files mmzarr writes itself (array data belongs to the backends):
every group's `zarr.json`, written atomically (temp file + rename, so a crash
leaves the old or the new document, never half of one), and the append-only
per-frame metadata log `mmzarr/frames.jsonl` inside the dataset, appended in
batches by the stream's flush thread (`FrameLog`). On object storage (S3),
where nothing can be appended, the log is a series of segment objects
`mmzarr/frames/000000.jsonl`, ... (`SegmentedFrameLog`): the current segment is
rewritten at each flush that has new records and a new one started every
`SEGMENT_RECORDS` records; `read_frame_log` reads either form.
"""

from __future__ import annotations

import collections
import errno
import json
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mmzarr._locations import as_location
from mmzarr._writes import write_file_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mmzarr._storage import Location

__all__ = [
    "FRAMES_LOG",
    "FRAME_SEGMENTS",
    "RECORD_FIELDS",
    "SEGMENT_RECORDS",
    "FrameLog",
    "SegmentedFrameLog",
    "dumps_json",
    "frame_log_lines",
    "frame_metadata",
    "frame_record",
    "parse_record",
    "read_frame_log",
    "read_json",
    "write_groups",
    "write_json_atomic",
]

#: Path of the per-frame metadata log, relative to the dataset root.
FRAMES_LOG = "mmzarr/frames.jsonl"
#: Key prefix of the frame log's segments on object storage.
FRAME_SEGMENTS = "mmzarr/frames/"
#: Records per segment of a `SegmentedFrameLog`.
SEGMENT_RECORDS = 1000


def dumps_json(doc: Any) -> bytes:
    """`doc` as the UTF-8 JSON mmzarr writes (one line and a newline).

    Standard JSON: NaN and infinities are written as null (`_dumps`). Not
    indented: only unindented output uses json's C encoder, which is ~10x
    faster (a plate writes hundreds of group documents).
    """
    return _encode(_dumps(doc) + "\n")


def _dumps(doc: Any) -> str:
    """`doc` as one line of standard JSON; never raises for what a user passes.

    Python's json writes NaN and +-Infinity as the non-standard `NaN`/
    `Infinity`, which other JSON readers refuse (a camera property or a lost
    stage position can be NaN): they become null. Keys JSON cannot hold (a
    tuple), circular references and objects whose text fails are written as
    text (`_plain`).
    """
    try:
        return json.dumps(
            doc, ensure_ascii=False, allow_nan=False, default=_json_default
        )
    except (ValueError, TypeError, RecursionError):
        return json.dumps(_plain(doc), ensure_ascii=False, allow_nan=False)


#: nesting kept by `_plain`; deeper values (a circular reference) become text
_MAX_DEPTH = 64


def _plain(obj: Any, depth: int = 0) -> Any:
    """`obj` as plain JSON values: str keys, finite floats, lists, text."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if depth >= _MAX_DEPTH:
        return _text(obj)
    if isinstance(obj, Mapping):
        return {
            k if isinstance(k, str) else _text(k): _plain(v, depth + 1)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in obj]
    return _plain(_json_default(obj), depth + 1)


def _text(obj: Any) -> str:
    """`str(obj)`, or its type's name when that fails."""
    try:
        return str(obj)
    except Exception:
        return f"<{type(obj).__name__}>"


def _encode(text: str) -> bytes:
    """UTF-8; a lone surrogate (not UTF-8) becomes its JSON escape (backslash-u)."""
    return text.encode("utf-8", errors="backslashreplace")


def write_json_atomic(path: Path, doc: Any, *, fsync: bool = True) -> None:
    """Write `doc` as JSON to `path` via a temporary file and `os.replace`."""
    write_file_atomic(path, dumps_json(doc), fsync=fsync)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_groups(
    root: Path | Location,
    docs: Mapping[str, Mapping[str, Any]],
    *,
    fsync_all: bool = True,
) -> None:
    """Write every group document (`{group_path: zarr.json}`) under `root`.

    Each is written whole (atomically on a local disk); all are fsynced, or
    (`fsync_all=False`) only the root's. Children first: the documents of one
    depth are written together (`Location.write_many`), the deepest first, the
    root last, so a reader that finds a group finds its children.
    """
    loc = as_location(root)
    depths: dict[int, dict[str, bytes]] = collections.defaultdict(dict)
    for key, doc in docs.items():
        name = f"{key}/zarr.json" if key else "zarr.json"
        depths[name.count("/")][name] = dumps_json(doc)
    for depth in sorted(depths, reverse=True):
        loc.write_many(depths[depth], fsync=fsync_all or not depth)


def _json_default(obj: Any) -> Any:
    """What JSON cannot hold, as something it can; never raises.

    numpy values become numbers and lists, a pydantic model (a useq plan) its
    dict, sets lists, anything else its text. A model whose JSON dump fails (a
    plan whose `metadata` holds numpy values or bytes) is dumped as Python
    objects, which come back here.
    """
    try:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if hasattr(obj, "model_dump"):
            try:
                return obj.model_dump(mode="json")
            except Exception:
                return obj.model_dump(mode="python")
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
    except Exception:
        pass
    return _text(obj)


class _QueuedLog:
    """Frame-log records queued by `write` and stored, in order, by `flush`.

    `write` only queues a record (the acquisition thread pays for no JSON and
    no I/O); `flush` (the stream's flush thread, every `flush_interval_s / 2`,
    and `close`) takes every queued record and stores them (`_store`).
    Thread-safe: `write` from one thread, `flush` and `close` from any.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[Mapping[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        #: Frames (not dropped) whose records are stored, counted from the
        #: first: see `frames_in`.
        self.frames_logged = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record (stored by the next `flush`)."""
        self._queue.append(record)

    def flush(self) -> None:
        """Store the records queued since the last flush."""
        with self._lock:
            if self._closed() or not self._queue:
                return
            records = [self._queue.popleft() for _ in range(len(self._queue))]
            self._store(records)
            self.frames_logged = frames_in(records[-1])

    def _closed(self) -> bool:
        raise NotImplementedError

    def _store(self, records: list[Mapping[str, Any]]) -> None:
        raise NotImplementedError


class FrameLog(_QueuedLog):
    """Append-only JSON-lines log of per-frame metadata, written in batches.

    Each line is one frame, standard JSON: the writer's fields (`frame`,
    `image`, `index`, `elapsed_ms`, `dropped`, `event_index`) and, under
    `metadata`, whatever the front end gave (timestamps, stage positions,
    properties...). Older logs have the front end's keys at the top level
    (`frame_metadata` reads both).

    `flush` encodes the queued records and appends them in one write(2), in the
    OS cache when it returns (a killed process keeps them), and fsyncs at most
    every `fsync_interval_s`. A crash therefore loses at most the records of
    the last `flush_interval_s`.
    """

    def __init__(self, path: Path, *, fsync_interval_s: float = 1.0) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # a plain descriptor, not a file object: a stream in a reference cycle
        # is collected with its log, and the collector finalizes (closes) file
        # objects before the stream's own finalizer closes the stream, which
        # would then find its log closed and its last records unwritten
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self._fd: int | None = os.open(path, flags, 0o644)
        self._interval = fsync_interval_s
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Write what is queued, fsync and close (idempotent; closed on errors)."""
        try:
            self.flush()
        finally:
            with self._lock:
                fd, self._fd = self._fd, None
                if fd is not None:
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)

    def _closed(self) -> bool:
        return self._fd is None

    def _store(self, records: list[Mapping[str, Any]]) -> None:
        fd = self._fd
        assert fd is not None  # called under the lock, while open
        data = memoryview(_encode("".join(_dumps(r) + "\n" for r in records)))
        while data:
            n = os.write(fd, data)
            if not n:
                raise OSError(errno.EIO, "the frame log accepted no bytes", self.path)
            data = data[n:]
        now = time.monotonic()
        if now - self._last_sync >= self._interval:
            os.fsync(fd)
            self._last_sync = now


def frames_in(record: Mapping[str, Any]) -> int:
    """Frames written up to and including the frame of `record` (a log record).

    A record's `frame` is its frame's number; a dropped frame's is the number
    of frames written before it.
    """
    return int(record["frame"]) + (0 if record.get("dropped") else 1)


class SegmentedFrameLog(_QueuedLog):
    """The frame log on object storage: segment objects rewritten as they grow.

    `flush` uploads the current segment when records were queued since the
    last (and `close` what is left); every `SEGMENT_RECORDS` records a new
    segment starts, so no upload grows without bound.
    """

    def __init__(self, location: Location) -> None:
        super().__init__()
        self.location = location
        self.path = f"{location.url}/{FRAME_SEGMENTS}"
        self._segment = 0
        self._lines: list[str] = []
        self._done = False

    def close(self) -> None:
        """Upload what is left (idempotent)."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._done = True

    def _closed(self) -> bool:
        return self._done

    def _store(self, records: list[Mapping[str, Any]]) -> None:
        for record in records:
            self._lines.append(_dumps(record))
            if len(self._lines) >= SEGMENT_RECORDS:
                self._upload()
                self._segment += 1
                self._lines = []
        if self._lines:
            self._upload()

    def _upload(self) -> None:
        data = _encode("".join(line + "\n" for line in self._lines))
        self.location.write_bytes(f"{FRAME_SEGMENTS}{self._segment:06d}.jsonl", data)


#: The writer's own fields of a frame-log record (the caller's are in `metadata`).
RECORD_FIELDS = ("frame", "image", "index", "elapsed_ms", "dropped", "event_index")


def frame_record(
    frame: int,
    image: str,
    index: tuple[int, ...],
    elapsed_s: float,
    *,
    event_index: Mapping[str, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
    dropped: bool = False,
) -> dict[str, Any]:
    """A frame-log record: the writer's fields, the caller's under `metadata`.

    `frame` is the frame's number (for a dropped frame: the frames written
    before it), `index` its storage index in image `image`; `event_index` the
    index the caller gave. The mappings are copied (the record is encoded
    later, on the flush thread).
    """
    record: dict[str, Any] = {
        "frame": frame,
        "image": image,
        "index": list(index),
        "elapsed_ms": round(elapsed_s * 1000, 3),
    }
    if dropped:
        record["dropped"] = True
    if event_index is not None:
        record["event_index"] = dict(event_index)
    if metadata:
        record["metadata"] = dict(metadata)
    return record


def frame_metadata(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The front end's metadata of a frame-log record (`record["metadata"]`).

    Older logs kept it at the top level, beside the writer's fields.
    """
    meta = record.get("metadata")
    if isinstance(meta, Mapping):
        return meta
    return {k: v for k, v in record.items() if k not in RECORD_FIELDS}


def parse_record(line: str) -> dict[str, Any] | None:
    """The record a frame-log line holds; None if it is no JSON object.

    A line that does not parse (torn by a kill, or a block of NULs a crash
    left) is one, and so is JSON of another type.
    """
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def frame_log_lines(root: Path | Location) -> Iterator[tuple[str, int, str]]:
    """Every line of a dataset's frame log: (file, line number from 1, text).

    `mmzarr/frames.jsonl` and then the segments `mmzarr/frames/*.jsonl` (object
    storage), whichever exist; `file` is relative to the dataset root. Blank
    lines are left out. Lines end at a newline only: a record's strings may hold
    other line breaks (U+2028, U+0085), written as they are (`dumps_json`).
    """
    loc = as_location(root)
    keys = [FRAMES_LOG, *(k for k in loc.list(FRAME_SEGMENTS) if k.endswith(".jsonl"))]
    for key in keys:
        data = loc.read_bytes(key)
        if data is None:
            continue
        text = data.decode("utf-8", errors="replace")
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                yield key, number, line


def read_frame_log(root: Path | Location) -> list[dict[str, Any]]:
    """Records of a dataset's frame log (`frame_log_lines`), in order.

    A line that holds no record (`parse_record`) is skipped, not the end: the
    records after it are still read.
    """
    return [
        record
        for _, _, line in frame_log_lines(root)
        if (record := parse_record(line)) is not None
    ]
