"""Several cameras in one MDA (issue #21, item 2): channels or images per camera.

1. `mmzarr._cameras` alone: literal labels, shapes, skipped slots, orders.
2. `MDAWriter` fed the exact `(image, event, meta)` triples pymmcore-plus makes
   for two cameras, built with pymmcore-plus' own `summary_metadata` and
   `frame_metadata` on a two-camera core, and the events as `MDAEngine` makes
   them (`MDAEngine.exec_single_event` copies the event with
   `index={**event.index, "cam": cam}` for each camera channel when
   `getNumberOfCameraChannels() > 1`, as `_TimepointBuffer._with_camera_index`
   does for hardware-sequenced frames; the frame's `camera_device` is
   `getPhysicalCameraDevice(cam)`).
3. End to end: `core.mda.run` on `MultiCameraCore`, a `UniMMCore` whose
   selected camera is an adapter like Micro-Manager's Multi Camera (its
   `Physical Camera N` properties name two demo cameras, whose frames it
   returns as camera channels 0 and 1).

Expected places are literals; pixels are read back with zarr-python.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
from pymmcore_plus.experimental.unicore import UniMMCore
from pymmcore_plus.metadata import frame_metadata, summary_metadata

import mmzarr
from mmzarr._cameras import (
    Camera,
    camera_layout,
    cameras_from_summary,
    common_dtype,
    upcast,
)
from mmzarr.demo import (
    DEMO_CONFIG,
    PIXEL_SIZE_PRESET,
    PIXEL_SIZE_UM,
    DemoCamera,
    release_core,
)
from tests._readback import group_json, read_zarr
from tests.test_mda import Capture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import DTypeLike

PX = {"pixel_size_um": 1.0}
A = Camera("Camera-1", (8, 8), "uint16")
B = Camera("Camera-2", (8, 8), "uint16")


def _settings(seq: useq.MDASequence, **kw: Any) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 8), dtype="uint16", **PX, **kw
    )


# ---- 1. the transformation ---------------------------------------------------------
def test_channels_are_channel_major_and_keep_config_exposure_and_skips() -> None:
    seq = useq.MDASequence(
        channels=["DAPI", useq.Channel(config="FITC", exposure=5, acquire_every=2)],
        time_plan={"interval": 1, "loops": 3},
        z_plan={"range": 1, "step": 1},
    )
    lay = camera_layout(_settings(seq), [A, B])
    im = lay.settings.images[0]
    assert lay.mode == "channels"
    assert lay.settings.layout == "image"
    assert im.shape == (3, 4, 2, 8, 8)
    assert [(c.name, c.config, c.exposure_ms, c.color) for c in im.channels] == [
        ("DAPI / Camera-1", "DAPI", None, "0000FF"),
        ("DAPI / Camera-2", "DAPI", None, "0000FF"),
        ("FITC / Camera-1", "FITC", 5.0, "00FF00"),
        ("FITC / Camera-2", "FITC", 5.0, "00FF00"),
    ]
    # FITC skips t=1 (acquire_every=2): both of its cameras skip it
    assert im.skipped == ((1, 2, 0), (1, 2, 1), (1, 3, 0), (1, 3, 1))
    assert im.acquisition_order == ("t", "c", "z")
    assert im.frames_planned == 20
    # z is inside c: camera 1's 2 planes of a channel come before camera 0's last
    assert lay.held_frames == 2
    assert lay.index({"t": 2, "c": 1, "z": 1, "cam": 0}) == {"t": 2, "c": 2, "z": 1}
    assert lay.index({"t": 2, "c": 1, "z": 1, "cam": 1}) == {"t": 2, "c": 3, "z": 1}
    assert lay.index({"t": 0, "c": 0, "cam": 2}) == {"t": 0, "c": 0, "cam": 2}
    assert lay.settings.locate(lay.index({"t": 2, "c": 1, "z": 1, "cam": 1})) == (
        "",
        (2, 3, 1),
    )


def test_channels_innermost_holds_nothing() -> None:
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], z_plan={"range": 1, "step": 1}, axis_order="tzc"
    )
    lay = camera_layout(_settings(seq), [A, B])
    assert lay.settings.images[0].acquisition_order == ("z", "c")
    assert lay.held_frames == 0


def test_an_image_without_c_gets_one_per_camera() -> None:
    settings = mmzarr.AcquisitionSettings(
        layout="image",
        dtype="uint16",
        images=(
            mmzarr.ImageSettings(
                key="",
                dimensions=(
                    mmzarr.Dimension(name="t", size=3),
                    mmzarr.Dimension(name="z", size=2),
                    mmzarr.Dimension(name="y", size=8),
                    mmzarr.Dimension(name="x", size=8),
                ),
                acquisition_order=("z", "t"),
                skipped=((1, 0), (1, 1)),
            ),
        ),
    )
    lay = camera_layout(settings, [A, B], "channels")
    im = lay.settings.images[0]
    assert im.dim_names == ("t", "c", "z", "y", "x")
    assert im.shape == (3, 2, 2, 8, 8)
    assert [c.name for c in im.channels] == ["Camera-1", "Camera-2"]
    assert len({c.color for c in im.channels}) == 2
    assert im.acquisition_order == ("z", "t", "c")  # the cameras of an event last
    assert im.skipped == ((1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1))
    assert lay.held_frames == 0
    assert lay.index({"t": 2, "z": 1, "cam": 1}) == {"t": 2, "z": 1, "c": 1}


def test_positions_without_channels_as_channels() -> None:
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (5, 5, 0)], time_plan={"interval": 1, "loops": 2}
    )
    lay = camera_layout(_settings(seq), [A, B])
    assert [(im.key, im.shape, im.coords) for im in lay.settings.images] == [
        ("0", (2, 2, 8, 8), {"p": 0}),
        ("1", (2, 2, 8, 8), {"p": 1}),
    ]
    assert lay.settings.images[1].acquisition_order == ("t", "c")


def test_unbounded_t_keeps_its_skip_period() -> None:
    seq = useq.MDASequence(
        channels=["DAPI", useq.Channel(config="FITC", acquire_every=2)],
        time_plan={"interval": 1, "loops": 2},
    )
    lay = camera_layout(_settings(seq, unbounded_t=True), [A, B])
    im = lay.settings.images[0]
    assert im.shape == (None, 4, 8, 8)
    assert im.skip_period == 2
    assert im.skipped == ((1, 2), (1, 3))


def test_different_shapes_make_images_of_a_collection() -> None:
    small = Camera("Camera-2", (4, 6), "uint8", pixel_size_um=0.5)
    seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 1, "loops": 2})
    lay = camera_layout(_settings(seq), [A, small])
    s = lay.settings
    assert lay.mode == "images"
    assert s.layout == "collection"
    assert s.dtype == "uint16"
    assert [(im.key, im.name, im.shape, im.coords) for im in s.images] == [
        ("0", "Camera-1", (2, 1, 8, 8), {"cam": 0}),
        ("1", "Camera-2", (2, 1, 4, 6), {"cam": 1}),
    ]
    assert [im.dim("x").scale for im in s.images] == [1.0, 0.5]
    assert [c.name for c in s.images[1].channels] == ["DAPI"]
    assert lay.index({"t": 1, "c": 0, "cam": 1}) == {"t": 1, "c": 0, "cam": 1}
    assert s.locate({"t": 1, "c": 0, "cam": 1}) == ("1", (1, 0))
    assert s.locate({"t": 1, "c": 0, "cam": 0}) == ("0", (1, 0))


def test_images_of_positions_are_adjacent_per_position() -> None:
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=0, y=0, name="left"), (5, 5, 0)],
        time_plan={"interval": 1, "loops": 2},
    )
    lay = camera_layout(_settings(seq), [A, B], "images")
    assert [(im.key, im.name, im.coords) for im in lay.settings.images] == [
        ("0", "left / Camera-1", {"p": 0, "cam": 0}),
        ("1", "left / Camera-2", {"p": 0, "cam": 1}),
        ("2", "p1 / Camera-1", {"p": 1, "cam": 0}),
        ("3", "p1 / Camera-2", {"p": 1, "cam": 1}),
    ]
    assert lay.settings.locate({"p": 1, "t": 1, "cam": 1}) == ("3", (1,))


def test_plate_fields_per_camera() -> None:
    plan = useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=([0, 0], [0, 1]),
        well_points_plan=useq.GridRowsColumns(
            rows=1, columns=2, fov_width=10, fov_height=10
        ),
    )
    seq = useq.MDASequence(stage_positions=plan, channels=["DAPI"])
    lay = camera_layout(_settings(seq), [A, B], "images")
    s = lay.settings
    assert s.layout == "plate"
    assert [(im.key, im.field, im.name) for im in s.images] == [
        ("A/1/0", 0, "A1_0000 / Camera-1"),
        ("A/1/1", 1, "A1_0000 / Camera-2"),
        ("A/1/2", 2, "A1_0001 / Camera-1"),
        ("A/1/3", 3, "A1_0001 / Camera-2"),
        ("A/2/0", 0, "A2_0000 / Camera-1"),
        ("A/2/1", 1, "A2_0000 / Camera-2"),
        ("A/2/2", 2, "A2_0001 / Camera-1"),
        ("A/2/3", 3, "A2_0001 / Camera-2"),
    ]
    assert s.locate({"p": 3, "c": 0, "cam": 1}) == ("A/2/3", (0,))


def test_one_camera_changes_nothing() -> None:
    settings = _settings(useq.MDASequence(channels=["DAPI"]))
    lay = camera_layout(settings, [A])
    assert lay.mode == "single"
    assert lay.settings is settings
    assert lay.index({"c": 0}) == {"c": 0}


def test_channels_need_one_shape() -> None:
    settings = _settings(useq.MDASequence(channels=["DAPI"]))
    with pytest.raises(mmzarr.PlanError, match=r"one frame shape for every camera"):
        camera_layout(settings, [A, Camera("Camera-2", (4, 8), "uint16")], "channels")


def test_channels_forced_with_two_dtypes_upcast() -> None:
    settings = _settings(useq.MDASequence(channels=["DAPI"]))
    narrow = Camera("Camera-2", (8, 8), "uint8")
    assert camera_layout(settings, [A, narrow]).mode == "images"  # auto
    lay = camera_layout(settings, [A, narrow], "channels")
    assert (lay.mode, lay.settings.dtype) == ("channels", "uint16")
    out = lay.frame(np.full((8, 8), 255, dtype="uint8"))
    assert out.dtype == np.uint16
    assert int(out.max()) == 255


@pytest.mark.parametrize(
    ("dtypes", "expected"),
    [
        (("uint16", "uint16"), "uint16"),
        (("uint8", "uint16"), "uint16"),
        (("uint16", "uint8", "uint8"), "uint16"),
        (("uint16", "int16"), "int32"),
        (("uint8", "uint32"), "uint32"),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else v,
)
def test_common_dtype(dtypes: tuple[str, ...], expected: str) -> None:
    assert common_dtype(dtypes) == expected


def test_common_dtype_refuses_what_no_dtype_holds() -> None:
    with pytest.raises(mmzarr.PlanError, match=r"uint64.*int64"):
        common_dtype(["uint64", "int64"])


def test_upcast_only_when_exact() -> None:
    img = np.array([[0, 200]], dtype="uint8")
    assert upcast(img, "uint16").dtype == np.uint16
    signed = np.array([[-1, 2]], dtype="int16")
    assert upcast(signed, "uint16") is signed  # not exact: left for the stream


def _info(label: str, shape: tuple[int, int], dtype: str, **kw: Any) -> dict[str, Any]:
    return {
        "camera_label": label,
        "plane_shape": shape,
        "dtype": dtype,
        "height": shape[0],
        "width": shape[1],
        "pixel_size_um": 0.5,
        **kw,
    }


def _adapter(label: str, props: dict[str, str]) -> dict[str, Any]:
    return {
        "label": label,
        "properties": [{"name": k, "value": v} for k, v in props.items()],
    }


def test_cameras_from_summary() -> None:
    # one camera selected, another loaded: the selected one only
    one = {
        "image_infos": [_info("Cam", (4, 6), "uint16"), _info("Other", (9, 9), "uint8")]
    }
    assert cameras_from_summary(one) == (Camera("Cam", (4, 6), "uint16", 0.5),)
    assert cameras_from_summary({}) == ()
    # Micro-Manager's Multi Camera: its defined Physical Camera N, in N order
    multi = {
        "image_infos": [
            _info("Multi", (4, 6), "uint0", num_camera_adapter_channels=2),
            _info("Right", (4, 6), "uint8"),
            _info("Left", (4, 6), "uint16"),
        ],
        "devices": [
            _adapter(
                "Multi",
                {
                    "Physical Camera 1": "Left",
                    "Physical Camera 2": "Undefined",
                    "Physical Camera 3": "Right",
                },
            )
        ],
    }
    assert cameras_from_summary(multi) == (
        Camera("Left", (4, 6), "uint16", 0.5),
        Camera("Right", (4, 6), "uint8", 0.5),
    )
    # no Physical Camera properties: the adapter's own format, numbered
    unnamed = {
        "image_infos": [_info("Multi", (4, 6), "uint16", num_camera_adapter_channels=2)]
    }
    assert [c.label for c in cameras_from_summary(unnamed)] == ["Multi 1", "Multi 2"]


# ---- a two-camera core -------------------------------------------------------------
class MultiCameraAdapter(DemoCamera):
    """A camera whose `Physical Camera N` properties name others (like MM's)."""

    def __init__(self, physical: list[str]) -> None:
        super().__init__()
        for k, label in enumerate(physical, 1):
            self.register_property(
                f"Physical Camera {k}", default_value=label, property_type=str
            )


class MultiCameraCore(UniMMCore):
    """A `UniMMCore` that snaps every physical camera of a multi-camera adapter.

    `getNumberOfCameraChannels()` (what `MDAEngine` asks) is the number of
    defined `Physical Camera N` properties of the selected camera, as for
    Micro-Manager's Multi Camera; `getImage(k)` returns camera `k`'s frame.
    pymmcore-plus' own `getPhysicalCameraDevice(k)` reads those properties.
    """

    _frames: tuple[np.ndarray, ...] = ()

    def physical_cameras(self) -> list[str]:
        cam, out, k = self.getCameraDevice(), [], 1
        while cam and self.hasProperty(cam, f"Physical Camera {k}"):
            if (label := self.getProperty(cam, f"Physical Camera {k}")) != "Undefined":
                out.append(str(label))
            k += 1
        return out

    def getNumberOfCameraChannels(self) -> int:
        return len(self.physical_cameras()) or super().getNumberOfCameraChannels()

    def _do_snap_image(self) -> None:
        physical = self.physical_cameras()
        if not physical:
            super()._do_snap_image()
            return
        adapter, frames = self.getCameraDevice(), []
        try:
            for label in physical:
                self.setCameraDevice(label)
                super()._do_snap_image()
                frames.append(super().getImage())
        finally:
            self.setCameraDevice(adapter)
        self._frames = tuple(frames)

    def getImage(self, numChannel: int | None = None, *, fix: bool = True) -> Any:
        if self.physical_cameras():
            return self._frames[numChannel or 0]
        return super().getImage(fix=fix)


def _two_camera_core(
    second: tuple[int, int] = (64, 96), second_bits: int = 12
) -> MultiCameraCore:
    """The demo rig plus `Camera-1` (64x96, uint16), `Camera-2` and the adapter."""
    core = MultiCameraCore(mm_path=str(DEMO_CONFIG.parent))  # no MM search
    core.loadSystemConfiguration(DEMO_CONFIG)
    cams = {"Camera-1": DemoCamera(), "Camera-2": DemoCamera()}
    adapter = MultiCameraAdapter(list(cams))
    for label, dev in (*cams.items(), ("Multi Camera", adapter)):
        core.loadPyDevice(label, dev)
        core.initializeDevice(label)
    for label, (h, w), bits in (
        ("Camera-1", (64, 96), 12),
        ("Camera-2", second, second_bits),
        ("Multi Camera", (64, 96), 12),
    ):
        core.setProperty(label, "SensorHeight", h)
        core.setProperty(label, "SensorWidth", w)
        core.setProperty(label, "BitDepth", bits)
    core.setCameraDevice("Multi Camera")
    core.definePixelSizeConfig(PIXEL_SIZE_PRESET)
    core.setPixelSizeUm(PIXEL_SIZE_PRESET, PIXEL_SIZE_UM)
    core.setPixelSizeConfig(PIXEL_SIZE_PRESET)
    core.setConfig("Channel", "DAPI")
    core.updateSystemStateCache()
    # frames are snapped one event at a time (the adapter above has no
    # hardware-sequenced mode)
    core.mda.engine.use_hardware_sequencing = False  # type: ignore[union-attr]
    return core


@pytest.fixture
def same_core() -> Iterator[MultiCameraCore]:
    """Two cameras of 64x96 uint16."""
    core = _two_camera_core()
    yield core
    release_core(core)


@pytest.fixture
def mixed_core() -> Iterator[MultiCameraCore]:
    """`Camera-1` 64x96 uint16, `Camera-2` 80x64 uint8."""
    core = _two_camera_core(second=(80, 64), second_bits=8)
    yield core
    release_core(core)


# ---- 2. MDAWriter fed pymmcore-plus' triples ---------------------------------------
SEQ = useq.MDASequence(
    channels=["DAPI", "FITC"],
    time_plan={"interval": 0.01, "loops": 2},
    axis_order="tpcz",
)


def _triples(
    core: MultiCameraCore, seq: useq.MDASequence
) -> Iterator[tuple[np.ndarray, useq.MDAEvent, dict[str, Any]]]:
    """What `MDAEngine.exec_single_event` hands the runner, per camera channel.

    Pixels are stamped: every pixel of frame `n` is `n + 1` (unique per frame,
    within uint8).
    """
    infos = {i["camera_label"]: i for i in summary_metadata(core)["image_infos"]}
    n = 0
    for event in seq:
        for cam in range(core.getNumberOfCameraChannels()):
            sub_event = event.model_copy(update={"index": {**event.index, "cam": cam}})
            label = core.getPhysicalCameraDevice(cam)
            meta = frame_metadata(
                core,
                runner_time_ms=float(n),
                camera_device=label,
                mda_event=sub_event,
                include_position=True,
            )
            info = infos[label]
            dtype: DTypeLike = info["dtype"]
            n += 1
            yield np.full(info["plane_shape"], n, dtype=dtype), sub_event, dict(meta)


def _feed(
    core: MultiCameraCore, path: Path, *, with_summary: bool = True, **kw: Any
) -> tuple[mmzarr.MDAWriter, list[Any]]:
    writer = mmzarr.MDAWriter(path, core=core, **kw)
    # what the engine's setup_sequence returns (get_summary_metadata)
    summary = core.mda.engine.get_summary_metadata(SEQ)
    frames = list(_triples(core, SEQ))
    writer.sequenceStarted(SEQ, dict(summary) if with_summary else None)
    for img, event, meta in frames:
        writer.frameReady(img, event, meta)
    writer.sequenceFinished(SEQ)
    writer.close()
    return writer, frames


def _assert_clean(writer: mmzarr.MDAWriter, path: Path, n_frames: int) -> None:
    assert writer.error is None
    assert writer.fallback_reason is None
    assert writer.unplaced is None
    assert writer.frames_written == n_frames
    assert group_json(path)["attributes"]["mmzarr"]["status"] == "complete"
    report = mmzarr.validate(path)
    assert report.ok, report.format()


def _channel_labels(path: Path, key: str = "") -> list[str]:
    attrs = group_json(path, key)["attributes"]["ome"]
    return [c["label"] for c in attrs["omero"]["channels"]]


#: (t, c, cam) of SEQ's frames -> (t, c) in the image (channel-major)
CHANNEL_PLACES = {
    (0, 0, 0): (0, 0),
    (0, 0, 1): (0, 1),
    (0, 1, 0): (0, 2),
    (0, 1, 1): (0, 3),
    (1, 0, 0): (1, 0),
    (1, 0, 1): (1, 1),
    (1, 1, 0): (1, 2),
    (1, 1, 1): (1, 3),
}
CHANNEL_LABELS = [
    "DAPI / Camera-1",
    "DAPI / Camera-2",
    "FITC / Camera-1",
    "FITC / Camera-2",
]


def test_writer_same_shapes_as_channels(
    same_core: MultiCameraCore, tmp_path: Path, backend: str
) -> None:
    out = tmp_path / "same.ome.zarr"
    writer, frames = _feed(same_core, out, backend=backend)
    _assert_clean(writer, out, 8)
    arr = read_zarr(out, "0")
    assert arr.shape == (2, 4, 64, 96)
    assert arr.dtype == np.uint16
    for img, event, _ in frames:
        t, c, cam = event.index["t"], event.index["c"], event.index["cam"]
        np.testing.assert_array_equal(arr[CHANNEL_PLACES[(t, c, cam)]], img)
    assert _channel_labels(out) == CHANNEL_LABELS
    records = [
        json.loads(line)
        for line in (out / "mmzarr" / "frames.jsonl").read_text().splitlines()
    ]
    assert [(r["metadata"]["cam"], r["metadata"]["camera_device"]) for r in records][
        :2
    ] == [(0, "Camera-1"), (1, "Camera-2")]


#: (t, c, cam) of SEQ's frames -> (image key, (t, c))
IMAGE_PLACES = {
    (0, 0, 0): ("0", (0, 0)),
    (0, 0, 1): ("1", (0, 0)),
    (0, 1, 0): ("0", (0, 1)),
    (0, 1, 1): ("1", (0, 1)),
    (1, 0, 0): ("0", (1, 0)),
    (1, 0, 1): ("1", (1, 0)),
    (1, 1, 0): ("0", (1, 1)),
    (1, 1, 1): ("1", (1, 1)),
}


def test_writer_different_shapes_as_images(
    mixed_core: MultiCameraCore, tmp_path: Path
) -> None:
    out = tmp_path / "mixed.ome.zarr"
    writer, frames = _feed(mixed_core, out)
    _assert_clean(writer, out, 8)
    assert "bioformats2raw.layout" in group_json(out)["attributes"]["ome"]
    arrays = {"0": read_zarr(out, "0/0"), "1": read_zarr(out, "1/0")}
    assert arrays["0"].shape == (2, 2, 64, 96)
    assert arrays["1"].shape == (2, 2, 80, 64)
    assert {a.dtype for a in arrays.values()} == {np.dtype("uint16")}  # widest
    for img, event, _ in frames:
        key, idx = IMAGE_PLACES[
            (event.index["t"], event.index["c"], event.index["cam"])
        ]
        np.testing.assert_array_equal(arrays[key][idx], img)  # upcast: same values
    names = [
        group_json(out, k)["attributes"]["ome"]["multiscales"][0]["name"] for k in "01"
    ]
    assert names == ["Camera-1", "Camera-2"]


def test_writer_images_forced_for_same_shapes(
    same_core: MultiCameraCore, tmp_path: Path
) -> None:
    out = tmp_path / "forced.ome.zarr"
    writer, frames = _feed(same_core, out, cameras="images")
    _assert_clean(writer, out, 8)
    arrays = {"0": read_zarr(out, "0/0"), "1": read_zarr(out, "1/0")}
    for img, event, _ in frames:
        key, idx = IMAGE_PLACES[
            (event.index["t"], event.index["c"], event.index["cam"])
        ]
        np.testing.assert_array_equal(arrays[key][idx], img)


def test_writer_without_summary_asks_the_core(
    same_core: MultiCameraCore, tmp_path: Path
) -> None:
    """An engine that sends no summary: the core's camera channels are used."""
    out = tmp_path / "nosummary.ome.zarr"
    writer, frames = _feed(same_core, out, with_summary=False)
    _assert_clean(writer, out, 8)
    arr = read_zarr(out, "0")
    for img, event, _ in frames:
        t, c, cam = event.index["t"], event.index["c"], event.index["cam"]
        np.testing.assert_array_equal(arr[CHANNEL_PLACES[(t, c, cam)]], img)
    assert _channel_labels(out) == CHANNEL_LABELS


def test_writer_refuses_an_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'both' is not one of"):
        mmzarr.MDAWriter(tmp_path / "x.ome.zarr", cameras="both")  # type: ignore[arg-type]


# ---- 3. end to end -----------------------------------------------------------------
def _run(
    core: MultiCameraCore, seq: useq.MDASequence, path: Path, **kw: Any
) -> tuple[mmzarr.MDAWriter, Capture]:
    cap = Capture(core)
    writer = mmzarr.MDAWriter(path, core=core, **kw)
    core.mda.run(seq, output=writer)
    writer.close()
    return writer, cap


def test_mda_two_cameras_as_channels_with_z_inside_c(
    same_core: MultiCameraCore, tmp_path: Path, backend: str
) -> None:
    """useq's default order acquires a z-stack per channel: camera 1's planes
    arrive ahead of their slot (acquire-zarr's reorder window is widened; a
    small `max_buffer_bytes` would otherwise overflow it)."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"],
        z_plan={"range": 4, "step": 1},
        time_plan={"interval": 0.01, "loops": 2},
    )
    out = tmp_path / "mda.ome.zarr"
    # window by default: a quarter of 96 KiB = 2 frames of 64x96 uint16 (12 KiB)
    writer, cap = _run(same_core, seq, out, backend=backend, max_buffer_bytes=96 * 1024)
    assert len(cap.frames) == 40
    _assert_clean(writer, out, 40)
    arr = read_zarr(out, "0")
    assert arr.shape == (2, 4, 5, 64, 96)
    assert _channel_labels(out) == CHANNEL_LABELS
    places = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}  # (c, cam) -> c
    for event, img in cap.frames:
        i = event.index
        c = places[(i["c"], i["cam"])]
        np.testing.assert_array_equal(arr[i["t"], c, i["z"]], img, err_msg=str(i))


def test_mda_two_cameras_of_different_shapes_as_images(
    mixed_core: MultiCameraCore, tmp_path: Path
) -> None:
    out = tmp_path / "mda-mixed.ome.zarr"
    writer, cap = _run(mixed_core, SEQ, out)
    assert [img.dtype for _, img in cap.frames[:2]] == [np.uint16, np.uint8]
    _assert_clean(writer, out, 8)
    arrays = {"0": read_zarr(out, "0/0"), "1": read_zarr(out, "1/0")}
    assert (arrays["0"].shape, arrays["1"].shape) == ((2, 2, 64, 96), (2, 2, 80, 64))
    for event, img in cap.frames:
        key, idx = IMAGE_PLACES[
            (event.index["t"], event.index["c"], event.index["cam"])
        ]
        np.testing.assert_array_equal(arrays[key][idx], img)


def test_mda_one_camera_of_several_loaded(tmp_path: Path) -> None:
    """Loaded cameras that are not camera channels do not matter (was refused)."""
    core = _two_camera_core()
    try:
        core.setCameraDevice("Camera-2")
        out = tmp_path / "one.ome.zarr"
        writer, _ = _run(core, SEQ, out)
        _assert_clean(writer, out, 4)
        assert read_zarr(out, "0").shape == (2, 2, 64, 96)
        assert _channel_labels(out) == ["DAPI", "FITC"]
    finally:
        release_core(core)


def test_mda_unmappable_plan_with_two_cameras_keeps_every_frame(
    mixed_core: MultiCameraCore, tmp_path: Path
) -> None:
    """The fallback layout takes camera 0's frames (in the run's uint16); camera
    1's, of another shape, go to the unplaced sibling as the camera gave them
    (uint8): nothing is cancelled."""
    from tests.test_fallback import REPEATS

    out = tmp_path / "fallback.ome.zarr"
    writer, cap = _run(mixed_core, REPEATS, out)
    assert writer.error is None
    assert writer.fallback_reason is not None
    assert writer.unplaced is not None
    assert len(cap.frames) == writer.frames_written == 12
    kept = read_zarr(out, "0")
    beside = read_zarr(tmp_path / "fallback.unplaced.ome.zarr", "0")
    assert (kept.shape, beside.shape) == ((6, 64, 96), (6, 80, 64))
    assert (kept.dtype, beside.dtype) == (np.uint16, np.uint8)
    by_cam = [[img for e, img in cap.frames if e.index["cam"] == k] for k in (0, 1)]
    np.testing.assert_array_equal(kept, np.stack(by_cam[0]))
    np.testing.assert_array_equal(beside, np.stack(by_cam[1]))
    for path in (out, tmp_path / "fallback.unplaced.ome.zarr"):
        report = mmzarr.validate(path)
        assert report.ok, report.format()


def _run_switching_objective(core: MultiCameraCore, out: Path) -> Capture:
    """Run `SEQ` to `out`, the pixel size going to 0.5 µm as t=1 starts; the
    frames acquired (all written, in the dataset or beside)."""
    preset = core.getCurrentPixelSizeConfig()

    def switch(event: useq.MDAEvent) -> None:
        if event.index.get("t") == 1 and event.index.get("c") == 0:
            core.setPixelSizeUm(preset, 0.5)

    core.mda.events.eventStarted.connect(switch)
    writer, cap = _run(core, SEQ, out)
    assert writer.frames_written == len(cap.frames) == 8
    return cap


def test_mda_two_cameras_frames_at_another_pixel_size_are_kept_beside(
    same_core: MultiCameraCore, tmp_path: Path
) -> None:
    """The objective changes at t=1 of a two-camera run: both cameras' frames
    of t=1 go to the sibling at their own 0.5 µm, not into the 1 µm dataset
    (with several cameras the change went unseen)."""
    cap = _run_switching_objective(same_core, tmp_path / "two.ome.zarr")
    beside = tmp_path / "two.unplaced.ome.zarr"
    ms = group_json(beside)["attributes"]["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] == [
        0.5,
        0.5,
    ]
    later = [img for e, img in cap.frames if e.index["t"] == 1]
    np.testing.assert_array_equal(read_zarr(beside, "0"), np.stack(later))


def test_mda_two_camera_images_frames_beside_keep_each_camera_s_dtype(
    mixed_core: MultiCameraCore, tmp_path: Path
) -> None:
    """The objective changes at t=1 of a run writing each camera as an image
    (uint16 and uint8 in a uint16 dataset): the uint8 camera's frames of t=1
    go beside as it gave them, uint8 (they were widened to uint16)."""
    cap = _run_switching_objective(mixed_core, tmp_path / "mixed.ome.zarr")
    for name, cam in (("mixed.unplaced", 0), ("mixed.unplaced-2", 1)):
        beside = read_zarr(tmp_path / f"{name}.ome.zarr", "0")
        later = [
            img for e, img in cap.frames if (e.index["t"], e.index["cam"]) == (1, cam)
        ]
        assert beside.dtype == later[0].dtype == (np.uint16, np.uint8)[cam]
        np.testing.assert_array_equal(beside, np.stack(later))


# ---- 5. Python cameras of other dtypes ---------------------------------------------
class _TypedCamera(DemoCamera):
    """The demo camera giving its frames as `dtype` (pymmcore-plus casts them)."""

    def __init__(self, dtype: str) -> None:
        super().__init__()
        self._dtype = np.dtype(dtype)

    def dtype(self) -> Any:
        return self._dtype


@pytest.mark.parametrize("dtype", ["int16", "float32", "int32"])
def test_a_python_camera_of_another_dtype_is_written_in_it(
    dtype: str, core: UniMMCore, tmp_path: Path
) -> None:
    """MMCore knows only bytes per pixel, and pymmcore-plus' summary calls 2
    bytes uint16: an int16 or float32 Python camera's frames all went to the
    sibling. The camera's own dtype is asked now."""
    core.unloadDevice("Camera")
    core.loadPyDevice("Camera", _TypedCamera(dtype))
    core.initializeDevice("Camera")
    core.setCameraDevice("Camera")
    core.setProperty("Camera", "SensorWidth", 96)
    core.setProperty("Camera", "SensorHeight", 64)
    seq = useq.MDASequence(channels=["DAPI", "FITC"], z_plan={"range": 2, "step": 1})
    assert mmzarr.AcquisitionSettings.from_useq(seq, core=core).dtype == dtype

    cap = Capture(core)
    out = tmp_path / "typed.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()

    assert not list(tmp_path.glob("*unplaced*"))
    data = read_zarr(out, "0")  # c, z, y, x
    assert data.dtype == np.dtype(dtype)
    assert data.shape == (2, 3, 64, 96)
    assert len(cap.frames) == len(list(seq)) == 6
    for event, img in cap.frames:
        assert img.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(data[event.index["c"], event.index["z"]], img)


# ---- 6. a slot the run went past without a frame, with several cameras -------------
FLAKY_SEQ = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 4}
)


def _snap_fails_once(
    core: MultiCameraCore, monkeypatch: pytest.MonkeyPatch, at: int = 3
) -> None:
    """The adapter's snap number `at` fails: no camera gives that event a frame
    (pymmcore-plus logs the failed snap and goes on)."""
    snap, snaps = core._do_snap_image, [0]

    def flaky() -> None:
        snaps[0] += 1
        if snaps[0] == at:
            raise RuntimeError("injected: snap failed")
        snap()

    monkeypatch.setattr(core, "_do_snap_image", flaky)


@pytest.mark.parametrize("rig", ["same_core", "mixed_core"])
def test_mda_two_cameras_a_failed_snap_holds_no_later_frame(
    rig: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
) -> None:
    """Event (t=1, c=0) gets no frame from either camera. Each camera's slot
    of it is given up at that camera's next frame: acquire-zarr held every
    later frame until close (10 of 14). As channels, camera 1's slot is given
    up one frame after camera 0's (each camera is followed on its own)."""
    from tests.test_mda import HeldCounter

    core: MultiCameraCore = request.getfixturevalue(rig)
    _snap_fails_once(core, monkeypatch)
    out = tmp_path / "flaky.ome.zarr"
    cap = Capture(core)
    writer = HeldCounter(out, core=core, backend=backend)
    core.mda.run(FLAKY_SEQ, output=writer)
    writer.close()
    assert len(cap.frames) == 14
    assert writer.held[-1] == 0
    assert max(writer.held) <= (1 if rig == "same_core" else 0)
    assert writer.unplaced is None
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "complete"
    if rig == "same_core":  # channels: c = plan c * 2 + cam
        assert attrs["images"][""]["missing"] == [[1, 0], [1, 1]]
        data = read_zarr(out, "0")
        for event, img in cap.frames:
            i = event.index
            np.testing.assert_array_equal(
                data[i["t"], i["c"] * 2 + i["cam"]], img, err_msg=str(i)
            )
        assert data[1, :2].max() == 0
    else:  # one image per camera
        assert {k: v["missing"] for k, v in attrs["images"].items()} == {
            "0": [[1, 0]],
            "1": [[1, 0]],
        }
        arrays = [read_zarr(out, "0/0"), read_zarr(out, "1/0")]
        for event, img in cap.frames:
            i = event.index
            np.testing.assert_array_equal(
                arrays[i["cam"]][i["t"], i["c"]], img, err_msg=str(i)
            )
        assert arrays[0][1, 0].max() == arrays[1][1, 0].max() == 0
    report = mmzarr.validate(out)
    assert report.ok, report.format()


def test_a_camera_whose_frames_come_late_loses_none_of_them(
    same_core: MultiCameraCore, tmp_path: Path, backend: str
) -> None:
    """Each camera's frames are followed on their own: camera 1's frame of an
    event that comes after camera 0's frame of the next event is still written
    in place (a give-up of every slot before the last frame in (event, camera)
    order would have given it up, and acquire-zarr refused it); camera 1's
    missing frame of event (t=1, c=0) is given up at its next frame."""
    out = tmp_path / "late.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=same_core, backend=backend)
    summary = same_core.mda.engine.get_summary_metadata(SEQ)  # type: ignore[union-attr]
    frames = list(_triples(same_core, SEQ))
    # (t, c, cam) in SEQ's order: (0,0,0) (0,0,1) (0,1,0) (0,1,1) (1,0,0) ...
    frames[1], frames[2] = frames[2], frames[1]  # camera 1 late for (0, 0)
    del frames[5]  # camera 1 never gives (1, 0)
    writer.sequenceStarted(SEQ, dict(summary))
    for img, event, meta in frames:
        writer.frameReady(img, event, meta)
    writer.sequenceFinished(SEQ)
    writer.close()
    assert writer.error is None
    assert writer.unplaced is None
    assert writer.frames_written == 7
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["images"][""]["missing"] == [[1, 1]]
    data = read_zarr(out, "0")
    for img, event, _ in frames:
        i = event.index
        np.testing.assert_array_equal(
            data[CHANNEL_PLACES[(i["t"], i["c"], i["cam"])]], img
        )


# ---- 4. cameras that change during the run -------------------------------------------
LABELS = ["Camera-1", "Camera-2"]


def _seen(core: MultiCameraCore) -> list[tuple[dict[str, int], str, np.ndarray]]:
    """Each frame as pymmcore-plus gives it: index, camera_device, pixels."""
    seen: list[tuple[dict[str, int], str, np.ndarray]] = []

    def keep(img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        seen.append((dict(event.index), str(meta["camera_device"]), img.copy()))

    core.mda.events.frameReady.connect(keep)
    return seen


def _at_t(core: MultiCameraCore, t: int, physical: list[str]) -> None:
    """Name the Multi Camera's physical cameras `physical` from time point `t`."""

    def change(event: useq.MDAEvent) -> None:
        if event.index.get("t") == t:
            for k, label in enumerate(physical, 1):
                core.setProperty("Multi Camera", f"Physical Camera {k}", label)

    core.mda.events.eventStarted.connect(change)


@pytest.mark.parametrize("mode", ["channels", "images"])
def test_mda_cameras_swapped_during_the_run_keep_their_places(
    same_core: MultiCameraCore, tmp_path: Path, mode: str, backend: str
) -> None:
    """pymmcore-plus' `cam` counts the cameras in the adapter's order at that
    moment: after a swap every frame went to the other camera's channel."""
    same_core.setProperty("Camera-2", "FrameCount", 1_000_000)  # frames differ
    seen = _seen(same_core)
    _at_t(same_core, 1, ["Camera-2", "Camera-1"])
    out = tmp_path / "swap.ome.zarr"
    writer, _ = _run(same_core, SEQ, out, cameras=mode, backend=backend)
    _assert_clean(writer, out, 8)
    assert any(LABELS.index(cam) != i["cam"] for i, cam, _ in seen)  # swapped
    for i, cam, img in seen:
        k = LABELS.index(cam)
        if mode == "channels":
            got = read_zarr(out, "0")[i["t"], i["c"] * 2 + k]
        else:
            got = read_zarr(out, f"{k}/0")[i["t"], i["c"]]
        np.testing.assert_array_equal(got, img, err_msg=f"{i} {cam}")


def test_mda_a_frame_of_no_named_camera_goes_beside(
    same_core: MultiCameraCore, tmp_path: Path, backend: str
) -> None:
    """Camera-1 turned off at t=1: pymmcore-plus then names Camera-2's frames
    'Undefined' with `cam` 0, and they were written as Camera-1's."""
    same_core.setProperty("Camera-2", "FrameCount", 1_000_000)
    seen = _seen(same_core)
    _at_t(same_core, 1, ["Undefined", "Camera-2"])
    out = tmp_path / "off.ome.zarr"
    writer, _ = _run(same_core, SEQ, out, cameras="channels", backend=backend)
    unnamed = [img for i, cam, img in seen if cam == "Undefined"]
    assert len(unnamed) == 2  # t=1, both channels
    arr = read_zarr(out, "0")
    for i, cam, img in seen:
        if cam != "Undefined":
            got = arr[i["t"], i["c"] * 2 + LABELS.index(cam)]
            np.testing.assert_array_equal(got, img)
    assert not arr[1].any()  # nothing of t=1 in any camera's channel
    assert writer.unplaced is not None
    assert writer.unplaced.frames_written == 2
    kept = read_zarr(Path(writer.unplaced_path), "0").reshape(-1, *unnamed[0].shape)
    for img in unnamed:
        assert any(np.array_equal(img, frame) for frame in kept)


def test_auto_takes_cameras_of_other_pixel_sizes_as_images(
    tmp_path: Path, backend: str
) -> None:
    """A binned camera with the same frame shape was a channel of camera 0's
    image, at camera 0's pixel size."""
    core = _two_camera_core(second=(128, 192))
    try:
        core.setProperty("Camera-2", "Binning", 2)  # 64x96 frames, 2x the pixel
        sizes = {
            i["camera_label"]: i["pixel_size_um"]
            for i in summary_metadata(core)["image_infos"]
        }
        assert sizes["Camera-2"] == 2 * sizes["Camera-1"]
        out = tmp_path / "binned.ome.zarr"
        writer, _ = _run(core, SEQ, out, backend=backend)
        _assert_clean(writer, out, 8)
        for k, label in enumerate(LABELS):
            ome = group_json(out, str(k))["attributes"]["ome"]
            scale = ome["multiscales"][0]["datasets"][0]["coordinateTransformations"]
            assert scale[0]["scale"][-2:] == [sizes[label]] * 2
    finally:
        release_core(core)
