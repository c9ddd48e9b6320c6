"""Datasets open with a useful contrast: display windows span the data (issue #19)."""

from __future__ import annotations

import math
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import check_metadata, group_json
from tests._waiting import wait_for

if TYPE_CHECKING:
    from pathlib import Path

SEQ = useq.MDASequence(channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 2})
#: (t, c) -> the frame's value range: channel 0 spans 100-250, channel 1 1000-3000
VALUES = {
    (0, 0): (100, 200),
    (1, 0): (120, 250),
    (0, 1): (1000, 3000),
    (1, 1): (1500, 2000),
}


def _frame(lo: int, hi: int) -> np.ndarray:
    frame = np.full((64, 80), lo, "uint16")
    frame[10, 10] = hi  # one pixel: on the sampled grid (every 1st)
    return frame


def _windows(root: Path, key: str = "") -> list[dict[str, float]]:
    channels = group_json(root, key)["attributes"]["ome"]["omero"]["channels"]
    return [c["window"] for c in channels]


def _write(path: Path, backend: str, *, close: bool = True) -> mmzarr.Stream:
    settings = mmzarr.AcquisitionSettings.from_useq(
        SEQ, image_shape=(64, 80), dtype="uint16", pixel_size_um=1
    )
    stream = mmzarr.create_stream(path, settings, backend=backend)
    for event in SEQ:
        t, c = event.index["t"], event.index["c"]
        stream.append(_frame(*VALUES[(t, c)]), index=event.index)
    if close:
        stream.close()
    return stream


def test_window_spans_the_acquired_values(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "w.ome.zarr"
    _write(out, backend)
    windows = _windows(out)
    assert [(w["start"], w["end"]) for w in windows] == [(100, 250), (1000, 3000)]
    assert all((w["min"], w["max"]) == (0, 65535) for w in windows)
    check_metadata(out)


def test_nan_and_inf_pixels_leave_the_window_of_the_others(tmp_path: Path) -> None:
    """A float frame with a NaN or inf pixel: its other pixels still set the
    window (the whole frame was dropped, and the window stayed 0..1)."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        SEQ, image_shape=(64, 80), dtype="float32", pixel_size_um=1
    )
    out = tmp_path / "nan.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="zarr-python") as stream:
        for event in SEQ:
            t, c = event.index["t"], event.index["c"]
            frame = _frame(*VALUES[(t, c)]).astype("float32")
            frame[0, 0] = np.nan if c == 0 else np.inf
            stream.append(frame, index=event.index)
    windows = _windows(out)
    assert [(w["start"], w["end"]) for w in windows] == [(100, 250), (1000, 3000)]


def test_float_windows_bound_every_pixel(tmp_path: Path, backend: str) -> None:
    """Float data has no dtype range: its window's min/max must bound the data
    (they were the sampled values: a pixel off the sampled grid was outside)."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        SEQ, image_shape=(64, 80), dtype="float32", pixel_size_um=1
    )
    rng = np.random.default_rng(5)
    frames = {}
    out = tmp_path / "float.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for event in SEQ:
            frame = rng.normal(size=(64, 80)).astype("float32")
            frame[1, 3] = 1000.0 * (1 + event.index["c"])  # off any strided grid
            frame[3, 1] = -500.0
            frames[(event.index["t"], event.index["c"])] = frame
            stream.append(frame, index=event.index)
    for c, window in enumerate(_windows(out)):
        data = np.stack([f for (_, ch), f in frames.items() if ch == c])
        assert window["min"] <= data.min()
        assert window["max"] >= data.max()
        assert (window["start"], window["end"]) == (data.min(), data.max())


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("float32", 1e30),
        ("float64", 3e16),
        ("float64", float(np.finfo("float64").max)),
        ("uint64", 2**64 - 1),
        ("int64", 2**62),
    ],
)
def test_a_flat_channel_of_a_large_value_gets_a_window_of_nonzero_width(
    tmp_path: Path, dtype: str, value: float
) -> None:
    """A channel of one value gets a window around it; past 2**53 `value + 1`
    is `value`, and the window was `start == end` (a zero-width contrast)."""
    seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 1, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 4), dtype=dtype, pixel_size_um=1
    )
    out = tmp_path / "flat.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="tensorstore") as stream:
        stream.append(np.full((4, 4), value, dtype), index={"t": 0, "c": 0})
    (window,) = _windows(out)
    assert window["start"] < window["end"], window
    assert window["start"] <= float(np.asarray(value, dtype)) <= window["end"]
    assert all(math.isfinite(v) for v in window.values())
    check_metadata(out)


def test_window_before_any_frame_spans_the_dtype(tmp_path: Path) -> None:
    settings = mmzarr.AcquisitionSettings.from_useq(
        SEQ, image_shape=(8, 8), dtype="uint8", pixel_size_um=1
    )
    out = tmp_path / "empty.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="tensorstore"):
        windows = _windows(out)
    assert [(w["start"], w["end"]) for w in windows] == [(0, 255), (0, 255)]


def test_finalize_sets_windows_from_the_frames_on_disk(tmp_path: Path) -> None:
    # a copy of a dataset whose writer is still running stands for one whose
    # writer was killed: its documents are those written at open
    out = tmp_path / "live.ome.zarr"
    stream = _write(out, "tensorstore", close=False)
    # the writer says the frames are on disk
    wait_for("frames flushed", lambda: stream.frames_flushed >= 4)
    killed = tmp_path / "killed.ome.zarr"
    shutil.copytree(out, killed)
    stream.close()
    assert [(w["start"], w["end"]) for w in _windows(killed)] == [(0, 65535)] * 2
    mmzarr.finalize(killed)
    assert [(w["start"], w["end"]) for w in _windows(killed)] == [
        (100, 250),
        (1000, 3000),
    ]


def test_each_position_gets_the_windows_of_its_own_frames(
    tmp_path: Path, backend: str
) -> None:
    """A collection (and a plate) rewrites every image's windows at close."""
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 10, 0)], channels=["DAPI", "FITC"]
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(64, 80), dtype="uint16", pixel_size_um=1
    )
    out = tmp_path / "pos.ome.zarr"
    #: (p, c) -> the frame's value range
    values = {(0, 0): (5, 50), (0, 1): (60, 600), (1, 0): (7, 70), (1, 1): (80, 800)}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for event in seq:
            p, c = event.index["p"], event.index["c"]
            stream.append(_frame(*values[(p, c)]), index=event.index)
    for p in (0, 1):
        windows = _windows(out, str(p))
        assert [(w["start"], w["end"]) for w in windows] == [
            values[(p, 0)],
            values[(p, 1)],
        ]
    check_metadata(out)


def test_windows_written_again_when_writing_them_beside_the_close_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection's windows are written while the backend closes; when that
    write fails, they are written again with the status, and the close says
    nothing went wrong that did not."""
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 10, 0)], channels=["DAPI", "FITC"]
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(64, 80), dtype="uint16", pixel_size_um=1
    )
    real = mmzarr.Stream._write_groups
    calls: list[str] = []

    def write_groups(self: mmzarr.Stream, which: str, **kwargs: Any) -> None:
        calls.append(which)
        if which == "windows":
            raise OSError("injected: the windows' write failed")
        real(self, which, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mmzarr.Stream, "_write_groups", write_groups)
    out = tmp_path / "pos.ome.zarr"
    values = {(0, 0): (5, 50), (0, 1): (60, 600), (1, 0): (7, 70), (1, 1): (80, 800)}
    with mmzarr.create_stream(out, settings, backend="tensorstore") as stream:
        for event in seq:
            p, c = event.index["p"], event.index["c"]
            stream.append(_frame(*values[(p, c)]), index=event.index)
    assert calls == ["windows", "images"]
    assert stream.status == "complete"
    for p in (0, 1):
        assert [(w["start"], w["end"]) for w in _windows(out, str(p))] == [
            values[(p, 0)],
            values[(p, 1)],
        ]
    check_metadata(out)
