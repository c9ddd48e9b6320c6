"""MDAWriter on real pymmcore-plus MDAs with the demo rig (issue #5)."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._faults import fail_on_write
from tests._readback import array_of, check_metadata, group_json, read_zarr

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


class Capture:
    """An independent frameReady listener: what the camera produced, per event."""

    def __init__(self, core: UniMMCore) -> None:
        self.frames: list[tuple[useq.MDAEvent, np.ndarray]] = []
        core.mda.events.frameReady.connect(self._on_frame)

    def _on_frame(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        self.frames.append((event, np.array(img, copy=True)))


def run(
    core: UniMMCore, seq: Any, path: Path, **kw: Any
) -> tuple[mmzarr.MDAWriter, Capture]:
    cap = Capture(core)
    writer = mmzarr.MDAWriter(path, core=core, **kw)
    core.mda.run(seq, output=writer)
    writer.close()
    return writer, cap


def assert_planes(path: Path, cap: Capture) -> None:
    """Every captured frame reads back (zarr-python) at its event's place."""
    settings = mmzarr.AcquisitionSettings.model_validate_json(
        (path / "mmzarr/settings.json").read_text()
    )
    arrays: dict[str, np.ndarray] = {}
    for event, img in cap.frames:
        key, idx = settings.locate(event.index)
        if key not in arrays:
            arrays[key] = read_zarr(path, array_of(key))
        # independent of locate(): storage index = the event's t/c/z values
        assert idx == tuple(event.index[a] for a in "tcz" if a in event.index)
        np.testing.assert_array_equal(arrays[key][idx], img, err_msg=str(event.index))
    places = {tuple(sorted(e.index.items())) for e, _ in cap.frames}
    assert len(places) == len(cap.frames)  # every event captured once


def test_single_tczyx(core: UniMMCore, tmp_path: Path) -> None:
    seq = useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
        channels=["DAPI", "FITC"],
        z_plan=useq.ZRangeAround(range=2, step=1),
        axis_order="tpzc",
    )
    out = tmp_path / "single.ome.zarr"
    writer, cap = run(core, seq, out)
    assert len(cap.frames) == len(list(seq)) == writer.frames_written == 12
    check_metadata(out)
    assert read_zarr(out, "0").shape == (2, 2, 3, 512, 512)
    assert_planes(out, cap)
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        0.01,
        1.0,
        1.0,
        1.0,
        1.0,
    ]
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    # per-frame metadata is stored in the dataset
    log = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    assert len(log) == 12
    rec = json.loads(log[0])
    assert rec["event_index"] == dict(cap.frames[0][0].index)
    meta = rec["metadata"]  # what the handler logs, beside the writer's own keys
    assert meta["exposure_ms"] == pytest.approx(10.0)
    assert meta["camera_device"] == "Camera"
    assert isinstance(meta["runner_time_ms"], float)
    assert set(meta["stage"]) == {"x", "y", "z"}


def test_positions_with_subsequence(core: UniMMCore, tmp_path: Path) -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, z=0, name="a"),
            useq.Position(
                x=300,
                y=-200,
                z=1,
                name="b",
                sequence=useq.MDASequence(
                    grid_plan=useq.GridRowsColumns(rows=1, columns=2),
                    z_plan=useq.ZRangeAround(range=4, step=2),
                ),
            ),
            useq.Position(x=-100, y=50, z=2, name="c"),
        ],
        channels=["DAPI", "Cy5"],
        z_plan=useq.ZRangeAround(range=2, step=1),
    )
    out = tmp_path / "multi.ome.zarr"
    writer, cap = run(core, seq, out)
    assert len(cap.frames) == len(list(seq)) == writer.frames_written
    check_metadata(out)
    assert group_json(out, "OME")["attributes"]["ome"]["series"] == ["0", "1", "2", "3"]
    assert read_zarr(out, "1/0").shape == (2, 3, 512, 512)
    assert read_zarr(out, "0/0").shape == (2, 3, 512, 512)
    assert_planes(out, cap)
    # translation == where the stage was for each image's first frame
    first = {}
    for event, _ in cap.frames:
        key = (event.index.get("p"), event.index.get("g"))
        first.setdefault(key, event)
    for i, event in enumerate(first.values()):
        ms = group_json(out, str(i))["attributes"]["ome"]["multiscales"][0]
        tr = ms["datasets"][0]["coordinateTransformations"][1]["translation"]
        assert tr[-2:] == pytest.approx([event.y_pos, event.x_pos])


@pytest.mark.parametrize(
    "seq",
    [
        useq.MDASequence(z_plan=useq.ZRangeAround(range=2, step=1)),
        useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0.01, loops=2)),
        useq.MDASequence(stage_positions=[useq.Position(z=5)], channels=["DAPI"]),
    ],
    ids=["z-stack", "time-lapse", "z-only-position"],
)
def test_axes_a_plan_never_sets_are_where_the_stage_was(
    core: UniMMCore, tmp_path: Path, seq: useq.MDASequence
) -> None:
    core.setXYPosition(123.0, -45.0)
    core.waitForSystem()
    stage: list[dict[str, float]] = []
    core.mda.events.frameReady.connect(
        lambda img, e, meta: stage.append(meta["position"])
    )
    out = tmp_path / "still.ome.zarr"
    run(core, seq, out)
    check_metadata(out)
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    axes = [a["name"] for a in ms["axes"]]
    translation = ms["datasets"][0]["coordinateTransformations"][1]["translation"]
    tr = dict(zip(axes, translation, strict=True))
    # the oracle: the stage position pymmcore-plus reports with the first frame
    assert (tr["x"], tr["y"]) == pytest.approx((stage[0]["x"], stage[0]["y"]))
    assert (tr["x"], tr["y"]) == pytest.approx((123.0, -45.0))
    if "z" in tr:
        assert tr["z"] == pytest.approx(stage[0]["z"])


@pytest.mark.parametrize(
    "positions",
    [
        [useq.Position(z=5), useq.Position(x=1, y=2)],
        [useq.Position(x=1, y=2), useq.Position(z=5)],
    ],
    ids=["unset-first", "unset-second"],
)
def test_positions_leaving_an_axis_unset_are_where_the_stage_is(
    core: UniMMCore, tmp_path: Path, positions: list[useq.Position]
) -> None:
    """pymmcore-plus moves an axis only for an event that sets it: a position
    without x/y is where the stage was (the start, or the position before).
    Such an image was written at 0."""
    core.setXYPosition(123.0, -45.0)
    core.waitForSystem()
    first: dict[int, dict[str, float]] = {}

    def on_frame(img: Any, event: useq.MDAEvent, meta: Any) -> None:
        first.setdefault(event.index["p"], meta["position"])

    core.mda.events.frameReady.connect(on_frame)
    seq = useq.MDASequence(
        stage_positions=positions, time_plan=useq.TIntervalLoops(interval=0.01, loops=2)
    )
    out = tmp_path / "mixed.ome.zarr"
    if positions[0].x is None:
        # at t=1 the first position is where the second left the stage: an
        # image has one x, y (its first frame's), and a warning says so
        with pytest.warns(mmzarr.MMZarrWarning, match=r"x 123 µm and at 1 µm \(t=1\)"):
            run(core, seq, out)
    else:
        run(core, seq, out)
    check_metadata(out)
    for p, stage in first.items():
        ms = group_json(out, str(p))["attributes"]["ome"]["multiscales"][0]
        axes = [a["name"] for a in ms["axes"]]
        translation = ms["datasets"][0]["coordinateTransformations"][1]["translation"]
        tr = dict(zip(axes, translation, strict=True))
        # the oracle: where pymmcore-plus reports the stage at the first frame
        assert (tr["x"], tr["y"]) == pytest.approx((stage["x"], stage["y"])), p
    assert len(first) == 2
    # and the OME-XML's planes (from the frame log) say where the stage was
    import ome_types

    xml = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    for p, stage in first.items():
        plane = xml.images[p].pixels.planes[0]
        assert (plane.position_x, plane.position_y) == pytest.approx(
            (stage["x"], stage["y"])
        )


def test_hardware_triggered_frames_log_where_the_stage_is(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Two positions setting only z (the same z) at interval 0 run as one
    hardware sequence on the demo rig: pymmcore-plus gives its frames no
    `position`. x and y stay where the stage was as the MDA started; the frame
    log said null for them, and the OME-XML's planes had no PositionX/Y."""
    core.setXYPosition(123.0, -45.0)
    core.waitForSystem()
    metas: list[dict[str, Any]] = []
    core.mda.events.frameReady.connect(lambda img, event, meta: metas.append(meta))
    seq = useq.MDASequence(
        stage_positions=[useq.Position(z=7.0), useq.Position(z=7.0)],
        time_plan=useq.TIntervalLoops(interval=0, loops=2),
    )
    out = tmp_path / "burst.ome.zarr"
    with pytest.warns(mmzarr.MMZarrWarning, match="interval"):
        run(core, seq, out)
    assert len(metas) == 4
    assert all(m.get("hardware_triggered") for m in metas)
    assert not any("position" in m for m in metas)
    lines = (out / "mmzarr" / "frames.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, filter(None, lines)) if "event_index" in r]
    assert [r["metadata"]["stage"] for r in records] == [
        {"x": 123.0, "y": -45.0, "z": 7.0}
    ] * 4
    import ome_types

    xml = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    for image in xml.images:
        assert [(p.position_x, p.position_y) for p in image.pixels.planes] == [
            (123.0, -45.0)
        ] * 2


def test_well_plate(core: UniMMCore, tmp_path: Path) -> None:
    plan = useq.WellPlatePlan(
        plate="24-well",
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [1, 3]),
        well_points_plan=useq.GridRowsColumns(
            rows=2, columns=2, fov_width=512, fov_height=512
        ),
    )
    seq = useq.MDASequence(stage_positions=plan, channels=["DAPI", "FITC"])
    out = tmp_path / "plate.ome.zarr"
    _writer, cap = run(core, seq, out)
    assert len(cap.frames) == 16
    check_metadata(out)
    meta = group_json(out)["attributes"]["ome"]["plate"]
    assert [w["path"] for w in meta["wells"]] == ["A/2", "B/4"]
    assert [r["name"] for r in meta["rows"]] == list("ABCD")
    assert [c["name"] for c in meta["columns"]] == ["1", "2", "3", "4", "5", "6"]
    positions = list(plan)
    for n, pos in enumerate(positions):
        well = f"{'ABCD'[pos.plate_row]}/{pos.plate_col + 1}"
        fields = group_json(out, well)["attributes"]["ome"]["well"]["images"]
        assert [f["path"] for f in fields] == ["0", "1", "2", "3"]
        ms = group_json(out, f"{well}/{n % 4}")["attributes"]["ome"]["multiscales"][0]
        tr = ms["datasets"][0]["coordinateTransformations"][1]["translation"]
        assert tr[-2:] == pytest.approx([pos.y, pos.x])
    assert_planes(out, cap)


def test_do_stack_false(core: UniMMCore, tmp_path: Path) -> None:
    seq = useq.MDASequence(
        channels=["DAPI", useq.Channel(config="FITC", do_stack=False)],
        z_plan=useq.ZRangeAround(range=4, step=1),
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
    )
    out = tmp_path / "dostack.ome.zarr"
    _writer, cap = run(core, seq, out)
    assert len(cap.frames) == len(list(seq)) == 2 * (5 + 1)
    check_metadata(out)
    assert_planes(out, cap)
    data = read_zarr(out, "0")
    for z in (0, 1, 3, 4):
        assert not data[:, 1, z].any()  # never acquired -> fill value


def test_plan_metadata_json_cannot_hold_is_kept_as_text(
    core: UniMMCore, tmp_path: Path
) -> None:
    """numpy values, bytes and plain objects in a plan's metadata (and in a
    sub-sequence's) do not stop the acquisition: the summary keeps them."""

    class Note:
        def __str__(self) -> str:
            return "a note"

    metadata = {
        "gain": np.float32(1.5),
        "well_index": np.int64(3),
        "offsets": np.arange(3),
        "blob": b"\x00\xff",
        "note": Note(),
    }
    sub = useq.MDASequence(metadata=metadata)
    seq = useq.MDASequence(
        metadata=metadata,
        stage_positions=[
            useq.Position(x=0, y=0),
            useq.Position(x=5, y=5, sequence=sub),
        ],
        channels=["DAPI", "FITC"],
    )
    out = tmp_path / "meta.ome.zarr"
    writer, cap = run(core, seq, out)
    # useq: the sub-sequence (no channels of its own) acquires one frame
    assert len(cap.frames) == len(list(seq)) == writer.frames_written == 3
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    assert_planes(out, cap)
    summary = json.loads((out / "mmzarr/summary.json").read_text())
    kept = summary["mda_sequence"]["metadata"]
    assert kept["gain"] == 1.5
    assert kept["well_index"] == 3
    assert kept["offsets"] == [0, 1, 2]
    assert kept["blob"] == "b'\\x00\\xff'"
    assert kept["note"] == "a note"


def test_unbounded_generator_cancelled(core: UniMMCore, tmp_path: Path) -> None:
    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 1}
    )
    n_cancel = 9

    def events() -> Any:
        for t in itertools.count():
            for c, ch in enumerate(("DAPI", "FITC")):
                yield useq.MDAEvent(
                    index={"t": t, "c": c}, channel={"config": ch}, min_start_time=0
                )

    def cancel_after(img: Any, event: Any, meta: Any) -> None:
        if len(cap.frames) >= n_cancel:
            core.mda.cancel()

    cap = Capture(core)
    core.mda.events.frameReady.connect(cancel_after)
    out = tmp_path / "unbounded.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core, template=template)
    core.mda.run(events(), output=writer)
    writer.close()
    n = len(cap.frames)
    assert n >= n_cancel
    assert writer.frames_written == n
    check_metadata(out)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "cancelled"
    assert attrs["frames_written"] == n
    assert read_zarr(out, "0").shape == ((n + 1) // 2, 2, 512, 512)
    assert_planes(out, cap)


def test_backend_failure_cancels_and_reaches_caller(
    core: UniMMCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmzarr.backends._acquire import AcquireZarrBackend

    fail_on_write(monkeypatch, AcquireZarrBackend, 5, "injected: disk on fire")
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"],
        time_plan=useq.TIntervalLoops(interval=0.05, loops=20),
    )
    out = tmp_path / "fail.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    assert isinstance(writer.error, OSError)
    assert "disk on fire" in str(writer.error)
    with pytest.raises(OSError, match="disk on fire"):
        writer.close()
    assert len(cap.frames) < len(list(seq))  # the MDA was cancelled
    data = read_zarr(out, "0")
    for event, img in cap.frames[:4]:
        np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "failed"
    assert attrs["frames_written"] == 4
    check_metadata(out)


@pytest.mark.parametrize("given", ["sequence", "events"])
def test_a_camera_error_ending_the_mda_is_not_recorded_complete(
    core: UniMMCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """pymmcore-plus sends sequenceFinished when its run raises, too (also for
    a list of events, which it wraps in a sequence of its own)."""
    snapped = {"n": 0}
    get_image = core.getImage

    def failing_get_image(*args: Any, **kwargs: Any) -> Any:
        snapped["n"] += 1
        if snapped["n"] == 3:
            raise RuntimeError("injected: camera exploded")
        return get_image(*args, **kwargs)

    monkeypatch.setattr(core, "getImage", failing_get_image)
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 4}
    )
    out = tmp_path / "camera.ome.zarr"
    cap = Capture(core)
    if given == "events":
        writer = mmzarr.MDAWriter(out, core=core, template=seq)
        plan: Any = list(seq)
    else:
        writer, plan = mmzarr.MDAWriter(out, core=core), seq
    with pytest.raises(RuntimeError, match="camera exploded"):
        core.mda.run(plan, output=writer)
    writer.close()
    assert len(cap.frames) == 2
    assert_planes(out, cap)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "failed"
    assert attrs["frames_written"] == 2
    check_metadata(out)


def test_a_later_run_failing_does_not_mark_a_finished_run_failed(
    core: UniMMCore, tmp_path: Path
) -> None:
    """The relay thread hands `sequenceFinished` over after the runner ended.

    A run started meanwhile (`run_mda` again while the last frames are still
    handed over; pymmcore-plus 0.18.1 fails it, its old relay thread cannot
    start again) replaces the runner's status: run 1 still ran to its end.
    """
    import threading

    from pymmcore_plus.mda import RunState

    gate, held = threading.Event(), threading.Event()

    class Held:  # holds run 1's relay thread at its first frame
        def frameReady(self, *args: Any) -> None:
            held.set()
            gate.wait(30)

    seq = useq.MDASequence(channels=["DAPI", "FITC"])
    out = tmp_path / "first.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    first = core.run_mda(seq, output=[writer, Held()])
    # run 1 runs (its phase was IDLE before it started: a run 2 started then
    # came first), then acquires its last frame while its first is held
    assert held.wait(30)
    while first.is_alive() and core.mda.status.phase != RunState.IDLE:
        gate.wait(0.01)
    try:
        core.mda.run(useq.MDASequence(channels=["Cy5"]), output=writer)
    except Exception:  # pymmcore-plus' own failure, not the point here
        pass
    finally:
        gate.set()
    first.join()
    writer.close()
    assert len(cap.frames) == 2
    assert_planes(out, cap)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


@pytest.mark.parametrize("backend", [None, "acquire-zarr"])
def test_plan_acquiring_z_outside_t_lands_in_place(
    core: UniMMCore, tmp_path: Path, backend: str | None
) -> None:
    """`axis_order="zt"`: each plane's time series, then the next plane.
    acquire-zarr appends t first, so it would hold every frame until its turn:
    by default the writer takes tensorstore; asked for acquire-zarr, it widens
    the reorder window (up to max_buffer_bytes). Either way every frame is in
    its place and none beside the dataset."""
    seq = useq.MDASequence(
        z_plan=useq.ZRangeAround(range=2, step=1),
        time_plan={"interval": 0.001, "loops": 8},
        axis_order="zt",
    )
    out = tmp_path / "zt.ome.zarr"
    # 24 frames of 512 KiB, up to 14 of them waiting (t 1-7 of planes 0 and 1):
    # more than the default window (4 MiB), less than max_buffer_bytes
    writer, cap = run(core, seq, out, backend=backend, max_buffer_bytes=16 * 2**20)
    assert writer.backend == ("tensorstore" if backend is None else "acquire-zarr")
    assert group_json(out)["attributes"]["mmzarr"]["backend"] == (
        "TensorStoreBackend" if backend is None else "AcquireZarrBackend"
    )
    assert writer.unplaced is None
    assert len(cap.frames) == len(list(seq)) == writer.frames_written == 24
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    assert_planes(out, cap)


# the other handler's error kills pymmcore-plus' relay thread: that is the case
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_another_handler_failing_is_said_at_close(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pymmcore-plus stops sending events to every output handler when one
    raises: the writer's dataset keeps what came and says the run did not
    finish (it had looked like a plain cancel)."""

    class Preview:
        def __init__(self) -> None:
            self.n = 0

        def frameReady(self, img: Any, event: Any, meta: Any) -> None:
            self.n += 1
            if self.n == 3:
                raise RuntimeError("a bug in another handler")

    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 8})
    out = tmp_path / "other.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    with caplog.at_level("WARNING", logger="mmzarr"):
        core.mda.run(seq, output=[Preview(), writer])
        writer.close()
    assert "sequenceFinished never came" in caplog.text
    assert 0 < writer.frames_written < len(cap.frames) == 8
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "cancelled"
    settings = mmzarr.AcquisitionSettings.model_validate_json(
        (out / "mmzarr/settings.json").read_text()
    )
    data = read_zarr(out, "0")
    for event, img in cap.frames[: writer.frames_written]:
        _, idx = settings.locate(event.index)
        np.testing.assert_array_equal(data[idx], img)


@pytest.mark.parametrize("go_up", [True, False])
def test_each_plane_is_where_it_was_acquired(
    core: UniMMCore, tmp_path: Path, go_up: bool
) -> None:
    """The multiscales place z plane k at translation + k * scale: the z the
    stage was at for it (a stack acquired downwards has a negative z scale;
    it was drawn mirrored, upwards from its top plane)."""
    core.setZPosition(10)
    seq = useq.MDASequence(
        z_plan=useq.ZRangeAround(range=2, step=0.5, go_up=go_up), channels=["DAPI"]
    )
    out = tmp_path / "z.ome.zarr"
    _, cap = run(core, seq, out)
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    z = [a["name"] for a in ms["axes"]].index("z")
    transforms = {
        t["type"]: t[t["type"]] for t in ms["datasets"][0]["coordinateTransformations"]
    }
    assert len(cap.frames) == 5
    for event, _ in cap.frames:
        k = event.index["z"]
        placed = transforms["translation"][z] + k * transforms["scale"][z]
        assert placed == pytest.approx(event.z_pos), k
    check_metadata(out)


def test_planes_are_where_the_stage_was_not_where_it_was_sent(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A stage that fails to move (pymmcore-plus logs it and snaps anyway)
    leaves position 1's frames where the stage stood; pymmcore-plus' frame
    metadata says so (`position`), but the frame log's `stage` and the
    OME-XML's PositionX/Y gave the plan's target, (500, 200)."""
    import ome_types

    from mmzarr.demo import DemoXYStage

    class StuckStage(DemoXYStage):
        def set_position_um(self, x: float, y: float) -> None:
            if x == 500:
                raise RuntimeError("injected: stage stuck")
            super().set_position_um(x, y)

    core.unloadDevice("XY")
    core.loadPyDevice("XY", StuckStage())
    core.initializeDevice("XY")
    core.setXYStageDevice("XY")
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (500, 200, 0)], channels=["DAPI"]
    )
    out = tmp_path / "stuck.ome.zarr"
    run(core, seq, out)
    lines = (out / "mmzarr" / "frames.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, filter(None, lines)) if "event_index" in r]
    assert [r["metadata"]["stage"] for r in records] == [
        {"x": 0.0, "y": 0.0, "z": 0.0}
    ] * 2
    xml = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    assert [
        (p.position_x, p.position_y) for im in xml.images for p in im.pixels.planes
    ] == [(0.0, 0.0)] * 2


# ---- give-up of a slot the run went past -------------------------------------------
def snap_fails_once(core: UniMMCore, at: int = 3) -> None:
    """The demo camera (96x64) fails its snap number `at` (pymmcore-plus goes on)."""
    from mmzarr.demo import DemoCamera

    class FlakyCamera(DemoCamera):
        snaps = 0

        def snap(self, buffer: np.ndarray) -> Any:
            self.snaps += 1
            if self.snaps == at:
                raise RuntimeError("injected: snap failed")
            return super().snap(buffer)

    core.unloadDevice("Camera")
    core.loadPyDevice("Camera", FlakyCamera())
    core.initializeDevice("Camera")
    core.setCameraDevice("Camera")
    core.setProperty("Camera", "SensorWidth", 96)
    core.setProperty("Camera", "SensorHeight", 64)


class HeldCounter(mmzarr.MDAWriter):
    """After each frame, how many frames acquire-zarr holds (its cursors' pending)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.held: list[int] = []

    def frameReady(self, img: Any, event: Any, meta: Any) -> None:
        super().frameReady(img, event, meta)
        arrays = self.stream._backend  # type: ignore[union-attr]
        cursors = getattr(arrays, "_cursors", ())  # acquire-zarr's, in order
        self.held.append(sum(len(c.pending) for c in cursors))


FLAKY_SEQ = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 4}
)


def test_a_frame_the_camera_failed_to_snap_holds_no_later_frame(
    backend: str, core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pymmcore-plus logs a failed snap and goes on. acquire-zarr appends in
    order, so every later frame was held in memory behind the empty slot until
    the reorder window overflowed or the dataset closed: a process killed
    meanwhile lost them all (a crash 40 frames on: 2 of 39 frames on disk)."""
    snap_fails_once(core)
    out = tmp_path / "flaky.ome.zarr"
    cap = Capture(core)
    writer = HeldCounter(
        out,
        core=core,
        backend=backend,
        downsample=mmzarr.Downsample(levels=1),  # its levels' slots too
    )
    core.mda.run(FLAKY_SEQ, output=writer)
    writer.close()
    assert len(cap.frames) == 7
    assert writer.held == [0] * 7
    assert_planes(out, cap)
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "complete"
    assert attrs["images"][""]["missing"] == [[1, 0]]
    assert read_zarr(out, array_of(""))[1, 0].max() == 0
    assert "cannot give up" not in caplog.text
    check_metadata(out)


def test_settings_that_expect_another_order_give_up_nothing(
    backend: str, core: UniMMCore, tmp_path: Path
) -> None:
    """Settings whose image expects `c` outside `t` while the plan acquires
    `c` inside `t`: following them, frame (t=0, c=1) would pass (t=1..3, c=0)
    and acquire-zarr would refuse those frames (the unplaced sibling). They
    are given (`settings=`), so nothing is given up."""
    snap_fails_once(core, at=0)  # never fails: a 96x64 camera
    own = mmzarr.AcquisitionSettings.from_useq(FLAKY_SEQ, core=core)
    (image,) = own.images
    settings = own.replace(images=(image.replace(acquisition_order=("c", "t")),))
    out = tmp_path / "order.ome.zarr"
    writer, cap = run(core, FLAKY_SEQ, out, backend=backend, settings=settings)
    assert len(cap.frames) == writer.frames_written == 8
    assert writer.unplaced is None
    assert_planes(out, cap)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


def test_a_generator_retaking_a_failed_snap_puts_the_retake_in_place(
    backend: str, core: UniMMCore, tmp_path: Path
) -> None:
    """An event generator may yield an event again (here: the one whose snap
    failed, at the end). Giving its slot up when the next frame came would have
    made acquire-zarr refuse the retake (the unplaced sibling): a generator's
    run gives nothing up."""
    snap_fails_once(core)

    def event(t: int, c: int) -> useq.MDAEvent:
        config = ("DAPI", "FITC")[c]
        return useq.MDAEvent(index={"t": t, "c": c}, channel={"config": config})

    def events() -> Any:
        for t in range(3):
            for c in range(2):
                yield event(t, c)
        yield event(1, 0)  # the retake

    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.01, "loops": 1}
    )
    out = tmp_path / "retake.ome.zarr"
    writer, cap = run(core, events(), out, backend=backend, template=template)
    assert [dict(e.index) for e, _ in cap.frames][-1] == {"t": 1, "c": 0}
    assert len(cap.frames) == writer.frames_written == 6
    assert writer.unplaced is None
    assert_planes(out, cap)
    check_metadata(out)


@pytest.mark.parametrize(
    "options", [{"compression": "blosc-zstd"}, {"chunk": {"t": 2}}], ids=str
)
def test_options_given_with_settings_are_refused_not_ignored(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """`MDAWriter(settings=s, compression=...)` was accepted and the option
    ignored (the settings' own compression written), a misspelled one too;
    ZarrHook refused both. Both front ends refuse them when made."""
    from mmzarr.pycromanager import ZarrHook

    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(channels=["DAPI"]),
        image_shape=(8, 8),
        dtype="uint16",
        pixel_size_um=1,
    )
    out = tmp_path / "opt.ome.zarr"
    for front in (mmzarr.MDAWriter, ZarrHook):
        with pytest.raises(mmzarr.PlanError, match=f"{front.__name__}: .*option"):
            front(out, settings=settings, **options)
    assert not out.exists()


def test_options_of_axes_a_one_frame_plan_lacks_are_checked_when_made(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`chunks`/`shards` of `c` and `z` that no plan can take are refused by the
    constructor: checked only at the run's start, the run went to the
    fallback layout. Those every plan takes are accepted, and used."""
    out = tmp_path / "opt.ome.zarr"
    with pytest.raises(mmzarr.PlanError, match="'z': shard 5"):
        mmzarr.MDAWriter(out, core=core, chunks={"z": 2}, shards={"z": 5})
    assert not out.exists()
    seq = useq.MDASequence(channels=["DAPI", "FITC"], z_plan={"range": 3, "step": 1})
    _, cap = run(core, seq, out, chunks={"z": 2}, shards={"z": 4})
    assert group_json(out)["attributes"]["mmzarr"].get("fallback") is None
    assert_planes(out, cap)
