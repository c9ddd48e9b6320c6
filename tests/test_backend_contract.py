"""The backend contract: one suite that every backend passes.

`BackendContract` is subclassed once per backend (`class TestTensorStore(
BackendContract): backend = "tensorstore"`), as zarr-python's
`zarr.testing.store.StoreTests` is per store. It checks what
`mmzarr.backends._base` promises, through a backend's three methods and through
`create_stream`, and reads every frame back with zarr-python AND tensorstore,
never with the backend. Storage that is slow or fails is simulated in the
library each backend writes with (`stall`, `fail`), never inside mmzarr, and no
test waits for a clock to pass: a deadline only bounds how long a test may
wait for what must happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest
import useq
import zarr
from zarr.core.array import AsyncArray

import mmzarr
from mmzarr._layout import array_path
from mmzarr._storage import Location
from mmzarr.backends import BACKENDS, Arrays, Capabilities, Limits, get_backend
from mmzarr.errors import BufferFullError, StorageError
from tests._readback import (
    assert_frames,
    check_metadata,
    group_json,
    read_tensorstore,
    read_zarr,
)
from tests._waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mmzarr.backends import ArrayBackend

SHAPE = (8, 10)
FRAME_BYTES = SHAPE[0] * SHAPE[1] * 2


def stamp(n: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Frame `n`: unique per frame and not symmetric inside the frame."""
    return (n * 100 + np.arange(shape[0] * shape[1]).reshape(shape)).astype("uint16")


def settings_of(seq: useq.MDASequence, **options: Any) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, **options
    )


def backend_class(name: str) -> type:
    """The class registered as `name` (without constructing it)."""
    info = BACKENDS[name]
    cls: type = getattr(importlib.import_module(info.module), info.class_name)
    return cls


# ---- cases written through create_stream ----------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    seq: useq.MDASequence
    options: dict[str, Any] = field(default_factory=dict)
    indices: tuple[dict[str, int], ...] | None = None  # default: the plan's events

    def settings(self) -> mmzarr.AcquisitionSettings:
        return settings_of(self.seq, **self.options)

    def frame_indices(self) -> list[dict[str, int]]:
        if self.indices is not None:
            return list(self.indices)
        return [dict(e.index) for e in self.seq]


TCZ = useq.MDASequence(
    channels=["DAPI", "FITC"],
    z_plan={"range": 2, "step": 1},
    time_plan={"interval": 1, "loops": 2},
)
Z5 = useq.MDASequence(
    channels=["DAPI", "FITC"],
    z_plan={"range": 4, "step": 1},
    time_plan={"interval": 1, "loops": 3},
)
COLLECTION = useq.MDASequence(
    axis_order="tpcz",
    channels=["DAPI", "FITC"],
    time_plan={"interval": 1, "loops": 2},
    stage_positions=[
        useq.Position(x=0, y=0),
        useq.Position(
            x=10, y=0, sequence=useq.MDASequence(z_plan={"range": 2, "step": 1})
        ),
        useq.Position(x=20, y=0),
    ],
)
PLATE = useq.MDASequence(
    channels=["DAPI"],
    stage_positions=useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=([0, 0], [0, 1]),
        well_points_plan=useq.GridRowsColumns(rows=2, columns=2),
    ),
)
TIMELAPSE = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 1}
)
UNBOUNDED_T = tuple({"t": t, "c": c} for t in range(5) for c in range(2))

CASES = [
    Case("tczyx", TCZ),
    Case("collection", COLLECTION),
    Case("plate", PLATE),
    Case("unbounded-t", TIMELAPSE, {"unbounded_t": True}, UNBOUNDED_T),
    Case("shard-z-zstd", Z5, {"shards": {"z": 4}, "compression": "blosc-zstd"}),
    Case("shard-t", Z5, {"shards": {"t": 2}}),
    Case(
        "shard-t-unbounded",
        TIMELAPSE,
        {"unbounded_t": True, "shards": {"t": 2}},
        UNBOUNDED_T,
    ),
    Case("chunk-z-lz4", Z5, {"chunks": {"z": 2}, "compression": "blosc-lz4"}),
    Case("levels", TCZ, {"downsample": {"levels": 1}}),
]


def write_case(case: Case, backend: str, path: Path) -> dict[str, np.ndarray]:
    """Write `case`; return the expected array of every image key."""
    settings = case.settings()
    appended: list[tuple[str, tuple[int, ...], np.ndarray]] = []
    with mmzarr.create_stream(path, settings, backend=backend) as stream:
        for n, index in enumerate(case.frame_indices()):
            frame = stamp(n)
            key, sidx = stream.append(frame, index=index)
            appended.append((key, sidx, frame))
            frame[:] = 0  # the backend must have copied or consumed it
    expected: dict[str, np.ndarray] = {}
    for im in settings.images:
        shape = list(im.shape)
        if im.unbounded:
            shape[0] = 1 + max(s[0] for k, s, _ in appended if k == im.key)
        expected[im.key] = np.zeros(shape, dtype=settings.dtype)
    for n, (key, sidx, _) in enumerate(appended):
        expected[key][sidx] = stamp(n)
    return expected


def assert_frames_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    for idx in np.ndindex(*want.shape[:-2]):
        np.testing.assert_array_equal(got[idx], want[idx], err_msg=f"{what} {idx}")


def chunk_files(root: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every chunk/shard file under `root`."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "zarr.json" and "/c/" in p.as_posix():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (
                st.st_ino,
                st.st_mtime_ns,
                st.st_size,
            )
    return out


def assert_stamps(root: Path, n: int) -> None:
    """Array `0` under `root` holds `stamp(t)` at each t < n (zarr-python and
    tensorstore both read it)."""
    for read in (read_zarr, read_tensorstore):
        data = read(root, "0")
        for t in range(n):
            np.testing.assert_array_equal(data[t], stamp(t), err_msg=f"t={t}")


class Gate(threading.Event):
    """Storage held back until `set`; `on_set` callbacks then let it go on."""

    def __init__(self) -> None:
        super().__init__()
        self.on_set: list[Callable[[], None]] = []

    def set(self) -> None:
        super().set()
        for fn in self.on_set:
            fn()


# ---- the suite -------------------------------------------------------------------
class BackendContract:
    """What every backend does; subclasses name the backend and how its storage
    library is made slow (`stall`) or failing (`fail`)."""

    backend: ClassVar[str]

    @pytest.fixture(autouse=True)
    def _installed(self) -> None:
        info = BACKENDS[self.backend]
        if not info.is_available():
            pytest.skip(f"backend {self.backend!r} not installed ({info.install_hint})")

    @staticmethod
    def stall(monkeypatch: pytest.MonkeyPatch) -> Gate:
        """Make the storage library take nothing until the gate is set."""
        raise NotImplementedError

    @staticmethod
    def fail(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        """Make every later write of the storage library fail with `message`."""
        raise NotImplementedError

    def open_backend(self, root: Path, settings: Any) -> ArrayBackend:
        backend = get_backend(self.backend)
        backend.open(Location(path=root), Arrays.of(settings), Limits())
        return backend

    # ---- the contract itself -----------------------------------------------------
    def test_declares_three_methods_and_capabilities(self) -> None:
        cls = backend_class(self.backend)
        assert isinstance(cls.capabilities, Capabilities)
        params = {
            name: list(inspect.signature(getattr(cls, name)).parameters)
            for name in ("open", "write", "flush")
        }
        assert params == {
            "open": ["self", "location", "arrays", "limits"],
            "write": ["self", "array", "index", "frame", "levels"],
            "flush": ["self", "final"],
        }

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    def test_write_read_back(self, case: Case, tmp_path: Path) -> None:
        path = tmp_path / "case.ome.zarr"
        expected = write_case(case, self.backend, path)
        for im in case.settings().images:
            meta = zarr.open_array(str(path / array_path(im)), mode="r").metadata
            assert meta.dimension_names == im.dim_names
            want = expected[im.key]
            got = read_zarr(path, array_path(im))
            assert_frames_equal(got, want, f"zarr-python {im.key!r}")
            got = read_tensorstore(path, array_path(im))
            assert_frames_equal(got, want, f"tensorstore {im.key!r}")
        check_metadata(path)
        assert mmzarr.validate(path).ok

    def test_all_zero_frames_are_stored(self, tmp_path: Path) -> None:
        """A frame equal to the fill value is a chunk file like any other (a
        missing chunk would look like a frame never written)."""
        settings = settings_of(useq.MDASequence(time_plan={"interval": 1, "loops": 3}))
        out = tmp_path / "zeros.ome.zarr"
        with mmzarr.create_stream(out, settings, backend=self.backend) as stream:
            stream.append(np.zeros(SHAPE, "uint16"))
            stream.append(stamp(1))
            stream.append(np.zeros(SHAPE, "uint16"))
        chunks = {p.split("/")[2] for p in chunk_files(out)}
        assert chunks == {"0", "1", "2"}
        data = read_tensorstore(out, "0")
        np.testing.assert_array_equal(data[1], stamp(1))
        assert not data[0].any()
        assert not data[2].any()

    @pytest.mark.parametrize("shards", [None, {"t": 2}], ids=["frame", "shard-t2"])
    def test_unbounded_t(self, tmp_path: Path, shards: dict[str, int] | None) -> None:
        """`t` grows as frames arrive: once they are readable the shape on disk
        holds them; after the final flush it is the time points written."""
        settings = settings_of(TIMELAPSE, unbounded_t=True, shards=shards)
        root = tmp_path / "u.ome.zarr"
        backend = self.open_backend(root, settings)
        for n, index in enumerate(UNBOUNDED_T):
            backend.write(0, (index["t"], index["c"]), stamp(n))
        readable = 0

        def more() -> bool:
            nonlocal readable
            readable = backend.flush().readable
            return readable >= (8 if shards else 10)  # t 4 is half a shard

        wait_for("frames readable", more)
        assert zarr.open_array(str(root / "0"), mode="r").shape[0] >= readable // 2
        assert backend.flush(final=True).readable == 10
        for read in (read_zarr, read_tensorstore):
            data = read(root, "0")
            assert data.shape == (5, 2, *SHAPE)
            for n, index in enumerate(UNBOUNDED_T):
                np.testing.assert_array_equal(data[index["t"], index["c"]], stamp(n))

    @pytest.mark.parametrize("shards", [None, {"t": 2}], ids=["frame", "shard-t2"])
    def test_flush_makes_readable(
        self, tmp_path: Path, shards: dict[str, int] | None
    ) -> None:
        """Frames reported readable read back whole while the backend is open;
        where declared, flushing makes every frame written readable (those of an
        incomplete shard too)."""
        seq = useq.MDASequence(time_plan={"interval": 1, "loops": 6})
        root = tmp_path / "r.ome.zarr"
        backend = self.open_backend(root, settings_of(seq, shards=shards))
        written = 5  # with shards along t, t 4 is half a shard
        for t in range(written):
            backend.write(0, (t,), stamp(t))
        caps = backend_class(self.backend).capabilities
        counts = [0]

        def flushed() -> bool:
            counts.append(backend.flush().readable)
            if caps.flush_makes_readable:
                return counts[-1] == written
            return counts[-1] >= (4 if shards else written)

        wait_for("frames readable", flushed)
        assert counts == sorted(counts)  # it only grows
        assert counts[-1] <= written
        assert_stamps(root, counts[-1])
        final = backend.flush(final=True)
        assert final.readable == written
        assert final.in_flight == 0

    def test_readable_frames_stay_whole(self, tmp_path: Path) -> None:
        """A frame counted in `frames_flushed` reads back whole from then on,
        while later flushes rewrite its shard: the file is replaced by a new
        one, never rewritten in place (issue #22, item 7)."""
        shape = (128, 128)
        seq = useq.MDASequence(time_plan={"interval": 0.01, "loops": 80})
        settings = mmzarr.AcquisitionSettings.from_useq(
            seq,
            image_shape=shape,
            dtype="uint16",
            pixel_size_um=0.5,
            shards={"t": 4},
            flush_interval_s=0.01,
        )
        out = tmp_path / "live.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=self.backend)
        bad: list[str] = []
        stop = threading.Event()
        reads = [0]

        def reader() -> None:
            while not stop.is_set():
                n = stream.frames_flushed
                if not n:
                    continue
                try:
                    data = zarr.open_array(str(out / "0"), mode="r")
                    for t in range(max(0, n - 6), n):
                        if not (data[t] == stamp(t, shape)).all():
                            bad.append(f"t={t} of {n} flushed: other pixels")
                        reads[0] += 1
                except Exception as e:
                    bad.append(f"{n} flushed: {type(e).__name__}: {e}")

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        changed: list[str] = []
        # files holding readable frames at the last look, kept open: a file
        # replaced since keeps its old content (and inode) alive behind the fd
        holding: dict[str, tuple[int, int, int]] = {}

        def look(n: int) -> None:
            for name, (fd, mtime, size) in holding.items():
                st = os.fstat(fd)
                if (st.st_mtime_ns, st.st_size) != (mtime, size):
                    changed.append(name)
                os.close(fd)
            holding.clear()
            for k in range(-(-n // 4)):
                name = f"0/c/{k}/0/0"
                with contextlib.suppress(FileNotFoundError):
                    fd = os.open(out / name, os.O_RDONLY)
                    st = os.fstat(fd)
                    holding[name] = (fd, st.st_mtime_ns, st.st_size)

        try:
            for t in range(80):
                stream.append(stamp(t, shape))
                time.sleep(0.002)
                if t % 10 == 9:
                    look(stream.frames_flushed)
            look(0)
        finally:
            for fd, _, _ in holding.values():
                os.close(fd)
            stop.set()
            th.join(30)
            stream.close()
        assert not bad, bad[:5]
        assert not changed, changed[:5]
        assert reads[0] > 0
        data = read_tensorstore(out, "0")
        for t in range(80):
            np.testing.assert_array_equal(data[t], stamp(t, shape))

    def test_completing_a_shard_moves_no_chunk(self, tmp_path: Path) -> None:
        """A reader that read a shard's index before the shard was completed and
        reads a chunk after (zarr-python reads them with separate requests)
        still reads that chunk's frame: an incomplete shard is written with
        every chunk (the missing ones as the fill value), so none moves."""
        if not backend_class(self.backend).capabilities.flush_makes_readable:
            pytest.skip(f"{self.backend} writes no incomplete shard")
        seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
        root = tmp_path / "s.ome.zarr"
        backend = self.open_backend(root, settings_of(seq, shards={"t": 2}))
        backend.write(0, (1,), stamp(1))
        wait_for("t 1 readable", lambda: backend.flush().readable == 1)
        shard = root / "0" / "c" / "0" / "0" / "0"
        # the shard index (zarr v3 sharding, index at the end): an (offset,
        # nbytes) pair per chunk, then a crc32c
        index = np.frombuffer(shard.read_bytes()[-(2 * 16 + 4) : -4], "<u8")
        offset, nbytes = (int(v) for v in index.reshape(2, 2)[1])
        backend.write(0, (0,), stamp(0))
        wait_for("the shard complete", lambda: backend.flush().readable == 2)
        assert shard.read_bytes()[offset : offset + nbytes] == stamp(1).tobytes()
        backend.flush(final=True)
        assert_stamps(root, 2)

    def test_frames_of_an_incomplete_compressed_shard_wait_for_it(
        self, tmp_path: Path
    ) -> None:
        """Compressed chunks change size, so completing a shard moves them: a
        frame of an incomplete compressed shard is counted readable only once
        the shard is complete (a reader holding the older index would read
        other bytes)."""
        seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
        root = tmp_path / "z.ome.zarr"
        settings = settings_of(seq, shards={"t": 2}, compression="blosc-lz4")
        backend = self.open_backend(root, settings)
        for t in range(3):  # t 2 is half of the second shard
            backend.write(0, (t,), stamp(t))
        wait_for("the first shard readable", lambda: backend.flush().readable >= 2)
        counts = [backend.flush().readable for _ in range(20)]
        if backend_class(self.backend).capabilities.flush_makes_readable:
            wait_for("t 2 on disk", (root / "0" / "c" / "1" / "0" / "0").exists)
        counts += [backend.flush().readable for _ in range(20)]
        assert set(counts) == {2}, counts
        backend.write(0, (3,), stamp(3))
        wait_for("the second shard readable", lambda: backend.flush().readable == 4)
        backend.flush(final=True)
        assert_stamps(root, 4)

    # ---- backpressure: on_full on a tiny buffer and stalled storage ---------------
    def _pressed(
        self, tmp_path: Path, on_full: str, **options: Any
    ) -> tuple[mmzarr.Stream, Path]:
        seq = useq.MDASequence(time_plan={"interval": 1, "loops": 40})
        settings = settings_of(
            seq, max_buffer_bytes=FRAME_BYTES, on_full=on_full, **options
        )
        out = tmp_path / f"{on_full}.ome.zarr"
        return mmzarr.create_stream(out, settings, backend=self.backend), out

    def test_on_full_raise(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stream, out = self._pressed(tmp_path, "raise")
        gate = self.stall(monkeypatch)
        accepted = {}

        def fill() -> None:
            for n in range(40):
                accepted[stream.append(stamp(n))] = stamp(n)

        with pytest.raises(BufferFullError, match=str(out)):
            fill()
        assert 1 <= len(accepted) <= 8  # the capacity, not the plan
        assert stream.status == "acquiring"  # the stream goes on
        gate.set()
        n = len(accepted)
        wait_for("room", lambda: stream.frames_flushed == n)
        accepted[stream.append(stamp(n))] = stamp(n)  # the refused frame's slot
        stream.close()
        assert stream.frames_written == len(accepted)
        assert stream.status == "cancelled"
        assert_frames(out, accepted)

    def test_on_full_drop(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stream, out = self._pressed(tmp_path, "drop")
        gate = self.stall(monkeypatch)
        accepted = {}
        for n in range(12):
            accepted[stream.append(stamp(n))] = stamp(n)
        assert 1 <= stream.dropped <= 11
        gate.set()
        stream.close()
        log = (out / "mmzarr/frames.jsonl").read_text().splitlines()
        records = [json.loads(x) for x in log]
        dropped = {tuple(r["index"]) for r in records if r.get("dropped")}
        assert len(dropped) == stream.dropped
        assert stream.frames_written == 12 - stream.dropped
        attrs = group_json(out)["attributes"]["mmzarr"]
        assert attrs["frames_dropped"] == stream.dropped
        assert attrs["frames_written"] == stream.frames_written
        assert_frames(out, {k: v for k, v in accepted.items() if k[1] not in dropped})
        data = read_zarr(out, "0")  # acquire-zarr ends t at the last frame written
        assert not any(data[i].any() for i in dropped if i[0] < len(data))

    def test_on_full_block(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stream, out = self._pressed(tmp_path, "block")
        gate = self.stall(monkeypatch)
        errors: list[BaseException] = []

        def produce() -> None:
            try:
                for n in range(12):
                    stream.append(stamp(n))
            except BaseException as e:
                errors.append(e)

        th = threading.Thread(target=produce, daemon=True)
        th.start()
        th.join(0.5)
        assert th.is_alive()  # blocked: storage takes nothing (120 s allowed)
        assert stream.frames_written < 12
        gate.set()
        th.join(60)
        assert not th.is_alive()
        assert errors == []
        stream.close()
        assert stream.dropped == 0
        assert stream.status == "cancelled"
        assert_frames(out, {("", (n,)): stamp(n) for n in range(12)})

    def test_on_full_block_fails_when_storage_takes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`block` waits at most `Limits.io_timeout_s` for storage to take
        anything, then fails the stream with a `StorageError` naming it."""
        from mmzarr.backends import _base

        # short, but also the bound of the open and of close's wait for the
        # held frames once storage is back (0.3 s: a loaded machine missed it)
        monkeypatch.setattr(_base, "LOCAL_TIMEOUT_S", 2.0)
        stream, out = self._pressed(tmp_path, "block")
        gate = self.stall(monkeypatch)
        accepted = {}

        def fill() -> None:
            for n in range(40):
                accepted[stream.append(stamp(n))] = stamp(n)

        with pytest.raises(StorageError, match="took nothing") as info:
            fill()
        assert str(out) in str(info.value)
        with pytest.raises(StorageError, match="failed earlier"):
            stream.append(stamp(99))
        gate.set()
        with contextlib.suppress(StorageError):
            stream.close()
        assert stream.status == "failed"
        assert group_json(out)["attributes"]["mmzarr"]["status"] == "failed"
        assert_frames(out, accepted)

    def test_latest_answers_while_an_append_waits_for_storage(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`latest` reads memory only: it answers while an append holds the
        stream waiting for storage to take frames (`on_full="block"`)."""
        stream, _ = self._pressed(tmp_path, "block")
        gate = self.stall(monkeypatch)
        cls = backend_class(self.backend)
        flush = cls.flush
        waiting = threading.Event()

        def watched_flush(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is producer:
                waiting.set()  # an append asks storage for room
            return flush(backend, *args, **kwargs)

        monkeypatch.setattr(cls, "flush", watched_flush)

        def produce() -> None:
            for n in range(12):
                stream.append(stamp(n))

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        wait_for("an append waiting for storage", waiting.is_set)
        got: list[np.ndarray | None] = []
        reader = threading.Thread(target=lambda: got.append(stream.latest()))
        reader.start()
        reader.join(30)  # a bound: latest needs nothing the append holds
        answered = not reader.is_alive()
        gate.set()
        producer.join(60)
        reader.join(60)
        stream.close()
        assert answered, "latest() waited for the append holding the stream"
        frame = got[0]
        assert frame is not None
        assert any((frame == stamp(n)).all() for n in range(12))

    # ---- lifecycle and failures ----------------------------------------------------
    def test_close_twice(self, tmp_path: Path) -> None:
        settings = settings_of(useq.MDASequence(time_plan={"interval": 1, "loops": 3}))
        backend = self.open_backend(tmp_path / "b.ome.zarr", settings)
        backend.write(0, (0,), stamp(0))
        backend.write(0, (1,), stamp(1))
        first = backend.flush(final=True)
        assert first.readable == 2
        assert backend.flush(final=True) == first
        out = tmp_path / "s.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=self.backend)
        stream.append(stamp(0))
        stream.close()
        stream.close()
        assert stream.status == "cancelled"
        assert stream.frames_flushed == 1
        assert_frames(out, {("", (0,)): stamp(0)})

    def test_failure_mid_write(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Storage fails after frames were flushed: a `StorageError` naming the
        dataset, the stream failed, every frame flushed before kept."""
        seq = useq.MDASequence(time_plan={"interval": 1, "loops": 40})
        settings = settings_of(seq, flush_interval_s=0.02)
        out = tmp_path / "fail.ome.zarr"
        stream = mmzarr.create_stream(out, settings, backend=self.backend)
        for n in range(4):
            stream.append(stamp(n))
        wait_for("flushed", lambda: stream.frames_flushed == 4)
        self.fail(monkeypatch, "injected: disk on fire")
        error: StorageError | None = None
        for n in range(4, 40):
            try:
                stream.append(stamp(n))
            except StorageError as e:
                error = e
                break
            time.sleep(0.01)  # the flush thread may be the one to see it
        try:
            stream.close()
        except StorageError as e:
            error = error or e
        assert error is not None, "the failure never surfaced"
        assert str(out) in str(error)
        assert "disk on fire" in str(error)
        assert stream.status == "failed"
        assert group_json(out)["attributes"]["mmzarr"]["status"] == "failed"
        monkeypatch.undo()
        data = read_zarr(out, "0")
        for n in range(4):
            np.testing.assert_array_equal(data[n], stamp(n))
        np.testing.assert_array_equal(read_tensorstore(out, "0")[:4], data[:4])


# ---- the backends ------------------------------------------------------------------
class _HeldCommit:
    """A tensorstore commit that is not done until `gate` is set."""

    def __init__(self, real: Any, gate: threading.Event) -> None:
        self.real, self.gate = real, gate

    def done(self) -> bool:
        return self.gate.is_set() and bool(self.real.done())

    def result(self, timeout: float | None = None) -> Any:
        if not self.gate.wait(timeout):
            raise TimeoutError("held")
        return self.real.result(timeout=timeout)


class _Failed:
    """A tensorstore future that failed."""

    def __init__(self, message: str) -> None:
        self.message = message

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        raise ValueError(self.message)


class TestAcquireZarr(BackendContract):
    backend = "acquire-zarr"

    @staticmethod
    def stall(monkeypatch: pytest.MonkeyPatch) -> Gate:
        """acquire-zarr takes frames and writes them later: hold them back."""
        import acquire_zarr as aqz

        gate = Gate()
        lock = threading.Lock()
        held: list[tuple[Any, np.ndarray, str]] = []
        append, close = aqz.ZarrStream.append, aqz.ZarrStream.close

        def release() -> None:
            with lock:  # in order, before any frame appended later
                while held:
                    stream, data, key = held.pop(0)
                    append(stream, data, key=key)

        def held_append(self: Any, data: np.ndarray, key: str = "") -> None:
            with lock:
                if not gate.is_set():
                    held.append((self, np.array(data, copy=True), key))
                    return
            release()
            append(self, data, key=key)

        def held_close(self: Any) -> None:
            release()
            close(self)

        gate.on_set.append(release)
        monkeypatch.setattr(aqz.ZarrStream, "append", held_append)
        monkeypatch.setattr(aqz.ZarrStream, "close", held_close)
        return gate

    @staticmethod
    def fail(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        import acquire_zarr as aqz

        def failing(self: Any, data: Any, key: str = "") -> None:
            raise RuntimeError(message)

        monkeypatch.setattr(aqz.ZarrStream, "append", failing)


class TestTensorStore(BackendContract):
    backend = "tensorstore"

    @staticmethod
    def stall(monkeypatch: pytest.MonkeyPatch) -> Gate:
        import tensorstore as ts

        gate = Gate()
        write = ts.TensorStore.write

        def held_write(self: Any, *args: Any, **kwargs: Any) -> Any:
            real = write(self, *args, **kwargs)
            return SimpleNamespace(
                copy=real.copy, commit=_HeldCommit(real.commit, gate)
            )

        monkeypatch.setattr(ts.TensorStore, "write", held_write)
        return gate

    @staticmethod
    def fail(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        import tensorstore as ts

        def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
            copied = SimpleNamespace(result=lambda timeout=None: None)
            return SimpleNamespace(copy=copied, commit=_Failed(message))

        monkeypatch.setattr(ts.TensorStore, "write", failing)


class TestZarrPython(BackendContract):
    backend = "zarr-python"

    # the backend writes through `AsyncArray.setitem` (regions written once,
    # several at once on zarr's event loop) and `Array.__setitem__` (regions
    # written again): both are held back, or fail

    @staticmethod
    def stall(monkeypatch: pytest.MonkeyPatch) -> Gate:
        gate = Gate()
        setitem = zarr.Array.__setitem__
        async_setitem = AsyncArray.setitem

        def held_setitem(self: Any, key: Any, value: Any) -> None:
            gate.wait()
            setitem(self, key, value)

        async def held_async_setitem(self: Any, key: Any, value: Any) -> None:
            await asyncio.to_thread(gate.wait)  # the event loop goes on
            await async_setitem(self, key, value)

        monkeypatch.setattr(zarr.Array, "__setitem__", held_setitem)
        monkeypatch.setattr(AsyncArray, "setitem", held_async_setitem)
        return gate

    @staticmethod
    def fail(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        def failing(self: Any, key: Any, value: Any) -> None:
            raise OSError(message)

        async def async_failing(self: Any, key: Any, value: Any) -> None:
            raise OSError(message)

        monkeypatch.setattr(zarr.Array, "__setitem__", failing)
        monkeypatch.setattr(AsyncArray, "setitem", async_failing)
