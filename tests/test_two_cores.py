"""A run on a core beside pymmcore-plus' global one, `MDAWriter` given no `core`.

A notebook that makes a second core (or releases one and makes another) runs
its MDA on a core that is not pymmcore-plus' global instance. The writer
reads the camera and the run's end from the core whose run outputs to it: here
the global core has an 8-bit camera, the running core a 16-bit one.
Expectations are the frames the running core's `frameReady` emitted.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr.demo import demo_core
from tests._readback import group_json, read_tensorstore, read_zarr
from tests._waiting import wait_for
from tests.conftest import DEMO_CFG

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


@pytest.fixture
def global_core(core: UniMMCore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Another demo core, 8-bit, as pymmcore-plus' global instance (not `core`)."""
    from pymmcore_plus.core import _mmcore_plus

    other = demo_core(DEMO_CFG)
    other.setProperty("Camera", "BitDepth", 8)
    assert other.getImageBitDepth() == 8
    assert core.getImageBitDepth() > 8
    monkeypatch.setattr(_mmcore_plus, "_instance", weakref.ref(other))
    yield other
    other.unloadAllDevices()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The writer's messages refusing a second run."""
    said = [r.getMessage() for r in caplog.records]
    return [m for m in said if "a writer takes one run at a time" in m]


def _run(core: UniMMCore, seq: useq.MDASequence, out: Path) -> list[Any]:
    """Run `seq` on `core` into a writer given no core; the frames emitted."""
    frames: list[tuple[Any, np.ndarray]] = []

    def on_frame(img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        frames.append((event, np.array(img, copy=True)))

    writer = mmzarr.MDAWriter(out)
    core.mda.events.frameReady.connect(on_frame)
    try:
        core.mda.run(seq, output=writer)
    finally:
        core.mda.events.frameReady.disconnect(on_frame)
        writer.close()
    return frames


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")  # interval 0
def test_frames_of_the_running_core_land_in_the_dataset(
    core: UniMMCore, global_core: Any, tmp_path: Path
) -> None:
    """The dataset took the global core's uint8 and every uint16 frame went
    beside it, the dataset holding only zeros and saying `complete`."""
    out = tmp_path / "second.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": 3})
    frames = _run(core, seq, out)
    assert len(frames) == 3
    assert not (tmp_path / "second.unplaced.ome.zarr").exists()
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        assert data.dtype == np.uint16
        for event, img in frames:
            np.testing.assert_array_equal(data[event.index["t"]], img)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")  # interval 0
def test_the_running_core_is_found_without_listing_every_object(
    core: UniMMCore, global_core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gc.get_objects()`'s list holds the tuples other threads are building:
    CPython raises SystemError in a thread that grows one then (the MDA's
    runner iterating its plan). The writer finds the running core without it."""
    import gc

    def every_object(*args: Any) -> list[Any]:
        raise AssertionError("gc.get_objects() called")

    monkeypatch.setattr(gc, "get_objects", every_object)
    out = tmp_path / "found.ome.zarr"
    frames = _run(core, useq.MDASequence(time_plan={"interval": 0, "loops": 2}), out)
    assert len(frames) == 2
    data = read_zarr(out, "0")
    assert data.dtype == np.uint16  # the running core's camera, not the global's
    for event, img in frames:
        np.testing.assert_array_equal(data[event.index["t"]], img)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


def test_looking_for_cores_leaves_tuples_being_built_alone(
    core: UniMMCore, tmp_path: Path
) -> None:
    """While the cores running a writer are looked for (at every run's start on
    a core beside the global one), another thread grows tuples from generators,
    as useq does: none raises SystemError, on a machine switching threads often."""
    import sys
    import threading
    import time

    from mmzarr.handlers._runner import cores_listing

    gate, held = threading.Event(), threading.Event()

    class Held:  # holds the run at its first frame: its runner lists `writer`
        def frameReady(self, *args: Any) -> None:
            held.set()
            gate.wait(30)

    writer = mmzarr.MDAWriter(tmp_path / "held.ome.zarr")
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": 2})
    run = core.run_mda(seq, output=[writer, Held()])
    stop = threading.Event()
    errors: list[SystemError] = []

    def items() -> Iterator[int]:
        for n in range(3):
            time.sleep(0)  # lets the other thread run
            yield n

    def build() -> None:
        while not stop.is_set():
            try:
                tuple(items())  # made for ~10 items, shrunk to 3
            except SystemError as e:
                errors.append(e)

    interval = sys.getswitchinterval()
    builder = threading.Thread(target=build)
    try:
        assert held.wait(30)
        sys.setswitchinterval(1e-5)
        builder.start()
        for _ in range(100):
            assert list(cores_listing(writer)) == [core]
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        if builder.is_alive():
            builder.join(30)
        gate.set()
        run.join(60)
        writer.close()
    assert errors == []


def test_a_run_that_raised_on_the_running_core_is_failed(
    core: UniMMCore, global_core: Any, tmp_path: Path
) -> None:
    """pymmcore-plus raises from `run` (a channel of an unknown group) after
    `sequenceFinished`; the writer asked the global core, which ran nothing,
    and recorded `complete`."""
    out = tmp_path / "raised.ome.zarr"
    seq = useq.MDASequence(
        channels=["DAPI", useq.Channel(config="DAPI", group="no such group")]
    )
    with pytest.raises(Exception, match="no such group"):
        _run(core, seq, out)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "failed"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")  # interval 0
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_writer_running_on_one_core_refuses_another_cores_run(
    core: UniMMCore, tmp_path: Path, overwrite: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """One writer given to two cores that run at once: the second core's run
    is refused at its start (and cancelled, as soon as its runner looks); the
    first run's dataset keeps every frame and says `complete`. The second run
    replaced the first's dataset (overwrite) or cancelled the first MDA."""
    import threading

    other = demo_core(DEMO_CFG)
    gate, held = threading.Event(), threading.Event()

    class Held:  # holds run 1 at its first frame while run 2 starts
        def frameReady(self, *args: Any) -> None:
            held.set()
            gate.wait(30)

    frames: list[tuple[Any, np.ndarray]] = []

    def on_frame(img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        frames.append((event, np.array(img, copy=True)))

    core.mda.events.frameReady.connect(on_frame)
    out = tmp_path / "shared.ome.zarr"
    writer = mmzarr.MDAWriter(out, overwrite=overwrite)
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0, "loops": 2}
    )
    first = core.run_mda(seq, output=[writer, Held()])
    try:
        assert held.wait(30)
        other.mda.run(
            useq.MDASequence(time_plan={"interval": 0, "loops": 3}), output=writer
        )
        # its outputs hear of it on its relay thread, maybe after `run` returns
        wait_for("run 2 refused", lambda: refusals(caplog))
    finally:
        gate.set()
        first.join(60)
        core.mda.events.frameReady.disconnect(on_frame)
        other.unloadAllDevices()
    writer.close()
    assert len(refusals(caplog)) == 1
    assert len(frames) == 4
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    data = read_zarr(out, "0")
    for event, img in frames:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
