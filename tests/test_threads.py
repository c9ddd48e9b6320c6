"""Writers used from several threads at once: a GUI reads the live view and
closes the writer while pymmcore-plus' relay thread delivers frames.

Each interleaving is forced (an output handler ahead of the writer, events),
so no test depends on timing; joins have deadlines that only turn a hang into
a failure.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
from pycromanager import multi_d_acquisition_events

import mmzarr
from mmzarr.backends import get_backend
from mmzarr.pycromanager import ZarrHook
from tests._readback import group_json, read_zarr
from tests.test_mda import Capture
from tests.test_pycromanager import SHAPE, frame_of, pycro_image

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


class CloseFromAnotherThread:
    """An output handler ahead of the writer: at frame `at` (0-based), a thread
    of its own (a GUI's stop button) closes `writer`, before the writer is
    handed that frame."""

    def __init__(self, writer: mmzarr.MDAWriter, at: int) -> None:
        self.writer = writer
        self.at = at
        self.n = 0
        self.errors: list[BaseException] = []

    def frameReady(self, img: Any, event: Any, meta: Any) -> None:
        if self.n == self.at:
            thread = threading.Thread(target=self._close)
            thread.start()
            thread.join(60)
            assert not thread.is_alive(), "close from another thread hung"
        self.n += 1

    def _close(self) -> None:
        try:
            self.writer.close()
        except BaseException as e:  # reported by the test
            self.errors.append(e)


def test_frames_after_a_close_from_another_thread_are_not_kept_beside(
    core: UniMMCore, tmp_path: Path, backend: str
) -> None:
    """`close()` from another thread while the MDA runs: the dataset keeps the
    frames written before it, cancelled; the frames that follow are counted as
    ignored, not written to an unplaced sibling opened after the close (which
    then nothing closed, and which said its frames did not fit the dataset)."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.001, "loops": 3}
    )
    out = tmp_path / "stopped.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, backend=backend)
    stopper = CloseFromAnotherThread(writer, at=2)
    core.mda.run(seq, output=[stopper, writer])
    writer.close()  # again, from the main thread: nothing more to do
    assert stopper.errors == []
    assert len(cap.frames) == len(list(seq)) == 6
    assert writer.frames_written == 2
    assert writer.frames_ignored == 4
    assert writer.unplaced is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped.ome.zarr"]
    assert writer.stream is not None
    assert writer.stream.status == "cancelled"
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "cancelled"
    data = read_zarr(out, "0")
    for event, img in cap.frames[:2]:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
    assert not data[1:].any()  # t 1 and 2 came after the close


def test_ctrl_c_during_close_closes_the_unplaced_siblings_too(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a front end closes its dataset: KeyboardInterrupt comes
    once every dataset is closed, its unplaced sibling too (the sibling was
    left open: status `acquiring`, its output still claimed)."""
    cls = type(get_backend(backend))
    real_flush = cls.flush
    interrupted: list[bool] = []

    def flush(self: Any, *, final: bool = False) -> Any:
        if final and not interrupted:  # the dataset's own close, the first
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C
        return real_flush(self, final=final)

    monkeypatch.setattr(cls, "flush", flush)
    events = multi_d_acquisition_events(num_time_points=4, time_interval_s=1)
    out = tmp_path / "hook.ome.zarr"
    hook = ZarrHook(out, events=events, keep_images=False, backend=backend)
    fed = {}
    for n, event in enumerate(events):  # image 2 has another shape: beside
        img, md = pycro_image(event, frame_of(n, SHAPE if n != 2 else (4, 4)))
        assert hook(img, md) is None
        fed[n] = img
    assert hook.stream is not None
    assert hook.unplaced is not None
    with pytest.raises(KeyboardInterrupt):
        hook.close()
    assert interrupted == [True]
    assert hook.stream.closed
    assert hook.unplaced.closed
    siblings = {p.name: p for p in tmp_path.iterdir()}
    assert sorted(siblings) == ["hook.ome.zarr", "hook.unplaced.ome.zarr"]
    status = {
        name: group_json(p)["attributes"]["mmzarr"]["status"]
        for name, p in siblings.items()
    }
    assert status == {
        "hook.ome.zarr": "cancelled",
        "hook.unplaced.ome.zarr": "complete",
    }
    data = read_zarr(out, "0")
    for t in (0, 1, 3):
        np.testing.assert_array_equal(data[t], fed[t])
    np.testing.assert_array_equal(
        read_zarr(siblings["hook.unplaced.ome.zarr"], "0")[0], fed[2]
    )


def test_a_second_ctrl_c_during_a_siblings_close_stops_at_once(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a front end closes its dataset, then again while it closes
    the unplaced sibling: the second stops at once (README), leaving the
    sibling for `mmzarr finalize` (it was only noted: the sibling's close
    counted the presses afresh)."""
    cls = type(get_backend(backend))
    real_flush = cls.flush
    presses: list[str] = []
    closed: list[str] = []

    def flush(self: Any, *, final: bool = False) -> Any:
        if final:
            presses.append("ctrl-c")
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C, each close
            closed.append("flushed")
        return real_flush(self, final=final)

    monkeypatch.setattr(cls, "flush", flush)
    events = multi_d_acquisition_events(num_time_points=4, time_interval_s=1)
    out = tmp_path / "hook.ome.zarr"
    hook = ZarrHook(out, events=events, keep_images=False, backend=backend)
    for n, event in enumerate(events):  # image 2 has another shape: beside
        img, md = pycro_image(event, frame_of(n, SHAPE if n != 2 else (4, 4)))
        assert hook(img, md) is None
    assert hook.unplaced is not None
    with pytest.raises(KeyboardInterrupt):
        hook.close()
    # the second press raised in the sibling's last flush, before it wrote
    assert presses == ["ctrl-c", "ctrl-c"]
    assert closed == ["flushed"]
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "cancelled"
    sibling = tmp_path / "hook.unplaced.ome.zarr"
    assert group_json(sibling)["attributes"]["mmzarr"]["status"] == "acquiring"


def test_a_fallback_dataset_closed_while_the_mda_runs_says_cancelled(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`close()` while the MDA runs a plan mmzarr cannot map (an event
    generator, no template): the fallback dataset says `cancelled`, as a
    mapped one does (README), not `complete` (it has no plan to compare)."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.001, "loops": 3}
    )
    out = tmp_path / "stopped.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    stopper = CloseFromAnotherThread(writer, at=2)
    core.mda.run(iter(list(seq)), output=[stopper, writer])
    writer.close()
    assert stopper.errors == []
    assert writer.fallback_reason is not None
    assert len(cap.frames) == 6
    assert (writer.frames_written, writer.frames_ignored) == (2, 4)
    assert writer.stream is not None
    assert writer.stream.status == "cancelled"
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "cancelled"
    data = read_zarr(out, "0")
    assert data.shape[0] == 2
    for t, (_, img) in enumerate(cap.frames[:2]):
        np.testing.assert_array_equal(data[t], img)
    assert mmzarr.validate(out).ok


def test_in_threads_keeps_the_order_and_raises_the_first_failure() -> None:
    """`in_threads` (the group documents at open, the overwrite check's
    listings): results in the items' order, on several threads; a failure is
    raised and the items after it on its thread are not done."""
    from mmzarr._writes import WRITERS, in_threads

    seen: set[threading.Thread] = set()  # not idents: those may be reused
    items = list(range(5 * WRITERS))
    assert in_threads(
        lambda k: (seen.add(threading.current_thread()), k * k)[1], items
    ) == [k * k for k in items]
    assert len(seen) == WRITERS
    done: list[int] = []

    def fails_at_3(k: int) -> int:
        if k == 3:
            raise OSError("disk full")
        done.append(k)
        return k

    with pytest.raises(OSError, match="disk full"):
        in_threads(fails_at_3, items)
    assert 3 + WRITERS not in done  # the failing thread's next item
