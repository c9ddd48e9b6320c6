"""`LiveView`: exactly the frames acquired so far, fill value elsewhere (#21)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr._view import LiveView

if TYPE_CHECKING:
    from pathlib import Path

SEQ = useq.MDASequence(time_plan={"interval": 1, "loops": 3}, channels=["DAPI", "FITC"])
SHAPE = (6, 7)


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
