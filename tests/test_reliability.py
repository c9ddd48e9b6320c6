"""Crash safety, storage failure, cancel and concurrency.

- SIGKILL: a child process writes frames and reports each appended frame and
  every new `Stream.frames_flushed`; it waits until its first frames are
  reported flushed, goes on writing, and the parent kills it mid-stream. Every
  frame reported flushed before the kill must read back exactly, before and
  after `finalize`; a frame may be lost (its chunk torn by the kill, moved to
  `mmzarr/damaged/`) only if it was not yet reported flushed. No clock decides
  what is flushed.
- What acquire-zarr has on disk: the frames its flush reports readable are
  only those whose shard files are complete and whose time point is inside the
  array's shape on disk, never those of an open shard.
- finalize on a hand-damaged dataset: torn, missing and never-written chunks.
- Disk full: a small tmpfs (mounted by the test; needs root) fills up mid-run;
  every frame whose `append` returned reads back after `finalize`.
- Cancel: a bounded MDA cancelled midway records what was acquired.
- Threads: concurrent appends are serialized; a duplicate index wins once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY

import numpy as np
import pytest
import useq

import mmzarr
from tests._faults import mmzarr_bound, read_only
from tests._readback import (
    assert_frames,
    check_metadata,
    group_json,
    read_tensorstore,
    read_zarr,
)
from tests._waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
#: A core dependency: always installed.
ANY_BACKEND = "acquire-zarr"
DEMO_CFG = REPO / "configs" / "demo.cfg"
FLUSH_S = 0.25
SHAPE = (16, 24)
TEMPLATE = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 0.05, "loops": 1}
)


def frame_for(n: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A frame unique to frame number n."""
    return np.random.default_rng(n).integers(0, 60000, shape).astype("uint16")


def digest(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


def _plane(root: Path, index: tuple[int, ...], engine: str) -> np.ndarray:
    """One plane of array `0`, read alone (a torn neighbour may not decode)."""
    if engine == "zarr":
        import zarr

        return np.asarray(zarr.open_array(str(root / "0"), mode="r")[index])
    import tensorstore as ts

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / "0")}}
    return np.asarray(ts.open(spec, open=True).result()[index].read().result())


# ---- the child process --------------------------------------------------------
# `python -c CHILD variant backend out` runs `_child` from this module.
CHILD = "import sys; from tests.test_reliability import _child; _child(*sys.argv[1:])"
#: Frames written before the child waits until they are reported flushed.
FIRST = 12
#: "stream-sharded": 4 time points per shard; the acquisition stalls after 10
#: frames (t 0-4: the shard of t 0-3 is complete, the one of t 4 open), as a
#: slow time-lapse would: frames of the open shard must not wait in memory.
STALL_AFTER = 10
VARIANTS: dict[str, dict[str, Any]] = {
    # unbounded t, one frame per chunk (the default storage layout)
    "stream": {},
    "stream-sharded": {"shards": {"t": 4}},
}


class _Reporter:
    """The child's stdout: `frame t c sha1` per appended frame, `flushed n` when
    `Stream.frames_flushed` grows (never counting a frame not reported yet, so
    the parent knows each flushed frame's digest)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames = 0
        self.flushed = 0

    def frame(self, t: int, c: int, img: np.ndarray, stream: mmzarr.Stream) -> None:
        with self.lock:
            sys.stdout.write(f"frame {t} {c} {digest(img)}\n")
            self.frames += 1
            self._flushed(stream)
            sys.stdout.flush()

    def poll(self, stream: mmzarr.Stream) -> None:
        with self.lock:
            self._flushed(stream)
            sys.stdout.flush()

    def wait_flushed(self, stream: mmzarr.Stream, n: int) -> None:
        """Block until the first `n` frames are reported flushed (the parent
        times out)."""
        while self.flushed < n:
            self.poll(stream)
            time.sleep(0.005)

    def _flushed(self, stream: mmzarr.Stream) -> None:
        n = min(stream.frames_flushed, self.frames)
        if n > self.flushed:
            self.flushed = n
            sys.stdout.write(f"flushed {n}\n")


def _child(variant: str, backend: str, out: str) -> None:
    """Write frames until killed (runs in the child process)."""
    if variant == "mda":
        _child_mda(backend, Path(out))
        return
    if variant == "killed-in-close":
        _child_killed_in_close(out)
        return
    settings = mmzarr.AcquisitionSettings.from_useq(
        TEMPLATE,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        unbounded_t=True,
        flush_interval_s=FLUSH_S,
        **VARIANTS[variant],
    )
    stream = mmzarr.create_stream(out, settings, backend=backend)
    report = _Reporter()
    for n in itertools.count():
        if variant == "stream-sharded" and n == STALL_AFTER:
            while True:  # stalled: report what becomes flushed
                report.poll(stream)
                time.sleep(0.005)
        if n == FIRST:
            report.wait_flushed(stream, FIRST)
        t, c = divmod(n, 2)
        frame = frame_for(n)
        stream.append(frame, index={"t": t, "c": c}, metadata={"n": n})
        report.frame(t, c, frame, stream)
        time.sleep(0.01)


def _child_mda(backend: str, out: Path) -> None:
    """An unbounded event-generator MDA on the demo rig, through `MDAWriter`."""
    from mmzarr.demo import demo_core

    core = demo_core(DEMO_CFG)
    report = _Reporter()

    class ReportingWriter(mmzarr.MDAWriter):
        def frameReady(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
            super().frameReady(img, event, meta)
            if self.error is None and self.stream is not None:
                report.frame(event.index["t"], event.index["c"], img, self.stream)

    writer = ReportingWriter(
        out,
        backend=backend,
        core=core,
        template=TEMPLATE,
        flush_interval_s=FLUSH_S,
    )

    def events() -> Iterator[useq.MDAEvent]:
        for t in itertools.count():
            for c, ch in enumerate(("DAPI", "FITC")):
                if 2 * t + c == FIRST:
                    # the writer gets the sequence and its frames on
                    # pymmcore-plus' relay thread: this one may wait for them
                    while writer.stream is None:
                        time.sleep(0.005)
                    report.wait_flushed(writer.stream, FIRST)
                yield useq.MDAEvent(
                    index={"t": t, "c": c},
                    channel={"config": ch},
                    min_start_time=t * 0.05,
                )

    core.mda.run(events(), output=writer)


def _child_killed_in_close(out: str) -> None:
    """A plate on acquire-zarr, killed right after acquire-zarr's close: the
    moment its bare group documents would be in the dataset (issue #186)."""
    import acquire_zarr as aqz

    real = aqz.ZarrStream.close

    def close(self: Any) -> None:
        real(self)
        os.kill(os.getpid(), signal.SIGKILL)

    aqz.ZarrStream.close = close  # type: ignore[method-assign]
    settings = mmzarr.AcquisitionSettings.from_useq(
        PLATE_SEQ, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    stream = mmzarr.create_stream(out, settings, backend="acquire-zarr")
    for n, event in enumerate(PLATE_SEQ):
        stream.append(frame_for(n), index=event.index)
    stream.close()


PLATE_SEQ = useq.MDASequence(
    channels=["DAPI"],
    stage_positions=useq.WellPlatePlan(
        plate=96, a1_center_xy=(0, 0), selected_wells=([0, 0], [0, 1])
    ),
)


# ---- the parent ---------------------------------------------------------------
@dataclass
class Killed:
    """What the child reported before it was killed."""

    frames: list[tuple[int, int, str]] = field(default_factory=list)  # t, c, sha1
    flushed: int = 0  # the first `flushed` frames were reported flushed

    def read(self, line: str) -> None:
        """Take one line; a line torn by the kill is ignored."""
        parts = line.split()
        if not line.endswith("\n"):
            return
        if parts[0] == "frame" and len(parts) == 4:
            self.frames.append((int(parts[1]), int(parts[2]), parts[3]))
        elif parts[0] == "flushed" and len(parts) == 2:
            assert int(parts[1]) >= self.flushed, line
            self.flushed = int(parts[1])
        else:
            raise AssertionError(f"unexpected line from the child: {line!r}")


def _run_and_kill(
    variant: str,
    backend: str,
    out: Path,
    err: Path,
    ready: Callable[[Killed], bool],
) -> Killed:
    """Start the child; SIGKILL it as soon as `ready` says so."""
    lines: queue.Queue[str] = queue.Queue()
    with open(err, "w") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, variant, backend, str(out)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err_f,
            text=True,
            # pymmcore-plus 0.18.0 logs INFO to stdout (a rich console): keep
            # stdout for the child's reports
            env={**os.environ, "PYMM_LOG_LEVEL": "WARNING"},
        )
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    got = Killed()
    try:
        deadline = time.monotonic() + 60
        while not ready(got):
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"child not ready in 60 s: {len(got.frames)} frames, "
                        f"{got.flushed} flushed\n{err.read_text()}"
                    )
                continue
            if not line:
                pytest.fail(f"child exited early:\n{err.read_text()}")
            got.read(line)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        stdout.close()
    while (line := lines.get_nowait()) != "":
        got.read(line)
    assert proc.returncode == -signal.SIGKILL
    return got


def _chunk_files(root: Path, array: str = "0") -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every chunk/shard file (not metadata).

    Metadata includes a `zarr.json` half-written when the writer was killed
    (`.zarr.json.PID.THREAD.tmp`), which `finalize` removes.
    """
    out = {}
    for p in sorted((root / array).rglob("*")):
        if p.name.startswith(".zarr.json.") and p.name.endswith(".tmp"):
            continue
        if p.is_file() and p.name != "zarr.json":
            st = p.stat()
            key = p.relative_to(root).as_posix()
            out[key] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def _planes_match(root: Path, frames: list[tuple[int, int, str]]) -> bool:
    """Whether each frame's plane, read alone, has its digest (both readers)."""
    for engine in ("zarr", "tensorstore"):
        for t, c, sha in frames:
            try:
                if digest(_plane(root, (t, c), engine)) != sha:
                    return False
            except Exception:  # beyond the array's t, or a shard being written
                return False
    return True


def _log(root: Path) -> list[dict[str, Any]]:
    text = (root / "mmzarr/frames.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines()]


def _ready(variant: str, backend: str, out: Path) -> Callable[[Killed], bool]:
    """When to kill: mid-stream once the first frames were reported flushed; for
    a stalled sharded stream once the frames that can be on disk are."""
    if variant != "stream-sharded":
        # the child resumes only once FIRST frames are flushed: kill while it
        # writes the next ones (some may be in flight, torn by the kill)
        return lambda k: len(k.frames) >= FIRST + 8
    if backend != "acquire-zarr":
        # tensorstore and zarr-python write open shards every flush_interval_s
        return lambda k: k.flushed >= STALL_AFTER
    # acquire-zarr 0.10 cannot write an open shard (README, "Crash safety"):
    # once the complete shard (t 0-3) is on disk nothing more can reach it
    return lambda k: len(k.frames) == STALL_AFTER and _planes_match(out, k.frames[:8])


@pytest.mark.parametrize("variant", ["stream", "stream-sharded", "mda"])
def test_sigkill_keeps_flushed_frames(
    tmp_path: Path, backend: str, variant: str
) -> None:
    out = tmp_path / "killed.ome.zarr"
    got = _run_and_kill(
        variant, backend, out, tmp_path / "err.txt", _ready(variant, backend, out)
    )
    flushed = got.frames[: got.flushed]
    if variant != "stream-sharded":
        assert got.flushed >= FIRST
        assert len(got.frames) >= FIRST + 8
    elif backend != "acquire-zarr":
        assert got.flushed == len(got.frames) == STALL_AFTER

    # the metadata was on disk all along, current with the growing t; every
    # frame reported flushed reads back, each plane alone (a chunk being
    # written at the kill may be torn; it is no flushed frame's)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "acquiring"
    for engine in ("zarr", "tensorstore"):
        for t, c, sha in flushed:
            assert digest(_plane(out, (t, c), engine)) == sha, f"{engine} {t},{c}"

    report = mmzarr.validate(out)
    assert report.incomplete, report.format()
    assert report.frames_complete >= len(flushed), report.format()
    assert "incomplete" in report.format()
    logged = {tuple(r["index"]): r for r in _log(out)}
    # the log is written every flush_interval_s / 2, and a frame counts as
    # flushed once its record is written too
    for t, c, _ in flushed:
        assert logged[(t, c)]["index"] == [t, c]
        if variant == "mda":
            assert logged[(t, c)]["event_index"] == {"t": t, "c": c}
        else:
            assert logged[(t, c)]["metadata"]["n"] == 2 * t + c

    chunks = _chunk_files(out)
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    assert not final.incomplete
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "interrupted"
    check_metadata(out)
    # no chunk rewritten; only files that do not decode were moved aside
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    after = _chunk_files(out)
    assert after == {k: v for k, v in chunks.items() if k in after}
    gone = {f"mmzarr/damaged/{k}" for k in chunks.keys() - after.keys()}
    assert gone == set(record["damaged_files"])
    # a frame may be lost only if it was not reported flushed; every other
    # reported frame reads back exactly
    lost = {tuple(x["index"]) for x in record["lost"]}
    assert not lost & {(t, c) for t, c, _ in flushed}, record["lost"]
    # frames appended in the last flush_interval_s may be neither logged nor on
    # disk: gone without a trace; those on disk without a record are kept
    known = {tuple(r["index"]) for r in _log(out)}
    known |= {tuple(x["index"]) for x in record["frames_not_logged"]}
    kept = [f for f in got.frames if (f[0], f[1]) in known - lost]
    assert {(t, c) for t, c, _ in flushed} <= {(t, c) for t, c, _ in kept}
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for t, c, sha in kept:
            assert digest(data[t, c]) == sha, f"{read.__name__}: frame t={t} c={c}"
    if variant == "stream-sharded":
        # what a stalled sharded stream keeps (README: acquire-zarr 0.10 loses
        # the frames of its open shard)
        n_kept = 8 if backend == "acquire-zarr" else STALL_AFTER
        assert [(t, c) for t, c, _ in kept] == [divmod(n, 2) for n in range(n_kept)]
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["frames_written"] == record["frames_kept"] >= len(kept)
    t_size = read_zarr(out, "0").shape[0]
    assert attrs["images"][""]["t_size"] == t_size >= kept[-1][0] + 1
    assert mmzarr.validate(out).ok


def test_killed_inside_acquire_zarr_close_stays_valid(tmp_path: Path) -> None:
    """Killed right after acquire-zarr's close, before mmzarr wrote anything
    more: every group document still has its metadata (acquire-zarr wrote its
    bare groups to the hidden sibling), and finalize makes it valid (issue
    #22, item 8)."""
    out = tmp_path / "plate.ome.zarr"
    hidden = tmp_path / ".plate.ome.zarr.mmzarr-acquire-zarr"
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, "killed-in-close", "acquire-zarr", str(out)],
            cwd=REPO,
            stderr=err,
            timeout=120,
            check=False,
        )
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "err.txt").read_text()
    check_metadata(out)  # the plate, its wells and images, as written at open
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "acquiring"
    assert hidden.is_dir()  # left by the killed writer: links only
    assert mmzarr.validate(out).incomplete
    report = mmzarr.finalize(out)
    assert report.ok, report.format()
    assert not hidden.exists()
    assert json.loads((out / "mmzarr/finalize.json").read_text())["lost"] == []
    settings = mmzarr.AcquisitionSettings.from_useq(
        PLATE_SEQ, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    assert_frames(
        out,
        {
            settings.locate(event.index): frame_for(n)
            for n, event in enumerate(PLATE_SEQ)
        },
    )


# ---- what acquire-zarr has on disk ----------------------------------------------
#: (name, storage options, frames written of a 5 t x 2 c plan, frames readable):
#: readable are the frames whose shard is complete on disk AND whose time point
#: is inside the shape acquire-zarr writes to the array's zarr.json as it goes
#: (complete time points only).
ON_DISK_CASES = [
    ("frame", {}, 10, 10),
    ("frame-t4-incomplete", {}, 9, 8),  # (4, 0) is on disk, t 4 not in the shape
    ("lz4", {"compression": "blosc-lz4"}, 10, 10),
    ("tiles", {"chunks": {"y": 8, "x": 12}}, 10, 10),
    ("shards-t2", {"shards": {"t": 2}}, 10, 8),  # t 4 is half of the last shard
    ("shards-c2", {"shards": {"c": 2}}, 10, 10),
    ("shards-c2-open", {"shards": {"c": 2}}, 9, 8),  # (4, 0) waits for (4, 1)
]


@pytest.mark.parametrize(
    ("options", "written", "readable"),
    [c[1:] for c in ON_DISK_CASES],
    ids=[c[0] for c in ON_DISK_CASES],
)
def test_acquire_zarr_counts_only_readable_frames(
    tmp_path: Path, options: dict[str, Any], written: int, readable: int
) -> None:
    import zarr

    from mmzarr._storage import Location
    from mmzarr.backends import Arrays, Limits, get_backend
    from mmzarr.backends._acquire_disk import shard_on_disk

    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.1, "loops": 5}
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, **options
    )
    backend = get_backend("acquire-zarr")
    backend.open(Location(path=tmp_path), Arrays.of(settings), Limits())
    events = list(seq)[:written]
    for n, event in enumerate(events):
        backend.write(0, (event.index["t"], event.index["c"]), frame_for(n))
    wait_for(f"{readable} readable", lambda: backend.flush().readable >= readable)
    # never a frame of an open shard, or outside the shape
    assert backend.flush().readable == readable
    data = zarr.open_array(str(tmp_path / "0"), mode="r")
    for n, event in enumerate(events[:readable]):
        idx = (event.index["t"], event.index["c"])
        np.testing.assert_array_equal(data[idx], frame_for(n), err_msg=str(idx))
    assert backend.flush(final=True).readable == written
    assert backend.flush(final=True).readable == written  # idempotent
    # the check recognises every shard file acquire-zarr wrote, the partial
    # ones it completes at close included
    files = [p for p in (tmp_path / "0" / "c").rglob("*") if p.is_file()]
    assert files
    chunks = 1
    for d in settings.images[0].dimensions:
        chunks *= d.shard_size // d.chunk_size
    for p in files:
        assert shard_on_disk(p, 16 * chunks + 4), p
        torn = tmp_path / "torn"
        torn.write_bytes(p.read_bytes()[:-1])
        assert not shard_on_disk(torn, 16 * chunks + 4)


def test_crc32c_matches_the_reference() -> None:
    google_crc32c = pytest.importorskip("google_crc32c")

    from mmzarr.backends._acquire_disk import crc32c

    for data in (b"", b"123456789", bytes(range(256)) * 3):
        want = int.from_bytes(google_crc32c.Checksum(data).digest(), "big")
        assert crc32c(data) == want
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


# ---- finalize on a hand-damaged dataset --------------------------------------
def test_finalize_sets_aside_torn_missing_and_unwritten(
    tmp_path: Path, backend: str
) -> None:
    """What a crash can leave: a torn chunk, a missing one, a logged frame that
    never reached the disk, a torn chunk of a frame that was never logged."""
    out = tmp_path / "crashed.ome.zarr"
    frames = _written_then_died(out, backend, 12)
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines(keepends=True)
    unlogged = json.loads(lines.pop(9))  # (4, 1): written, never logged
    in_flight = {**json.loads(lines[-1]), "index": [6, 0], "frame": 12}
    lines.append(json.dumps(in_flight) + "\n")  # logged, never written
    lines.append('{"frame": 13, "ima')  # torn last line
    (out / "mmzarr/frames.jsonl").write_text("".join(lines))
    assert unlogged["index"] == [4, 1]

    def chunk(t: int, c: int) -> Path:
        return out / "0" / "c" / str(t) / str(c) / "0" / "0"

    for t, c in ((2, 1), (4, 1)):  # torn
        data = chunk(t, c).read_bytes()
        chunk(t, c).write_bytes(data[: len(data) // 2])
    chunk(3, 0).unlink()  # missing
    (out / "0" / ".zarr.json.123.456.tmp").write_text("{")  # a half-written doc
    # a user's files named like temporary files, which mmzarr did not write
    (out / "0" / ".draft.txt.123.456.tmp").write_text("mine")
    (out / ".notes.json.123.456.tmp").write_text("mine")

    report = mmzarr.validate(out)
    assert report.incomplete
    assert report.frames_logged == 12
    assert report.frames_complete == 9, report.format()  # 12 - torn - missing - lost
    untouched = {
        k: v
        for k, v in _chunk_files(out).items()
        if k not in ("0/c/2/1/0/0", "0/c/4/1/0/0", "0/.zarr.json.123.456.tmp")
    }

    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    lost = {tuple(x["index"]): x["reason"] for x in record["lost"]}
    assert set(lost) == {(2, 1), (3, 0), (6, 0)}
    assert "c/3/0/0/0" in lost[(3, 0)]
    assert record["frames_kept"] == 9
    assert set(record["damaged_files"]) == {
        "mmzarr/damaged/0/c/2/1/0/0",
        "mmzarr/damaged/0/c/4/1/0/0",
    }
    assert _chunk_files(out) == untouched  # nothing else moved or rewritten
    assert not (out / "0" / ".zarr.json.123.456.tmp").exists()
    assert (out / "0" / ".draft.txt.123.456.tmp").read_text() == "mine"
    assert (out / ".notes.json.123.456.tmp").read_text() == "mine"
    check_metadata(out)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "interrupted"
    assert attrs["frames_written"] == 9
    kept = {k: v for k, v in frames.items() if k not in {(2, 1), (3, 0), (4, 1)}}
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape == (6, 2, *SHAPE)
        for (t, c), frame in kept.items():
            np.testing.assert_array_equal(data[t, c], frame, err_msg=f"{t},{c}")
        for t, c in ((2, 1), (3, 0), (4, 1)):
            assert not data[t, c].any()  # fill value
    assert any("3 logged frames were lost" in n for n in final.notes)

    again = mmzarr.finalize(out)  # idempotent
    assert again.ok
    record2 = json.loads((out / "mmzarr/finalize.json").read_text())
    assert {tuple(x["index"]) for x in record2["lost"]} == set(lost)
    assert record2["damaged_files"] == record["damaged_files"]  # still there
    assert _chunk_files(out) == untouched


def test_validate_without_reading_finds_a_torn_shard_as_finalize_does(
    tmp_path: Path, backend: str
) -> None:
    """A shard file a killed writer left without its index is not a complete
    frame to `validate(read=False)` (it looks at files, decodes nothing) as it
    is not to `finalize`: both count the frames of the other shards only."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, backend, 6, shards={"t": 2})
    shard = out / "0" / "c" / "1" / "0" / "0"  # t = 2 and 3
    shard.write_bytes(shard.read_bytes()[:-3])  # the index's end never written

    looked = mmzarr.validate(out, read=False)
    assert looked.incomplete
    assert (looked.frames_logged, looked.frames_complete) == (6, 4), looked.format()
    final = mmzarr.finalize(out)
    lost = json.loads((out / "mmzarr/finalize.json").read_text())["lost"]
    assert sorted(tuple(x["index"]) for x in lost) == [(2,), (3,)]
    assert final.ok, final.format()
    data = read_zarr(out, "0")
    for t in (0, 1, 4, 5):
        np.testing.assert_array_equal(data[t], frame_for(t))
    assert mmzarr.validate(out, read=False).ok
    assert all("torn" in x["reason"] for x in lost)
    mmzarr.finalize(out)  # again: the same record (the shard moved is not "missing")
    assert json.loads((out / "mmzarr/finalize.json").read_text())["lost"] == lost


def test_validate_of_a_failed_run_with_torn_chunks_points_to_finalize(
    tmp_path: Path, backend: str
) -> None:
    """A storage failure (a file-size limit, a disk filled by another process)
    leaves chunks of accepted frames torn in a dataset closed `failed`, whose
    root counts them: `validate` says to run `finalize`, which keeps the rest."""
    out = tmp_path / "failed.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    made = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    stream = mmzarr.create_stream(out, made, backend=backend)
    for t in range(4):
        stream.append(frame_for(t), index={"t": t})
    stream.close("failed")
    assert mmzarr.validate(out).ok  # nothing torn: valid, failed
    chunk = out / "0" / "c" / "2" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])  # as the failed write left it

    report = mmzarr.validate(out)
    assert not report.ok
    assert "run `mmzarr finalize` to keep those that did" in report.problems[-1]
    mmzarr.finalize(out)
    assert mmzarr.validate(out).ok
    data = read_zarr(out, "0")
    for t in (0, 1, 3):
        np.testing.assert_array_equal(data[t], frame_for(t))
    lost = json.loads((out / "mmzarr/finalize.json").read_text())["lost"]
    assert [x["index"] for x in lost] == [[2]]


def _mean2(frame: np.ndarray) -> np.ndarray:
    """2x2 mean, rounded half up (numpy, not mmzarr): a level of even-sized frames."""
    h, w = frame.shape
    s = frame.reshape(h // 2, 2, w // 2, 2).astype(np.uint32).sum(axis=(1, 3))
    return ((s + 2) // 4).astype(frame.dtype)


@pytest.mark.parametrize("shards", [None, {"t": 2}], ids=["chunks", "t-shards"])
def test_finalize_rebuilds_levels_a_killed_writer_left_out(
    tmp_path: Path, backend: str, shards: dict[str, int] | None
) -> None:
    """A writer writes a frame's levels after its full resolution: killed in
    between it leaves a level chunk missing (level 2 of t=3) or torn (level 1
    of t=0), and a frame may be lost at full resolution with its levels on
    disk (t=2). validate counts those frames incomplete; finalize moves the
    torn file and the lost frame's levels aside and writes the kept frames'
    levels again from level 0. Before, a level read black where level 0 had
    the frame, a torn level could not be read at all, and a level showed a
    frame level 0 had lost. With `t` shards, a file holds two time points."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, backend, 4, downsample={"levels": 2}, shards=shards)

    def chunk(level: int, t: int) -> Path:
        return out / str(level) / "c" / str(t // 2 if shards else t) / "0" / "0"

    chunk(0, 2).unlink()  # lost at full resolution
    chunk(2, 3).unlink()  # level 2: never written
    torn = chunk(1, 0)
    torn.write_bytes(torn.read_bytes()[:-5])
    # (t=0, t=1) share a file, and (t=2, t=3), with t shards
    lost, rebuilt = ([2, 3], [0, 1]) if shards else ([2], [0, 3])
    moved = (
        ["1/c/0/0/0", "1/c/1/0/0"]
        if shards
        else ["1/c/0/0/0", "1/c/2/0/0", "2/c/2/0/0"]
    )

    looked = mmzarr.validate(out, read=False)
    assert looked.frames_complete == (0 if shards else 1), looked.format()
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert [x["index"][0] for x in record["lost"]] == lost
    assert record["frames_kept"] == 4 - len(lost)
    assert record["damaged_files"] == [f"mmzarr/damaged/{f}" for f in moved]
    assert sorted(x["index"][0] for x in record["levels_rebuilt"]) == rebuilt
    assert record["levels_missing"] == []
    for read in (read_zarr, read_tensorstore):
        levels = [read(out, str(level)) for level in range(3)]
        for t in range(4):
            frame = frame_for(t)
            expected = [frame, _mean2(frame), _mean2(_mean2(frame))]
            for level, data in enumerate(levels):
                if t in lost:  # the fill value at every level
                    assert not data[t].any(), (t, level)
                else:
                    np.testing.assert_array_equal(data[t], expected[level])
    check_metadata(out)
    again = mmzarr.finalize(out)  # idempotent, and says the same
    assert again.ok
    assert json.loads((out / "mmzarr/finalize.json").read_text()) == {
        **record,
        "finalized": ANY,
    }


def test_finalize_moves_aside_the_writes_tensorstore_never_finished(
    tmp_path: Path,
) -> None:
    """tensorstore writes a file as `<key>.__lock` and renames it into place,
    a frame's levels beside its level 0: a writer killed meanwhile leaves a
    level chunk of a frame whose level 0 is still that temporary file (and a
    document's). finalize moves them aside with the level chunk, lists them,
    and leaves a user's file of that suffix alone; they stayed in a dataset
    said valid."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, "tensorstore", 3, downsample={"levels": 1})
    level0 = out / "0" / "c" / "2" / "0" / "0"
    level0.rename(level0.with_name("0.__lock"))  # never renamed into place
    (out / "zarr.json.__lock").write_bytes(b"")
    (out / "0" / "zarr.json.__lock").write_bytes(b"{")
    (out / "notes.__lock").write_text("a user's file")

    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["damaged_files"] == [
        "mmzarr/damaged/0/c/2/0/0.__lock",
        "mmzarr/damaged/0/zarr.json.__lock",
        "mmzarr/damaged/1/c/2/0/0",
        "mmzarr/damaged/zarr.json.__lock",
    ]
    assert [x["index"] for x in record["lost"]] == [[2]]
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.__lock"))
    assert left == [
        "mmzarr/damaged/0/c/2/0/0.__lock",
        "mmzarr/damaged/0/zarr.json.__lock",
        "mmzarr/damaged/zarr.json.__lock",
        "notes.__lock",
    ]
    assert (out / "notes.__lock").read_text() == "a user's file"
    levels = [read_tensorstore(out, str(level)) for level in range(2)]
    for t in range(2):
        np.testing.assert_array_equal(levels[0][t], frame_for(t))
        np.testing.assert_array_equal(levels[1][t], _mean2(frame_for(t)))
    assert not levels[0][2].any()
    assert not levels[1][2].any()
    check_metadata(out)


def test_a_writer_killed_with_bare_groups_is_called_incomplete(tmp_path: Path) -> None:
    """Where links cannot be made, acquire-zarr's close rewrites the dataset's
    groups bare and mmzarr writes them again: a writer killed in between
    leaves a root group without attributes. validate calls it incomplete and
    points at finalize (it said only "Unable to determine OME-Zarr version"),
    finalize repairs it, and `overwrite=True` may replace such a dataset (it
    refused: "no 'ome' or 'mmzarr' attributes")."""
    out = tmp_path / "bare.ome.zarr"
    frames = _written_then_died(out, "tensorstore", 4)
    bare = {"zarr_format": 3, "node_type": "group", "attributes": {}}
    (out / "zarr.json").write_text(json.dumps(bare))
    report = mmzarr.validate(out)
    assert report.incomplete
    assert any("run `mmzarr finalize`" in p for p in report.problems)
    assert any("writer died while closing" in p for p in report.problems)
    copy = tmp_path / "copy.ome.zarr"
    shutil.copytree(out, copy)
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    for (t, c), frame in frames.items():
        np.testing.assert_array_equal(read_zarr(out, "0")[t, c], frame)
    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 2}),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
    )
    with mmzarr.create_stream(copy, settings, overwrite=True) as stream:
        stream.append(frame_for(0), index={"t": 0})
    assert group_json(copy)["attributes"]["mmzarr"]["status"] == "cancelled"


@pytest.mark.parametrize("root_doc", ["", '{"zarr_format": 3, "node_ty', "null"])
def test_finalize_rewrites_a_root_document_that_does_not_parse(
    tmp_path: Path, root_doc: str
) -> None:
    """A torn (or not an object) root zarr.json: validate says to run
    finalize, which failed on it ("Expecting value", or an AttributeError
    traceback for `null`); it writes the root again and keeps every frame."""
    out = tmp_path / "torn.ome.zarr"
    frames = _written_then_died(out, "tensorstore", 4)
    (out / "zarr.json").write_text(root_doc)
    report = mmzarr.validate(out)
    assert report.incomplete
    assert any("run `mmzarr finalize`" in p for p in report.problems)
    assert not any("rewritten the groups bare" in p for p in report.problems)
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "interrupted"
    for read in (read_zarr, read_tensorstore):
        for (t, c), frame in frames.items():
            np.testing.assert_array_equal(read(out, "0")[t, c], frame)
    check_metadata(out)


def test_finalize_writes_again_an_array_document_torn_by_a_kill(
    tmp_path: Path, backend: str
) -> None:
    """acquire-zarr rewrites an array's zarr.json in place as `t` grows: a
    writer killed meanwhile leaves it torn. finalize called every frame of
    the array lost ("array '0' is missing"), its chunks intact on disk."""
    out = tmp_path / "torn-array.ome.zarr"
    frames = _written_then_died(out, backend, 6)
    doc = out / "0" / "zarr.json"
    doc.write_bytes(doc.read_bytes()[:100])
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["lost"] == []
    assert record["frames_kept"] == 6
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape == (3, 2, *SHAPE)
        for (t, c), frame in frames.items():
            np.testing.assert_array_equal(data[t, c], frame)
    check_metadata(out)


def _two_wells_two_time_points() -> tuple[useq.MDASequence, mmzarr.AcquisitionSettings]:
    """A plate plan of wells A1 and B1, 2 time points, and its settings."""
    plate = useq.WellPlatePlan(
        plate="24-well", a1_center_xy=(0, 0), selected_wells=([0, 1], [0, 0])
    )
    seq = useq.MDASequence(stage_positions=plate, time_plan={"interval": 1, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    return seq, settings


def test_finalize_writes_an_array_document_a_writer_killed_opening_left_out(
    tmp_path: Path,
) -> None:
    """The backend creates its arrays while the group documents are written:
    a writer killed while opening a plate had written the root but not one
    array's zarr.json. finalize left it so: "Dataset path '0' not found"."""
    out = tmp_path / "opening.ome.zarr"
    _, settings = _two_wells_two_time_points()
    with mmzarr.create_stream(out, settings, backend=ANY_BACKEND):
        pass
    _as_killed(out)
    (out / "B/1/0/0/zarr.json").unlink()
    assert not mmzarr.validate(out).ok
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    data = read_zarr(out, "B/1/0/0")
    assert data.shape == (2, *SHAPE)
    assert not data.any()
    check_metadata(out)


def test_a_writer_killed_before_the_ome_xml_is_pointed_to_finalize(
    tmp_path: Path,
) -> None:
    """A plate whose OME-XML is missing (an older mmzarr wrote the root's
    `complete` first, so a writer killed in between left it so): validate said
    only "cannot be read (FileNotFoundError ...)", not that finalize repairs
    it."""
    import ome_types

    out = tmp_path / "plate.ome.zarr"
    seq, settings = _two_wells_two_time_points()
    with mmzarr.create_stream(out, settings, backend=ANY_BACKEND) as stream:
        for n, event in enumerate(seq):
            stream.append(frame_for(n), index=event.index)
    (out / "OME" / "METADATA.ome.xml").unlink()
    report = mmzarr.validate(out)
    assert not report.ok
    assert any("mmzarr finalize" in p for p in report.problems), report.problems
    assert mmzarr.finalize(out).ok
    ome = ome_types.from_xml((out / "OME" / "METADATA.ome.xml").read_text())
    assert len(ome.images) == 2
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


@pytest.mark.parametrize("backend", ["acquire-zarr", "tensorstore", "zarr-python"])
def test_close_writes_the_ome_xml_before_the_root_says_complete(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed at any point of close leaves no root saying `complete`
    without its OME-XML (the root was written first)."""
    from mmzarr import _metadata

    out = tmp_path / "plate.ome.zarr"
    xml = out / "OME" / "METADATA.ome.xml"
    seq, settings = _two_wells_two_time_points()
    seen: list[tuple[str, bool]] = []
    original = _metadata.write_groups

    def write_groups(loc: Any, docs: Any, **kwargs: Any) -> None:
        original(loc, docs, **kwargs)
        status = group_json(out)["attributes"]["mmzarr"]["status"]
        seen.append((status, xml.exists()))

    monkeypatch.setattr(_metadata, "write_groups", write_groups)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(seq):
            stream.append(frame_for(n), index=event.index)
    assert ("complete", True) in seen, seen
    assert ("complete", False) not in seen, seen


def test_a_finalize_stopped_while_writing_levels_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finalize stopped after writing one frame's levels into a shard of two
    time points: the shard holds the other as the fill value, which looks
    written. The next finalize writes again every frame the first one was
    about to (it wrote none: level 1 of t=1 stayed black), and lists them."""
    from mmzarr import _level_repair

    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(
        out, "acquire-zarr", 4, downsample={"levels": 1}, shards={"t": 2}
    )
    for f in (out / "1" / "c").rglob("*"):
        if f.is_file():
            f.unlink()  # no level written
    original = _level_repair.LevelWriter._write
    calls = []

    def stop_after_one(self: Any, *args: Any) -> None:
        if calls:
            raise KeyboardInterrupt  # as a kill: nothing after it runs
        calls.append(args)
        original(self, *args)

    monkeypatch.setattr(_level_repair.LevelWriter, "_write", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        mmzarr.finalize(out)
    monkeypatch.setattr(_level_repair.LevelWriter, "_write", original)
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert [x["index"] for x in record["levels_rebuilt"]] == [[0], [1], [2], [3]]
    for t in range(4):
        np.testing.assert_array_equal(read_zarr(out, "1")[t], _mean2(frame_for(t)))


def test_finalize_sets_aside_the_levels_of_an_unlogged_frame_it_cannot_keep(
    tmp_path: Path,
) -> None:
    """A frame written at every level but never logged, whose full resolution
    did not reach the disk whole: its levels go aside too (they showed it
    zoomed out over a black full resolution)."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, "tensorstore", 4, downsample={"levels": 1})
    log = out / "mmzarr" / "frames.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:3]))
    (out / "0" / "c" / "3" / "0" / "0").unlink()  # t=3: never logged, level 0 gone
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert "mmzarr/damaged/1/c/3/0/0" in record["damaged_files"]
    for level in ("0", "1"):
        data = read_zarr(out, level)
        assert data.shape[0] == 3 or not data[3].any()


def test_finalize_refuses_foreign_dataset(tmp_path: Path) -> None:
    (tmp_path / "x.zarr").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape("settings.json")):
        mmzarr.finalize(tmp_path / "x.zarr")


# ---- disk full -----------------------------------------------------------------
BIG = (256, 256)  # 128 KiB frames
#: A small memory budget, so that few frames are in flight at any time.
BUDGET = 4 * 128 * 1024


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    path.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode:
            subprocess.run(["umount", "-l", str(path)], check=False)


def _grow(path: Path, size: str) -> None:
    """Free space: grow the tmpfs."""
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", str(path)], check=True, timeout=30
    )


@dataclass(frozen=True)
class DiskCase:
    """A run that fills a 2 MiB tmpfs."""

    name: str
    seq: useq.MDASequence
    shape: tuple[int, int]
    options: dict[str, Any]
    min_frames: int  # frames that fit at least (the test is not vacuous)


DISK_CASES = [
    # one 128 KiB frame per file
    DiskCase(
        "big", useq.MDASequence(time_plan={"interval": 0.1, "loops": 64}), BIG, {}, 8
    ),
    # 8 KiB frames of 3 arrays and the default buffer: acquire-zarr batches
    # all of them (4 MiB batches), each file takes whole blocks (3 pages for
    # 8 KiB and its index)
    DiskCase(
        "small-positions",
        useq.MDASequence(
            stage_positions=[(0, 0, 0), (10, 0, 0), (20, 0, 0)],
            channels=["DAPI", "FITC"],
            time_plan={"interval": 0.1, "loops": 100},
        ),
        (64, 64),
        {"max_buffer_bytes": 256 * 1024**2},
        40,
    ),
    # 16 files of 8 KiB per frame
    DiskCase(
        "tiles",
        useq.MDASequence(time_plan={"interval": 0.1, "loops": 64}),
        BIG,
        {"chunks": {"y": 64, "x": 64}},
        4,
    ),
    # frames gathered (tensorstore, zarr-python) or held (acquire-zarr) in
    # shards of 4 time points until the shard is complete
    DiskCase(
        "shards",
        useq.MDASequence(channels=["DAPI"], time_plan={"interval": 0.1, "loops": 64}),
        (128, 128),
        {"shards": {"t": 4}},
        16,
    ),
]


@pytest.mark.parametrize("case", DISK_CASES, ids=lambda c: c.name)
def test_disk_full_stream(tmp_path: Path, backend: str, case: DiskCase) -> None:
    """append refuses the first frame that may not reach the disk; every frame
    it accepted is there once finalized (after space was freed)."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        case.seq,
        image_shape=case.shape,
        dtype="uint16",
        pixel_size_um=0.5,
        **{"max_buffer_bytes": BUDGET, **case.options},
    )
    accepted: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
    with _tmpfs(tmp_path / "small", "2m") as small:
        out = small / "full.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=backend)
        error: OSError | None = None
        try:
            for n, event in enumerate(case.seq):
                frame = frame_for(n, case.shape)
                try:
                    accepted[stream.append(frame, index=event.index)] = frame
                except OSError as e:
                    error = e
                    break
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        assert error is not None, "the disk never filled up"
        assert isinstance(error, mmzarr.StorageError)
        assert str(out) in str(error)
        assert "No space left on device" in str(error)
        assert stream.status == "failed"
        assert len(accepted) >= case.min_frames
        # once there is space again, finalize makes a valid dataset of them
        _grow(small, "64m")
        report = mmzarr.finalize(out)
        assert report.ok, report.format()
        check_metadata(out)
        record = json.loads((out / "mmzarr/finalize.json").read_text())
        assert record["lost"] == []
        assert record["damaged_files"] == []
        assert record["frames_kept"] == len(accepted)
        assert_frames(out, accepted)


def test_create_on_full_disk(tmp_path: Path, backend: str) -> None:
    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 3})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    with _tmpfs(tmp_path / "small", "1m") as small:
        before = small / "before.ome.zarr"
        frames = {}
        with mmzarr.create_stream(before, settings, backend=backend) as stream:
            for n in range(3):
                frames[stream.append(frame_for(n), index={"t": n})] = frame_for(n)
        with open(small / "filler", "wb", buffering=0) as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
        out = small / "new.ome.zarr"
        with pytest.raises(OSError, match=re.escape(str(out))) as info:
            mmzarr.create_stream(out, settings, backend=backend)
        assert isinstance(info.value, mmzarr.StorageError)
        assert not out.exists()  # no half-made dataset left behind
        assert mmzarr.validate(before).ok
        assert_frames(before, frames)


class Capture:
    """An independent frameReady listener: what the camera produced."""

    def __init__(self, core: Any) -> None:
        self.frames: list[tuple[useq.MDAEvent, np.ndarray]] = []
        core.mda.events.frameReady.connect(self._on_frame)

    def _on_frame(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        self.frames.append((event, np.array(img, copy=True)))


def test_disk_full_mda_cancels(tmp_path: Path, backend: str, core: Any) -> None:
    core.setProperty("Camera", "SensorWidth", str(BIG[1]))
    core.setProperty("Camera", "SensorHeight", str(BIG[0]))
    seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 0.02, "loops": 64})
    with _tmpfs(tmp_path / "small", "2m") as small:
        out = small / "run.ome.zarr"
        cap = Capture(core)
        writer = mmzarr.MDAWriter(
            out, backend=backend, core=core, max_buffer_bytes=BUDGET
        )
        core.mda.run(seq, output=writer)
        assert isinstance(writer.error, OSError), writer.error
        assert str(out) in str(writer.error)
        assert len(cap.frames) < len(list(seq))  # the MDA was cancelled
        with pytest.raises(OSError, match=re.escape(str(out))):
            writer.close()
        assert writer.stream is not None
        assert writer.stream.status == "failed"
        # frames are written in the order the camera produced them: the first
        # `frames_written` it produced are those the writer accepted
        accepted = cap.frames[: writer.frames_written]
        assert len(accepted) >= 8
        for engine in ("zarr", "tensorstore"):
            for event, img in accepted:
                plane = _plane(out, (event.index["t"], 0), engine)
                np.testing.assert_array_equal(plane, img, err_msg=str(event.index))
        _grow(small, "64m")
        report = mmzarr.finalize(out)
        assert report.ok, report.format()
        assert json.loads((out / "mmzarr/finalize.json").read_text())["lost"] == []
        data = read_zarr(out, "0")
        for event, img in accepted:
            np.testing.assert_array_equal(data[event.index["t"], 0], img)


def _fill(small: Path) -> None:
    """Fill the tmpfs at `small` to the last byte (another process' file)."""
    with open(small / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)


def _temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.endswith((".tmp", ".partial"))]


def test_close_after_disk_full_records_failed(tmp_path: Path, backend: str) -> None:
    """Another process fills the disk mid-run: the stream fails, and `close`
    still records `failed` (in the space the stream kept for it), leaving no
    temporary file (issue #22, item 5)."""
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (1, 0, 0)],
        channels=["DAPI", "FITC"],
        time_plan={"interval": 0.1, "loops": 64},
    )
    shape = (128, 128)
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=shape, dtype="uint16", pixel_size_um=0.5
    )
    with _tmpfs(tmp_path / "small", "4m") as small:
        out = small / "run.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=backend)
        events = iter(seq)
        for n in range(6):
            stream.append(frame_for(n, shape), index=next(events).index)
        _fill(small)

        def go_on() -> None:
            for n, event in enumerate(events, start=6):
                stream.append(frame_for(n, shape), index=event.index)

        with pytest.raises(mmzarr.StorageError, match=re.escape(str(out))):
            go_on()
        with contextlib.suppress(mmzarr.StorageError):
            stream.close()
        assert stream.status == "failed"
        assert group_json(out)["attributes"]["mmzarr"]["status"] == "failed"
        assert _temp_files(out) == []
        # finalize can still make it valid once there is space again
        (small / "filler").unlink()
        report = mmzarr.finalize(out)
        assert report.ok, report.format()
        assert group_json(out)["attributes"]["mmzarr"]["status"] == "failed"


def test_failed_close_renders_the_ome_xml_from_the_whole_frame_log(
    tmp_path: Path, backend: str
) -> None:
    """A full disk fails an unbounded collection; `close` (which has the
    space it kept) renders the OME-XML after the frame log's last records are
    written, so the dataset it leaves validates (it said SizeT=1 while the
    arrays held every time point)."""
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (100, 0, 0)],
        time_plan={"interval": 0.05, "loops": 1},
    )
    shape = (128, 128)
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=shape, dtype="uint16", pixel_size_um=0.5, unbounded_t=True
    )
    with _tmpfs(tmp_path / "small", "2m") as small:
        out = small / "run.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=backend)
        accepted = {}

        def fill_up() -> None:
            for t in range(1000):
                for p in range(2):
                    frame = frame_for(2 * t + p, shape)
                    accepted[stream.append(frame, index={"t": t, "p": p})] = frame

        with pytest.raises(mmzarr.StorageError, match="No space left"):
            fill_up()
        stream.close()
        assert stream.status == "failed"
        assert len(accepted) >= 8
        report = mmzarr.validate(out)
        assert report.ok, report.format()
        assert_frames(out, accepted)


def _time_points_then_died(
    out: Path, backend: str, loops: int, **settings: Any
) -> None:
    """`frame_for(t)` at each of `loops` time points, closed, then the status
    put back to `acquiring`, as a writer that died leaves it."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": loops})
    made = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, **settings
    )
    with mmzarr.create_stream(out, made, backend=backend) as stream:
        for t in range(loops):
            stream.append(frame_for(t), index={"t": t})
    _as_killed(out)


def _written_then_died(
    out: Path,
    backend: str,
    n: int,
    status: str = "acquiring",
    shards: dict[str, int] | None = None,
) -> dict[tuple[int, int], np.ndarray]:
    """`n` frames over (t, c) written and closed, then the status put back to
    `acquiring`, as a writer that died leaves it (or `status`, e.g. `failed`
    as a full disk does). Returns the frames by (t, c)."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        TEMPLATE,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        unbounded_t=True,
        compression="blosc-lz4",
        shards=shards,
    )
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for k in range(n):
            t, c = divmod(k, 2)
            frames[(t, c)] = frame_for(k)
            stream.append(frames[(t, c)], index={"t": t, "c": c})
    doc = json.loads((out / "zarr.json").read_text())
    doc["attributes"]["mmzarr"]["status"] = status
    (out / "zarr.json").write_text(json.dumps(doc))
    return frames


def test_acquire_zarr_writes_a_time_point_that_ends_in_skipped_planes(
    tmp_path: Path,
) -> None:
    """FITC (`do_stack=False`) is acquired at the middle plane only: its last
    plane is never acquired. acquire-zarr writes a time point once all its
    slots are appended, and that slot was filled only when the next time
    point's first frame came, so t=0 stayed off disk (frames_flushed 0 of 4,
    FITC lost on a kill) for a whole interval."""
    seq = useq.MDASequence(
        time_plan={"interval": 1, "loops": 2},
        z_plan={"range": 2, "step": 1},
        channels=["DAPI", {"config": "FITC", "do_stack": False}],
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "skips.ome.zarr"
    first = [e for e in seq if e.index["t"] == 0]
    assert [tuple(e.index.values()) for e in first][-1] == (0, 1, 1)  # FITC, z=1
    with mmzarr.create_stream(out, settings, backend="acquire-zarr") as stream:
        for k, event in enumerate(first):
            stream.append(frame_for(k), index=event.index)
        # the flusher looks every 0.5 s
        wait_for("t 0 flushed", lambda: stream.frames_flushed >= len(first))
        assert stream.frames_flushed == len(first)
        # on disk, read by another library while the stream is open
        np.testing.assert_array_equal(read_zarr(out, "0")[0, 1, 1], frame_for(3))
        for k, event in enumerate(seq):
            if event.index["t"] == 1:
                stream.append(frame_for(k), index=event.index)
    data = read_tensorstore(out, "0")
    assert data.shape == (2, 2, 3, *SHAPE)
    np.testing.assert_array_equal(data[1, 1, 1], frame_for(7))
    assert not data[0, 1, 2].any()  # never acquired: the fill value


def test_finalize_of_images_without_t_c_or_z(tmp_path: Path, backend: str) -> None:
    """A collection of 2-D images (a grid, nothing else) whose writer died with
    one logged frame's chunk missing and one torn: validate and finalize raised
    IndexError (they grew the leading axis of an index that has none)."""
    seq = useq.MDASequence(
        grid_plan=useq.GridRowsColumns(rows=1, columns=3, fov_width=5, fov_height=4)
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "grid.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for k, event in enumerate(seq):
            stream.append(frame_for(k), index=event.index)
    _as_killed(out)
    (out / "1/0/c/0/0").unlink()  # logged, never reached the disk
    torn = out / "2/0/c/0/0"
    torn.write_bytes(torn.read_bytes()[:7])

    report = mmzarr.validate(out)
    assert report.incomplete
    assert (report.frames_logged, report.frames_complete) == (3, 1), report.format()
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert {(x["image"], tuple(x["index"])) for x in record["lost"]} == {
        ("1", ()),
        ("2", ()),
    }
    assert record["damaged_files"] == ["mmzarr/damaged/2/0/c/0/0"]
    check_metadata(out)
    for read in (read_zarr, read_tensorstore):
        np.testing.assert_array_equal(read(out, "0/0"), frame_for(0))
        assert not read(out, "1/0").any()  # fill value
        assert not read(out, "2/0").any()


def test_finalize_keeps_no_frame_for_a_slot_given_up(
    tmp_path: Path, backend: str
) -> None:
    """A slot the writer gave up (`Stream.abandon`: its frame went to the
    unplaced sibling, or the camera failed to snap it) is stored by
    acquire-zarr as a chunk of the fill value. A writer killed before its
    documents (its frame log whole): finalize counted that chunk as a frame
    whose log line was lost (`frames_not_logged`, 4/4 frames, none missing).
    An unlogged frame of another value is still kept."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "gave_up.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        stream.append(frame_for(0), index={"t": 0})
        stream.abandon(0, (1,))
        stream.append(frame_for(2), index={"t": 2})
        stream.append(frame_for(3), index={"t": 3})
    _as_killed(out)
    _drop_last_log_lines(out, 1)  # t=3: on disk, its line lost

    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert [x["index"] for x in record["frames_not_logged"]] == [[3]]
    assert record["frames_kept"] == 3
    assert record["lost"] == []
    images = group_json(out)["attributes"]["mmzarr"]["images"]
    assert images[""]["missing"] == [[1]]
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for t in (0, 2, 3):
            np.testing.assert_array_equal(data[t], frame_for(t))
        assert not data[1].any()  # the fill value


def test_finalize_keeps_a_dark_frame_s_time_point_and_says_what_it_may_be(
    tmp_path: Path, backend: str
) -> None:
    """The last frame of an unbounded run is all 0 (a dark frame: the fill
    value) and its log line was lost. finalize cut `t` before it (t=3 left
    outside the array, 3 frames, said nowhere); its time point stays, and the
    record and the report say that the slot is a given-up slot or a frame of
    only the fill value, not that the camera gave none."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, unbounded_t=True
    )
    out = tmp_path / "dark.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for t in range(3):
            stream.append(frame_for(t), index={"t": t})
        stream.append(np.zeros(SHAPE, "uint16"), index={"t": 3})
    _as_killed(out)
    _drop_last_log_lines(out, 1)  # t=3: on disk, its line lost

    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    assert "a frame of only that value (e.g. a dark frame of 0s)" in final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert [x["index"] for x in record["fill_not_logged"]] == [[3]]
    assert record["frames_kept"] == 3
    assert record["lost"] == []
    images = group_json(out)["attributes"]["mmzarr"]["images"]
    assert images[""]["t_size"] == 4
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape == (4, *SHAPE)
        for t in range(3):
            np.testing.assert_array_equal(data[t], frame_for(t))
        assert not data[3].any()
    assert mmzarr.validate(out).ok


def test_finalize_writes_the_ome_xml_of_the_frames_it_keeps(
    tmp_path: Path, backend: str
) -> None:
    """A collection whose writer died: its last 3 frames on disk but not in the
    log, one logged frame's chunk gone. The OME-XML after finalize has a plane
    for each frame the arrays hold and the arrays' t (it was rendered from the
    log alone: SizeT 3 and no plane for the kept frames, a plane for the lost)."""
    import ome_types

    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (100, 0, 0)],
        channels=["DAPI"],
        time_plan={"interval": 1, "loops": 1},
    )
    made = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, unbounded_t=True
    )
    out = tmp_path / "died.ome.zarr"
    with mmzarr.create_stream(out, made, backend=backend) as stream:
        for t in range(4):
            for p in range(2):
                stream.append(frame_for(2 * t + p), index={"t": t, "p": p, "c": 0})
    _as_killed(out)
    log = out / "mmzarr/frames.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:5]))
    lost = out / "0/0/c/1/0/0/0"  # image 0, t=1: logged, its chunk gone
    assert lost.is_file()
    lost.unlink()

    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    xml = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    expected_t = {0: [0, 2, 3], 1: [0, 1, 2, 3]}
    for i, image in enumerate(xml.images):
        data = read_zarr(out, f"{i}/0")
        assert image.pixels.size_t == data.shape[0] == 4
        assert sorted(p.the_t for p in image.pixels.planes) == expected_t[i]
        for t in expected_t[i]:
            np.testing.assert_array_equal(data[t, 0], frame_for(2 * t + i))


def test_finalize_gives_a_bounded_array_its_planned_shape(tmp_path: Path) -> None:
    """acquire-zarr shapes a bounded array by its complete time points while
    it writes: after a kill a frame of the time point under way is on disk
    outside that shape. finalize gives the array its planned shape and keeps
    the frame (it had called it lost)."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 10}
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "killed.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend="acquire-zarr") as stream:
        for k, event in enumerate(list(seq)[:5]):  # t=0, 1 and c=0 of t=2
            frames[(event.index["t"], event.index["c"])] = frame_for(k)
            stream.append(frame_for(k), index=event.index)
    # what the killed writer left: status acquiring, t cut to 2 time points
    for doc_path, t in ((out / "zarr.json", None), (out / "0" / "zarr.json", 2)):
        doc = json.loads(doc_path.read_text())
        if t is None:
            doc["attributes"]["mmzarr"]["status"] = "acquiring"
        else:
            doc["shape"][0] = t
        doc_path.write_text(json.dumps(doc))
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["lost"] == []
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape == (10, 2, *SHAPE)
        for (t, c), frame in frames.items():
            np.testing.assert_array_equal(data[t, c], frame)


@pytest.mark.parametrize("status", ["acquiring", "failed", "complete", "cancelled"])
def test_finalize_keeps_frames_written_before_their_log_lines(
    tmp_path: Path, backend: str, status: str
) -> None:
    """A writer killed after writing frames but before their log lines (written
    every flush_interval_s / 2): finalize keeps the frames and says which; and
    finalizing again finds the same (it had dropped them and shrunk `t`). A
    closed dataset whose log has fewer records than its `frames_written`
    too: finalize recorded its 3 unlogged frames missing and shrank `t`."""
    out = tmp_path / "unlogged.ome.zarr"
    frames = _written_then_died(out, backend, 10, status)
    _drop_last_log_lines(out, 3)
    for _ in range(2):
        record = _finalize_keeps_the_three_unlogged(out, frames)
        assert record["status_before"] == status
        assert group_json(out)["attributes"]["mmzarr"]["frames_written"] == 10


def _as_killed(out: Path) -> None:
    """The root says `acquiring`, as that of a writer killed before its close."""
    doc = json.loads((out / "zarr.json").read_text())
    doc["attributes"]["mmzarr"]["status"] = "acquiring"
    (out / "zarr.json").write_text(json.dumps(doc))


def _drop_last_log_lines(out: Path, n: int) -> None:
    """Lose the frame log's last `n` lines, as a writer killed before them."""
    log = out / "mmzarr/frames.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-n]))


def _finalize_keeps_the_three_unlogged(
    out: Path, frames: dict[tuple[int, int], np.ndarray]
) -> dict[str, Any]:
    """finalize `out`, 10 frames (t=0-4 x 2 channels) of which the last 3 are
    not logged: all kept, read back by two decoders; its record."""
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record: dict[str, Any] = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["frames_logged"] == 7
    assert [x["index"] for x in record["frames_not_logged"]] == [
        [3, 1],
        [4, 0],
        [4, 1],
    ]
    assert record["frames_kept"] == 10
    assert record["lost"] == []
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape[0] == 5  # shards: t=5-7 of the last were never written
        for (t, c), frame in frames.items():
            np.testing.assert_array_equal(data[t, c], frame)
    return record


def test_finalize_keeps_unlogged_frames_of_multi_frame_shards(
    tmp_path: Path, backend: str
) -> None:
    """Shards of 4 time points: a writer killed before its last 3 log lines
    left their frames whole on disk, listed in their shards' indexes (t=3 in
    the shard of t=0-3 with logged frames, t=4 alone in the next). finalize
    keeps them; it dropped them and cut `t` to 4 (only a file of one frame
    named its frame)."""
    out = tmp_path / "unlogged_shards.ome.zarr"
    frames = _written_then_died(out, backend, 10, shards={"t": 4})
    grid = json.loads((out / "0/zarr.json").read_text())["chunk_grid"]
    assert grid["configuration"]["chunk_shape"][0] == 4
    _drop_last_log_lines(out, 3)
    _finalize_keeps_the_three_unlogged(out, frames)


def test_finalize_moves_torn_shards_past_the_kept_time_points(
    tmp_path: Path, backend: str
) -> None:
    """Shards of 3 time points, those of t=3-5 torn (no index): finalize cuts
    `t` to 3 and moves both torn shards aside; it left them in the array
    (outside its shape) when `t` is unbounded."""
    out = tmp_path / "torn_shards.ome.zarr"
    frames = _written_then_died(out, backend, 12, shards={"t": 3})
    torn = [f"0/c/1/{c}/0/0" for c in (0, 1)]
    for rel in torn:
        data = (out / rel).read_bytes()
        (out / rel).write_bytes(data[: len(data) // 2])
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert sorted(x["index"] for x in record["lost"]) == [
        [t, c] for t in (3, 4, 5) for c in (0, 1)
    ]
    assert sorted(record["damaged_files"]) == [f"mmzarr/damaged/{r}" for r in torn]
    assert not any((out / rel).exists() for rel in torn)
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.shape[0] == 3
        for (t, c), frame in frames.items():
            if t < 3:
                np.testing.assert_array_equal(data[t, c], frame)


def _crashed(out: Path, backend: str) -> dict[tuple[int, int], np.ndarray]:
    """A dataset whose writer "died": status acquiring, one torn chunk (1, 1)."""
    frames = _written_then_died(out, backend, 6)
    torn = out / "0" / "c" / "1" / "1" / "0" / "0"
    torn.write_bytes(torn.read_bytes()[:10])
    return frames


def test_finalize_on_a_full_disk_changes_nothing(tmp_path: Path, backend: str) -> None:
    """finalize records each step before it does it: on a full disk it fails
    having moved nothing and left no temporary file; with space again it
    moves and lists the torn chunk (issue #22, item 5)."""
    with _tmpfs(tmp_path / "small", "4m") as small:
        out = small / "crashed.ome.zarr"
        _crashed(out, backend)
        before = _chunk_files(out)
        _fill(small)
        with pytest.raises(OSError, match="No space left"):
            mmzarr.finalize(out)
        assert _chunk_files(out) == before
        assert not (out / "mmzarr" / "damaged").exists()
        assert _temp_files(out) == []
        (small / "filler").unlink()
        assert mmzarr.finalize(out).ok
        record = json.loads((out / "mmzarr/finalize.json").read_text())
        assert record["state"] == "done"
        assert record["damaged_files"] == ["mmzarr/damaged/0/c/1/1/0/0"]
        assert {tuple(x["index"]) for x in record["lost"]} == {(1, 1)}


def test_interrupted_finalize_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finalize that stops after moving a chunk aside (here: an error right
    after the move) left a record saying so; the next one finishes the job and
    still lists the file it moved, and why its frame was lost."""
    from mmzarr import _finalize

    out = tmp_path / "crashed.ome.zarr"
    frames = _crashed(out, ANY_BACKEND)
    calls = {"n": 0}
    real = _finalize._set_t_sizes

    def stop_after_moving(*args: Any) -> None:
        calls["n"] += 1
        # the first two set the shapes to read, the third is after moving
        if calls["n"] == 3:
            raise OSError("injected: killed")
        real(*args)

    monkeypatch.setattr(_finalize, "_set_t_sizes", stop_after_moving)
    with pytest.raises(OSError, match="injected"):
        mmzarr.finalize(out)
    monkeypatch.undo()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["state"] == "in progress"
    assert record["damaged_files"] == ["mmzarr/damaged/0/c/1/1/0/0"]
    assert (out / "mmzarr/damaged/0/c/1/1/0/0").is_file()
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "acquiring"

    assert mmzarr.finalize(out).ok
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["state"] == "done"
    assert record["status_before"] == "acquiring"
    assert record["damaged_files"] == ["mmzarr/damaged/0/c/1/1/0/0"]
    assert {tuple(x["index"]) for x in record["lost"]} == {(1, 1)}
    # why: the chunk the first one moved aside was torn (it said "missing")
    assert "missing" not in record["lost"][0]["reason"], record["lost"]
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "interrupted"
    kept = {k: v for k, v in frames.items() if k != (1, 1)}
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for (t, c), frame in kept.items():
            np.testing.assert_array_equal(data[t, c], frame)


#: (id, where a second finalize of a finalized dataset is stopped: the name in
#: `_finalize` that raises, and on which call)
SECOND_FINALIZE_STOPS = [
    ("reading", "read_frames", 1),  # its first step: nothing recorded yet
    ("after-moving", "_set_t_sizes", 3),  # the first two set the shapes to read
]


@pytest.mark.parametrize(
    ("name", "call"),
    [c[1:] for c in SECOND_FINALIZE_STOPS],
    ids=[c[0] for c in SECOND_FINALIZE_STOPS],
)
def test_finalize_interrupted_again_keeps_why_frames_were_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, call: int
) -> None:
    """A finalized dataset finalized again, that second finalize stopped: its
    record still lists the frame the first lost, so validate counts it lost
    (stopped at reading, the record listed none: the frame's chunk, moved
    aside, was a problem), and why: the next finalize says its chunk was
    torn, not that it was missing."""
    from mmzarr import _finalize

    out = tmp_path / "crashed.ome.zarr"
    _crashed(out, ANY_BACKEND)
    assert mmzarr.finalize(out).ok
    first = json.loads((out / "mmzarr/finalize.json").read_text())["lost"]
    assert [x["index"] for x in first] == [[1, 1]]
    assert "missing" not in first[0]["reason"], first
    calls = {"n": 0}
    real = getattr(_finalize, name)

    def stop(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise OSError("injected: killed")
        return real(*args)

    monkeypatch.setattr(_finalize, name, stop)
    with pytest.raises(OSError, match="injected"):
        mmzarr.finalize(out)
    monkeypatch.undo()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["state"] == "in progress"
    assert record["lost"] == first
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    assert "1 logged frames were lost" in " ".join(report.notes), report.notes
    assert mmzarr.finalize(out).ok
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert (record["state"], record["lost"]) == ("done", first)


def test_frame_log_failure_is_a_storage_error(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-frame metadata that cannot be written fails the stream like data."""
    from mmzarr._metadata import FrameLog

    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 6})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=0.05,
    )
    out = tmp_path / "log.ome.zarr"
    stream = mmzarr.create_stream(out, settings, backend=backend)
    tried = threading.Event()
    try:
        for n in range(3):
            stream.append(frame_for(n), index={"t": n})

        def no_space(self: FrameLog) -> None:
            tried.set()
            raise OSError(errno.ENOSPC, "No space left on device")

        # records are written by the flush thread: its failure fails the stream
        monkeypatch.setattr(FrameLog, "flush", no_space)
        stream.append(frame_for(3), index={"t": 3})
        assert tried.wait(30)
        errors: list[mmzarr.StorageError] = []

        def failed() -> bool:  # once the thread has recorded the failure
            try:
                stream.skip(0)
            except mmzarr.StorageError as e:
                errors.append(e)
            return bool(errors)

        wait_for("the frame log's failure recorded", failed, every=0.01)
        error = errors[0]
        assert "failed earlier" in str(error)
        assert "frame log" in str(error)
        assert str(out) in str(error)
        with pytest.raises(mmzarr.StorageError, match=re.escape(str(out))):
            stream.close()  # the records left cannot be written either
        monkeypatch.undo()
    finally:
        with contextlib.suppress(OSError):
            stream.close()
    assert stream.status == "failed"
    data = read_zarr(out, "0")
    for n in range(3):
        np.testing.assert_array_equal(data[n], frame_for(n))


# ---- cancel ----------------------------------------------------------------------
def test_cancelled_bounded_mda_records_what_was_acquired(
    tmp_path: Path, core: Any
) -> None:
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 10}
    )
    cap = Capture(core)

    def cancel_after(img: Any, event: Any, meta: Any) -> None:
        if len(cap.frames) >= 5:
            core.mda.cancel()

    core.mda.events.frameReady.connect(cancel_after)
    out = tmp_path / "cancel.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    n = len(cap.frames)
    assert 5 <= n < 20
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "cancelled"
    assert attrs["frames_written"] == n
    assert attrs["images"][""]["missing_count"] == 20 - n
    acquired = {(e.index["t"], e.index["c"]) for e, _ in cap.frames}
    missing = {tuple(m) for m in attrs["images"][""]["missing"]}
    assert missing == set(np.ndindex(10, 2)) - acquired
    assert [tuple(r["index"]) for r in _log(out)] == [
        (e.index["t"], e.index["c"]) for e, _ in cap.frames
    ]
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    check_metadata(out)
    data = read_zarr(out, "0")
    for event, img in cap.frames:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)


# ---- threads ----------------------------------------------------------------------
TCZ = useq.MDASequence(
    time_plan={"interval": 0.1, "loops": 3},
    channels=["DAPI", "FITC"],
    z_plan={"range": 2, "step": 1},
)
POSITIONS = useq.MDASequence(
    stage_positions=[(0, 0, 0), (10, 0, 0), (20, 0, 0), (30, 0, 0)],
    time_plan={"interval": 0.1, "loops": 3},
    channels=["DAPI", "FITC"],
)


def _settings(seq: useq.MDASequence) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )


def _in_threads(jobs: list[list[Any]], fn: Any) -> list[BaseException]:
    """Run `fn(job)` for every item of each list, one thread per list, at once."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(items: list[Any]) -> None:
        barrier.wait()
        for item in items:
            try:
                fn(item)
            except Exception as e:
                errors.append(e)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    return errors


def test_threads_one_per_position(tmp_path: Path, backend: str) -> None:
    """Each thread writes one image, in order: every frame lands exactly once."""
    events = list(POSITIONS)
    out = tmp_path / "threads.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, _settings(POSITIONS), backend=backend) as stream:
        jobs: dict[int, list[tuple[int, useq.MDAEvent]]] = {}
        for n, e in enumerate(events):
            jobs.setdefault(e.index["p"], []).append((n, e))

        def put(item: tuple[int, useq.MDAEvent]) -> None:
            n, e = item
            frames[stream.append(frame_for(n), index=e.index)] = frame_for(n)

        assert _in_threads(list(jobs.values()), put) == []
    assert stream.status == "complete"
    assert stream.frames_written == len(frames) == len(events)
    assert len(_log(out)) == len(events)
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)


def test_threads_any_order(tmp_path: Path, backend: str) -> None:
    """Frames of one image from six threads, in any order: each lands once."""
    events = list(TCZ)
    out = tmp_path / "threads.ome.zarr"
    accepted = {}
    with mmzarr.create_stream(out, _settings(TCZ), backend=backend) as stream:

        def put(item: tuple[int, useq.MDAEvent]) -> None:
            n, e = item
            accepted[stream.append(frame_for(n), index=e.index)] = frame_for(n)

        jobs = [list(enumerate(events))[k::6] for k in range(6)]
        # every backend takes frames out of order (acquire-zarr holds the
        # early ones in its reorder window)
        assert _in_threads(jobs, put) == []
    assert len(accepted) == stream.frames_written == len(events)
    assert stream.status == "complete"
    assert {tuple(r["index"]) for r in _log(out)} == {k[1] for k in accepted}
    assert mmzarr.validate(out).ok
    assert_frames(out, accepted)


def test_threads_same_index_written_once(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "dup.ome.zarr"
    index = {"t": 1, "c": 0, "z": 2}
    wins = []
    with mmzarr.create_stream(out, _settings(TCZ), backend=backend) as stream:

        def put(n: int) -> None:
            stream.append(frame_for(n), index=index)
            wins.append(n)

        errors = _in_threads([[n] for n in range(8)], put)
    assert len(wins) == 1
    assert len(errors) == 7
    for e in errors:
        assert isinstance(e, mmzarr.FrameError)
        assert "already written" in str(e)
    assert stream.frames_written == 1
    assert stream.status == "cancelled"
    assert_frames(out, {("", (1, 0, 2)): frame_for(wins[0])})


def test_close_while_appending(tmp_path: Path, backend: str) -> None:
    """A close from another thread stops appends with a clear error."""
    events = list(TCZ)
    out = tmp_path / "close.ome.zarr"
    stream = mmzarr.create_stream(out, _settings(TCZ), backend=backend)
    accepted = {}
    started = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        for n, e in enumerate(events):
            if n == 1:  # the second append comes after the close has begun
                wait_for("the close from the main thread", lambda: stream.closed)
            try:
                accepted[stream.append(frame_for(n), index=e.index)] = frame_for(n)
            except Exception as exc:
                errors.append(exc)
                return
            started.set()

    th = threading.Thread(target=produce)
    th.start()
    assert started.wait(10)
    stream.close()
    th.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], mmzarr.FrameError)
    assert "is closed" in str(errors[0])
    assert stream.status == "cancelled"
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["frames_written"] == len(accepted) < len(events)
    assert mmzarr.validate(out).ok
    assert_frames(out, accepted)


def test_free_space_guard_measures_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statvfs while far from full; one per write near full; refuses at full."""
    from mmzarr.backends._space import FreeSpaceGuard

    free = {"bytes": 10 * 1024**3}
    calls: list[str] = []

    class _St:
        f_frsize = 1

        @property
        def f_bavail(self) -> int:
            return free["bytes"]

    def statvfs(path: Any) -> _St:
        calls.append(str(path))
        return _St()

    monkeypatch.setattr(os, "statvfs", statvfs)
    guard = FreeSpaceGuard(tmp_path, margin=1024**2, max_age_s=60, reserve=0)
    for _ in range(100):
        guard.check(1024, in_flight=4096)
    assert calls == [str(tmp_path)]  # far from full: measured once
    free["bytes"] = 3 * 1024**2
    guard = FreeSpaceGuard(tmp_path, margin=1024**2, max_age_s=60, reserve=0)
    calls.clear()
    accepted = 0
    while free["bytes"] >= 512 * 1024:
        guard.check(512 * 1024)
        free["bytes"] -= 512 * 1024  # the write lands
        accepted += 1
    with pytest.raises(OSError, match="No space left") as info:
        guard.check(512 * 1024)
    assert accepted == 6
    assert info.value.errno == errno.ENOSPC
    assert str(tmp_path) in str(info.value)
    assert 2 < len(calls) <= accepted  # measured again within `margin` of full


def test_a_frame_refused_for_space_leaves_none_of_its_levels(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame and its resolution levels are checked against the free space
    together: the disk filling (here, by another process) between the frame's
    full resolution and a level refuses the next frame whole, never one whose
    full resolution was already accepted (which then stayed on disk, or half
    of its levels did, though `append` raised)."""
    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 8})
    shape = (256, 256)
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=shape,
        dtype="uint16",
        pixel_size_um=0.5,
        downsample={"levels": 2},
    )
    out = tmp_path / "run.ome.zarr"
    stream = mmzarr.create_stream(out, settings, backend=backend)
    measured = {"n": 0}

    class _St:
        f_frsize = 1

        def __init__(self, free: int) -> None:
            self.f_bavail = free

    def statvfs(path: Any) -> _St:
        # room for anything at the first measurement, none afterwards
        measured["n"] += 1
        return _St(8 * 1024**2 if measured["n"] == 1 else 0)

    accepted = {}

    def go_on() -> None:
        for t in range(1, 8):
            accepted[t] = frame_for(t, shape)
            stream.append(accepted[t], index={"t": t})

    try:
        stream.append(frame_for(0, shape), index={"t": 0})
        # frame 0 on disk: nothing of it is in flight
        wait_for("frame 0 flushed", lambda: stream.frames_flushed >= 1)
        monkeypatch.setattr(os, "statvfs", statvfs)
        with pytest.raises(mmzarr.StorageError, match="No space left"):
            go_on()
        refused = max(accepted)
        del accepted[refused]
        monkeypatch.undo()
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            stream.close()
    assert measured["n"] >= 2
    # the refused frame left nothing; the one accepted after the first
    # measurement is whole
    for level in ("0", "1", "2"):
        chunks = {p.name for p in (out / level / "c").iterdir()}
        assert str(refused) not in chunks, (level, sorted(chunks))
    assert list(accepted) == [1]
    for level in ("0", "1", "2"):
        assert {"0", "1"} <= {p.name for p in (out / level / "c").iterdir()}
    frames = {("", (0,)): frame_for(0, shape), ("", (1,)): accepted[1]}
    assert_frames(out, frames)


def test_free_space_guard_keeps_a_reserve_and_counts_in_flight_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes in flight count as used; `refresh` gives the current count; a
    reserve stays free for metadata."""
    from mmzarr.backends._space import FreeSpaceGuard

    class _St:
        f_frsize = 4096
        f_bavail = 256  # 1 MiB

    monkeypatch.setattr(os, "statvfs", lambda path: _St())
    kib = 1024
    guard = FreeSpaceGuard(tmp_path, margin=0, max_age_s=60, reserve=256 * kib)
    with pytest.raises(OSError, match="No space left") as info:
        guard.check(512 * kib, in_flight=300 * kib)  # 1068 KiB > 1 MiB
    assert info.value.errno == errno.ENOSPC
    guard.check(512 * kib, in_flight=300 * kib, refresh=lambda: 100 * kib)
    with pytest.raises(OSError, match="No space left"):
        guard.check(512 * kib, in_flight=0, refresh=lambda: 300 * kib)
    FreeSpaceGuard(tmp_path, margin=0, reserve=0).check(1024 * kib)
    with pytest.raises(OSError, match="No space left"):
        FreeSpaceGuard(tmp_path, margin=0, reserve=1).check(1024 * kib)


# ---- the dataset directory moved or removed under a running writer ----------------
def _time_series(
    tmp_path: Path, backend: str, *, loops: int, written: int
) -> tuple[mmzarr.Stream, Path, dict]:
    """An open stream of `loops` time points at tmp_path/run.ome.zarr, the first
    `written` appended; (stream, path, {frame number: frame})."""
    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": loops})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "run.ome.zarr"
    stream = mmzarr.create_stream(out, settings, backend=backend)
    frames = {}
    for t in range(written):
        frames[stream.append(frame_for(t), index={"t": t})] = frame_for(t)
    return stream, out, frames


def _moved_run(tmp_path: Path, backend: str) -> tuple[mmzarr.Stream, Path, dict]:
    """A stream of 4 frames, all readable, whose directory is then renamed."""
    stream, out, frames = _time_series(tmp_path, backend, loops=6, written=4)
    wait_for("the frames on disk", lambda: stream.frames_flushed == 4)
    moved = tmp_path / "moved.ome.zarr"
    out.rename(moved)  # e.g. the folder moved in a file manager
    return stream, moved, frames


def test_close_of_a_dataset_moved_away_fails_and_writes_nothing_there(
    tmp_path: Path, backend: str
) -> None:
    """close does not report `complete` for a directory that is gone, nor make
    a dataset without frames at its old path; the frames are where it went."""
    stream, moved, frames = _moved_run(tmp_path, backend)
    out = tmp_path / "run.ome.zarr"
    with pytest.raises(mmzarr.StorageError, match=re.escape(str(out))) as info:
        stream.close()
    assert "moved" in str(info.value)
    assert stream.status == "failed"
    assert not out.exists()  # no document written again at the old path
    assert group_json(moved)["attributes"]["mmzarr"]["status"] == "acquiring"
    report = mmzarr.finalize(moved)
    assert report.ok, report.format()
    check_metadata(moved)
    assert_frames(moved, frames)


def test_a_dataset_moved_away_fails_the_stream_at_the_next_flush(
    tmp_path: Path, backend: str
) -> None:
    """The flush thread notices the move (here its `tick`, called directly):
    the next frame is refused with an error that says what happened."""
    stream, _, _ = _moved_run(tmp_path, backend)
    stream._flusher.tick()  # one flush of the thread, without waiting for it
    with pytest.raises(mmzarr.StorageError, match="moved, renamed or removed"):
        stream.append(frame_for(4), index={"t": 4})
    with contextlib.suppress(mmzarr.StorageError):
        stream.close()
    assert not (tmp_path / "run.ome.zarr").exists()


def test_acquire_zarr_open_on_a_full_disk_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The array documents do not fit: the error is the full disk, not
    acquire-zarr's own failure to close the stream it had just opened (which
    on a real full disk fails too: tmpfs of 24-56 KiB for a 2-well plate)."""
    from mmzarr.backends._acquire import AcquireZarrBackend

    calls = itertools.count()

    def no_space(self: Any, numbers: Any) -> None:
        if next(calls) == 0:  # the documents of `open`; not those of its close
            raise OSError(errno.ENOSPC, "No space left on device")

    real_close = AcquireZarrBackend._close

    def close_fails(self: Any) -> Any:
        real_close(self)  # its threads end, as they do on a full disk
        raise OSError("acquire-zarr failed to close: Failed to close Zarr stream")

    monkeypatch.setattr(AcquireZarrBackend, "_write_array_docs", no_space)
    monkeypatch.setattr(AcquireZarrBackend, "_close", close_fails)
    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "full.ome.zarr"
    with pytest.raises(mmzarr.StorageError, match="No space left on device") as info:
        mmzarr.create_stream(out, settings, backend="acquire-zarr")
    assert str(out) in str(info.value)
    assert not out.exists()


def test_a_close_whose_documents_are_refused_says_failed(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every frame written, the final documents refused (permissions taken
    away, a disk filled since): close raises, and the stream's status is
    `failed`, not `complete`."""
    stream, out, frames = _time_series(tmp_path, backend, loops=2, written=2)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(out / "zarr.json"))

    monkeypatch.setattr("mmzarr._stream_close.write_group_metadata", refused)
    with pytest.raises(mmzarr.StorageError, match=re.escape(str(out))):
        stream.close()
    assert stream.status == "failed"
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "acquiring"
    monkeypatch.undo()
    report = mmzarr.finalize(out)
    assert report.ok, report.format()
    assert_frames(out, frames)


def test_a_finalize_stopped_while_writing_levels_still_lists_the_files_it_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finalize moves a torn level chunk to `mmzarr/damaged/`, records the
    levels it is about to write, and is killed while writing them: its record
    must still list the file moved (the "writing levels" record dropped it),
    and so must the next finalize, which finishes it (README: "a finalize that
    was interrupted is finished by the next one, which still lists the files
    moved")."""
    from mmzarr import _level_repair

    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, "tensorstore", 2, downsample={"levels": 1})
    torn = out / "1" / "c" / "0" / "0" / "0"
    torn.write_bytes(torn.read_bytes()[:-5])
    moved = ["mmzarr/damaged/1/c/0/0/0"]

    def killed(self: Any, *args: Any) -> None:
        raise KeyboardInterrupt  # as a kill: nothing after it runs

    monkeypatch.setattr(_level_repair.LevelWriter, "_write", killed)
    with pytest.raises(KeyboardInterrupt):
        mmzarr.finalize(out)
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["step"] == "writing levels"
    assert record["damaged_files"] == moved
    assert (out / moved[0]).is_file()
    monkeypatch.undo()
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["state"] == "done"
    assert record["damaged_files"] == moved
    np.testing.assert_array_equal(read_zarr(out, "1")[0], _mean2(frame_for(0)))


def test_finalize_reads_the_frame_log_past_a_line_that_does_not_parse(
    tmp_path: Path,
) -> None:
    """A line of NULs (what a crash may leave in a file) in the middle of the
    frame log: the records after it are read, not taken as never logged (their
    frames lost their record: bare planes in the OME-XML)."""
    out = tmp_path / "crashed.ome.zarr"
    frames = _written_then_died(out, ANY_BACKEND, 6)
    log = out / "mmzarr/frames.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join([*lines[:2], "\x00" * 40 + "\n", "garbage{\n", *lines[2:]]))
    assert mmzarr.finalize(out).ok
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["frames_logged"] == 6
    assert record["frames_not_logged"] == []
    data = read_zarr(out, "0")
    for (t, c), frame in frames.items():
        np.testing.assert_array_equal(data[t, c], frame)


def test_finalize_of_damaged_settings_says_so_in_one_line(tmp_path: Path) -> None:
    """A torn `mmzarr/settings.json`: a one-line error naming the file, and no
    chunk file moved (it was pydantic's multi-line dump of the JSON)."""
    out = tmp_path / "crashed.ome.zarr"
    _crashed(out, ANY_BACKEND)
    settings = out / "mmzarr/settings.json"
    settings.write_bytes(settings.read_bytes()[:50])
    before = _chunk_files(out)
    with pytest.raises(ValueError, match=r"settings\.json' is damaged") as e:
        mmzarr.finalize(out)
    assert "\n" not in str(e.value)
    assert _chunk_files(out) == before
    assert not (out / "mmzarr/finalize.json").exists()
    # validate names the file (it only said to run finalize, which then failed)
    report = mmzarr.validate(out)
    assert any(
        "settings.json' is damaged" in p and "cannot repair" in p
        for p in report.problems
    ), report.format()


#: (id, a frame-log line that names no frame of `_written_then_died`'s one
#: image "" of (t, c), what the reason given for skipping it says)
NOT_A_FRAME = [
    ("torn", '{"frame": 2, "image": "", "ind', "not a JSON object"),
    ("nuls", "\x00" * 40, "not a JSON object"),
    ("a-list", "[1, 2]", "not a JSON object"),
    ("no-fields", '{"foo": 1}', "not a frame record (image None, index None)"),
    ("index-text", '{"frame": 3, "image": "", "index": "x"}', "index 'x'"),
    ("image-null", '{"image": null, "index": [0, 0]}', "not a frame"),
    ("other-image", '{"frame": 3, "image": "p1", "index": [0, 0]}', "'p1' is none"),
    ("short-index", '{"frame": 3, "image": "", "index": [0]}', "does not fit"),
]


@pytest.mark.parametrize("status", ["acquiring", "complete"])
@pytest.mark.parametrize(
    ("line", "reason"), [c[1:] for c in NOT_A_FRAME], ids=[c[0] for c in NOT_A_FRAME]
)
def test_a_log_line_naming_no_frame_is_a_note_and_finalize_lists_it(
    tmp_path: Path, status: str, line: str, reason: str
) -> None:
    """A frame-log line that names no frame (torn, not a frame record, another
    image's) costs a frame's metadata, not its pixels: validate notes it and
    never calls the dataset invalid for it (a record that parsed was a problem
    forever, even after finalize; a torn line went unsaid), before finalize too
    when the writer closed; finalize lists it in `finalize.json`, keeps every
    frame and leaves the user's log as it is."""
    out = tmp_path / "run.ome.zarr"
    frames = _written_then_died(out, ANY_BACKEND, 6, status)
    log = out / "mmzarr/frames.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join([*lines[:2], line + "\n", *lines[2:]]))
    damaged = log.read_bytes()
    where = "mmzarr/frames.jsonl line 3: "

    def said(report: mmzarr.ValidationReport) -> None:
        assert report.frames_logged == 6
        assert not any("line 3" in p or "not a frame" in p for p in report.problems)
        assert any(where in n and reason in n for n in report.notes), report.format()

    before = mmzarr.validate(out)
    said(before)
    assert before.ok is (status == "complete"), before.format()
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    said(final)
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["skipped_log_lines"] == [
        {"file": "mmzarr/frames.jsonl", "line": 3, "reason": ANY}
    ]
    assert reason in record["skipped_log_lines"][0]["reason"]
    assert record["skipped_log_lines_count"] == 1
    assert (record["frames_logged"], record["frames_kept"]) == (6, 6)
    assert (record["frames_not_logged"], record["lost"]) == ([], [])
    assert log.read_bytes() == damaged
    after = mmzarr.validate(out)
    assert after.ok, after.format()
    said(after)
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for (t, c), frame in frames.items():
            np.testing.assert_array_equal(data[t, c], frame)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }


#: (id, the folder of a `_crashed` dataset made read-only, what finalize says
#: of what it did: nothing, or what the next finalize finishes)
READ_ONLY = [
    ("root", "", "nothing was changed"),
    ("record-folder", "mmzarr", "nothing was changed"),
    ("torn-chunk-folder", "0/c/1/1/0", "finishes what this one started"),
]


@pytest.mark.parametrize(
    ("folder", "said"), [c[1:] for c in READ_ONLY], ids=[c[0] for c in READ_ONLY]
)
def test_finalize_of_a_read_only_folder_names_it_in_one_line(
    tmp_path: Path, folder: str, said: str
) -> None:
    """`mmzarr finalize` of a dead writer's dataset with a read-only folder:
    one line naming the folder (it named a temporary file, or the move), no
    traceback, nothing deleted, and with the folder writable the next finalize
    finishes. The folders every finalize writes are checked first: the root
    made read-only had the torn chunk moved before finalize stopped."""
    out = tmp_path / "crashed.ome.zarr"
    frames = _crashed(out, ANY_BACKEND)
    before = _files(out)
    with read_only(out / folder):
        done = mmzarr_bound("finalize", str(out))
        checked = mmzarr_bound("validate", str(out))
        after = _files(out)
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{str(out / folder)!r} is not writable" in done.stderr, done.stderr
    assert said in done.stderr
    assert (checked.returncode, checked.stderr.count("Traceback")) == (1, 0)
    assert "incomplete" in checked.stderr, checked.stderr
    assert {k: v for k, v in before.items() if after.get(k) != v} == {}
    new = set(after) - set(before)
    assert new == (set() if "nothing" in said else {"mmzarr/finalize.json"})
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert record["damaged_files"] == ["mmzarr/damaged/0/c/1/1/0/0"]
    assert {tuple(x["index"]) for x in record["lost"]} == {(1, 1)}
    data = read_zarr(out, "0")
    for (t, c), frame in frames.items():
        if (t, c) != (1, 1):
            np.testing.assert_array_equal(data[t, c], frame)


def test_finalize_on_a_read_only_mount_says_to_copy_it(tmp_path: Path) -> None:
    """A dataset to repair on a read-only file system: `chmod u+w` (what it
    said) cannot help there; copying the dataset to a writable disk does."""
    with _tmpfs(tmp_path / "ro", "64m") as mount:
        out = mount / "crashed.ome.zarr"
        _crashed(out, ANY_BACKEND)
        before = _files(out)
        remount = ["mount", "-o", "remount,ro", str(mount)]
        subprocess.run(remount, check=True, timeout=30)
        done = mmzarr_bound("finalize", str(out))
        assert _files(out) == before
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{str(out)!r} is not writable" in done.stderr
    assert "read-only file system: copy the dataset to a writable disk" in done.stderr
    assert "chmod" not in done.stderr


@pytest.mark.parametrize("status", ["complete", "failed"])
def test_finalize_of_a_read_only_dataset_that_needs_nothing_says_valid(
    tmp_path: Path, status: str
) -> None:
    """A dataset its writer closed, valid, on a read-only folder (a mount):
    finalize has nothing to repair, says it is valid and changes nothing (it
    refused: "make it writable", which cannot help there)."""
    out = tmp_path / "closed.ome.zarr"
    _written_then_died(out, ANY_BACKEND, 4, status)
    before = _files(out)
    with read_only(out), read_only(out / "mmzarr"):
        done = mmzarr_bound("finalize", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{out}: valid" in done.stdout
    assert _files(out) == before


def test_finalize_says_which_levels_it_could_not_write(tmp_path: Path) -> None:
    """A level chunk a killed writer never wrote, in a read-only folder:
    finalize does the rest and says which levels it could not write and why
    (it only said the chunk was missing); the next, the folder writable,
    writes them."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, "tensorstore", 2, downsample={"levels": 1})
    (out / "1/c/1/0/0").unlink()
    with read_only(out / "1/c/1/0"):
        done = mmzarr_bound("finalize", str(out))
    assert (done.returncode, done.stderr) == (1, ""), done
    note = [x for x in done.stdout.splitlines() if "note:" in x and "levels" in x]
    assert len(note) == 1, done.stdout
    assert "levels_missing" in note[0]
    assert str(out / "1/c/1/0/0") in note[0]
    assert "Permission denied" in note[0]
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    np.testing.assert_array_equal(read_zarr(out, "1")[1], _mean2(frame_for(1)))


def test_validate_says_why_finalize_left_levels_missing(tmp_path: Path) -> None:
    """`mmzarr validate` after a finalize that could not write a frame's level
    (a read-only folder): the level chunk stays a problem (level 1 reads the
    fill value where level 0 has the frame) and a note says why, where it is
    listed (`levels_missing`) and what to do; it said only that the chunk was
    missing. Once finalize writes it, neither is said."""
    out = tmp_path / "killed.ome.zarr"
    _time_points_then_died(out, "tensorstore", 2, downsample={"levels": 1})
    (out / "1/c/1/0/0").unlink()
    with read_only(out / "1/c/1/0"):
        mmzarr_bound("finalize", str(out))
        checked = mmzarr_bound("validate", str(out))
    assert (checked.returncode, checked.stdout) == (1, ""), checked
    said = checked.stderr.splitlines()
    assert [x for x in said if "problem:" in x] == [
        "  problem: array '1': chunk c/1/0/0 of frame [1] is missing"
    ], checked.stderr
    note = [x for x in said if "note:" in x and "levels" in x]
    assert len(note) == 1, checked.stderr
    assert "1 kept frame were" in note[0]
    assert str(out / "1/c/1/0/0") in note[0]
    assert "Permission denied" in note[0]
    assert "`levels_missing` in mmzarr/finalize.json" in note[0]
    assert "run `mmzarr finalize` again once that is fixed" in note[0]
    assert mmzarr.finalize(out).ok
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    assert not any("levels" in n for n in report.notes), report.notes
