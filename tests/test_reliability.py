"""Crash safety, storage failure, cancel and concurrency.

- SIGKILL: a child process writes frames and reports each appended frame with
  its monotonic time; the parent kills it and checks that every frame appended
  more than `flush_interval_s` before the kill reads back exactly, that
  `validate` counts them and that `finalize` makes the dataset valid without
  rewriting a chunk.
- finalize on a hand-damaged dataset: torn, missing and never-written chunks.
- Disk full: a small tmpfs (mounted by the test; needs root) fills up mid-run.
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
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import (
    assert_frames,
    check_metadata,
    group_json,
    read_tensorstore,
    read_zarr,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
DEMO_CFG = REPO / "configs" / "demo.cfg"
FLUSH_S = 1.0
SHAPE = (16, 24)
TEMPLATE = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 0.05, "loops": 1}
)


def frame_for(n: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A frame unique to frame number n."""
    return np.random.default_rng(n).integers(0, 60000, shape).astype("uint16")


def digest(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


# ---- the child process --------------------------------------------------------
# `python -c CHILD variant backend out` runs `_child` from this module.
CHILD = "import sys; from tests.test_reliability import _child; _child(*sys.argv[1:])"
VARIANTS: dict[str, dict[str, Any]] = {
    # unbounded t, one frame per chunk (the default storage layout), frames keep
    # coming until the kill
    "stream": {},
    # 4 time points per shard, and the acquisition pauses after 10 frames (a slow
    # time-lapse): frames of the open shard must not wait in memory for it
    "stream-sharded": {"shards": {"t": 4}, "stall_after": 10},
}


def _report(t: int, c: int, frame: np.ndarray) -> None:
    """One line per appended frame: index, digest, monotonic time."""
    sys.stdout.write(f"{t} {c} {digest(frame)} {time.monotonic()!r}\n")
    sys.stdout.flush()


def _child(variant: str, backend: str, out: str) -> None:
    """Write frames until killed (runs in the child process)."""
    if variant == "mda":
        _child_mda(backend, Path(out))
        return
    options = dict(VARIANTS[variant])
    stall_after = options.pop("stall_after", None)
    settings = mmzarr.AcquisitionSettings.from_useq(
        TEMPLATE,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        unbounded_t=True,
        flush_interval_s=FLUSH_S,
        **options,
    )
    stream = mmzarr.create_stream(out, settings, backend=backend)
    for n in itertools.count():
        if n == stall_after:
            time.sleep(3600)
        t, c = divmod(n, 2)
        frame = frame_for(n)
        stream.append(frame, index={"t": t, "c": c}, metadata={"n": n})
        _report(t, c, frame)
        time.sleep(0.02)


def _child_mda(backend: str, out: Path) -> None:
    """An unbounded event-generator MDA on the demo rig, through `MDAWriter`."""
    from mmzarr.demo import demo_core

    core = demo_core(DEMO_CFG)

    class ReportingWriter(mmzarr.MDAWriter):
        def frameReady(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
            super().frameReady(img, event, meta)
            if self.error is None:
                _report(event.index["t"], event.index["c"], img)

    def events() -> Iterator[useq.MDAEvent]:
        for t in itertools.count():
            for c, ch in enumerate(("DAPI", "FITC")):
                yield useq.MDAEvent(
                    index={"t": t, "c": c},
                    channel={"config": ch},
                    min_start_time=t * 0.05,
                )

    writer = ReportingWriter(
        out,
        backend=backend,
        core=core,
        template=TEMPLATE,
        flush_interval_s=FLUSH_S,
    )
    core.mda.run(events(), output=writer)


# ---- the parent ---------------------------------------------------------------
Reported = tuple[int, int, str, float]  # t, c, digest, monotonic time


def _parse(line: str) -> Reported | None:
    """A complete report line, or None (a line torn by the kill)."""
    parts = line.split()
    if not line.endswith("\n") or len(parts) != 4:
        return None
    return int(parts[0]), int(parts[1]), parts[2], float(parts[3])


def _run_and_kill(
    variant: str, backend: str, out: Path, n_frames: int, err: Path
) -> tuple[list[Reported], float]:
    """Start the child, wait for `n_frames` and then `FLUSH_S` more, SIGKILL it.

    Returns every reported frame and the monotonic time just before the kill.
    """
    lines: queue.Queue[str] = queue.Queue()
    with open(err, "w") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, variant, backend, str(out)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err_f,
            text=True,
        )
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    got: list[Reported] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < n_frames:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"child wrote {len(got)} frames in 30 s")
            if not line:
                pytest.fail(f"child exited early:\n{err.read_text()}")
            rep = _parse(line)
            assert rep is not None, line
            got.append(rep)
        time.sleep(FLUSH_S + 0.3)
        kill_time = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        stdout.close()
    while (line := lines.get_nowait()) != "":
        if (rep := _parse(line)) is not None:
            got.append(rep)
    assert proc.returncode == -signal.SIGKILL
    return got, kill_time


def _chunk_files(root: Path, array: str = "0") -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every chunk/shard file (not metadata)."""
    out = {}
    for p in sorted((root / array).rglob("*")):
        if p.is_file() and p.name != "zarr.json":
            st = p.stat()
            key = p.relative_to(root).as_posix()
            out[key] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def _assert_digests(root: Path, frames: list[Reported]) -> None:
    """Each frame reads back with its digest, with zarr-python and tensorstore."""
    for read in (read_zarr, read_tensorstore):
        data = read(root, "0")
        for t, c, sha, _ in frames:
            assert t < data.shape[0], f"{read.__name__}: t={t} beyond {data.shape}"
            assert digest(data[t, c]) == sha, f"{read.__name__}: frame t={t} c={c}"


def _log(root: Path) -> list[dict[str, Any]]:
    text = (root / "mmzarr/frames.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines()]


# acquire-zarr 0.10 has no flush and writes a shard's index only when the shard is
# full: frames of an open multi-frame shard are unreadable after a kill (README,
# "Crash safety"). tensorstore and zarr-python flush gathered shards every
# flush_interval_s.
SHARD_XFAIL = {
    "acquire-zarr": (
        "acquire-zarr 0.10 cannot flush an incomplete shard: its frames are lost "
        "on a kill (documented trade-off of multi-frame shards)"
    ),
}


@pytest.mark.parametrize("variant", ["stream", "stream-sharded", "mda"])
def test_sigkill_keeps_flushed_frames(
    tmp_path: Path, backend: str, variant: str, request: pytest.FixtureRequest
) -> None:
    if variant == "stream-sharded" and backend in SHARD_XFAIL:
        request.applymarker(pytest.mark.xfail(strict=True, reason=SHARD_XFAIL[backend]))
    out = tmp_path / "killed.ome.zarr"
    n_frames = VARIANTS.get(variant, {}).get("stall_after", 12)
    got, kill_time = _run_and_kill(
        variant, backend, out, n_frames, tmp_path / "err.txt"
    )
    safe = [f for f in got if f[3] < kill_time - FLUSH_S]
    assert len(safe) >= n_frames

    # the metadata was on disk all along, current with the growing t
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "acquiring"
    _assert_digests(out, safe)

    report = mmzarr.validate(out)
    assert report.incomplete, report.format()
    assert report.frames_complete >= len(safe), report.format()
    assert "incomplete" in report.format()
    logged = {tuple(r["index"]): r for r in _log(out)}
    for t, c, _, _ in safe:
        assert logged[(t, c)]["index"] == [t, c]
        if variant == "mda":
            assert logged[(t, c)]["event_index"] == {"t": t, "c": c}
        else:
            assert logged[(t, c)]["n"] == 2 * t + c

    chunks = _chunk_files(out)
    final = mmzarr.finalize(out)
    assert final.ok, final.format()
    assert not final.incomplete
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "interrupted"
    check_metadata(out)
    _assert_digests(out, safe)
    # no chunk rewritten; only files that do not decode were moved aside
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    after = _chunk_files(out)
    assert after == {k: v for k, v in chunks.items() if k in after}
    gone = {f"mmzarr/damaged/{k}" for k in chunks.keys() - after.keys()}
    assert gone == set(record["damaged_files"])
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["frames_written"] == record["frames_kept"] >= len(safe)
    t_size = read_zarr(out, "0").shape[0]
    assert attrs["images"][""]["t_size"] == t_size >= safe[-1][0] + 1
    assert mmzarr.validate(out).ok


# ---- finalize on a hand-damaged dataset --------------------------------------
def test_finalize_sets_aside_torn_missing_and_unwritten(
    tmp_path: Path, backend: str
) -> None:
    """What a crash can leave: a torn chunk, a missing one, a logged frame that
    never reached the disk, a torn chunk of a frame that was never logged."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        TEMPLATE,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        unbounded_t=True,
        compression="blosc-lz4",
    )
    out = tmp_path / "crashed.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n in range(12):
            t, c = divmod(n, 2)
            frames[(t, c)] = frame_for(n)
            stream.append(frames[(t, c)], index={"t": t, "c": c})
    # make it look like the writer died: status, log and chunks
    root_doc = json.loads((out / "zarr.json").read_text())
    root_doc["attributes"]["mmzarr"]["status"] = "acquiring"
    (out / "zarr.json").write_text(json.dumps(root_doc))
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
    assert record2["damaged_files"] == []
    assert _chunk_files(out) == untouched


def test_finalize_refuses_foreign_dataset(tmp_path: Path) -> None:
    (tmp_path / "x.zarr").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape("settings.json")):
        mmzarr.finalize(tmp_path / "x.zarr")


# ---- disk full -----------------------------------------------------------------
BIG = (256, 256)  # 128 KiB frames
#: A small memory budget, so that few frames are in flight at any time.
BUDGET = 4 * 128 * 1024
#: Frames a backend may have accepted but not stored when it reports a failure.
#: acquire-zarr writes asynchronously and reports a full disk late, so its
#: backend checks free space (minus bytes in flight) before each append: none.
IN_FLIGHT: dict[str, int] = {}


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


def _plane(root: Path, index: tuple[int, ...], engine: str) -> np.ndarray:
    """One plane of array `0`, read alone (a torn neighbour may not decode)."""
    if engine == "zarr":
        import zarr

        return np.asarray(zarr.open_array(str(root / "0"), mode="r")[index])
    import tensorstore as ts

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / "0")}}
    return np.asarray(ts.open(spec, open=True).result()[index].read().result())


def test_disk_full_stream(tmp_path: Path, backend: str) -> None:
    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 64})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=BIG, dtype="uint16", pixel_size_um=0.5, max_buffer_bytes=BUDGET
    )
    with _tmpfs(tmp_path / "small", "2m") as small:
        out = small / "full.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=backend)
        n = 0
        error: OSError | None = None
        try:
            for event in seq:
                try:
                    stream.append(frame_for(n, BIG), index=event.index)
                except OSError as e:
                    error = e
                    break
                n += 1
                time.sleep(0.02)
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        assert error is not None, "the disk never filled up"
        assert str(out) in str(error)
        assert "No space left on device" in str(error) or backend == "acquire-zarr"
        assert stream.status == "failed"
        must = n - IN_FLIGHT.get(backend, 0)
        assert must >= 8  # 2 MiB hold about 15 frames
        for engine in ("zarr", "tensorstore"):
            for i in range(must):
                np.testing.assert_array_equal(
                    _plane(out, (i,), engine), frame_for(i, BIG), err_msg=f"{i}"
                )
        # once there is space again, finalize makes a valid dataset of them
        _grow(small, "16m")
        report = mmzarr.finalize(out)
        assert report.ok, report.format()
        check_metadata(out)
        data = read_zarr(out, "0")
        for i in range(must):
            np.testing.assert_array_equal(data[i], frame_for(i, BIG), err_msg=f"{i}")


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
        must = writer.frames_written - IN_FLIGHT.get(backend, 0)
        assert must >= 8
        for engine in ("zarr", "tensorstore"):
            for event, img in cap.frames[:must]:
                plane = _plane(out, (event.index["t"], 0), engine)
                np.testing.assert_array_equal(plane, img, err_msg=str(event.index))


def test_frame_log_failure_is_a_storage_error(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-frame metadata that cannot be written fails the stream like data."""
    from mmzarr._metadata import FrameLog

    seq = useq.MDASequence(time_plan={"interval": 0.1, "loops": 6})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "log.ome.zarr"
    stream = mmzarr.create_stream(out, settings, backend=backend)
    try:
        for n in range(3):
            stream.append(frame_for(n), index={"t": n})

        def no_space(self: FrameLog, record: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(FrameLog, "write", no_space)
        with pytest.raises(mmzarr.StorageError, match=re.escape(str(out))):
            stream.append(frame_for(3), index={"t": 3})
        with pytest.raises(mmzarr.StorageError, match="failed earlier"):
            stream.append(frame_for(4), index={"t": 4})
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
    """Frames of one image from many threads: each lands once or is refused."""
    events = list(TCZ)
    out = tmp_path / "threads.ome.zarr"
    accepted = {}
    with mmzarr.create_stream(out, _settings(TCZ), backend=backend) as stream:

        def put(item: tuple[int, useq.MDAEvent]) -> None:
            n, e = item
            accepted[stream.append(frame_for(n), index=e.index)] = frame_for(n)

        jobs = [list(enumerate(events))[k::6] for k in range(6)]
        errors = _in_threads(jobs, put)
    for e in errors:  # only acquire-zarr, which appends in acquisition order
        assert backend == "acquire-zarr"
        assert isinstance(e, mmzarr.FrameError)
        assert "appends in acquisition order" in str(e)
    assert len(accepted) + len(errors) == len(events)
    assert stream.frames_written == len(accepted)
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
            try:
                accepted[stream.append(frame_for(n), index=e.index)] = frame_for(n)
            except Exception as exc:
                errors.append(exc)
                return
            started.set()
            time.sleep(0.005)

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
    from mmzarr.backends._base import FreeSpaceGuard

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
    guard = FreeSpaceGuard(tmp_path, margin=1024**2, max_age_s=60)
    for _ in range(100):
        guard.check(1024, in_flight=4096)
    assert calls == [str(tmp_path)]  # far from full: measured once
    free["bytes"] = 3 * 1024**2
    guard = FreeSpaceGuard(tmp_path, margin=1024**2, max_age_s=60)
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
