"""Frames in another order than the plan's: every backend takes them alike.

tensorstore and zarr-python write any slot at any time; acquire-zarr only
appends, and holds frames that arrive early in a bounded reorder window until
the frames before them come (`mmzarr.backends._acquire`). A slot is written
with the fill value only when the window overflows (a warning; the late frame is
then refused) or, at close, for a frame that never came (a warning).
"""

from __future__ import annotations

import logging
import threading
import tracemalloc
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import assert_frames, group_json

if TYPE_CHECKING:
    from pathlib import Path

SHAPE = (16, 24)
#: 100 time points x 2 channels: 200 frames
T100 = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 0.1, "loops": 100}
)
TCZ = useq.MDASequence(
    channels=["DAPI", "FITC"],
    z_plan={"range": 2, "step": 1},
    time_plan={"interval": 0.1, "loops": 3},
)


def frame_for(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 60000, SHAPE).astype("uint16")


def _settings(seq: useq.MDASequence, **options: Any) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, **options
    )


def _warnings(caplog: Any) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "mmzarr" and r.levelno >= logging.WARNING
    ]


def _late_by_one(events: list[useq.MDAEvent]) -> list[tuple[int, useq.MDAEvent]]:
    """Each pair of frames swapped: every other frame comes one slot late."""
    out = list(enumerate(events))
    for i in range(0, len(out) - 1, 2):
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


@pytest.mark.parametrize("seq", [T100, TCZ], ids=["tc", "tcz"])
def test_late_by_one_frames(
    tmp_path: Path, backend: str, seq: useq.MDASequence, caplog: Any
) -> None:
    events = list(seq)
    order = _late_by_one(events)
    assert [e.index for _, e in order[:2]] == [events[1].index, events[0].index]
    out = tmp_path / "late.ome.zarr"
    frames = {}
    with caplog.at_level(logging.WARNING, logger="mmzarr"):
        with mmzarr.create_stream(out, _settings(seq), backend=backend) as stream:
            for n, event in order:
                frames[stream.append(frame_for(n), index=event.index)] = frame_for(n)
    assert not _warnings(caplog)  # no slot filled with the fill value
    assert stream.status == "complete"
    assert len(frames) == len(events)
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)


def test_two_threads_disjoint_indices(tmp_path: Path, backend: str) -> None:
    """Two threads append 100 frames each (one channel each), unsynchronized."""
    events = list(T100)
    out = tmp_path / "threads.ome.zarr"
    frames: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
    errors: list[BaseException] = []
    with mmzarr.create_stream(out, _settings(T100), backend=backend) as stream:
        barrier = threading.Barrier(2)

        def produce(c: int) -> None:
            barrier.wait()
            for n, event in enumerate(events):
                if event.index["c"] != c:
                    continue
                try:
                    key = stream.append(frame_for(n), index=event.index)
                except Exception as e:
                    errors.append(e)
                    return
                frames[key] = frame_for(n)

        threads = [threading.Thread(target=produce, args=(c,)) for c in (0, 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    assert errors == []
    assert len(frames) == stream.frames_written == 200
    assert stream.status == "complete"
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)


# ---- acquire-zarr's reorder window -------------------------------------------------
def test_window_overflow_fills_the_gap_and_refuses_the_late_frame(
    tmp_path: Path, caplog: Any
) -> None:
    """A window of 3 frames: a 4th early frame fills the oldest gap."""
    frame_bytes = SHAPE[0] * SHAPE[1] * 2
    out = tmp_path / "overflow.ome.zarr"
    events = list(T100)[:10]
    frames = {}
    with caplog.at_level(logging.WARNING, logger="mmzarr"):
        stream = mmzarr.create_stream(
            out,
            _settings(T100),
            backend="acquire-zarr",
            max_reorder_bytes=3 * frame_bytes,
        )
        with stream:
            for n in range(1, 4):  # frames 1-3 wait for frame 0
                frames[stream.append(frame_for(n), index=events[n].index)] = frame_for(
                    n
                )
            assert not _warnings(caplog)
            frames[stream.append(frame_for(4), index=events[4].index)] = frame_for(4)
            assert len(_warnings(caplog)) == 1
            assert "reorder window" in caplog.text
            assert "(0, 0)" in caplog.text
            with pytest.raises(mmzarr.FrameError, match="reorder window"):
                stream.append(frame_for(0), index=events[0].index)
            for n in range(5, 10):
                frames[stream.append(frame_for(n), index=events[n].index)] = frame_for(
                    n
                )
    assert stream.frames_written == 9
    assert_frames(out, {**frames, ("", (0, 0)): np.zeros(SHAPE, "uint16")})


def test_frame_that_never_comes_is_filled_at_close(tmp_path: Path, caplog: Any) -> None:
    """A gap before frames that did arrive: the fill value, logged, at close."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.1, "loops": 3}
    )
    events = list(seq)
    out = tmp_path / "gap.ome.zarr"
    frames = {}
    with caplog.at_level(logging.WARNING, logger="mmzarr"):
        with mmzarr.create_stream(out, _settings(seq), backend="acquire-zarr") as s:
            for n, event in enumerate(events):
                if n != 2:  # (1, 0) never comes
                    frames[s.append(frame_for(n), index=event.index)] = frame_for(n)
            assert not _warnings(caplog)  # held while it may still come
    assert "1 slot(s)" in caplog.text
    assert "(1, 0)" in caplog.text
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "cancelled"
    assert attrs["images"][""]["missing"] == [[1, 0]]
    assert_frames(out, {**frames, ("", (1, 0)): np.zeros(SHAPE, "uint16")})


def test_no_full_frames_allocated_at_open(tmp_path: Path) -> None:
    """Opening a plate of 8 images of 8 MiB frames allocates no frame (fill-value
    frames are made when a gap needs one)."""
    seq = useq.MDASequence(
        stage_positions=[(i, 0, 0) for i in range(8)],
        channels=["DAPI", "FITC"],
        time_plan={"interval": 0.1, "loops": 2},
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(2048, 2048), dtype="uint16", pixel_size_um=0.5
    )
    tracemalloc.start()
    try:
        stream = mmzarr.create_stream(tmp_path / "plate.ome.zarr", settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stream.close()
    assert peak < 2048 * 2048 * 2, peak
