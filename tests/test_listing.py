"""A dataset lists cleanly in zarr-python and still validates (issue #19)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq
import zarr

import mmzarr
from tests._readback import check_metadata

if TYPE_CHECKING:
    from pathlib import Path

PLANS = {
    "image": useq.MDASequence(channels=["DAPI", "FITC"]),
    "plate": useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well", a1_center_xy=(0, 0), selected_wells=([0, 1], [0, 2])
        ),
        channels=["DAPI"],
    ),
}


@pytest.mark.parametrize("layout", list(PLANS))
def test_tree_lists_without_warnings(tmp_path: Path, backend: str, layout: str) -> None:
    seq = PLANS[layout]
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint16", pixel_size_um=1
    )
    assert settings.layout == layout
    out = tmp_path / "list.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(seq):
            stream.append(np.full((8, 10), n, "uint16"), index=event.index)
    assert (out / "mmzarr" / "frames.jsonl").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zarr's "is not recognized" warning
        tree = str(zarr.open_group(str(out), mode="r").tree())
    assert "mmzarr" in tree
    check_metadata(out)
