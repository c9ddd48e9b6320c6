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
from typing import TYPE_CHECKING

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
