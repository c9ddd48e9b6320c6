"""Plans whose iteration surprises: the dataset follows what the runner acquired.

A `WellPlatePlan` without `selected_wells` has length 0 but visits every
well; a plate's points plan may have no field of view (useq iterates it, but
cannot say its length); useq keeps a plan's grid from its first iteration
although pymmcore-plus' engine later gives it the camera's field of view;
random points may be drawn (or shuffled) again at each iteration.
Expectations come from the events the runner emitted (an independent
`frameReady` listener, through `tests._oracle`) and from useq's own
iteration, never from mmzarr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._oracle import build_oracle, oracle_for
from tests._readback import array_of, check_metadata, group_json, read_zarr
from tests.test_mda import Capture

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore


def _acquire(core: UniMMCore, seq: useq.MDASequence, out: Path) -> Capture:
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.fallback_reason is None
    assert not list(out.parent.glob("*unplaced*"))
    check_metadata(out)
    return cap


def _translation(out: Path, key: str) -> dict[str, float]:
    """The image's translation per axis (none written, as for all zeros: empty)."""
    ms = group_json(out, key)["attributes"]["ome"]["multiscales"][0]
    axes = [a["name"] for a in ms["axes"]]
    for t in ms["datasets"][0]["coordinateTransformations"]:
        if t["type"] == "translation":
            return dict(zip(axes, t["translation"], strict=True))
    return {}


def _assert_as_acquired(
    out: Path, cap: Capture, stage_positions: Any, *, positions: bool = True
) -> None:
    """Every frame the runner emitted at its oracle place (layout, image count,
    pixels); with `positions`, every image's x/y translation, where written,
    is where its frames were acquired (and none is written without it)."""
    events = [e for e, _ in cap.frames]
    shape = cap.frames[0][1].shape
    oracle = build_oracle(events, stage_positions, shape)
    settings = mmzarr.AcquisitionSettings.model_validate_json(
        (out / "mmzarr/settings.json").read_text()
    )
    assert settings.layout == oracle.layout
    assert settings.keys == oracle.keys
    for (event, img), place in zip(cap.frames, oracle.placements, strict=True):
        data = read_zarr(out, array_of(place.key))
        np.testing.assert_array_equal(data[place.index], img, err_msg=str(event.index))
        tr = _translation(out, place.key)
        if positions:
            assert (tr.get("x", 0.0), tr.get("y", 0.0)) == pytest.approx(
                (event.x_pos, event.y_pos), abs=1e-6
            ), event.index
        else:
            assert "x" not in tr, event.index


def _assert_plate_maps(
    core: UniMMCore, seq: useq.MDASequence, tmp_path: Path, *, fields: int
) -> None:
    """`from_useq` maps the plate as useq's iteration says (`fields` images),
    and an MDA of it lands as the runner acquired it."""
    expected = oracle_for(seq, (8, 8))
    assert len(expected.images) == fields
    s = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 8), dtype="uint16", pixel_size_um=1.0
    )
    assert (s.layout, s.keys) == (expected.layout, expected.keys)
    out = tmp_path / "plate.ome.zarr"
    _assert_as_acquired(out, _acquire(core, seq, out), seq.stage_positions)


def test_plate_of_every_well(core: UniMMCore, tmp_path: Path) -> None:
    """A `WellPlatePlan` without `selected_wells` visits every well."""
    seq = useq.MDASequence(
        stage_positions=useq.WellPlatePlan(plate="6-well", a1_center_xy=(0, 0))
    )
    _assert_plate_maps(core, seq, tmp_path, fields=6)


def test_plate_whose_points_plan_has_no_field_of_view(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A plate's `GridWidthHeight` without a field of view: useq iterates it
    (1 µm fields; pymmcore-plus leaves a plate's points plan alone) but cannot
    say its length; the plate maps all the same."""
    seq = useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="24-well",
            a1_center_xy=(0, 0),
            selected_wells=([0], [0, 1]),
            well_points_plan=useq.GridWidthHeight(width=3, height=2),
        )
    )
    _assert_plate_maps(core, seq, tmp_path, fields=12)


def test_grid_iterated_before_the_run(core: UniMMCore, tmp_path: Path) -> None:
    """A plan previewed before the run keeps useq's cached grid (of the plan's
    own field of view) although the engine gives it the camera's: the runner
    visits 4 fields, not the 16 the camera's field of view would make, and
    the dataset has those 4, with their positions."""
    core.setROI(0, 0, 64, 64)
    assert core.getPixelSizeUm() * 64 < 100  # the camera's field is smaller
    seq = useq.MDASequence(
        metadata={"note": np.arange(3)},  # == of two plans raises for these
        grid_plan=useq.GridWidthHeight(
            width=200, height=200, fov_width=100, fov_height=100
        ),
    )
    assert len(list(seq)) == 4  # the preview
    out = tmp_path / "grid.ome.zarr"
    cap = _acquire(core, seq, out)
    assert len(cap.frames) == 4
    _assert_as_acquired(out, cap, seq.stage_positions)


@pytest.mark.parametrize(
    "grid",
    [
        useq.GridWidthHeight(width=200, height=200, fov_width=100, fov_height=100),
        useq.GridRowsColumns(rows=2, columns=2, fov_width=100, fov_height=100),
    ],
    ids=["width-height", "rows-columns"],
)
def test_grid_iterated_before_a_run_of_many_time_points(
    core: UniMMCore, tmp_path: Path, grid: useq.GridWidthHeight
) -> None:
    """As above with a time plan long enough that only its first time points
    are iterated to map it: they are the runner's own (its cached grid), not
    those of a copy given the camera's field of view."""
    core.setROI(0, 0, 64, 64)
    seq = useq.MDASequence(
        time_plan={"interval": 0.001, "loops": 5}, axis_order="tgcz", grid_plan=grid
    )
    assert len(list(seq)) == 20  # the preview
    out = tmp_path / "grid.ome.zarr"
    cap = _acquire(core, seq, out)
    assert len(cap.frames) == 20
    _assert_as_acquired(out, cap, seq.stage_positions)


@pytest.mark.filterwarnings("ignore:Unable to generate:UserWarning")  # useq's
def test_seeded_random_points_iterated_before_the_run(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Seeded, non-overlapping `RandomPoints` previewed with their own small
    field of view: the runner visits the 2 points useq cached, although the
    camera's larger field leaves room for 1 (a copy given it found 1, and the
    second field's frame went beside the dataset)."""
    grid = useq.RandomPoints(
        num_points=2,
        max_width=10,
        max_height=10,
        fov_width=5,
        fov_height=4,
        random_seed=0,
        allow_overlap=False,
    )
    assert core.getPixelSizeUm() * core.getImageWidth() > 10  # 1 point fits
    assert len(list(grid.model_copy(update={"fov_width": 512, "fov_height": 512}))) == 1
    seq = useq.MDASequence(grid_plan=grid)
    assert len(list(seq)) == 2  # the preview
    out = tmp_path / "points.ome.zarr"
    cap = _acquire(core, seq, out)
    assert [e.index["g"] for e, _ in cap.frames] == [0, 1]
    _assert_as_acquired(out, cap, seq.stage_positions)


def test_same_plan_object_run_again_after_a_roi_change(
    core: UniMMCore, tmp_path: Path
) -> None:
    """The second run of one plan object visits the grid of the first (useq's
    cache); the second dataset has the fields visited, where they were."""
    seq = useq.MDASequence(grid_plan=useq.GridWidthHeight(width=128, height=128))
    for roi in (64, 32):
        core.setROI(0, 0, roi, roi)
        out = tmp_path / f"roi{roi}.ome.zarr"
        _assert_as_acquired(out, _acquire(core, seq, out), seq.stage_positions)


def test_shuffled_random_points_write_no_other_fields_position(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Seeded `RandomPoints` with `order="random"` are shuffled with numpy's
    global generator at each iteration: which point is field `g` is not known
    in advance. Every frame is in its field; no field carries a position."""
    seq = useq.MDASequence(
        grid_plan=useq.RandomPoints(
            num_points=5,
            max_width=2000,
            max_height=2000,
            random_seed=7,
            order="random",
        )
    )
    out = tmp_path / "random.ome.zarr"
    cap = _acquire(core, seq, out)
    assert len({e.index["g"] for e, _ in cap.frames}) == 5
    _assert_as_acquired(out, cap, seq.stage_positions, positions=False)


def test_shuffled_points_of_one_position_keep_the_others_positions(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Only the fields of the shuffled `RandomPoints` lose their position: the
    other stage positions of the plan are translated where they were
    acquired (the events' x and y)."""
    shuffled = useq.RandomPoints(
        num_points=2, max_width=20, max_height=20, random_seed=74, order="random"
    )
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=5),
            useq.Position(x=5, y=3, sequence=useq.MDASequence(grid_plan=shuffled)),
            useq.Position(x=-7, y=9),
        ]
    )
    out = tmp_path / "one_shuffled.ome.zarr"
    cap = _acquire(core, seq, out)
    placed = {
        e.index["p"]: (e.x_pos, e.y_pos) for e, _ in cap.frames if "g" not in e.index
    }
    assert placed == {0: (0, 5), 2: (-7, 9)}
    for key, p in (("0", 0), ("3", 2)):
        tr = _translation(out, key)
        assert (tr.get("x"), tr.get("y")) == pytest.approx(placed[p]), key
    for key in ("1", "2"):  # the shuffled fields
        assert "x" not in _translation(out, key), key
