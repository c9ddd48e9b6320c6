"""`mmzarr.pycromanager`: ZarrHook, events_from_useq, unicore_backend.

Unit tests drive `ZarrHook` with (image, metadata) pairs built by pycromanager's
own code (`pycro_image`), integration tests run a real `pycromanager.Acquisition`
on the demo rig through pycromanager's Python engine (`unicore_backend`).

Where the metadata keys come from (pycromanager 1.0.2, mmpycorex 0.3.16;
``P = pycromanager/acquisition``, ``E = P/acq_eng_py``):

* base tags of a snapped image: ``mmpycorex/launcher.py:34-52``
  (``get_tagged_image``, called at ``E/internal/engine.py:345-346``):
  ``Camera, Height, Width, PixelType (None), CameraChannelIndex``;
* base tags on the hardware-sequence path: the core's buffer metadata, every
  value a str (``launcher.py:28-32``, pymmcore-plus ``_unicore.py:1216-1251``);
* tags the engine adds (``E/main/acq_eng_metadata.py:57-97``, called at
  ``engine.py:394-396``): ``PixelSize_um`` (:17, :59), ``ElapsedTime-ms``
  (:36, :62), ``Time`` (:29, :63), ``Axes`` (:48, :66-70; names
  ``time/position/channel/z`` at :49-52), ``XPosition_um_Intended`` /
  ``YPosition_um_Intended`` (:19-20, :73-75), ``PositionName`` (:18, :76-77,
  only for a str position, ``acquisition_event.py:405-410``),
  ``ZPosition_um_Intended`` (:21, :79-83), ``Exposure`` (:26, :93; the
  event's or the core's, ``engine.py:307``);
* event dicts: ``P/acquisition_superclass.py:421-608``
  (``multi_d_acquisition_events``) and ``E/main/acquisition_event.py:139-213``
  (``event_from_json``: the accepted keys).
"""

from __future__ import annotations

import inspect
import json
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr.backends import get_backend
from mmzarr.demo import CLOCK_ROWS
from mmzarr.errors import PlanError, StorageError
from mmzarr.pycromanager import (
    TESTED_VERSIONS,
    ZarrHook,
    events_from_useq,
    unicore_backend,
)
from tests._faults import fail_on_write
from tests._readback import array_of, check_metadata, group_json, read_zarr

pytest.importorskip("pycromanager")

from pycromanager import Acquisition, multi_d_acquisition_events

if TYPE_CHECKING:
    from pymmcore_plus.experimental.unicore import UniMMCore

SHAPE = (6, 8)
JAVA_PORT = 4827  # pyjavaz.DEFAULT_BRIDGE_PORT


# ---- metadata exactly as pycromanager's Python engine builds it ----------------------
class _EngineCore:
    """The few core calls the metadata code makes (snake_case, as mmpycorex)."""

    def __init__(self, frame: np.ndarray, pixel_size: float) -> None:
        self.frame = frame
        self.pixel_size = pixel_size

    def get_image(self) -> np.ndarray:
        return self.frame

    def get_pixel_size_um(self) -> float:
        return self.pixel_size

    def get_focus_device(self) -> str:
        return "Z"


def pycro_image(
    event: dict[str, Any],
    frame: np.ndarray,
    *,
    pixel_size: float = 0.5,
    elapsed_ms: float = 0.0,
    core_exposure: float = 10.0,
    sequence_path: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(image, metadata) as the engine hands them to `image_process_fn`.

    The tags come from pycromanager's and mmpycorex's own functions: base tags
    from ``get_tagged_image`` (launcher.py:34-52) or, on the sequence path, the
    str-valued core buffer tags (_unicore.py:1216-1251); then
    ``AcqEngMetadata.add_image_metadata`` (acq_eng_metadata.py:57-97) with the
    exposure rule of engine.py:307.
    """
    from mmpycorex.launcher import get_tagged_image
    from pycromanager.acquisition.acq_eng_py.main.acq_eng_metadata import (
        AcqEngMetadata,
    )
    from pycromanager.acquisition.acq_eng_py.main.acquisition_event import (
        AcquisitionEvent,
    )

    core = _EngineCore(frame, pixel_size)
    h, w = frame.shape
    if sequence_path:
        tags: dict[str, Any] = {
            "Binning": "1",
            "Camera": "Camera",
            "Height": str(h),
            "Width": str(w),
            "ROI-X-start": "0",
            "ROI-Y-start": "0",
            "PixelType": "GRAY16",
            "TimeReceivedByCore": "2026-11-27 16:50:25.123456",
            "ImageNumber": "0",
        }
        pix = frame
    else:
        tagged = get_tagged_image(core, 0, "Camera", h, w)
        tags, pix = tagged.tags, tagged.pix
    ev = AcquisitionEvent.from_json(event, None)
    exposure = core_exposure if ev.get_exposure() is None else ev.get_exposure()
    AcqEngMetadata.add_image_metadata(core, tags, ev, elapsed_ms, exposure)
    return pix, tags


def frame_of(n: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A frame whose every pixel says which frame it is."""
    return np.full(shape, 100 + n, dtype="uint16")


def feed(
    hook: ZarrHook, events: list[dict[str, Any]], **kw: Any
) -> list[tuple[dict[str, Any], np.ndarray, Any]]:
    """Call the hook like the engine: one image per event, in order."""
    out = []
    for n, ev in enumerate(events):
        img, md = pycro_image(ev, frame_of(n), elapsed_ms=n * 10.0, **kw)
        out.append((ev, img, hook(img, md)))
    return out


def settings_of(path: Path) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.model_validate_json(
        (path / "mmzarr/settings.json").read_text()
    )


def test_metadata_helper_matches_the_observed_engine_metadata() -> None:
    # the first image of REPORT.md section 1 (observed on a real acquisition)
    observed_keys = {
        "Camera": str,
        "Height": int,
        "Width": int,
        "PixelType": type(None),
        "CameraChannelIndex": int,
        "PixelSize_um": float,
        "ElapsedTime-ms": float,
        "Time": str,
        "Axes": dict,
        "XPosition_um_Intended": float,
        "YPosition_um_Intended": float,
        "ZPosition_um_Intended": float,
        "Exposure": float,
    }
    ev = multi_d_acquisition_events(
        z_start=0, z_end=1, z_step=1, xy_positions=[[0, 0]], channel_group="Channel",
        channels=["DAPI"], num_time_points=1,
    )[0]  # fmt: skip
    _, md = pycro_image(ev, frame_of(0))
    assert {k: type(v) for k, v in md.items()} == observed_keys
    assert md["Axes"] == {"time": 0, "position": 0, "channel": "DAPI", "z": 0}
    assert md["Time"].endswith(" -")


# ---- ZarrHook unit tests -------------------------------------------------------------
def test_hook_is_a_two_argument_image_process_fn(tmp_path: Path) -> None:
    # pycromanager dispatches on the parameter count (acquisition_superclass.py:346-362)
    hook = ZarrHook(tmp_path / "a.ome.zarr")
    assert len(inspect.signature(hook).parameters) == 2
    hook.close()


def test_events_give_the_full_shape_at_the_first_image(tmp_path: Path) -> None:
    events = multi_d_acquisition_events(
        num_time_points=2,
        time_interval_s=0.5,
        z_start=0,
        z_end=2,
        z_step=1,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
        xy_positions=[[0, 0], [100, 50]],
    )
    out = tmp_path / "md.ome.zarr"
    hook = ZarrHook(out, events=events, keep_images=False)
    fed = []
    for n, ev in enumerate(events):
        img, md = pycro_image(ev, frame_of(n), elapsed_ms=n * 10.0)
        assert hook(img, md) is None  # keep_images=False: pycromanager drops it
        if n == 0:  # the whole dataset exists after the first image
            assert hook.settings is not None
            assert [im.shape for im in hook.settings.images] == [(2, 2, 3, *SHAPE)] * 2
        fed.append((ev, img))
    hook.close()
    assert hook.frames_written == len(events) == 24
    check_metadata(out)
    s = settings_of(out)
    assert s.layout == "collection"
    assert s.positions_inside_time  # order "tpcz"
    for key, (x, y) in (("0", (0, 0)), ("1", (100, 50))):
        im = s.image(key)
        assert [c.name for c in im.channels] == ["DAPI", "FITC"]
        assert [d.scale for d in im.dimensions] == [0.5, 1.0, 1.0, 0.5, 0.5]
        assert (im.stage_position.x, im.stage_position.y) == (x, y)
    for ev, img in fed:
        ax = ev["axes"]
        data = read_zarr(out, array_of(str(ax["position"])))
        c = ["DAPI", "FITC"].index(ax["channel"])
        np.testing.assert_array_equal(data[ax["time"], c, ax["z"]], img)
    log = [
        json.loads(x) for x in (out / "mmzarr/frames.jsonl").read_text().splitlines()
    ]
    assert log[0]["event_index"] == {"p": 0, "t": 0, "c": 0, "z": 0}
    assert log[0]["metadata"]["exposure_ms"] == 10.0
    assert log[0]["metadata"]["pycromanager"]["Axes"] == events[0]["axes"]


@pytest.mark.parametrize("times", [(3, 4, 5), (0, 2, 4)], ids=["from-3", "every-2"])
def test_time_points_not_from_0_give_the_t_scale(
    tmp_path: Path, times: tuple[int, ...]
) -> None:
    """The t scale is the seconds per time point between an image's first two
    time points, whatever their indices: events at t 3, 4, 5 (or 0, 2, 4) with
    start times 0.25 s per time point were given a t scale of 1 s (unknown)."""
    events = [{"axes": {"time": t}, "min_start_time": t * 0.25} for t in times]
    out = tmp_path / "late.ome.zarr"
    hook = ZarrHook(out, events=events)
    feed(hook, events)
    hook.close()
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert ms["axes"][0]["name"] == "t"
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[0] == 0.25
    data = read_zarr(out, array_of(""))
    for k, t in enumerate(times):
        np.testing.assert_array_equal(data[t], frame_of(k))


def test_keep_images_returns_the_image_and_metadata(tmp_path: Path) -> None:
    events = [{"axes": {"time": t}, "min_start_time": t * 0.1} for t in range(2)]
    hook = ZarrHook(tmp_path / "k.ome.zarr", events=events)
    img, md = pycro_image(events[0], frame_of(0))
    result = hook(img, md)
    assert result is not None
    assert result[0] is img
    assert result[1] is md
    hook.close()


def test_labels_and_settings_from_useq(tmp_path: Path) -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, name="left"),
            useq.Position(
                x=50,
                y=50,
                name="grid",
                sequence=useq.MDASequence(
                    grid_plan=useq.GridRowsColumns(
                        rows=1, columns=2, fov_width=4, fov_height=3
                    )
                ),
            ),
        ],
        channels=["DAPI", "Cy5"],
        z_plan=useq.ZRangeAround(range=1, step=1),
    )
    events = events_from_useq(seq)
    labels = list(dict.fromkeys(ev["axes"]["position"] for ev in events))
    assert labels == ["left", "grid_g0000", "grid_g0001"]
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "lab.ome.zarr"
    with ZarrHook(out, settings=settings, events=events) as hook:
        fed = feed(hook, events)
    assert hook.frames_written == len(list(seq))
    check_metadata(out)
    data = {k: read_zarr(out, array_of(k)) for k in settings.keys}
    for useq_event, (_, img, _) in zip(seq, fed, strict=True):
        key, idx = settings.locate(useq_event.index)
        np.testing.assert_array_equal(data[key][idx], img)
    # the same settings, with names only (no events): labels are image names
    out2 = tmp_path / "names.ome.zarr"
    with ZarrHook(out2, settings=settings) as hook2:
        feed(hook2, events)
    assert hook2.frames_written == len(events)
    for key in settings.keys:
        np.testing.assert_array_equal(read_zarr(out2, array_of(key)), data[key])


@pytest.mark.parametrize("by", ["label", "number"])
def test_settings_place_events_by_their_images_whatever_the_order(
    tmp_path: Path, by: str
) -> None:
    # with settings=, a position label is an image name and an int an image
    # number, also for events that visit the images in another order
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, name="A"),
            useq.Position(x=100, y=0, name="B"),
        ],
        channels=["DAPI"],
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    visits = ["B", "A"] if by == "label" else [1, 0]
    events = [{"axes": {"position": p, "channel": "DAPI"}} for p in visits]
    out = tmp_path / "order.ome.zarr"
    with ZarrHook(out, settings=settings, events=events) as hook:
        feed(hook, events)
    assert hook.unplaced is None
    np.testing.assert_array_equal(read_zarr(out, array_of("0"))[0], frame_of(1))
    np.testing.assert_array_equal(read_zarr(out, array_of("1"))[0], frame_of(0))


def test_sequence_path_string_metadata(tmp_path: Path) -> None:
    events = [{"axes": {"time": t}} for t in range(3)]  # interval 0: sequenced
    with pytest.warns(mmzarr.MMZarrWarning, match="time interval is unknown"):
        hook = ZarrHook(tmp_path / "seq.ome.zarr", events=events)
    fed = feed(hook, events, sequence_path=True)
    assert fed[0][2][1]["Height"] == "6"  # the engine hands str values here
    hook.close()
    data = read_zarr(tmp_path / "seq.ome.zarr", "0")
    assert data.shape == (3, *SHAPE)
    for t, (_, img, _) in enumerate(fed):
        np.testing.assert_array_equal(data[t], img)


def test_no_events_learns_the_first_time_point_and_grows_t(tmp_path: Path) -> None:
    events = multi_d_acquisition_events(
        num_time_points=4,
        time_interval_s=0.25,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
        z_start=0,
        z_end=1,
        z_step=1,
        xy_positions=[[0, 0], [10, 10]],
        position_labels=["A1", "B2"],
    )
    out = tmp_path / "learn.ome.zarr"
    hook = ZarrHook(out)
    fed = []
    for n, ev in enumerate(events):
        # 250 ms between time points, as ElapsedTime-ms reports it
        img, md = pycro_image(ev, frame_of(n), elapsed_ms=ev["axes"]["time"] * 250.0)
        hook(img, md)
        fed.append((ev, img))
        # nothing is written until the first image of the next time point
        assert hook.frames_written == (0 if n < 8 else n + 1)
    hook.close()
    check_metadata(out)
    s = settings_of(out)
    assert [im.name for im in s.images] == ["A1", "B2"]
    assert all(im.unbounded for im in s.images)
    assert s.image("0").dim("t").scale == 0.25
    for ev, img in fed:
        ax = ev["axes"]
        key = str(["A1", "B2"].index(ax["position"]))
        c = ["DAPI", "FITC"].index(ax["channel"])
        np.testing.assert_array_equal(
            read_zarr(out, array_of(key))[ax["time"], c, ax["z"]], img
        )
    assert read_zarr(out, "0/0").shape == (4, 2, 2, *SHAPE)


def test_no_events_learns_channel_exposures(tmp_path: Path) -> None:
    """Learn mode takes each channel's exposure from its first image's
    ``Exposure`` (the settings had none; `events=` had them)."""
    events = multi_d_acquisition_events(
        num_time_points=2,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
        channel_exposures_ms=[5.0, 20.0],
    )
    out = tmp_path / "exp.ome.zarr"
    with ZarrHook(out) as hook:
        feed(hook, events)
    channels = settings_of(out).images[0].channels
    assert [(c.config, c.exposure_ms) for c in channels] == [
        ("DAPI", 5.0),
        ("FITC", 20.0),
    ]


def test_no_events_time_points_under_a_millisecond_apart(tmp_path: Path) -> None:
    # a t scale measured from ElapsedTime-ms is never rounded to 0 (which
    # was written as 1 s, without the warning for an unknown interval)
    out = tmp_path / "fast.ome.zarr"
    with ZarrHook(out) as hook:
        for t in range(3):
            hook(*pycro_image({"axes": {"time": t}}, frame_of(t), elapsed_ms=t * 0.3))
    t_dim = settings_of(out).images[0].dimensions[0]
    assert (t_dim.name, t_dim.scale) == ("t", 0.0003)


def test_no_events_without_time_writes_at_close(tmp_path: Path) -> None:
    events = [{"axes": {"channel": ch}} for ch in ("DAPI", "FITC")]
    out = tmp_path / "ct.ome.zarr"
    with ZarrHook(out) as hook:
        feed(hook, events)
        assert hook.frames_written == 0
    assert hook.frames_written == 2
    assert read_zarr(out, "0").shape == (2, *SHAPE)


def _kept(root: Path) -> tuple[str, np.ndarray, list[dict[str, Any]]]:
    """A fallback dataset: its reason, its frames (zarr-python), its frame log."""
    reason = group_json(root)["attributes"]["mmzarr"]["fallback"]
    lines = (root / "mmzarr/frames.jsonl").read_text().splitlines()
    return reason, read_zarr(root, "0"), [json.loads(line) for line in lines]


def test_no_events_position_after_first_time_point_is_kept_beside(
    tmp_path: Path,
) -> None:
    # order "pt": position 1 appears only after all time points of position 0
    events = multi_d_acquisition_events(
        num_time_points=2,
        time_interval_s=0.1,
        xy_positions=[[0, 0], [5, 5]],
        order="pt",
    )
    out = tmp_path / "pt.ome.zarr"
    hook = ZarrHook(out)
    feed(hook, events)  # nothing raised: pycromanager goes on
    hook.close()
    assert hook.error is None
    assert hook.frames_written == 4
    data = read_zarr(out, "0")
    assert data.shape == (2, *SHAPE)  # position 0, learned from t=0
    assert [data[t, 0, 0] for t in range(2)] == [100, 101]
    reason, kept, log = _kept(tmp_path / "pt.unplaced.ome.zarr")
    assert hook.unplaced_path == str(tmp_path / "pt.unplaced.ome.zarr")
    assert "position 1" in reason
    assert "pass events=" in reason
    assert [int(kept[k, 0, 0]) for k in range(2)] == [102, 103]
    assert [r["metadata"]["pycromanager"]["Axes"] for r in log] == [
        {"position": 1, "time": 0},
        {"position": 1, "time": 1},
    ]


@pytest.mark.parametrize("mode", ["events", "learn", "given"])
def test_images_at_another_pixel_size_are_kept_beside(
    tmp_path: Path, mode: str
) -> None:
    """The objective changes from t=2 on (``PixelSize_um`` 0.5 -> 0.25): those
    images go to the sibling at their own scale, not into the dataset at the
    first images' (or the given) pixel size; the reason names the dataset's
    (it said "not 0.5 µm" of a dataset written at the given 0.3 µm)."""
    events = multi_d_acquisition_events(
        num_time_points=4,
        time_interval_s=0.1,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
    )
    out = tmp_path / "px.ome.zarr"
    kw: dict[str, Any] = {"events": events} if mode == "events" else {}
    if mode == "given":
        kw["pixel_size_um"] = 0.3
    hook = ZarrHook(out, **kw)
    for n, ev in enumerate(events):
        px = 0.5 if ev["axes"]["time"] < 2 else 0.25
        hook(*pycro_image(ev, frame_of(n), elapsed_ms=n * 10.0, pixel_size=px))
    hook.close()
    assert hook.frames_written == 8

    def scale(root: Path) -> list[float]:
        ms = group_json(root)["attributes"]["ome"]["multiscales"][0]
        return list(ms["datasets"][0]["coordinateTransformations"][0]["scale"])

    assert scale(out)[-2:] == ([0.3, 0.3] if mode == "given" else [0.5, 0.5])
    assert read_zarr(out, "0")[:2, :, 0, 0].tolist() == [[100, 101], [102, 103]]
    reason, kept, log = _kept(tmp_path / "px.unplaced.ome.zarr")
    if mode == "given":
        assert "pixel size 0.25 µm, not the run's 0.5 µm (" in reason
        assert reason.endswith("; the dataset is written at 0.3 µm)")
    else:
        assert "pixel size 0.25 µm, not 0.5 µm (the pixel size changed" in reason
    assert scale(tmp_path / "px.unplaced.ome.zarr")[-2:] == [0.25, 0.25]
    assert [int(kept[k, 0, 0]) for k in range(4)] == [104, 105, 106, 107]
    assert [r["metadata"]["pycromanager"]["Axes"]["time"] for r in log] == [2, 2, 3, 3]


def test_no_events_buffer_limit_keeps_every_image(tmp_path: Path) -> None:
    events = [{"axes": {"z": z}} for z in range(3)]
    out = tmp_path / "big.ome.zarr"
    hook = ZarrHook(out, max_buffer_bytes=150)
    feed(hook, events)
    hook.close()
    reason, kept, log = _kept(out)
    assert "max_buffer_bytes=150" in reason
    assert [int(kept[k, 0, 0]) for k in range(3)] == [100, 101, 102]
    assert [r["metadata"]["pycromanager"]["Axes"] for r in log] == [
        {"z": z} for z in range(3)
    ]


@pytest.mark.parametrize(
    "axes",
    [
        {"time": 0, "angle": 2},
        {"time": 0, "row": 0, "column": 1},  # pycromanager's tiling axes
        {"view": "left"},
    ],
    ids=["angle", "row-column", "view"],
)
def test_custom_axis_keeps_every_image_in_the_fallback(
    tmp_path: Path, axes: dict[str, Any]
) -> None:
    # Axes order is not stable (acquisition_event.py:271-272 returns a set)
    custom = "|".join(a for a in axes if a not in ("time", "position", "channel", "z"))
    events = [{"axes": {"time": 0}}, {"axes": axes}]
    # without events: the first image with the axis turns the dataset into a
    # fallback that keeps both images, never a dataset that silently lacks it
    out = tmp_path / "custom.ome.zarr"
    hook = ZarrHook(out)
    feed(hook, events)
    hook.close()
    reason, kept, log = _kept(out)
    assert re.search(f"cannot place the axis '({custom})'", reason)
    assert [int(kept[k, 0, 0]) for k in range(2)] == [100, 101]
    assert log[1]["metadata"]["pycromanager"]["Axes"] == axes
    # with events: refused before the acquisition starts
    with pytest.raises(PlanError, match=f"event 1: .*'({custom})'"):
        ZarrHook(tmp_path / "ev.ome.zarr", events=events)


@pytest.mark.parametrize(
    ("time", "key"),
    [((0, 1), "row"), ((0, 1), "col"), ((0, 0), "row"), ((0, 0), "col")],
    ids=["row", "col", "row-tiles", "col-tiles"],
)
def test_top_level_row_col_are_the_axes_pycromanager_runs(
    tmp_path: Path, time: tuple[int, int], key: str
) -> None:
    """pycromanager 1.0 moves an event's top-level `row`/`col` into its axes
    (`row`, `column`): the events are refused up front as those axes are. They
    were taken (every image then went beside the dataset) or, tiles of one
    time point, said to repeat event 0."""
    axis = {"row": "row", "col": "column"}[key]
    events = [{"axes": {"time": t}, key: k} for k, t in enumerate(time)]
    out = tmp_path / "tiles.ome.zarr"
    with pytest.raises(PlanError, match=f"event 0: .*cannot place the axis '{axis}'"):
        ZarrHook(out, events=events)
    assert not out.exists()


def test_custom_axis_with_settings_is_kept_beside(tmp_path: Path) -> None:
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=1, loops=3))
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "fail.ome.zarr"
    hook = ZarrHook(out, settings=settings)
    events = [{"axes": {"time": 0}}, {"axes": {"time": 1, "angle": 0}}]
    feed(hook, events)
    hook.close()
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "cancelled"  # 1 of 3 planned frames
    assert attrs["frames_written"] == 1
    reason, kept, _ = _kept(tmp_path / "fail.unplaced.ome.zarr")
    assert "'angle'" in reason
    assert int(kept[0, 0, 0]) == 101


def test_channel_index_axes_take_the_names_of_their_config_group(
    tmp_path: Path,
) -> None:
    # pycromanager's events may number the channel axis and select the preset
    # with 'config_group' ([group, preset]): the preset names the channel
    events = [
        {
            "axes": {"time": t, "channel": c},
            "config_group": ["Channel", name],
            "exposure": exposure,
            "min_start_time": t * 0.5,
        }
        for t in range(2)
        for c, (name, exposure) in enumerate([("DAPI", 10.0), ("FITC", 30.0)])
    ]
    out = tmp_path / "index.ome.zarr"
    hook = ZarrHook(out, events=events)
    feed(hook, events)
    hook.close()
    channels = settings_of(out).images[0].channels
    assert [(c.name, c.exposure_ms) for c in channels] == [
        ("DAPI", 10.0),
        ("FITC", 30.0),
    ]
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    logged = [json.loads(line)["metadata"]["channel"] for line in lines]
    assert logged == ["DAPI", "FITC", "DAPI", "FITC"]
    np.testing.assert_array_equal(read_zarr(out, array_of(""))[1, 1], frame_of(3))


def test_images_that_do_not_match_the_events_are_kept_beside(tmp_path: Path) -> None:
    events = multi_d_acquisition_events(
        channel_group="Channel", channels=["DAPI"], xy_positions=[[0, 0]]
    )
    cases = [
        ([{"axes": {"position": 0, "channel": "Cy5"}}], r"channel 'Cy5' is not a"),
        ([{"axes": {"position": 3, "channel": "DAPI"}}], r"position 3 is not one of"),
        (events + events, "already written"),
        # a slot of the dataset, but no event's axes: never guessed
        ([{"axes": {"position": 0, "channel": "DAPI", "z": 0}}], r"no event given"),
    ]
    for n, (images, why) in enumerate(cases):
        out = tmp_path / f"m{n}.ome.zarr"
        hook = ZarrHook(out, events=events, pixel_size_um=0.5)
        feed(hook, images)
        hook.close()
        reason, kept, _ = _kept(tmp_path / f"m{n}.unplaced.ome.zarr")
        assert re.search(why, reason), reason
        assert int(kept[0, 0, 0]) == 100 + len(images) - 1


def test_bad_events_are_refused_up_front(tmp_path: Path) -> None:
    p = tmp_path / "x.ome.zarr"
    with pytest.raises(PlanError, match="repeat those of event 0"):
        ZarrHook(p, events=[{"axes": {"time": 0}}, {"axes": {"time": 0}}])
    with pytest.raises(PlanError, match="not an iterator"):
        ZarrHook(p, events=iter([{"axes": {"time": 0}}]))
    with pytest.raises(PlanError, match="'axes' key"):
        ZarrHook(p, events=[{"time": 0}])
    with pytest.raises(PlanError, match="'time' must be an int"):
        ZarrHook(p, events=[{"axes": {"time": "0"}}])
    seq = useq.MDASequence(channels=["DAPI"])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=1
    )
    with pytest.raises(PlanError, match="event 0 does not fit the settings"):
        ZarrHook(p, settings=settings, events=[{"axes": {"channel": "FITC"}}])
    with pytest.raises(PlanError, match="unknown option"):
        ZarrHook(p, chunk={"t": 2})
    with pytest.raises(PlanError, match="only without settings"):
        ZarrHook(p, settings=settings, compression="blosc-zstd")
    assert not p.exists()
    p.mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ZarrHook(p)


def test_storage_error_is_kept_and_raised_again_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=1, loops=5))
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "disk.ome.zarr"
    hook = ZarrHook(out, settings=settings)
    assert hook.stream is not None
    backend_cls = type(get_backend(hook.backend))
    fail_on_write(monkeypatch, backend_cls, 3, "injected: disk on fire")
    events = [{"axes": {"time": t}} for t in range(5)]
    img, md = pycro_image(events[0], frame_of(0))
    hook(img, md)
    hook(*pycro_image(events[1], frame_of(1)))
    # raising makes pycromanager abort (acquisition_superclass.py:355-356)
    with pytest.raises(StorageError, match="disk on fire"):
        hook(*pycro_image(events[2], frame_of(2)))
    assert isinstance(hook.error, StorageError)
    # images already queued still arrive; they are ignored, not raised again
    assert hook(*pycro_image(events[3], frame_of(3))) is not None
    assert hook.frames_ignored == 1
    with pytest.raises(StorageError, match="disk on fire"):
        hook.close()
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "failed"
    assert attrs["frames_written"] == 2


class _Note:
    def __init__(self, milestone: Any) -> None:
        self.milestone = milestone


def test_notification_callback_closes_on_data_sink_finished(tmp_path: Path) -> None:
    events = [{"axes": {"time": t}, "min_start_time": t * 0.1} for t in range(2)]
    out = tmp_path / "n.ome.zarr"
    hook = ZarrHook(out, events=events)
    feed(hook, events)
    # milestones: acq_notification.py:9,36
    hook.notification_callback(_Note("acq_events_finished"))
    assert not hook.closed
    hook.notification_callback(_Note("data_sink_finished"))
    assert hook.closed
    assert hook.stream is not None
    assert hook.stream.closed
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    hook.notification_callback(object())  # anything: never raises
    hook.close()  # idempotent


def test_notification_callback_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [{"axes": {"time": t}, "min_start_time": t * 0.1} for t in range(2)]
    hook = ZarrHook(tmp_path / "nr.ome.zarr", events=events)
    feed(hook, events)
    assert hook.stream is not None

    def broken_close(status: Any = None) -> None:
        raise OSError("injected: close failed")

    monkeypatch.setattr(hook.stream, "close", broken_close)
    hook.notification_callback(_Note("data_sink_finished"))  # does not raise
    assert isinstance(hook.error, OSError)
    with pytest.raises(OSError, match="close failed"):
        hook.close()
    monkeypatch.undo()
    hook.stream.close()


# ---- events_from_useq ----------------------------------------------------------------
def test_events_from_useq_keys_and_types() -> None:
    from pycromanager.acquisition.acq_eng_py.main.acquisition_event import (
        AcquisitionEvent,
    )
    from pycromanager.acquisition.acquisition_superclass import _validate_acq_events

    seq = useq.MDASequence(
        stage_positions=[(10, 20, 3), (30, 40, 4)],
        time_plan=useq.TIntervalLoops(interval=1.5, loops=2),
        channels=[useq.Channel(config="DAPI", exposure=5), "FITC"],
        z_plan=useq.ZRangeAround(range=2, step=1),
        axis_order="tpczg",
    )
    events = events_from_useq(seq)
    assert len(events) == len(list(seq)) == 24
    _validate_acq_events(events)  # acquisition_superclass.py:374-415
    # keys event_from_json reads (a subset), and "mmzarr", which it ignores
    allowed = set(
        "axes min_start_time config_group exposure z x y properties mmzarr".split()
    )
    for ev, mda in zip(events, seq, strict=True):
        assert set(ev) <= allowed
        assert ev["mmzarr"]["index"] == {str(k): v for k, v in mda.index.items()}
        assert list(ev["axes"]) == ["time", "position", "channel", "z"]  # axis_order
        assert ev["axes"]["position"] == mda.index["p"]  # unnamed: image number
        assert ev["axes"]["channel"] == mda.channel.config
        assert ev["config_group"] == ["Channel", mda.channel.config]
        assert ev["min_start_time"] == mda.min_start_time  # seconds
        assert (ev["x"], ev["y"], ev["z"]) == (mda.x_pos, mda.y_pos, mda.z_pos)
        for v in (ev["x"], ev["y"], ev["z"], ev["min_start_time"]):
            assert type(v) is float  # plain Python numbers, no numpy scalars
        for k in ("time", "position", "z"):
            assert type(ev["axes"][k]) is int
        assert ev.get("exposure") == (5.0 if mda.channel.config == "DAPI" else None)
        converted = AcquisitionEvent.from_json(ev, None)
        assert converted.get_axis_positions() == ev["axes"]
        assert converted.get_config_preset() == mda.channel.config


def test_events_from_useq_grid_fields_are_distinct_positions() -> None:
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0)],
        grid_plan=useq.GridRowsColumns(rows=2, columns=1, fov_width=5, fov_height=5),
        channels=["DAPI"],
    )
    events = events_from_useq(seq)
    # one unnamed position with 2 fields: names Pos0_g0000, Pos0_g0001 (MDAWriter's)
    assert [e["axes"]["position"] for e in events] == ["Pos0_g0000", "Pos0_g0001"]
    assert events[0]["y"] != events[1]["y"]
    same_name = useq.MDASequence(
        stage_positions=[useq.Position(x=0, y=0, name="a")] * 2, channels=["DAPI"]
    )
    assert [e["axes"]["position"] for e in events_from_useq(same_name)] == [0, 1]


def test_events_from_useq_grid_uses_the_camera_fov(core: UniMMCore) -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(
                x=0,
                y=0,
                sequence=useq.MDASequence(
                    grid_plan=useq.GridRowsColumns(rows=1, columns=2)
                ),
            )
        ],
    )
    events = events_from_useq(seq, core=core)
    # pymmcore-plus' engine uses the camera's field of view for grids
    width = core.getImageWidth() * core.getPixelSizeUm()
    assert events[1]["x"] - events[0]["x"] == pytest.approx(width)


def test_events_from_useq_refuses_what_pycromanager_cannot_run() -> None:
    seq = useq.MDASequence(
        channels=["DAPI"],
        autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("c",)),
        stage_positions=[(0, 0, 0)],
    )
    with pytest.raises(mmzarr.PlanError, match="autofocus"):
        events_from_useq(seq)
    with pytest.raises(PlanError, match="both x and y"):
        events_from_useq(useq.MDASequence(stage_positions=[useq.Position(x=1)]))
    with pytest.raises(PlanError, match="useq rejected"):
        events_from_useq({"channels": 3})


def test_events_from_useq_carry_what_pycromanager_keys_cannot_say() -> None:
    from pycromanager.acquisition.acq_eng_py.main.acquisition_event import (
        AcquisitionEvent,
    )

    seq = useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well",
            a1_center_xy=(0, 0),
            selected_wells=([1], [2]),  # B3
            well_points_plan=useq.GridRowsColumns(
                rows=1, columns=2, fov_width=5, fov_height=5
            ),
        ),
        time_plan=useq.TIntervalLoops(interval=0.5, loops=2),
        channels=["DAPI"],
    )
    events = events_from_useq(seq)
    assert [e["mmzarr"]["image"] for e in events[:2]] == [
        {"name": f"B3_000{k}", "t_scale": 0.5, "plate_row": 1, "plate_col": 2,
         "field": k}
        for k in range(2)
    ]  # fmt: skip
    assert events[0]["mmzarr"]["plan"] == {
        "axis_order": "tpgcz",
        "positions_inside_time": True,
        "plate": {"name": "96-well", "rows": 8, "columns": 12},
    }
    assert events[0]["axes"] == {"time": 0, "position": "B3_0000", "channel": "DAPI"}
    # pycromanager's engine takes the events as they are ...
    converted = AcquisitionEvent.from_json(events[0], None)
    assert converted.get_axis_positions() == events[0]["axes"]
    # ... but an event with 'tags' fails in 1.0.2 (event_from_json calls the
    # missing AcquisitionEvent.setTags), so tags cannot carry these facts
    with pytest.raises(AttributeError, match="setTags"):
        AcquisitionEvent.from_json({**events[0], "tags": {"well": "B3"}}, None)


def test_a_config_of_two_groups_says_its_group(tmp_path: Path) -> None:
    """One config name in two config groups was labelled "DAPI", "DAPI (2)"."""
    seq = useq.MDASequence(
        channels=[
            useq.Channel(config="DAPI"),
            useq.Channel(config="DAPI", group="Other"),
            "FITC",
        ]
    )
    events = events_from_useq(seq)
    assert [e["config_group"] for e in events] == [
        ["Channel", "DAPI"],
        ["Other", "DAPI"],
        ["Channel", "FITC"],
    ]
    labels = ["DAPI (Channel)", "DAPI (Other)", "FITC"]
    assert [e["axes"]["channel"] for e in events] == labels
    out = tmp_path / "groups.ome.zarr"
    with ZarrHook(out, events=events) as hook:
        feed(hook, events)
    assert [c.name for c in settings_of(out).images[0].channels] == labels
    # a channel no event acquires is named by the plan's [config, exposure,
    # group] in the "mmzarr" entry (an entry without the group still reads)
    named = [["DAPI", None], ["DAPI", None, "Other"], ["FITC", None]]
    kept = [
        {**e, "mmzarr": {**e["mmzarr"], "image": {"channels": named}}}
        for e in events
        if e["config_group"][0] == "Channel"
    ]
    out2 = tmp_path / "named.ome.zarr"
    with ZarrHook(out2, events=kept) as hook2:
        feed(hook2, kept)
    channels = settings_of(out2).images[0].channels
    assert [c.name for c in channels] == labels


def test_hook_refuses_events_it_cannot_read(tmp_path: Path) -> None:
    events = events_from_useq(useq.MDASequence(time_plan={"interval": 1, "loops": 2}))
    p = tmp_path / "x.ome.zarr"
    with pytest.raises(PlanError, match="1 of 2 events have an 'mmzarr' entry"):
        ZarrHook(p, events=[events[0], {"axes": {"time": 1}}])
    bad = {**events[1], "mmzarr": {**events[1]["mmzarr"], "index": {"t": "1"}}}
    with pytest.raises(PlanError, match=r"event 1: its 'mmzarr' entry .*index 't'"):
        ZarrHook(p, events=[events[0], bad])
    assert not p.exists()


# ---- unicore_backend -----------------------------------------------------------------
def test_unicore_backend_checks_versions(
    core: UniMMCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "1.1.0" if name == "pycromanager" else real(name),
    )
    with (
        pytest.raises(RuntimeError, match=r"pycromanager==1\.0\.2.*found.*1\.1\.0"),
        unicore_backend(core),
    ):
        pass  # pragma: no cover


def test_unicore_backend_is_exclusive_and_cleans_up(core: UniMMCore) -> None:
    import mmpycorex.launcher as launcher
    from pycromanager.acquisition.acq_eng_py.internal.engine import Engine

    assert TESTED_VERSIONS == {
        "pycromanager": "1.0.2",
        "mmpycorex": "0.3.16",
    }
    with unicore_backend(core) as proxy:
        assert launcher.is_pymmcore_active()
        assert proxy.get_pixel_size_um() == core.getPixelSizeUm()
        with (
            pytest.raises(RuntimeError, match="backend is active"),
            unicore_backend(core),
        ):
            pass  # pragma: no cover
    assert not launcher.is_pymmcore_active()
    assert Engine.get_instance() is None


# ---- real pycromanager acquisitions on the demo rig ----------------------------------
class Capture:
    """What the engine delivered, independent of the hook under test."""

    def __init__(self) -> None:
        self.images: list[tuple[dict[str, Any], np.ndarray]] = []
        self.milestones: list[str] = []

    def wrap(self, hook: ZarrHook) -> Any:
        def image_process_fn(image: np.ndarray, metadata: dict[str, Any]) -> Any:
            self.images.append((json.loads(json.dumps(metadata)), image.copy()))
            return hook(image, metadata)

        return image_process_fn

    def notes(self, hook: ZarrHook) -> Any:
        def notification_callback_fn(notification: Any) -> None:
            self.milestones.append(str(notification.milestone))
            hook.notification_callback(notification)

        return notification_callback_fn


def run_pycro(
    core: UniMMCore, hook: ZarrHook, events: list[dict[str, Any]]
) -> tuple[Capture, Any]:
    cap = Capture()
    with (
        unicore_backend(core),
        Acquisition(
            image_process_fn=cap.wrap(hook),
            notification_callback_fn=cap.notes(hook),
        ) as acq,
    ):
        acq.acquire(events)
    return cap, acq.get_dataset()


def test_acquisition_with_events(core: UniMMCore, tmp_path: Path) -> None:
    events = multi_d_acquisition_events(
        num_time_points=2,
        time_interval_s=0.05,
        z_start=-1,
        z_end=1,
        z_step=1,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
        xy_positions=[[0, 0], [64, 32]],
        position_labels=["left", "right"],
    )
    out = tmp_path / "acq.ome.zarr"
    hook = ZarrHook(out, events=events)
    cap, dataset = run_pycro(core, hook, events)
    # the engine swallows some errors: count the images (REPORT.md section 3)
    assert len(cap.images) == hook.frames_written == len(events) == 24
    assert hook.closed  # by data_sink_finished, before leaving the `with`
    assert cap.milestones[-1] == "data_sink_finished"
    hook.close()
    assert dataset.axes["position"] == {"left", "right"}  # keep_images=True
    check_metadata(out)
    s = settings_of(out)
    assert [im.name for im in s.images] == ["left", "right"]
    assert s.image("1").stage_position.x == 64
    for md, img in cap.images:
        ax = md["Axes"]
        key = "01"[["left", "right"].index(ax["position"])]
        c = ["DAPI", "FITC"].index(ax["channel"])
        np.testing.assert_array_equal(
            read_zarr(out, array_of(key))[ax["time"], c, ax["z"]], img
        )
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


def test_acquisition_with_events_written_by_hand(
    core: UniMMCore, tmp_path: Path
) -> None:
    # event dicts in the style of pycromanager's guide "Custom Acquisition
    # Events" (docs/source/acq_events.rst): 'axes' names the image, 'z' is the
    # z position in µm from np.arange, 'config_group' selects the preset and the
    # 'channel' axis names it; 'x'/'y' with a 'position' axis and
    # 'min_start_time' as multi_d_acquisition_events makes them
    sites = [("left", 0.0, 0.0), ("right", 64.0, 32.0)]
    events = [
        {
            "axes": {"time": t, "position": label, "channel": ch, "z": index},
            "x": x,
            "y": y,
            "z": z_um,
            "config_group": ["Channel", ch],
            "min_start_time": t * 0.05,
        }
        for t in range(2)
        for label, x, y in sites
        for ch in ("DAPI", "FITC")
        for index, z_um in enumerate(np.arange(start=0, stop=1.5, step=0.5))
    ]
    out = tmp_path / "byhand.ome.zarr"
    hook = ZarrHook(out, events=events, keep_images=False)
    cap, _ = run_pycro(core, hook, events)
    hook.close()
    assert len(cap.images) == hook.frames_written == len(events) == 24
    assert hook.unplaced is None
    check_metadata(out)
    s = settings_of(out)
    assert s.layout == "collection"
    assert [im.name for im in s.images] == ["left", "right"]
    px = core.getPixelSizeUm()
    for im, (_, x, y) in zip(s.images, sites, strict=True):
        assert im.shape[:3] == (2, 2, 3)
        assert [c.name for c in im.channels] == ["DAPI", "FITC"]
        assert [d.scale for d in im.dimensions] == [0.05, 1.0, 0.5, px, px]
        assert (im.stage_position.x, im.stage_position.y) == (x, y)
        assert im.stage_position.z == 0.0
    for md, img in cap.images:
        ax = md["Axes"]
        key = "01"[["left", "right"].index(ax["position"])]
        c = ["DAPI", "FITC"].index(ax["channel"])
        np.testing.assert_array_equal(
            read_zarr(out, array_of(key))[ax["time"], c, ax["z"]], img
        )


def test_acquisition_on_the_sequence_path(core: UniMMCore, tmp_path: Path) -> None:
    events = multi_d_acquisition_events(num_time_points=4)  # interval 0: merged
    out = tmp_path / "seq.ome.zarr"
    with pytest.warns(mmzarr.MMZarrWarning, match="time interval"):
        hook = ZarrHook(out, events=events, keep_images=False)
    cap, dataset = run_pycro(core, hook, events)
    hook.close()
    assert len(cap.images) == hook.frames_written == 4
    assert [md["ImageNumber"] for md, _ in cap.images] == ["0", "1", "2", "3"]
    assert dataset.axes == {}  # keep_images=False: pycromanager kept nothing
    data = read_zarr(out, "0")
    for md, img in cap.images:
        np.testing.assert_array_equal(data[md["Axes"]["time"]], img)


def test_acquisition_without_events_grows_t(core: UniMMCore, tmp_path: Path) -> None:
    events = multi_d_acquisition_events(
        num_time_points=3,
        time_interval_s=0.1,
        channel_group="Channel",
        channels=["DAPI", "Cy5"],
        z_start=0,
        z_end=1,
        z_step=1,
    )
    out = tmp_path / "grow.ome.zarr"
    with ZarrHook(out, keep_images=False) as hook:
        cap, _ = run_pycro(core, hook, events)
    assert len(cap.images) == hook.frames_written == 12
    check_metadata(out)
    s = settings_of(out)
    assert s.images[0].unbounded
    # t scale: ElapsedTime-ms between the same (c, z) at t=0 and t=1
    first = {md["Axes"]["time"]: md["ElapsedTime-ms"] for md, _ in cap.images[::-1]}
    assert s.images[0].dim("t").scale == round((first[1] - first[0]) / 1000, 3)
    assert s.images[0].dim("t").scale >= 0.1
    data = read_zarr(out, "0")
    assert data.shape[:3] == (3, 2, 2)
    for md, img in cap.images:
        ax = md["Axes"]
        c = ["DAPI", "Cy5"].index(ax["channel"])
        np.testing.assert_array_equal(data[ax["time"], c, ax["z"]], img)


def test_acquisition_with_a_custom_axis_keeps_every_image(
    core: UniMMCore, tmp_path: Path
) -> None:
    events = [{"axes": {"time": t, "angle": a}} for t in range(3) for a in range(2)]
    out = tmp_path / "angle.ome.zarr"
    hook = ZarrHook(out)
    run_pycro(core, hook, events)
    hook.close()
    assert hook.error is None
    assert hook.frames_written == 6
    reason, kept, log = _kept(out)
    assert "'angle'" in reason
    assert kept.shape[0] == 6
    assert sorted(
        (
            r["metadata"]["pycromanager"]["Axes"]["time"],
            r["metadata"]["pycromanager"]["Axes"]["angle"],
        )
        for r in log
    ) == [(t, a) for t in range(3) for a in range(2)]


# ---- the same plan through Pycro-Manager and through pymmcore-plus -------------------
PARITY = {
    "positions-tcz": useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, z=0, name="a"),
            useq.Position(x=96, y=-40, z=1, name="b"),
        ],
        time_plan=useq.TIntervalLoops(interval=0.02, loops=2),
        channels=["DAPI", useq.Channel(config="FITC", exposure=20)],
        z_plan=useq.ZRangeAround(range=2, step=1),
    ),
    "grid-subsequence": useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, z=0, name="a"),
            useq.Position(
                x=300,
                y=-200,
                z=1,
                sequence=useq.MDASequence(
                    grid_plan=useq.GridRowsColumns(rows=1, columns=2),
                    z_plan=useq.ZRangeAround(range=2, step=2),
                ),
            ),
        ],
        channels=["DAPI", "Cy5"],
        z_plan=useq.ZRangeAround(range=1, step=1),
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
        axis_order="pgczt",  # positions outside time
    ),
    # issue #17: a plate with fields, ragged sub-sequences, a grid
    "plate-fields": useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well",
            a1_center_xy=(0, 0),
            selected_wells=([0, 1], [0, 2]),  # A1, B3
            well_points_plan=useq.GridRowsColumns(
                rows=1, columns=2, fov_width=100, fov_height=100
            ),
        ),
        channels=["DAPI", "FITC"],
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
    ),
    "three-positions-sub-sequences": useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, z=0, name="plain"),
            useq.Position(
                x=100,
                y=0,
                z=0,
                name="own-z",
                sequence=useq.MDASequence(z_plan=useq.ZRangeAround(range=2, step=1)),
            ),
            useq.Position(
                x=200,
                y=0,
                z=0,
                name="own-channels",
                sequence=useq.MDASequence(channels=["DAPI", "FITC", "Cy5"]),
            ),
        ],
        channels=["DAPI"],
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
    ),
    "grid": useq.MDASequence(
        stage_positions=[useq.Position(x=0, y=0, z=0)],
        grid_plan=useq.GridRowsColumns(rows=2, columns=2),
        channels=["DAPI", useq.Channel(config="DAPI", exposure=20)],
        z_plan=useq.ZRangeAround(range=1, step=1),
    ),
}


def _documents(root: Path) -> dict[str, Any]:
    docs = {
        str(p.relative_to(root)): json.loads(p.read_text())
        for p in root.rglob("zarr.json")
    }
    docs["settings"] = json.loads((root / "mmzarr/settings.json").read_text())
    return docs


def _ome_xml(root: Path) -> Any:
    """The OME-XML companion (collections), timestamps (Plane DeltaT) aside.

    Also aside: what pymmcore-plus' summary metadata adds (the instrument and
    the acquisition date); pycromanager gives an `image_process_fn` none.
    """
    from ome_types import from_xml

    path = root / "OME/METADATA.ome.xml"
    if not path.exists():
        return None
    ome = from_xml(path.read_text())
    ome.instruments = []
    for image in ome.images:
        image.acquisition_date = None
        image.instrument_ref = None
        image.objective_settings = None
        for plane in image.pixels.planes:
            plane.delta_t = None
        for channel in image.pixels.channels:
            channel.detector_settings = None
    return ome.model_dump()


def _frame_log(root: Path) -> list[dict[str, Any]]:
    """Each record's writer keys and the metadata both front ends log alike."""
    shared = {"frame", "image", "index", "event_index"}
    alike = {"exposure_ms", "camera_device", "pixel_size_um", "channel", "stage"}
    out = []
    for line in (root / "mmzarr/frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        meta = rec.get("metadata", {})
        out.append(
            {k: v for k, v in rec.items() if k in shared}
            | {k: v for k, v in meta.items() if k in alike}
        )
    return out


@pytest.mark.parametrize("name", list(PARITY))
@pytest.mark.parametrize("with_settings", [False, True], ids=["events", "settings"])
def test_same_plan_same_dataset_as_mdawriter(
    core: UniMMCore, tmp_path: Path, name: str, with_settings: bool
) -> None:
    seq = PARITY[name]
    exposure = core.getExposure()
    ref = tmp_path / "mda.ome.zarr"
    writer = mmzarr.MDAWriter(ref, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    core.setExposure(exposure)  # the plan changes it; start both runs alike

    events = events_from_useq(seq, core=core)
    out = tmp_path / "pycro.ome.zarr"
    settings = (
        mmzarr.AcquisitionSettings.from_useq(seq, core=core) if with_settings else None
    )
    hook = ZarrHook(out, events=events, settings=settings)
    cap, _ = run_pycro(core, hook, events)
    hook.close()
    assert len(cap.images) == hook.frames_written == writer.frames_written

    want, got = _documents(ref), _documents(out)
    want_log, got_log = _frame_log(ref), _frame_log(out)
    assert got == want
    assert got_log == want_log
    assert _ome_xml(out) == _ome_xml(ref)
    assert _ome_xml(ref) is not None
    # every plane shows the same sample (rows below the frame-counter band)
    a, b = settings_of(ref), settings_of(out)
    for key in a.keys:
        ref_data = read_zarr(ref, array_of(key))
        np.testing.assert_array_equal(
            read_zarr(out, array_of(b.image(key).key))[..., CLOCK_ROWS:, :],
            ref_data[..., CLOCK_ROWS:, :],
        )


# ---- Java Micro-Manager (skipped without it) -----------------------------------------
def _java_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", JAVA_PORT), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.skipif(
    not _java_running(), reason=f"no Java Micro-Manager on port {JAVA_PORT}"
)
def test_java_backend_acquisition(tmp_path: Path) -> None:  # pragma: no cover
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan=useq.TIntervalLoops(interval=0.1, loops=2)
    )
    events = events_from_useq(seq)
    out = tmp_path / "java.ome.zarr"
    with ZarrHook(out, events=events, keep_images=False) as hook:
        cap = Capture()
        with Acquisition(
            image_process_fn=cap.wrap(hook), notification_callback_fn=cap.notes(hook)
        ) as acq:
            acq.acquire(events)
    assert len(cap.images) == hook.frames_written == 4
    check_metadata(out)


def test_image_after_close_is_returned_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An image that comes after `close` is not written: the hook says so and
    hands it back for pycromanager to keep, even with keep_images=False."""
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=1, loops=2))
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    hook = ZarrHook(tmp_path / "late.ome.zarr", settings=settings, keep_images=False)
    events = [{"axes": {"time": t}} for t in range(2)]
    assert hook(*pycro_image(events[0], frame_of(0))) is None
    hook.close()
    img, md = pycro_image(events[1], frame_of(1))
    with caplog.at_level("WARNING", logger="mmzarr"):
        returned = hook(img, md)
    assert returned is not None
    np.testing.assert_array_equal(returned[0], img)
    assert hook.frames_ignored == 1
    assert "after" in caplog.text
    assert "not written" in caplog.text


@pytest.mark.parametrize("mode", ["events", "learn"])
def test_big_endian_images_are_written_exactly(tmp_path: Path, mode: str) -> None:
    """A ``>u2`` image (some cameras and bridges give one) is the dataset's
    uint16 in another byte order: written with every value kept, in the
    dataset (the hook raised, and pycromanager aborted the acquisition)."""
    events = [{"axes": {"time": t}, "min_start_time": t * 0.5} for t in range(3)]
    out = tmp_path / "be.ome.zarr"
    hook = ZarrHook(out, events=events if mode == "events" else None)
    rng = np.random.default_rng(5)
    sent = [rng.integers(0, 65536, SHAPE).astype(">u2") for _ in events]
    for n, (ev, img) in enumerate(zip(events, sent, strict=True)):
        _, md = pycro_image(ev, frame_of(n), elapsed_ms=n * 500.0)
        assert hook(img, md) is not None
    hook.close()
    assert hook.error is None
    assert hook.frames_ignored == 0
    assert not Path(hook.unplaced_path).exists()
    data = read_zarr(out, "0")
    assert data.dtype == np.dtype("uint16")
    assert data.shape == (3, *SHAPE)
    for t, img in enumerate(sent):
        assert data[t].tolist() == img.tolist()  # values, whatever the byte order


@pytest.mark.parametrize(
    ("odd", "said"),
    [
        (np.full(SHAPE, 1 + 2j, "complex64"), r"dtype complex64 and shape \(6, 8\)"),
        (np.zeros((0, 8), "uint16"), r"dtype uint16 and shape \(0, 8\)"),
        (np.full(SHAPE, "a", "<U1"), r"dtype <U1 and shape \(6, 8\)"),
        (np.zeros((3, 0, 8), "uint16"), r"dtype uint16 and shape \(3, 0, 8\)"),
    ],
    ids=["complex64", "empty", "str", "empty-3d"],
)
@pytest.mark.parametrize("mode", ["events", "learn", "settings", "fallback"])
def test_images_no_dataset_can_store_are_returned_not_written(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    odd: np.ndarray,
    said: str,
) -> None:
    """An image of a dtype OME-Zarr cannot store, or without pixels, is not
    written: counted in frames_ignored, said with its dtype and shape, and
    handed back to pycromanager (even with keep_images=False); the run goes on
    (the hook raised a ValidationError that named neither, which aborted the
    acquisition)."""
    events = [{"axes": {"time": t}, "min_start_time": t * 0.5} for t in range(3)]
    out = tmp_path / "odd.ome.zarr"
    kwargs: dict[str, Any] = {"keep_images": False}
    if mode == "events":
        kwargs["events"] = events
    elif mode == "settings":
        seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0.5, loops=3))
        kwargs["settings"] = mmzarr.AcquisitionSettings.from_useq(
            seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
        )
    elif mode == "fallback":  # Axes mmzarr cannot place: arrival order
        events = [{"axes": {"time": t, "angle": 0}} for t in range(3)]
    hook = ZarrHook(out, **kwargs)
    images = [frame_of(0), odd, frame_of(2)]
    with caplog.at_level("WARNING", logger="mmzarr"):
        for n, (ev, img) in enumerate(zip(events, images, strict=True)):
            _, md = pycro_image(ev, frame_of(n), elapsed_ms=n * 500.0)
            returned = hook(img, md)
            if n == 1:
                assert returned is not None
                assert returned[0] is img
                assert returned[1] is md
            else:
                assert returned is None
        hook.close()
    assert hook.error is None
    assert hook.frames_ignored == 1
    assert hook.frames_written == 2
    assert re.search(said, caplog.text), caplog.text
    assert "not written" in caplog.text
    assert not Path(hook.unplaced_path).exists()
    data = read_zarr(out, "0")
    if mode == "fallback":  # the two stored images, in arrival order
        assert data.shape == (2, *SHAPE)
        np.testing.assert_array_equal(data[0], images[0])
        np.testing.assert_array_equal(data[1], images[2])
    else:
        assert data.shape == (3, *SHAPE)
        np.testing.assert_array_equal(data[0], images[0])
        assert not data[1].any()  # never written: the fill value
        np.testing.assert_array_equal(data[2], images[2])


def test_an_image_after_close_is_said_after_an_image_not_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = [{"axes": {"time": t}} for t in range(2)]
    hook = ZarrHook(tmp_path / "late.ome.zarr", pixel_size_um=0.5)
    hook(np.zeros((0, 8), "uint16"), pycro_image(events[0], frame_of(0))[1])
    hook(*pycro_image(events[0], frame_of(0)))
    hook.close()
    with caplog.at_level("WARNING", logger="mmzarr"):
        assert hook(*pycro_image(events[1], frame_of(1))) is not None
    assert hook.frames_ignored == 2
    assert "arrived after" in caplog.text


@pytest.mark.parametrize(
    ("axes", "in_dataset", "beside", "lacking"),
    [
        pytest.param(
            [{"z": 0}, {"time": 0}, {"time": 1}, {"time": 2}],
            {1: (0,), 2: (1,), 3: (2,)},
            [0],
            "time",
            id="snap-before-time-series",
        ),
        pytest.param(
            [{"time": 0}, {"time": 1}, {}, {"time": 2}],
            {0: (0,), 1: (1,), 3: (2,)},
            [2],
            "time",
            id="snap-inside-time-series",
        ),
        pytest.param(
            [
                {"time": 0, "z": 0},
                {"time": 0, "z": 1},
                {"time": 1},
                {"time": 1, "z": 0},
                {"time": 1, "z": 1},
            ],
            {0: (0, 0), 1: (0, 1), 3: (1, 0), 4: (1, 1)},
            [2],
            "z",
            id="no-z-in-a-z-stack",
        ),
    ],
)
def test_no_events_image_lacking_an_axis_is_kept_beside(
    tmp_path: Path,
    axes: list[dict[str, int]],
    in_dataset: dict[int, tuple[int, ...]],
    beside: list[int],
    lacking: str,
) -> None:
    """Learn mode: an image whose Axes lack an axis the dataset has several
    indices of (a reference snap without ``time``) is kept beside, with the
    reason; it never takes index 0, where another image belongs (it took t=0,
    and the t=0 image went beside as 'already written')."""
    out = tmp_path / "snap.ome.zarr"
    hook = ZarrHook(out)
    sent = []
    for n, ax in enumerate(axes):
        img, md = pycro_image({"axes": ax}, frame_of(n), elapsed_ms=n * 100.0)
        hook(img, md)
        sent.append(img)
    hook.close()
    assert hook.error is None
    assert hook.frames_written == len(axes)
    data = read_zarr(out, "0")
    assert data.shape[0] == 1 + max(idx[0] for idx in in_dataset.values())
    for n, idx in in_dataset.items():
        np.testing.assert_array_equal(data[idx], sent[n], err_msg=f"image {n}")
    reason, kept, log = _kept(tmp_path / "snap.unplaced.ome.zarr")
    assert f"have no ['{lacking}']" in reason
    assert [r["metadata"]["pycromanager"]["Axes"] for r in log] == [
        axes[n] for n in beside
    ]
    for k, n in enumerate(beside):
        np.testing.assert_array_equal(kept[k], sent[n])


@pytest.mark.parametrize("far", [5000, 10**12])
def test_no_events_time_far_past_the_last_is_kept_beside(
    tmp_path: Path, far: int
) -> None:
    """Learn mode grows `t`: an image whose ``time`` lies far past the last
    (a timestamp in the Axes) goes beside the dataset, which keeps its shape;
    the acquisition goes on (it took 5 s at t=5000 and a dataset of 5001 time
    points; t=10**12 hung the hook, or raised a false ENOSPC aborting it)."""
    out = tmp_path / "jump.ome.zarr"
    times = [0, 1, far, 2]
    hook = ZarrHook(out)
    sent = []
    for n, t in enumerate(times):
        img, md = pycro_image({"axes": {"time": t}}, frame_of(n), elapsed_ms=n * 10.0)
        hook(img, md)
        sent.append(img)
    hook.close()
    assert hook.error is None
    assert hook.frames_written == 4
    data = read_zarr(out, "0")
    assert data.shape == (3, *SHAPE)
    for t, n in ((0, 0), (1, 1), (2, 3)):
        np.testing.assert_array_equal(data[t], sent[n])
    reason, kept, log = _kept(tmp_path / "jump.unplaced.ome.zarr")
    assert f"t={far}" in reason
    assert [r["metadata"]["pycromanager"]["Axes"] for r in log] == [{"time": far}]
    np.testing.assert_array_equal(kept[0], sent[2])


def test_settings_image_lacking_an_axis_is_kept_beside(tmp_path: Path) -> None:
    """With settings of 3 time points, an image without ``time`` goes beside,
    never to t=0, where the t=0 image is then written."""
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=1, loops=3))
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "s.ome.zarr"
    hook = ZarrHook(out, settings=settings)
    fed = feed(hook, [{"axes": {}}] + [{"axes": {"time": t}} for t in range(3)])
    hook.close()
    data = read_zarr(out, "0")
    for t in range(3):
        np.testing.assert_array_equal(data[t], fed[t + 1][1])
    reason, kept, _ = _kept(tmp_path / "s.unplaced.ome.zarr")
    assert "have no ['time']" in reason
    np.testing.assert_array_equal(kept[0], fed[0][1])


def test_unevenly_spaced_time_points_are_said(tmp_path: Path) -> None:
    """A list of `time_interval_s` (pycromanager sums it: starts 0, 1, 4 s):
    OME-Zarr has one t scale, so a warning says the first interval is written
    (it was written silently)."""
    events = multi_d_acquisition_events(num_time_points=3, time_interval_s=[0, 1, 3])
    assert [float(e["min_start_time"]) for e in events] == [0.0, 1.0, 4.0]
    with pytest.warns(mmzarr.MMZarrWarning, match=r"not evenly spaced.*\b1 s\b"):
        hook = ZarrHook(tmp_path / "uneven.ome.zarr", events=events)
    feed(hook, events)
    hook.close()
    t_axis = settings_of(tmp_path / "uneven.ome.zarr").images[0].dimensions[0]
    assert (t_axis.name, t_axis.scale) == ("t", 1.0)


def test_events_an_unplaceable_first_image_is_kept_beside(tmp_path: Path) -> None:
    # given events, the dataset does not depend on the first image's Axes: an
    # image the events do not place is kept beside, also as the first image,
    # not the whole run in the fallback layout
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.1, "loops": 2}
    )
    events = events_from_useq(seq)
    out = tmp_path / "first.ome.zarr"
    with ZarrHook(out, events=events) as hook:
        stray = {"axes": {"time": 0, "channel": "DAPI", "view": 1}}
        hook(*pycro_image(stray, frame_of(99)))
        fed = feed(hook, events)
    assert hook.fallback_reason is None
    assert hook.unplaced is not None
    data = read_zarr(out, "0")
    for ev, img, _ in fed:
        idx = ev["mmzarr"]["index"]
        np.testing.assert_array_equal(data[idx["t"], idx["c"]], img)


# ---- options, several cameras ------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"compression": "bogus"}, "compression"),
        ({"flush_interval_s": -1}, "flush_interval_s"),
        ({"max_buffer_bytes": "x"}, "max_buffer_bytes"),
        ({"on_full": "bogus"}, "on_full"),
        ({"chunks": {"t": 0}}, "chunks"),
        ({"chunks": {"c": 2}, "shards": {"c": 3}}, "'c': shard 3"),
        ({"chunks": {"z": 2}, "shards": {"z": 5}}, "'z': shard 5"),
    ],
)
@pytest.mark.parametrize("given", ["events", "nothing"])
def test_bad_options_are_refused_by_the_constructor(
    tmp_path: Path, options: dict[str, Any], named: str, given: str
) -> None:
    # used only at the first image (or time point), inside pycromanager's
    # thread: a bad value there stopped the acquisition, the fallback layout
    # taking the same storage options, and lost the images buffered
    events = [{"axes": {"time": t}, "min_start_time": t * 0.1} for t in range(2)]
    out = tmp_path / "opt.ome.zarr"
    with pytest.raises(PlanError, match=named):
        ZarrHook(out, events=events if given == "events" else None, **options)
    assert not out.exists()


@pytest.mark.parametrize("given", ["events", "nothing"])
def test_images_of_a_second_camera_are_kept_beside(tmp_path: Path, given: str) -> None:
    # Multi Camera: the engine hands one image per camera channel for each
    # event, with the event's Axes; get_tagged_image tags its channel
    # (engine.py:310-346, launcher.py:42-43)
    events = multi_d_acquisition_events(
        num_time_points=2,
        time_interval_s=0.1,
        channel_group="Channel",
        channels=["DAPI", "FITC"],
    )
    out = tmp_path / "cams.ome.zarr"
    hook = ZarrHook(out, events=events if given == "events" else None)
    fed: dict[int, list[tuple[dict[str, Any], np.ndarray]]] = {0: [], 1: []}
    n = 0
    for ev in events:
        for cam in (0, 1):
            img, md = pycro_image(ev, frame_of(n), elapsed_ms=n * 10.0)
            md["CameraChannelIndex"] = cam
            hook(img, md)
            fed[cam].append((md["Axes"], img))
            n += 1
    hook.close()
    assert hook.error is None
    assert hook.frames_written == 8
    data = read_zarr(out, "0")
    assert data.shape == (2, 2, *SHAPE)  # camera channel 0's images, placed
    for ax, img in fed[0]:
        c = ["DAPI", "FITC"].index(str(ax["channel"]))
        np.testing.assert_array_equal(data[ax["time"], c], img)
    reason, kept, log = _kept(tmp_path / "cams.unplaced.ome.zarr")
    assert "camera channel 1" in reason
    assert kept.shape[0] == 4
    for k, (ax, img) in enumerate(fed[1]):
        np.testing.assert_array_equal(kept[k], img)
        assert log[k]["metadata"]["pycromanager"]["Axes"] == ax


def test_unicore_backend_gives_each_camera_channel_its_image() -> None:
    # mmpycorex's get_tagged_image takes camera channel 0's image for every
    # channel: with a Multi Camera adapter both images were the first camera's
    from mmzarr.demo import release_core
    from tests.test_cameras import _two_camera_core

    core = _two_camera_core(second=(80, 64), second_bits=8)
    got: list[tuple[tuple[int, ...], str, Any]] = []

    def image_process_fn(image: np.ndarray, metadata: dict[str, Any]) -> None:
        got.append((image.shape, str(image.dtype), metadata["CameraChannelIndex"]))

    try:
        with (
            unicore_backend(core),
            Acquisition(image_process_fn=image_process_fn) as acq,
        ):
            # an interval: snapped (the adapter has no hardware sequence)
            acq.acquire(
                multi_d_acquisition_events(num_time_points=2, time_interval_s=0.01)
            )
    finally:
        release_core(core)
    assert got == [((64, 96), "uint16", 0), ((80, 64), "uint8", 1)] * 2


def test_unicore_backend_tags_each_camera_channel_with_its_size_and_camera() -> None:
    # the engine passes the Multi Camera's name and camera channel 0's
    # height/width for every channel (engine.py:260-262, 345-346): camera 1's
    # 80x64 image was tagged 64x96 "Multi Camera" (and so logged)
    from mmzarr.demo import release_core
    from tests.test_cameras import _two_camera_core

    core = _two_camera_core(second=(80, 64), second_bits=8)
    got: list[tuple[tuple[int, ...], Any, Any, Any]] = []

    def image_process_fn(image: np.ndarray, metadata: dict[str, Any]) -> None:
        got.append(
            (image.shape, metadata["Height"], metadata["Width"], metadata["Camera"])
        )

    try:
        with (
            unicore_backend(core),
            Acquisition(image_process_fn=image_process_fn) as acq,
        ):
            acq.acquire(multi_d_acquisition_events(num_time_points=1))
    finally:
        release_core(core)
    assert got == [((64, 96), 64, 96, "Camera-1"), ((80, 64), 80, 64, "Camera-2")]


@pytest.mark.parametrize(
    ("tags", "channel"),
    [
        ({}, 0),
        ({"CameraChannelIndex": 1}, 1),
        # a hardware sequence's image: the Multi Camera adapter's own tag, which
        # pycromanager's engine trusts before CameraChannelIndex
        ({"Multi Camera-CameraChannelIndex": "1"}, 1),
        ({"CameraChannelIndex": 0, "Multi Camera-CameraChannelIndex": "2"}, 2),
    ],
)
def test_camera_channel_of_an_image(tags: dict[str, Any], channel: int) -> None:
    from mmzarr.pycromanager._plan import camera_channel

    assert camera_channel(tags) == channel


def test_a_storage_error_writing_the_learned_time_point_says_what_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learn mode: images held to learn the shape and lost to a full disk are
    counted in the error (they were handed back to pycromanager when buffered)."""
    events = multi_d_acquisition_events(
        num_time_points=2, channel_group="Channel", channels=["DAPI", "FITC"]
    )
    out = tmp_path / "full.ome.zarr"
    hook = ZarrHook(out)
    backend_cls = type(get_backend(hook.backend))
    fail_on_write(monkeypatch, backend_cls, 2, "injected: No space left on device")
    for n, ev in enumerate(events[:2]):  # t=0: DAPI, FITC, held in memory
        hook(*pycro_image(ev, frame_of(n)))
    assert hook.stream is None
    # the first image of t=1 writes them: the second write fails
    with pytest.raises(StorageError, match="No space left") as info:
        hook(*pycro_image(events[2], frame_of(2), elapsed_ms=10.0))
    assert "1 of the 2 images of the first time point" in str(info.value)
    assert str(out) in str(info.value)
    with pytest.raises(StorageError, match="1 of the 2 images"):
        hook.close()
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "failed"
    assert attrs["frames_written"] == 1
