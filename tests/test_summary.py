"""The microscope's state at the start of a run is kept (issue #21, item 1).

pymmcore-plus hands output handlers its summary metadata at `sequenceStarted`;
`MDAWriter` writes it to `mmzarr/summary.json` before the first frame and maps
the instrument into the OME-XML. Expectations come from pymmcore-plus' own
`summary_metadata` and the demo rig's known devices.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ome_types
import useq

import mmzarr
from mmzarr._cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from pymmcore_plus.experimental.unicore import UniMMCore

SEQ = useq.MDASequence(
    stage_positions=[(0, 0, 0), (100, 50, 0)],
    channels=["DAPI", useq.Channel(config="FITC", exposure=20)],
)


def test_summary_in_the_dataset_and_the_ome_xml(
    core: UniMMCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.ome.zarr"
    seen: list[bool] = []

    class Checking(mmzarr.MDAWriter):
        """Notes, at each frame it is handed, whether the summary is written."""

        def frameReady(self, *args: Any) -> None:
            seen.append((out / "mmzarr/summary.json").is_file())
            super().frameReady(*args)

    writer = Checking(out, core=core)
    core.mda.run(SEQ, output=writer)
    writer.close()
    assert len(seen) == len(list(SEQ))
    assert all(seen)  # written before the first frame reached the writer

    summary = json.loads((out / "mmzarr/summary.json").read_text())
    assert summary["format"] == "summary-dict"
    labels = {d["label"] for d in summary["devices"]}
    assert {"Camera", "XY", "Z", "Wheel", "Shutter"} <= labels
    assert summary["image_infos"][0]["camera_label"] == "Camera"
    assert summary["image_infos"][0]["pixel_size_um"] == 1.0
    assert [c["config"] for c in summary["mda_sequence"]["channels"]] == [
        "DAPI",
        "FITC",
    ]

    ome = ome_types.from_xml(
        (out / "OME/METADATA.ome.xml").read_text(), validate=True
    )  # against the OME XSD
    (instrument,) = ome.instruments
    assert [d.model for d in instrument.detectors] == ["DemoCamera"]
    assert [o.model for o in instrument.objectives] == ["Res1x"]
    for image in ome.images:
        assert image.instrument_ref is not None
        assert image.instrument_ref.id == instrument.id
        assert image.acquisition_date is not None
        channels = image.pixels.channels
        assert [c.name for c in channels] == ["DAPI", "FITC"]
        assert all(c.detector_settings is not None for c in channels)
        exposures = {p.the_c: p.exposure_time for p in image.pixels.planes}
        assert exposures[1] == 20.0  # the plan's FITC exposure

    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "camera: Camera (mmzarr.demo._devices DemoCamera)" in shown
    assert "pixel size at the start: 1.0 µm (config Res1x)" in shown
    assert "channels: DAPI, FITC 20 ms" in shown
