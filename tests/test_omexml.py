"""OME/METADATA.ome.xml for collections and plates (issue #11, part 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import ome_types
import pytest
import useq

import mmzarr
from tests._readback import check_metadata
from tests.test_mda import run

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


def test_plate_ome_xml_on_mda(core: UniMMCore, tmp_path: Path) -> None:
    plan = useq.WellPlatePlan(
        plate="24-well",
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [1, 3]),
        well_points_plan=useq.GridRowsColumns(
            rows=1, columns=2, fov_width=512, fov_height=512
        ),
    )
    seq = useq.MDASequence(
        stage_positions=plan, channels=["DAPI", "FITC"], z_plan={"range": 2, "step": 1}
    )
    out = tmp_path / "plate.ome.zarr"
    _, cap = run(core, seq, out)
    check_metadata(out)
    xml = (out / "OME" / "METADATA.ome.xml").read_text()
    ome = ome_types.from_xml(xml, validate=True)  # against the OME XSD
    planes = [p for im in ome.images for p in im.pixels.planes]
    assert len(planes) == len(cap.frames) == 24
    # each plane's position is where the stage was for that frame (the event)
    settings = mmzarr.AcquisitionSettings.model_validate_json(
        (out / "mmzarr/settings.json").read_text()
    )
    for event, _ in cap.frames:
        key, (c, z) = settings.locate(event.index)
        i = settings.keys.index(key)
        pix = ome.images[i].pixels
        (plane,) = [p for p in pix.planes if (p.the_c, p.the_z) == (c, z)]
        assert plane.position_x == pytest.approx(event.x_pos)
        assert plane.position_y == pytest.approx(event.y_pos)
        assert plane.position_z == pytest.approx(event.z_pos)
        assert plane.exposure_time == pytest.approx(10.0)
        assert pix.channels[c].name == event.channel.config
    assert (pix.size_x, pix.size_y, pix.size_z, pix.size_c, pix.size_t) == (
        512,
        512,
        3,
        2,
        1,
    )
    (plate,) = ome.plates
    assert len(plate.wells) == 2
    refs = [ws.image_ref.id for w in plate.wells for ws in w.well_samples]
    assert refs == [im.id for im in ome.images]
    assert [(w.row, w.column) for w in plate.wells] == [(0, 1), (1, 3)]


def test_collection_ome_xml_series_order(tmp_path: Path) -> None:
    import numpy as np

    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 20, 1), (30, 40, 2)],
        channels=["DAPI"],
        time_plan={"interval": 1, "loops": 2},
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint8", pixel_size_um=0.5
    )
    out = tmp_path / "c.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for event in list(seq)[:4]:  # cancelled after 4 frames
            stream.append(np.zeros((8, 10), "uint8"), index=event.index)
    ome = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text(), validate=True)
    assert [im.id for im in ome.images] == ["Image:0", "Image:1", "Image:2"]
    assert sum(len(im.pixels.planes) for im in ome.images) == 4
    assert ome.images[0].pixels.physical_size_x == 0.5
    assert ome.images[0].pixels.type.value == "uint8"


@pytest.mark.parametrize(
    ("dtype", "pixel_type"),
    [("float32", "float"), ("float64", "double"), ("int32", "int32")],
)
def test_ome_xml_pixel_type(tmp_path: Path, dtype: str, pixel_type: str) -> None:
    """numpy's float32/float64 are OME's `float`/`double`."""
    seq = useq.MDASequence(stage_positions=[(0, 0, 0), (10, 20, 1)])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 6), dtype=dtype, pixel_size_um=0.5
    )
    out = tmp_path / "c.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for k in range(2):
            stream.append(np.full((4, 6), k + 0.5, dtype))
    ome = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text(), validate=True)
    assert [im.pixels.type.value for im in ome.images] == [pixel_type] * 2
    check_metadata(out)


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_no_ome_xml_for_a_dtype_ome_has_no_type_for(tmp_path: Path, dtype: str) -> None:
    """OME has no 64-bit integer pixel type: the plate closes, without OME-XML."""
    plate = useq.WellPlatePlan(
        plate="24-well", a1_center_xy=(0, 0), selected_wells=([0], [0, 1])
    )
    seq = useq.MDASequence(stage_positions=plate)
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 6), dtype=dtype, pixel_size_um=0.5
    )
    out = tmp_path / "p.ome.zarr"
    stream = mmzarr.create_stream(out, settings)
    for event in seq:
        stream.append(np.full((4, 6), 2**40, dtype), index=event.index)
    stream.close()
    assert stream.status == "complete"
    assert not (out / "OME/METADATA.ome.xml").exists()
    check_metadata(out)
    assert mmzarr.validate(out).ok


def test_single_image_has_no_ome_xml(tmp_path: Path) -> None:
    import numpy as np

    seq = useq.MDASequence(channels=["DAPI"])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint8", pixel_size_um=0.5
    )
    with mmzarr.create_stream(tmp_path / "i.ome.zarr", settings) as stream:
        stream.append(np.zeros((8, 10), "uint8"))
    assert not (tmp_path / "i.ome.zarr/OME").exists()


def test_close_survives_a_failed_early_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OME-XML rendered during close failing once: groups and status are
    still written, and the XML is rendered again."""
    from mmzarr import _dataset
    from mmzarr._omexml import OME_XML

    real = _dataset.render_ome_xml
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(_dataset, "render_ome_xml", flaky)
    seq = useq.MDASequence(stage_positions=[(0, 0, 0), (5, 5, 0)])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 8), dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "c.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for event in seq:
            stream.append(np.ones((8, 8), "uint16"), index=event.index)
    assert stream.status == "complete"
    assert len(calls) == 2
    ome = ome_types.from_xml((out / OME_XML).read_text())
    assert len(ome.images) == 2
    assert mmzarr.validate(out).ok


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (None, None),
        ("missing", "METADATA.ome.xml is missing (its writer died while closing"),
        ("truncated", "METADATA.ome.xml does not parse"),
        ("size", "image 1 has SizeX=999, its array '1/0' 16"),
        ("plane", "image 0 has planes (t, c, z) outside its array '0/0': [(0, 0, 7)]"),
    ],
)
def test_validate_checks_the_ome_xml(
    tmp_path: Path, damage: str | None, said: str | None
) -> None:
    """A reader that takes the dimensions from the OME-XML (Bio-Formats) must
    find the arrays' own: validate says when the document does not parse or
    disagrees (it never looked at it)."""
    seq = useq.MDASequence(stage_positions=[(0, 0, 0), (100, 0, 0)], channels=["DAPI"])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1
    )
    out = tmp_path / "xml.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="tensorstore") as stream:
        for event in seq:
            stream.append(np.ones((16, 16), "uint16"), index=event.index)
    xml = out / "OME/METADATA.ome.xml"
    text = xml.read_text()
    if damage == "missing":
        xml.unlink()
    elif damage == "truncated":
        xml.write_text(text[:200])
    elif damage in ("size", "plane"):
        ome = ome_types.from_xml(text)
        if damage == "size":
            ome.images[1].pixels.size_x = 999
        else:
            ome.images[0].pixels.planes[0].the_z = 7
        xml.write_text(ome.to_xml())
    report = mmzarr.validate(out)
    if said is None:
        assert report.ok, report.format()
    else:
        assert not report.ok
        assert any(said in p for p in report.problems), report.problems


def test_validate_accepts_an_endless_run_closed_before_its_first_frame(
    tmp_path: Path, backend: str
) -> None:
    """Its arrays have t = 0 and its OME-XML SizeT = 1 (OME's least): valid."""
    seq = useq.MDASequence(
        stage_positions=[(1, 2, 3), (4, 5, 6)], time_plan={"interval": 1, "loops": 1}
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(16, 16), dtype="uint16", pixel_size_um=1, unbounded_t=True
    )
    out = tmp_path / "none.ome.zarr"
    mmzarr.create_stream(out, settings, backend=backend).close()
    xml = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    assert [im.pixels.size_t for im in xml.images] == [1, 1]
    report = mmzarr.validate(out)
    assert report.arrays["0/0"][0] == 0
    assert report.ok, report.format()


def test_well_sample_positions_are_in_micrometers(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A WellSample's PositionX/Y default to the unit "reference frame" (pixels)
    in the OME schema: the stage coordinates mmzarr writes there are µm."""
    plan = useq.WellPlatePlan(
        plate="96-well",
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [0, 2]),
        well_points_plan=useq.GridRowsColumns(
            rows=1, columns=2, fov_width=512, fov_height=512
        ),
    )
    seq = useq.MDASequence(stage_positions=plan)
    out = tmp_path / "plate.ome.zarr"
    _, cap = run(core, seq, out)
    ome = ome_types.from_xml((out / "OME" / "METADATA.ome.xml").read_text())
    samples = [ws for w in ome.plates[0].wells for ws in w.well_samples]
    assert len(samples) == len(cap.frames) == 4
    for ws, (event, _) in zip(samples, cap.frames, strict=True):
        assert ws.position_x_unit.value == ws.position_y_unit.value == "µm"
        assert ws.position_x == pytest.approx(event.x_pos)
        assert ws.position_y == pytest.approx(event.y_pos)


@pytest.mark.parametrize("mode", ["channels", "images"])
def test_each_channel_names_the_camera_that_took_it(tmp_path: Path, mode: str) -> None:
    """With several cameras each channel's DetectorSettings is its own camera's
    Detector (the frames' `camera_device`), not the first one of the summary
    (the Multi Camera adapter)."""
    from tests.test_cameras import _two_camera_core

    core = _two_camera_core()
    try:
        seq = useq.MDASequence(
            stage_positions=[(0, 0, 0), (5, 5, 1)], channels=["DAPI"]
        )
        out = tmp_path / "cams.ome.zarr"
        cams: dict[tuple[int, int], str] = {}
        core.mda.events.frameReady.connect(
            lambda img, e, meta: cams.setdefault(
                (e.index["p"], e.index["cam"]), meta["camera_device"]
            )
        )
        writer = mmzarr.MDAWriter(out, core=core, cameras=mode)
        core.mda.run(seq, output=writer)
        writer.close()
        ome = ome_types.from_xml((out / "OME" / "METADATA.ome.xml").read_text())
        label = {d.id: d.serial_number for d in ome.instruments[0].detectors}
        used = [
            label[ch.detector_settings.id]
            for im in ome.images
            for ch in im.pixels.channels
        ]
        # channels: per image "DAPI / Camera-1", "DAPI / Camera-2";
        # images: per position, one image per camera
        assert used == [cams[k] for k in sorted(cams)]
        assert set(used) == {"Camera-1", "Camera-2"}
    finally:
        core.unloadAllDevices()
