"""A stream (or a front end's run) dropped without `close` must not keep its
dataset locked, its files open and its threads running for the life of the
process (helper sweep of long-lived acquisition apps)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
import zarr

import mmzarr

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


def _settings() -> mmzarr.AcquisitionSettings:
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1.0
    )


def test_a_stream_dropped_unclosed_is_closed(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "dropped.ome.zarr"
    settings = _settings()
    stream = mmzarr.create_stream(out, settings, backend=backend)
    stream.append(np.ones((16, 16), "uint16"))
    stream.append(np.full((16, 16), 2, "uint16"))
    ref = weakref.ref(stream)
    with pytest.warns(ResourceWarning, match="never closed"):
        del stream  # the last reference: finalized at once
    gc.collect()
    assert ref() is None
    # the lock is released: another writer takes the path
    mmzarr.create_stream(out, settings, backend=backend, overwrite=True).close()


def test_a_dropped_stream_records_its_frames(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "dropped.ome.zarr"
    stream = mmzarr.create_stream(out, _settings(), backend=backend)
    stream.append(np.ones((16, 16), "uint16"))
    with pytest.warns(ResourceWarning, match="never closed"):
        del stream  # the last reference: finalized at once
    gc.collect()
    assert not list(tmp_path.glob(".dropped.ome.zarr.mmzarr-*"))  # lock, siblings
    root = json.loads((out / "zarr.json").read_text())
    assert root["attributes"]["mmzarr"]["status"] == "cancelled"
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    assert len(lines) == 1


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_run_that_never_finished_frees_its_path_with_its_writer(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Another output handler's error: the writer never gets `sequenceFinished`.
    An app that makes a new writer per run drops it; the next run of the same
    path must not find it locked."""
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    out = tmp_path / "run.ome.zarr"
    shape = (core.getImageHeight(), core.getImageWidth())
    events = list(seq)
    writer = mmzarr.MDAWriter(out, core=core, overwrite=True)
    writer.sequenceStarted(seq, {})
    writer.frameReady(np.ones(shape, np.uint16), events[0], {})  # then nothing
    del writer
    gc.collect()
    again = mmzarr.MDAWriter(out, core=core, overwrite=True)
    again.sequenceStarted(seq, {})
    for event in events:
        again.frameReady(np.ones(shape, np.uint16), event, {})
    again.sequenceFinished(seq)
    again.close()  # raised DatasetLockedError: the first writer's lock was kept
    assert (
        json.loads((out / "zarr.json").read_text())["attributes"]["mmzarr"]["status"]
        == "complete"
    )


def test_no_flush_thread_outlives_a_dropped_stream(tmp_path: Path) -> None:
    stream = mmzarr.create_stream(tmp_path / "x.ome.zarr", _settings())
    flushers = [t for t in threading.enumerate() if t.name == "mmzarr-flush"]
    with pytest.warns(ResourceWarning):
        del stream  # the last reference: finalized at once
    gc.collect()
    for t in flushers:
        t.join(timeout=30)  # it ends at its next wake-up (flush_interval_s / 2)
    assert not any(t.is_alive() for t in flushers)


def test_a_program_that_never_closes_its_stream_exits(tmp_path: Path) -> None:
    """zarr-python's writer thread is not a daemon (a write queued runs to its
    end): a script that ended without `close` never exited. It now ends once
    the program has and nothing is queued."""
    out = tmp_path / "forgot.ome.zarr"
    script = f"""
import time
import numpy as np, useq, mmzarr
seq = useq.MDASequence(time_plan={{"interval": 1, "loops": 4}})
settings = mmzarr.AcquisitionSettings.from_useq(
    seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1.0
)
stream = mmzarr.create_stream({str(out)!r}, settings, backend="zarr-python")
stream.append(np.full((16, 16), 7, "uint16"))
stream.append(np.full((16, 16), 8, "uint16"))
while stream.frames_flushed < 1:  # frame 0 on disk; frame 1 maybe not
    time.sleep(0.01)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # what was on disk stays, as after a killed writer
    frame = zarr.open_array(str(out / "0"), mode="r")[0]
    np.testing.assert_array_equal(frame, np.full((16, 16), 7, "uint16"))


# ---- collected by the cyclic garbage collector, on whichever thread ----------
# A stream in a reference cycle (an app's handler holding it, a traceback kept
# with an error) is freed by Python's cyclic collector, which runs on whichever
# thread happens to allocate: also one of the stream's own.


def _closed_dropped() -> None:
    """Wait for the dropped streams handed to threads of their own to close."""
    for t in threading.enumerate():
        if t.name == "mmzarr-close-dropped":
            t.join(timeout=60)
            assert not t.is_alive(), "closing a dropped stream did not end"


def _status(out: Path) -> str:
    return json.loads((out / "zarr.json").read_text())["attributes"]["mmzarr"]["status"]


def _in_a_cycle(stream: mmzarr.Stream) -> list[mmzarr.Stream]:
    """Put `stream` in a reference cycle; the only other reference to it.

    Clearing the list leaves it to the cyclic collector (`gc.collect()`).
    """
    stream.cycle = stream  # type: ignore[attr-defined]
    return [stream]


def test_a_stream_collected_in_a_cycle_keeps_its_frame_log(
    backend: str, tmp_path: Path
) -> None:
    """The collector finalizes every object of the cycle: the frame log's file
    object was closed before the stream's finalizer, which found the log closed
    and dropped its queued records (`frames.jsonl` empty)."""
    out = tmp_path / "cycle.ome.zarr"
    stream = mmzarr.create_stream(out, _settings(), backend=backend)
    stream.append(np.ones((16, 16), "uint16"))
    stream.append(np.full((16, 16), 2, "uint16"))
    held = _in_a_cycle(stream)
    del stream
    held.clear()  # left to the cyclic collector
    with pytest.warns(ResourceWarning, match="never closed"):
        gc.collect()
    assert _status(out) == "cancelled"
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1]
    np.testing.assert_array_equal(
        zarr.open_array(str(out / "0"), mode="r")[:2, 0, 0], [1, 2]
    )


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_stream_collected_on_its_flush_thread_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection on the flush thread while it wrote the frame log (holding
    the log's lock) closed the stream there: the close waited for that lock for
    ever, the path stayed locked and the status `acquiring`."""
    from mmzarr import _metadata
    from tests._waiting import wait_for

    store = _metadata.FrameLog._store
    held: list[mmzarr.Stream] = []
    collected = threading.Event()

    def collecting(log: _metadata.FrameLog, records: list[Any]) -> None:
        if threading.current_thread().name == "mmzarr-flush" and held:
            held.clear()
            gc.collect()  # a pass may start at any allocation
            collected.set()
        store(log, records)

    monkeypatch.setattr(_metadata.FrameLog, "_store", collecting)
    out = tmp_path / "flush.ome.zarr"
    settings = _settings()
    stream = mmzarr.create_stream(out, settings)
    stream.append(np.ones((16, 16), "uint16"))
    held += _in_a_cycle(stream)
    del stream
    wait_for("a collection on the flush thread", collected.is_set)
    wait_for("the dropped stream closed", lambda: _status(out) == "cancelled")
    _closed_dropped()
    assert len((out / "mmzarr/frames.jsonl").read_text().splitlines()) == 1
    mmzarr.create_stream(out, settings, overwrite=True).close()  # not locked


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_stream_collected_on_its_zarr_writer_thread_keeps_its_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed on zarr-python's writer thread, a stream waited there for its
    last writes, queued behind that thread: after `io_timeout_s` (120 s) it
    recorded `failed` and the frames held in a shard were lost."""
    from mmzarr.backends import _base

    monkeypatch.setattr(_base, "LOCAL_TIMEOUT_S", 5.0)  # the failure, sooner
    out = tmp_path / "writer.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1.0, shards={"t": 4}
    )
    stream = mmzarr.create_stream(out, settings, backend="zarr-python")
    stream.append(np.ones((16, 16), "uint16"))  # held: the shard is not whole
    stream.append(np.full((16, 16), 2, "uint16"))
    writer = stream._backend._writer
    held = _in_a_cycle(stream)
    del stream

    def collect() -> None:
        held.clear()
        gc.collect()  # a pass may start at any allocation

    writer.submit(collect, alone=True).result(timeout=60)
    _closed_dropped()
    assert _status(out) == "cancelled"
    np.testing.assert_array_equal(
        zarr.open_array(str(out / "0"), mode="r")[:2, 0, 0], [1, 2]
    )


#: useq plans for `test_a_stream_opened_on_a_thread_after_the_main_thread_ended`:
#: a plate of 12 wells has its group documents written several at a time
LATE_PLANS = {
    "time": useq.MDASequence(time_plan={"interval": 1, "loops": 3}),
    "plate": useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well",
            a1_center_xy=(0, 0),
            selected_wells=(slice(0, 3), slice(0, 4)),
        )
    ),
}


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="Python 3.12+ starts no thread once the main thread has returned",
)
@pytest.mark.parametrize("plan", sorted(LATE_PLANS))
@pytest.mark.parametrize("backend_name", ["acquire-zarr", "tensorstore"])
def test_a_stream_opened_on_a_thread_after_the_main_thread_ended(
    backend_name: str, plan: str, tmp_path: Path
) -> None:
    """Python waits for a thread that is not a daemon, but executors take no
    work once the main thread has returned: `create_stream` raised
    `RuntimeError: cannot schedule new futures after interpreter shutdown`
    (and so did a plate's group documents, written several at a time)."""
    out = tmp_path / "late.ome.zarr"
    script = f"""
import threading, numpy as np, useq, mmzarr
seq = useq.MDASequence.model_validate_json({LATE_PLANS[plan].model_dump_json()!r})
settings = mmzarr.AcquisitionSettings.from_useq(
    seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1.0
)
main = threading.main_thread()
def acquire():
    main.join()  # the script has returned
    with mmzarr.create_stream({str(out)!r}, settings, backend={backend_name!r}) as s:
        for i, event in enumerate(seq):
            s.append(np.full((16, 16), i + 1, "uint16"), index=dict(event.index))
threading.Thread(target=acquire).start()
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert _status(out) == "complete"
    events = list(LATE_PLANS[plan])  # useq says where each frame goes
    if plan == "time":
        np.testing.assert_array_equal(
            zarr.open_array(str(out / "0"), mode="r")[:, 0, 0], [1, 2, 3]
        )
    else:
        assert len(events) == 12
        for i, event in enumerate(events):
            well = str(event.pos_name)  # "A1": row A, column 1
            frame = zarr.open_array(str(out / well[0] / well[1:] / "0" / "0"), mode="r")
            assert int(np.asarray(frame[...]).flat[0]) == i + 1
