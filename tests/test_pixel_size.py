"""A pixel size the core does not know is written as unknown, not as 1 µm.

Micro-Manager reports 0 when no pixel-size configuration matches the
microscope's state (common on a new rig). y/x then have no unit in the NGFF
axes (a scale of 1: they count pixels) and the OME-XML has no
`PhysicalSizeX`/`Y`; a known pixel size is written in micrometer, as before.
A frame acquired at another pixel size than the run's names the pixel size
the dataset is written at.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ome_types
import pytest
import useq
from rich.console import Console

import mmzarr
from mmzarr._info import dataset_tree, microscope_lines
from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr
from tests.test_fallback import REPEATS
from tests.test_mda import Capture

if TYPE_CHECKING:
    from pymmcore_plus.experimental.unicore import UniMMCore

UNKNOWN = "pixel_size_um is unknown"
#: the y/x NGFF axes of an unknown pixel size, and of a known one
NO_UNIT = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
MICROMETER = [
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]
TWO_POSITIONS = useq.MDASequence(
    stage_positions=[(0, 0, 0), (100, 0, 0)], channels=["DAPI", "FITC"]
)


def _yx(root: Path, key: str = "") -> tuple[list[dict[str, Any]], list[float]]:
    """The y/x axes and level-0 scale of the image at `root`/`key`."""
    ms = group_json(root, key)["attributes"]["ome"]["multiscales"][0]
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    return ms["axes"][-2:], scale[-2:]


def _physical_sizes(root: Path) -> list[tuple[Any, Any]]:
    """Each OME-XML image's (PhysicalSizeX, PhysicalSizeY), read with ome-types."""
    ome = ome_types.from_xml((root / "OME/METADATA.ome.xml").read_text(), validate=True)
    return [(im.pixels.physical_size_x, im.pixels.physical_size_y) for im in ome.images]


def _info(root: Path) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(dataset_tree(root))
    return console.file.getvalue() + "\n".join(microscope_lines(root))  # type: ignore[attr-defined]


def _without_pixel_size(core: UniMMCore) -> None:
    """The demo rig as a new rig: its pixel-size preset says 0 (unknown)."""
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    core.setPixelSizeUm(core.getCurrentPixelSizeConfig(), 0)
    assert core.getPixelSizeUm() == 0


# ---- settings --------------------------------------------------------------------
def test_settings_of_an_unknown_pixel_size_have_no_yx_unit() -> None:
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        planned = mmzarr.AcquisitionSettings.from_useq(
            TWO_POSITIONS, image_shape=(8, 8), dtype="uint16"
        )
    fallbacks = [
        mmzarr.AcquisitionSettings.fallback(
            "why", image_shape=(8, 8), dtype="uint16", pixel_size_um=px
        )
        for px in (None, 0)
    ]
    for settings in (planned, *fallbacks):
        for image in settings.images:
            yx = [(d.unit, d.scale) for d in image.dimensions[-2:]]
            assert yx == [(None, 1.0), (None, 1.0)]
            assert image.pixel_size_um is None
        text = settings.model_dump_json()
        again = mmzarr.AcquisitionSettings.model_validate_json(text)
        assert again == settings
        assert again.model_dump_json() == text


def test_every_backend_writes_an_unknown_pixel_size_without_unit(
    backend: str, tmp_path: Path
) -> None:
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        settings = mmzarr.AcquisitionSettings.from_useq(
            TWO_POSITIONS, image_shape=(8, 8), dtype="uint16"
        )
    out = tmp_path / "s.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(TWO_POSITIONS):
            frames[event.index["p"], event.index["c"]] = frame = np.full(
                (8, 8), n, "uint16"
            )
            stream.append(frame, index=event.index)
    for key in ("0", "1"):
        assert _yx(out, key) == (NO_UNIT, [1.0, 1.0])
    assert _physical_sizes(out) == [(None, None), (None, None)]
    check_metadata(out)
    for (p, c), frame in frames.items():
        np.testing.assert_array_equal(read_tensorstore(out, f"{p}/0")[c], frame)


def _transforms(root: Path, key: str) -> list[tuple[list[float], list[float]]]:
    """(scale, translation) of each level of the image at `root`/`key`."""
    ms = group_json(root, key)["attributes"]["ome"]["multiscales"][0]
    out = []
    for ds in ms["datasets"]:
        scale, *shift = ds["coordinateTransformations"]
        zero = [0.0] * len(scale["scale"])
        out.append((scale["scale"], shift[0]["translation"] if shift else zero))
    return out


def test_an_unknown_pixel_size_places_no_position_in_pixels(tmp_path: Path) -> None:
    """Stage positions are µm: along y/x that count pixels they are no
    translation (they were written as pixels, 1000 µm as pixel 1000, so two
    positions 100 µm apart were shown 100 pixels apart, whatever the real
    pixel size). z, in micrometer, keeps its translation; a level keeps its
    pixel-center shift (in pixels)."""
    seq = useq.MDASequence(
        stage_positions=[(1000, 2000, 5), (1100, 2000, 5)],
        z_plan={"range": 4, "step": 2},
    )
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        settings = mmzarr.AcquisitionSettings.from_useq(
            seq,
            image_shape=(8, 8),
            dtype="uint16",
            downsample=mmzarr.Downsample(levels=1),
        )
    out = tmp_path / "s.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for event in seq:
            stream.append(np.ones((8, 8), "uint16"), index=event.index)
    for key in ("0", "1"):
        assert _transforms(out, key) == [
            ([2.0, 1.0, 1.0], [3.0, 0.0, 0.0]),
            ([2.0, 2.0, 2.0], [3.0, 0.5, 0.5]),
        ]
    check_metadata(out)
    assert mmzarr.validate(out).ok


def test_positions_and_z_steps_are_written_in_the_axes_units(tmp_path: Path) -> None:
    """Settings given in nanometer: the stage position (µm) is translated
    into nm (it was written as is: 1000 µm as 1000 nm), and the OME-XML's
    PhysicalSizeZ is in µm, its unit (it said 500 µm for 500 nm)."""
    nm = {"unit": "nanometer"}

    def image(p: int) -> mmzarr.ImageSettings:
        return mmzarr.ImageSettings(
            key=str(p),
            coords={"p": p},
            dimensions=(
                mmzarr.Dimension(name="z", size=2, scale=500, **nm),
                mmzarr.Dimension(name="y", size=8, scale=650, **nm),
                mmzarr.Dimension(name="x", size=8, scale=650, **nm),
            ),
            stage_position=mmzarr.StagePosition(x=1000 + 100 * p, y=2000, z=5),
        )

    settings = mmzarr.AcquisitionSettings(
        dtype="uint16", layout="collection", images=(image(0), image(1))
    )
    out = tmp_path / "nm.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for p in range(2):
            for z in range(2):
                stream.append(np.ones((8, 8), "uint16"), index={"p": p, "z": z})
    assert _transforms(out, "0") == [([500.0, 650.0, 650.0], [5e3, 2e6, 1e6])]
    assert _transforms(out, "1") == [([500.0, 650.0, 650.0], [5e3, 2e6, 1.1e6])]
    ome = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    for im in ome.images:
        assert im.pixels.physical_size_z == 0.5
        assert im.pixels.physical_size_z_unit.value == "µm"
        assert (im.pixels.physical_size_x, im.pixels.physical_size_y) == (0.65, 0.65)
    check_metadata(out)


# ---- MDAWriter on the demo rig ----------------------------------------------------
def test_an_mda_without_pixel_size_writes_it_unknown(
    core: UniMMCore, tmp_path: Path
) -> None:
    """NGFF y/x without a unit, no PhysicalSizeX/Y, `info` says unknown; the
    dataset validates, reads back, and `finalize` keeps it so."""
    _without_pixel_size(core)
    out = tmp_path / "new_rig.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        core.mda.run(TWO_POSITIONS, output=writer)
    writer.close()
    assert writer.error is None
    assert writer.frames_written == len(cap.frames) == 4

    def check() -> None:
        for key in ("0", "1"):
            assert _yx(out, key) == (NO_UNIT, [1.0, 1.0])
        assert _physical_sizes(out) == [(None, None), (None, None)]
        check_metadata(out)
        assert mmzarr.validate(out).ok

    check()
    saved = (out / "mmzarr" / "settings.json").read_text()
    settings = mmzarr.AcquisitionSettings.model_validate_json(saved)
    assert [im.pixel_size_um for im in settings.images] == [None, None]
    for event, img in cap.frames:
        key, c = str(event.index["p"]), event.index["c"]
        for read in (read_zarr, read_tensorstore):
            np.testing.assert_array_equal(read(out, f"{key}/0")[c], img)
    text = _info(out)
    assert "pixel size: unknown" in text
    assert "pixel size at the start: unknown" in text
    assert "µm" not in text.replace("µm (config", "")  # no size anywhere
    assert mmzarr.finalize(out).ok
    check()


def test_an_mda_with_a_pixel_size_writes_micrometer(
    core: UniMMCore, tmp_path: Path
) -> None:
    core.setPixelSizeUm(core.getCurrentPixelSizeConfig(), 0.65)
    out = tmp_path / "calibrated.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(TWO_POSITIONS, output=writer)
    writer.close()
    for key in ("0", "1"):
        assert _yx(out, key) == (MICROMETER, [0.65, 0.65])
    assert _physical_sizes(out) == [(0.65, 0.65), (0.65, 0.65)]
    text = _info(out)
    assert "pixel size: 0.65 µm" in text
    assert "pixel size at the start: 0.65 µm" in text


def test_a_fallback_without_pixel_size_writes_it_unknown(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A plan mmzarr cannot map (an event repeated) on a rig without one."""
    _without_pixel_size(core)
    out = tmp_path / "fallback.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(REPEATS, output=writer)
    writer.close()
    assert group_json(out)["attributes"]["mmzarr"]["fallback"]
    assert writer.frames_written == 6
    assert _yx(out) == (NO_UNIT, [1.0, 1.0])
    check_metadata(out)


def _run_pixel_sizes(
    core: UniMMCore, out: Path, start: float, at_t: list[float], **writer: Any
) -> tuple[mmzarr.MDAWriter, Capture]:
    """A 2-channel run of 64x64 frames, one time point per entry of `at_t`:
    the pixel size is `start` as the run starts, and `at_t[t]` from event
    (t, c=0) on (a hook: the objective; 0 is unknown)."""
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    preset = core.getCurrentPixelSizeConfig()
    core.setPixelSizeUm(preset, start)

    def switch(event: useq.MDAEvent) -> None:
        if event.index.get("c") == 0:
            core.setPixelSizeUm(preset, at_t[event.index["t"]])

    core.mda.events.eventStarted.connect(switch)
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.001, "loops": len(at_t)}
    )
    cap = Capture(core)
    w = mmzarr.MDAWriter(out, core=core, **writer)
    core.mda.run(seq, output=w)
    w.close()
    core.mda.events.eventStarted.disconnect(switch)
    assert w.error is None
    assert len(cap.frames) == 2 * len(at_t)
    return w, cap


def _beside(writer: mmzarr.MDAWriter) -> tuple[str, list[dict[str, Any]]]:
    """The unplaced sibling's reason and the event indices of its frames."""
    root = Path(writer.unplaced_path)
    reason = group_json(root)["attributes"]["mmzarr"]["fallback"]
    lines = (root / "mmzarr" / "frames.jsonl").read_text().splitlines()
    return reason, [json.loads(line)["event_index"] for line in lines]


def test_a_pixel_size_known_from_the_first_frame_is_the_dataset_s(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Unknown as the run starts, known from the first frame on (the first
    channel preset switches to a calibrated objective): the dataset takes it,
    as it does a pixel size changed between the start and the first frame
    (it was written at 1 µm)."""
    out = tmp_path / "run.ome.zarr"
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        writer, cap = _run_pixel_sizes(core, out, 0, [0.5, 0.5])
    assert not Path(writer.unplaced_path).exists()
    assert writer.frames_written == 4
    assert _yx(out) == (MICROMETER, [0.5, 0.5])
    data = read_zarr(out, "0")
    for event, img in cap.frames:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
    saved = json.loads((out / "mmzarr" / "settings.json").read_text())
    yx = saved["images"][0]["dimensions"][-2:]
    assert [(d["unit"], d["scale"]) for d in yx] == [("micrometer", 0.5)] * 2
    check_metadata(out)


def test_a_pixel_size_known_after_unknown_frames_is_no_misfit(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Unknown at t=0, 0.5 µm at t=1, 0.25 µm at t=2: the dataset (of unknown
    pixel size) takes t=0 and t=1, whose pixel size it does not contradict;
    t=2 is at another than the run's first known one and goes beside, its
    reason saying the dataset's pixel size is unknown (all were written into
    a dataset of 1 µm pixels)."""
    out = tmp_path / "run.ome.zarr"
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        writer, cap = _run_pixel_sizes(core, out, 0, [0, 0.5, 0.25])
    assert _yx(out) == (NO_UNIT, [1.0, 1.0])
    assert writer.frames_written == 6
    data = read_zarr(out, "0")
    for event, img in cap.frames[:4]:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
    reason, kept = _beside(writer)
    assert reason.endswith(
        ": frame pixel size 0.25 µm, not the run's 0.5 µm (the pixel "
        "size changed during the run: another objective, binning or calibration; "
        "the dataset's pixel size is unknown)"
    )
    assert kept == [{"t": 2, "c": 0}, {"t": 2, "c": 1}]
    assert _yx(Path(writer.unplaced_path)) == (MICROMETER, [0.25, 0.25])
    check_metadata(out)


def test_a_misfit_names_the_pixel_size_given_to_the_writer(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`MDAWriter(pixel_size_um=0.3)` on a core at 1 µm that changes to 0.5 µm
    at t=1: those frames go beside, and the reason names the dataset's 0.3 µm
    (it said "not 1 µm" of a dataset written at 0.3 µm)."""
    out = tmp_path / "run.ome.zarr"
    writer, _ = _run_pixel_sizes(core, out, 1.0, [1.0, 0.5], pixel_size_um=0.3)
    assert _yx(out) == (MICROMETER, [0.3, 0.3])
    reason, kept = _beside(writer)
    assert reason.endswith(
        ": frame pixel size 0.5 µm, not the run's 1 µm (the pixel size "
        "changed during the run: another objective, binning or calibration; the "
        "dataset is written at 0.3 µm)"
    )
    assert kept == [{"t": 1, "c": 0}, {"t": 1, "c": 1}]


def _run_first_frame_beside(
    core: UniMMCore,
    out: Path,
    seq: useq.MDASequence,
    switch: Any = None,
    side: int = 64,
) -> tuple[mmzarr.MDAWriter, Capture]:
    """Run `seq` (`side`-square frames at 1 µm as it starts; `switch` on each
    event)."""
    core.setProperty("Camera", "SensorWidth", side)
    core.setProperty("Camera", "SensorHeight", side)
    core.setPixelSizeUm(core.getCurrentPixelSizeConfig(), 1.0)
    if switch is not None:
        core.mda.events.eventStarted.connect(switch)
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, overwrite=True)
    core.mda.run(seq, output=writer)
    writer.close()
    if switch is not None:
        core.mda.events.eventStarted.disconnect(switch)
    assert writer.error is None
    return writer, cap


def _siblings_named(out: Path) -> list[str]:
    """What validate says of `out`'s unplaced siblings."""
    return [n for n in mmzarr.validate(out).notes if "did not fit" in n]


def test_a_first_frame_kept_beside_leaves_the_dataset_s_pixel_size_alone(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Channel presets setting binning 2 then 1 (1 µm pixels as the run
    starts): the first frame (32x32 at 2 µm) does not fit the 64x64 dataset
    and goes beside without giving the dataset its pixel size (it was set to
    2 µm, then back to 1 µm, rewriting the settings after the sibling was
    opened), and validate and info of the dataset name the sibling (they did
    not)."""
    core.defineConfig("Bin", "B1", "Camera", "Binning", "1")
    core.defineConfig("Bin", "B2", "Camera", "Binning", "2")
    core.setConfig("Bin", "B1")
    seq = useq.MDASequence(
        channels=[useq.Channel(config=c, group="Bin") for c in ("B2", "B1")]
    )
    out = tmp_path / "run.ome.zarr"
    beside = tmp_path / "run.unplaced.ome.zarr"
    caplog.set_level("INFO", logger="mmzarr")
    writer, cap = _run_first_frame_beside(core, out, seq)
    assert "the pixel size changed between the run's start" not in caplog.text
    assert [img.shape for _, img in cap.frames] == [(32, 32), (64, 64)]
    assert writer.frames_written == 2
    assert _siblings_named(out) == [
        f"frames that did not fit this dataset are kept beside it in {[str(beside)]}"
    ]
    assert str(beside) in _info(out)
    assert _yx(out) == (MICROMETER, [1.0, 1.0])
    data = read_zarr(out, "0")  # (c, y, x)
    assert not data[0].any()  # never written: the fill value
    np.testing.assert_array_equal(data[1], cap.frames[1][1])
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[0][1])
    assert _yx(beside) == (MICROMETER, [2.0, 2.0])
    check_metadata(out)


def test_a_pixel_size_taken_after_a_sibling_opened_still_names_it(
    core: UniMMCore, tmp_path: Path
) -> None:
    """The first frame (64x64, at the run's 1 µm) goes beside a dataset of
    128x128 frames; the next (128x128, another objective: 0.5 µm) is the
    dataset's first, which takes its pixel size, writing its settings again
    after the sibling was opened: validate and info still name the sibling
    (they did not)."""
    preset = core.getCurrentPixelSizeConfig()

    def switch(event: useq.MDAEvent) -> None:
        side = 64 if event.index.get("c") == 0 else 128
        core.setProperty("Camera", "SensorWidth", side)
        core.setProperty("Camera", "SensorHeight", side)
        if event.index.get("c") == 1:
            core.setPixelSizeUm(preset, 0.5)

    out = tmp_path / "run.ome.zarr"
    beside = tmp_path / "run.unplaced.ome.zarr"
    seq = useq.MDASequence(channels=["DAPI", "FITC"])
    writer, cap = _run_first_frame_beside(core, out, seq, switch, side=128)
    assert [img.shape for _, img in cap.frames] == [(64, 64), (128, 128)]
    assert writer.frames_written == 2
    assert _siblings_named(out) == [
        f"frames that did not fit this dataset are kept beside it in {[str(beside)]}"
    ]
    assert str(beside) in _info(out)
    assert _yx(out) == (MICROMETER, [0.5, 0.5])
    data = read_zarr(out, "0")  # (c, y, x)
    assert not data[0].any()
    np.testing.assert_array_equal(data[1], cap.frames[1][1])
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[0][1])
    assert _yx(beside) == (MICROMETER, [1.0, 1.0])
    check_metadata(out)


# ---- ZarrHook ----------------------------------------------------------------------
def test_a_pycromanager_acquisition_without_pixel_size_writes_it_unknown(
    core: UniMMCore, tmp_path: Path
) -> None:
    """pycromanager's engine on the demo rig without a pixel size
    (``PixelSize_um`` 0): y/x without a unit, no PhysicalSizeX/Y."""
    from pycromanager import multi_d_acquisition_events

    from mmzarr.pycromanager import ZarrHook
    from tests.test_pycromanager import run_pycro

    _without_pixel_size(core)
    events = multi_d_acquisition_events(
        channel_group="Channel",
        channels=["DAPI", "FITC"],
        xy_positions=[[0, 0], [64, 32]],
    )
    out = tmp_path / "acq.ome.zarr"
    hook = ZarrHook(out, events=events)
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        cap, _ = run_pycro(core, hook, events)
    hook.close()
    assert len(cap.images) == hook.frames_written == 4
    assert {md["PixelSize_um"] for md, _ in cap.images} == {0}
    for key in ("0", "1"):
        assert _yx(out, key) == (NO_UNIT, [1.0, 1.0])
    assert _physical_sizes(out) == [(None, None), (None, None)]
    check_metadata(out)
    for md, img in cap.images:
        key, c = md["Axes"]["position"], ["DAPI", "FITC"].index(md["Axes"]["channel"])
        np.testing.assert_array_equal(read_tensorstore(out, f"{key}/0")[c], img)
    assert "pixel size: unknown" in _info(out)


def test_hook_images_known_after_unknown_ones_name_the_unknown_dataset(
    tmp_path: Path,
) -> None:
    """Learn mode, ``PixelSize_um`` 0 at t=0, 0.5 at t=1, 0.25 at t=2: the
    dataset is opened at the first image, of unknown pixel size; t=1 is no
    misfit, t=2 goes beside and its reason says the dataset's pixel size is
    unknown (it said "not 0.5 µm" of a dataset written at 1 µm)."""
    from pycromanager import multi_d_acquisition_events

    from mmzarr.pycromanager import ZarrHook
    from tests.test_pycromanager import frame_of, pycro_image

    events = multi_d_acquisition_events(
        num_time_points=3,
        time_interval_s=0.1,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
    )
    out = tmp_path / "px.ome.zarr"
    hook = ZarrHook(out)
    sizes = [0, 0.5, 0.25]  # by time point
    images = [
        pycro_image(
            ev, frame_of(n), elapsed_ms=n * 10.0, pixel_size=sizes[ev["axes"]["time"]]
        )
        for n, ev in enumerate(events)
    ]
    with pytest.warns(mmzarr.MMZarrWarning, match=UNKNOWN):
        kept = [hook(*image) for image in images]
    assert len(kept) == 6
    hook.close()
    assert hook.frames_written == 6
    assert _yx(out) == (NO_UNIT, [1.0, 1.0])
    assert read_zarr(out, "0")[:, :, 0, 0].tolist() == [[100, 101], [102, 103]]
    beside = tmp_path / "px.unplaced.ome.zarr"
    reason = group_json(beside)["attributes"]["mmzarr"]["fallback"]
    assert reason.endswith(
        "FrameError: frame pixel size 0.25 µm, not the run's 0.5 µm (the pixel size "
        "changed during the run: another objective, binning or calibration; the "
        "dataset's pixel size is unknown)"
    )
    assert _yx(beside) == (MICROMETER, [0.25, 0.25])
    assert read_zarr(beside, "0")[:, 0, 0].tolist() == [104, 105]
