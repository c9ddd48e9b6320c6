"""A writer problem never costs the acquisition: the fallback layout (issue #16).

A plan mmzarr cannot map is written frame by frame in arrival order; a frame
that does not fit a mapped dataset goes beside it. Expectations come from what
the camera produced (an independent `frameReady` listener) and from literals.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
from rich.console import Console

import mmzarr
from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr
from tests.test_mda import Capture

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

#: a position's own time plan inside the sequence's: useq emits (p=1, t=0) and
#: (p=1, t=1) once per outer time point, so two frames want one slot
REPEATS = useq.MDASequence(
    stage_positions=[
        useq.Position(x=0, y=0),
        useq.Position(
            x=1,
            y=1,
            sequence=useq.MDASequence(time_plan={"interval": 0, "loops": 2}),
        ),
    ],
    time_plan={"interval": 0, "loops": 2},
)


def _log(path: Path) -> list[dict[str, Any]]:
    lines = (path / "mmzarr" / "frames.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_repeating_plan_is_a_plan_error_on_the_stream_path() -> None:
    with pytest.raises(mmzarr.PlanError, match=r"more than once"):
        mmzarr.AcquisitionSettings.from_useq(
            REPEATS, image_shape=(8, 10), dtype="uint16", pixel_size_um=1
        )


def test_unmappable_plan_keeps_every_frame_in_arrival_order(
    core: UniMMCore, tmp_path: Path
) -> None:
    out = tmp_path / "fallback.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(REPEATS, output=writer)
    writer.close()  # no error: the MDA was not cancelled

    events = list(REPEATS)
    assert len(cap.frames) == len(events) == 6
    assert writer.fallback_reason is not None
    assert "more than once" in writer.fallback_reason
    attrs = group_json(out)["attributes"]
    assert "more than once" in attrs["mmzarr"]["fallback"]
    assert attrs["mmzarr"]["status"] == "complete"
    check_metadata(out)
    for data in (read_zarr(out, "0"), read_tensorstore(out, "0")):
        assert data.shape == (6, 512, 512)
        for k, (_, img) in enumerate(cap.frames):
            np.testing.assert_array_equal(data[k], img, err_msg=f"frame {k}")
    log = _log(out)
    assert [r["event_index"] for r in log] == [dict(e.index) for e, _ in cap.frames]
    assert [r["index"] for r in log] == [[k] for k in range(6)]


def test_cli_acquire_falls_back_instead_of_refusing(tmp_path: Path) -> None:
    from mmzarr._cli import main

    plan = tmp_path / "plan.json"
    plan.write_text(REPEATS.model_dump_json())
    out = tmp_path / "cli.ome.zarr"
    assert main(["acquire", str(plan), str(out)]) == 0
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert "more than once" in attrs["fallback"]
    assert attrs["frames_written"] == 6
    assert read_zarr(out, "0").shape == (6, 512, 512)
    # `mmzarr info` says why the frames are in arrival order
    from mmzarr._info import dataset_tree

    console = Console(width=300, record=True)
    console.print(dataset_tree(out))
    text = console.export_text()
    assert "fallback layout:" in text
    assert "more than once" in text


def test_frames_that_do_not_fit_the_settings_are_kept_beside(
    core: UniMMCore, tmp_path: Path
) -> None:
    # settings for two time points; the MDA acquires three
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    out = tmp_path / "run.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()

    assert len(cap.frames) == 3
    assert writer.frames_written == 3
    main = read_zarr(out, "0")
    np.testing.assert_array_equal(main[0], cap.frames[0][1])
    np.testing.assert_array_equal(main[1], cap.frames[1][1])
    beside = tmp_path / "run.unplaced.ome.zarr"
    assert writer.unplaced_path == str(beside)
    check_metadata(beside)
    assert (
        "t=2 is out of range" in group_json(beside)["attributes"]["mmzarr"]["fallback"]
    )
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[2][1])
    assert _log(beside)[0]["event_index"] == {"t": 2}


class _CountingSequence(useq.MDASequence):
    """Counts iterations of this very object (copies count on their own)."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        object.__setattr__(self, "_iterations", 0)

    def __iter__(self) -> Any:  # type: ignore[override]
        object.__setattr__(self, "_iterations", self._iterations + 1)
        return super().__iter__()


def test_writer_never_iterates_the_runners_sequence(tmp_path: Path) -> None:
    # pymmcore-plus' runner iterates the user's object on its own thread while
    # the handler describes the plan; useq autofocus plans keep state between
    # iterations, so a second iteration of the same object corrupts the first
    seq = _CountingSequence(
        stage_positions=[
            useq.Position(x=0, y=0),
            useq.Position(
                x=1, y=1, sequence=useq.MDASequence(z_plan={"range": 2, "step": 1})
            ),
        ],
        channels=["DAPI"],
        autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("p",)),
    )
    writer = mmzarr.MDAWriter(
        tmp_path / "af.ome.zarr", image_shape=(8, 10), dtype="uint16", pixel_size_um=1
    )
    writer.sequenceStarted(seq, {})
    assert writer.stream is not None
    assert seq._iterations == 0  # type: ignore[attr-defined]
    writer.close()


def test_taken_unplaced_sibling_is_left_alone_and_the_run_completes(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An earlier run's `x.unplaced.ome.zarr` (not to be overwritten) neither
    cancels the MDA nor loses a frame: the next numbered sibling takes them,
    and the dataset records the finished run as complete."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    out = tmp_path / "run.ome.zarr"
    taken = tmp_path / "run.unplaced.ome.zarr"
    taken.mkdir()
    (taken / "notes.txt").write_text("an earlier run's")
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()

    assert writer.error is None
    assert len(cap.frames) == writer.frames_written == 3
    assert (taken / "notes.txt").read_text() == "an earlier run's"
    beside = tmp_path / "run.unplaced-2.ome.zarr"
    assert writer.unplaced_path == str(beside)
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[2][1])
    check_metadata(beside)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


def _random_plate(*, allow_overlap: bool) -> useq.MDASequence:
    """Wells A1 and B2 of a 96-well plate, 3 unseeded random points in each."""
    points = useq.RandomPoints(
        num_points=3,
        max_width=150,
        max_height=150,
        fov_width=64,
        fov_height=64,
        allow_overlap=allow_overlap,
    )
    plan = useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [0, 1]),
        well_points_plan=points,
    )
    return useq.MDASequence(stage_positions=plan, channels=["DAPI"])


def test_unseeded_random_points_without_overlap_fall_back(
    core: UniMMCore, tmp_path: Path
) -> None:
    """useq draws them again on each iteration, maybe fewer: the frames' wells
    are not known in advance, so every frame is kept in arrival order."""
    seq = _random_plate(allow_overlap=False)
    with pytest.raises(mmzarr.PlanError, match="random_seed"):
        mmzarr.AcquisitionSettings.from_useq(
            seq, image_shape=(8, 10), dtype="uint16", pixel_size_um=1
        )
    out = tmp_path / "random.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.fallback_reason is not None
    assert "random_seed" in writer.fallback_reason
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    data = read_zarr(out, "0")
    assert data.shape[0] == len(cap.frames) > 0
    for k, (_, img) in enumerate(cap.frames):
        np.testing.assert_array_equal(data[k], img, err_msg=f"frame {k}")


def test_unseeded_random_points_land_in_the_wells_the_runner_visits(
    core: UniMMCore, tmp_path: Path
) -> None:
    """With overlap allowed there are num_points each time: every frame is in
    the well the runner's event names, and no drawn position is written as a
    field's place (the frame log has the visited ones)."""
    seq = _random_plate(allow_overlap=True)
    out = tmp_path / "random.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.fallback_reason is None
    assert len(cap.frames) == 6
    check_metadata(out)
    fields: dict[str, int] = {}
    for event, img in cap.frames:
        well = {"A1": "A/1", "B2": "B/2"}[str(event.pos_name).split("_")[0]]
        field = fields[well] = fields.get(well, -1) + 1  # in the order visited
        np.testing.assert_array_equal(
            read_zarr(out, f"{well}/{field}/0")[0], img, err_msg=str(event.pos_name)
        )
        ms = group_json(out, f"{well}/{field}")["attributes"]["ome"]["multiscales"]
        for transform in ms[0]["datasets"][0]["coordinateTransformations"]:
            assert transform["type"] == "scale"
    visited = [
        (r["metadata"]["stage"]["x"], r["metadata"]["stage"]["y"]) for r in _log(out)
    ]
    assert visited == [
        pytest.approx((e.x_pos, e.y_pos), abs=0.01) for e, _ in cap.frames
    ]
