"""`LiveView`: exactly the frames acquired so far, fill value elsewhere (#21)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr._view import LiveView

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

SEQ = useq.MDASequence(time_plan={"interval": 1, "loops": 3}, channels=["DAPI", "FITC"])
SHAPE = (6, 7)
TIME = useq.TIntervalLoops(interval=0.001, loops=2)


def _frame(n: int) -> np.ndarray:
    return (np.arange(42, dtype="uint16").reshape(SHAPE) + 100 * (n + 1)).astype(
        "uint16"
    )


def _settings() -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        SEQ, image_shape=SHAPE, dtype="uint16", pixel_size_um=1
    )


@pytest.mark.parametrize(
    "key",
    [
        (...,),
        (0,),
        (slice(None), 1),
        (2, 0, slice(1, 4), slice(None, None, 2)),
        (-1, -1),
        ([0, 2], slice(None), 3),
    ],
    ids=str,
)
def test_view_indexes_like_numpy(tmp_path: Path, backend: str, key: tuple) -> None:
    settings = _settings()
    out = tmp_path / "v.ome.zarr"
    expected = np.zeros((3, 2, *SHAPE), "uint16")
    events = list(SEQ)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(events[:4]):  # t=0 and t=1 only
            stream.append(_frame(n), index=event.index)
            expected[event.index["t"], event.index["c"]] = _frame(n)
    view = LiveView(out, settings.images[0], "uint16", recent=dict)
    assert view.shape == (3, 2, *SHAPE)
    assert view.ndim == 4
    assert view.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(view[key], expected[key])


def test_a_file_that_does_not_read_hides_only_its_frame(
    tmp_path: Path, backend: str
) -> None:
    """A chunk file being written (acquire-zarr and zarrs write in place) fails
    a read that spans it: the view still returns every frame that reads."""
    settings = _settings()
    out = tmp_path / "v.ome.zarr"
    expected = np.zeros((3, 2, *SHAPE), "uint16")
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(list(SEQ)[:4]):  # t=0 and t=1 only
            stream.append(_frame(n), index=event.index)
            expected[event.index["t"], event.index["c"]] = _frame(n)
    torn = out / "0" / "c" / "2" / "0" / "0" / "0"  # t=2, c=0: half written
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_bytes(b"\0" * 10)
    view = LiveView(out, settings.images[0], "uint16", recent=dict)
    np.testing.assert_array_equal(view[...], expected)
    np.testing.assert_array_equal(view[:, 1], expected[:, 1])


def test_frames_in_memory_are_laid_over_storage(tmp_path: Path) -> None:
    settings = _settings()
    out = tmp_path / "m.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="tensorstore") as stream:
        stream.append(_frame(0), index={"t": 0, "c": 0})
    kept = {(2, 1): _frame(9)}  # not on storage: only in memory
    view = LiveView(out, settings.images[0], "uint16", recent=lambda: kept)
    np.testing.assert_array_equal(view[0, 0], _frame(0))
    np.testing.assert_array_equal(view[2, 1], _frame(9))
    np.testing.assert_array_equal(view[2, 1, 1:3, ::3], _frame(9)[1:3, ::3])
    assert not view[1].any()  # never acquired: the fill value
    with pytest.raises(IndexError, match="out of bounds"):
        view[3]


LAYOUT_PLANS = {
    "image": useq.MDASequence(channels=["DAPI", "FITC"], time_plan=TIME),
    "collection": useq.MDASequence(
        stage_positions=[(0, 0, 0), (300, 100, 0)], channels=["DAPI"], time_plan=TIME
    ),
    "plate": useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well", a1_center_xy=(0, 0), selected_wells=([0, 1], [0, 1])
        ),
        channels=["DAPI"],
        time_plan=TIME,
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUT_PLANS))
def test_view_during_a_demo_mda(
    core: UniMMCore, tmp_path: Path, backend: str, layout: str
) -> None:
    """At each frame the writer is handed, the view holds exactly the frames
    acquired so far (fill value elsewhere); after the run, all of them."""
    seq = LAYOUT_PLANS[layout]
    got: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
    checks = []

    class Viewing(mmzarr.MDAWriter):
        def frameReady(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
            super().frameReady(img, event, meta)
            assert self.stream is not None
            key, idx = self.stream.settings.locate(event.index)
            got[(key, idx)] = np.array(img, copy=True)
            view = self.view(key)
            expected = np.zeros(view.shape, view.dtype)
            for (k, i), frame in got.items():
                if k == key:
                    expected[i] = frame
            checks.append(bool(np.array_equal(view[...], expected)))

    writer = Viewing(tmp_path / "live.ome.zarr", core=core, backend=backend)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.stream is not None
    assert writer.stream.settings.layout == layout
    assert len(checks) == len(list(seq))
    assert all(checks)
    for key in writer.stream.settings.keys:  # after close, from storage
        view = writer.view(key)
        for (k, idx), frame in got.items():
            if k == key:
                np.testing.assert_array_equal(view[idx], frame)


def test_view_after_close_has_the_dataset_s_time_points(
    tmp_path: Path, backend: str
) -> None:
    """An unbounded collection whose image 0 missed the last time point: at
    close its array ends at the dataset's last one, and so does its view (it
    said one time point fewer than the array on disk)."""
    from tests._readback import read_zarr

    images = tuple(
        mmzarr.ImageSettings(
            key=str(p),
            coords={"p": p},
            dimensions=(
                mmzarr.Dimension(name="t", size=None),
                mmzarr.Dimension(name="y", size=2),
                mmzarr.Dimension(name="x", size=3),
            ),
        )
        for p in range(2)
    )
    settings = mmzarr.AcquisitionSettings(
        layout="collection", images=images, dtype="uint8"
    )
    out = tmp_path / "u.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for t in range(3):
            for p in range(2):
                if (p, t) != (0, 2):
                    stream.append(
                        np.full((2, 3), 10 * t + p, "uint8"), index={"p": p, "t": t}
                    )
        assert stream.view("0").shape == (2, 2, 3)  # while writing: its own
    on_disk = read_zarr(out, "0/0")
    assert on_disk.shape == (3, 2, 3)
    view = stream.view("0")
    assert view.shape == on_disk.shape
    np.testing.assert_array_equal(view[...], on_disk)
