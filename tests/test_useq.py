"""`AcquisitionSettings.from_useq` and `locate` checked against useq's own events.

Layout, image keys, shapes, storage indices, names and channel configs are those
of `tests._oracle` (built from iterating the plan with useq); scales, stage
positions, acquisition order, skipped slots and plate metadata are the literals of
each `tests._plans.PlanCase`. Nothing here is computed from what mmzarr returned.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from typing import TYPE_CHECKING, Any

import pytest
import useq

from mmzarr import (
    AcquisitionSettings,
    EmptyPlanError,
    FrameError,
    MMZarrWarning,
    PlanError,
)
from mmzarr._from_useq import frames_acquired
from tests._oracle import Oracle, oracle_for, plain_index
from tests._plans import DTYPE, IMAGE_SHAPE, PIXEL_SIZE_UM, PLANS, PLANS_BY_NAME

if TYPE_CHECKING:
    from tests._oracle import ImageOracle
    from tests._plans import PlanCase


def build(seq: useq.MDASequence, **kwargs: Any) -> AcquisitionSettings:
    kwargs.setdefault("image_shape", IMAGE_SHAPE)
    kwargs.setdefault("dtype", DTYPE)
    kwargs.setdefault("pixel_size_um", PIXEL_SIZE_UM)
    return AcquisitionSettings.from_useq(seq, **kwargs)


def oracle(case: PlanCase) -> Oracle:
    """What useq's iteration of the plan says the dataset must be."""
    o = oracle_for(case.seq, IMAGE_SHAPE)
    # the table holds no autofocus or custom actions: every event is a frame
    assert len(o.events) == len(list(case.seq)), case.name
    assert not o.repeats, case.name
    return o


def frames_of(o: Oracle, key: str) -> list[tuple[useq.MDAEvent, tuple[int, ...]]]:
    """(event, storage index) of each frame of image `key`, in acquisition order."""
    return [
        (ev, at.index)
        for ev, at in zip(o.events, o.placements, strict=True)
        if at.key == key
    ]


def pairs(case: PlanCase) -> list[tuple[ImageOracle, Any]]:
    """(oracle image, mmzarr image) pairs, by key."""
    s = build(case.seq)
    return [(want, s.image(want.key)) for want in oracle(case).images]


cases = pytest.mark.parametrize("case", PLANS, ids=lambda c: c.name)
# the table's "multiphase" plan has phases of other intervals on purpose (its t
# scale is the first phase's); the warning is tested on its own below
pytestmark = pytest.mark.filterwarnings(
    "ignore:the time plan's phases have intervals:mmzarr.MMZarrWarning"
)


# ---- the plan table itself ---------------------------------------------------------
def test_plan_table_is_small_and_covers_every_kind() -> None:
    for c in PLANS:
        assert 0 < len(list(c.seq)) <= 200, c.name
    seqs = [c.seq for c in PLANS]
    subs = [
        p.sequence
        for s in seqs
        if not isinstance(s.stage_positions, useq.WellPlatePlan)
        for p in s.stage_positions
        if p.sequence is not None
    ]
    time_kinds = {type(s.time_plan) for s in seqs}
    assert {useq.TIntervalLoops, useq.TDurationLoops, useq.MultiPhaseTimePlan} <= (
        time_kinds
    )
    z_kinds = {type(s.z_plan) for s in [*seqs, *subs]}
    assert {
        useq.ZRangeAround,
        useq.ZAboveBelow,
        useq.ZTopBottom,
        useq.ZAbsolutePositions,
        useq.ZRelativePositions,
    } <= z_kinds
    grids = {type(s.grid_plan) for s in seqs}
    sub_grids = {type(s.grid_plan) for s in subs}
    kinds = {useq.GridRowsColumns, useq.GridFromEdges, useq.RandomPoints}
    assert kinds <= grids
    assert kinds <= sub_grids
    wpp = {
        type(s.stage_positions.well_points_plan)
        for s in seqs
        if isinstance(s.stage_positions, useq.WellPlatePlan)
    }
    assert {useq.GridRowsColumns, useq.RandomPoints} <= wpp
    orders = {"".join(s.axis_order) for s in seqs}
    assert {"tpgcz", "tpgzc", "ptgcz", "tpcz", "tpzc"} <= orders
    chans = [ch for s in [*seqs, *subs] for ch in s.channels]
    assert any(not ch.do_stack for ch in chans)
    assert any(ch.acquire_every == 2 for ch in chans)
    assert any(c.ragged for c in PLANS)


# ---- layout, keys, shapes ------------------------------------------------------------
@cases
def test_layout_and_keys(case: PlanCase) -> None:
    s = build(case.seq)
    o = oracle(case)
    assert s.layout == case.layout == o.layout
    assert s.keys == o.keys
    assert (s.plate is not None) == (case.layout == "plate")


@cases
def test_shapes_and_storage_order(case: PlanCase) -> None:
    s = build(case.seq)
    for want, image in pairs(case):
        # NGFF order whatever the acquisition axis_order
        assert image.dim_names == want.dim_names
        assert image.shape == want.shape
        assert image.frame_shape == IMAGE_SHAPE
    assert s.dtype == DTYPE
    assert (len({im.shape for im in s.images}) > 1) == case.ragged


@cases
def test_locate_every_event(case: PlanCase) -> None:
    s = build(case.seq)
    o = oracle(case)
    for ev, at in zip(o.events, o.placements, strict=True):
        loc = s.locate(ev.index)
        assert loc == (at.key, at.index), dict(ev.index)
        # plain-str keys give the same answer as useq's Axis keys
        assert s.locate(plain_index(ev)) == loc


@cases
def test_acquired_slots_and_skipped(case: PlanCase) -> None:
    s = build(case.seq)
    o = oracle(case)
    for want, image in pairs(case):
        slots = [idx for _, idx in frames_of(o, want.key)]
        full = set(itertools.product(*(range(n) for n in want.shape[:-2])))
        assert set(image.skipped) == full - set(slots)
        assert {i for i in full if image.is_acquired(i)} == set(slots)
        assert image.frames_planned == len(slots)
        # appending in acquisition order visits exactly useq's events, in order
        assert list(image.iter_indices()) == slots
    assert {im.key: im.skipped for im in s.images if im.skipped} == case.skipped
    assert s.frames_planned == len(o.events)
    assert s.bytes_planned == len(o.events) * math.prod(IMAGE_SHAPE) * 2


@cases
def test_acquisition_order(case: PlanCase) -> None:
    s = build(case.seq)
    want = case.acquisition_order
    assert want is not None, "plan table: give the acquisition order"
    if isinstance(want, tuple):
        want = dict.fromkeys(oracle(case).keys, want)
    assert {im.key: im.acquisition_order for im in s.images} == want


@cases
def test_scales_and_units(case: PlanCase) -> None:
    ps = pairs(case)
    # a literal for an axis no image has would never be checked
    assert (case.t_scale is not None) == any("t" in w.axes for w, _ in ps)
    assert (case.z_scale is not None) == any("z" in w.axes for w, _ in ps)
    for want, image in ps:
        for ax in ("y", "x"):
            assert image.dim(ax).scale == PIXEL_SIZE_UM
            assert image.dim(ax).unit == "micrometer"
        if "t" in want.axes:
            t = image.dim("t")
            assert t.unit == "second"
            assert t.type == "time"
            assert t.scale == pytest.approx(case.t_scale)
        if "c" in want.axes:
            assert image.dim("c").type == "channel"
            assert image.dim("c").scale == 1
        if "z" in want.axes:
            z = image.dim("z")
            assert z.unit == "micrometer"
            assert z.scale == pytest.approx(case.z_scale)


@cases
def test_positions_and_names(case: PlanCase) -> None:
    o = oracle(case)
    ps = pairs(case)
    assert len(case.positions) == len(ps), "plan table: one position per image"
    for (want, image), xyz in zip(ps, case.positions, strict=True):
        pos = image.stage_position
        if xyz is not None:
            assert (pos.x, pos.y, pos.z) == pytest.approx(xyz)
        frames = frames_of(o, want.key)
        # every frame of the image is taken where the image is (useq's events)
        for ev, _ in frames:
            assert (ev.x_pos, ev.y_pos) == pytest.approx((pos.x, pos.y))
        first, _ = frames[0]
        assert image.coords == {
            k: v for k, v in plain_index(first).items() if k not in ("t", "c", "z")
        }
        assert image.name == want.name


@cases
def test_channel_names(case: PlanCase) -> None:
    for want, image in pairs(case):
        if "c" not in want.axes:
            assert len(image.channels) <= 1
            continue
        assert len(image.channels) == len(want.channels)
        for ch, config in zip(image.channels, want.channels, strict=True):
            # a channel slot useq never fills gets a name too, but only the
            # acquired ones can be checked (no config repeats in the table)
            if config is not None:
                assert ch.name == ch.config == config
        for ch in image.channels:
            assert len(ch.color) == 6
            int(ch.color, 16)


@cases
def test_plate(case: PlanCase) -> None:
    s = build(case.seq)
    assert (case.plate is not None) == (case.layout == "plate")
    if case.plate is None:
        assert s.plate is None
        for image in s.images:
            assert image.row is image.column is image.field is None
        return
    want = case.plate
    assert s.plate is not None
    assert s.plate.name == want.name
    assert s.plate.rows == tuple(want.rows)
    assert s.plate.columns == tuple(str(i + 1) for i in range(want.columns))
    assert s.plate.wells == want.wells
    assert [(a.id, a.name) for a in s.plate.acquisitions] == [(0, None)]
    for key in oracle(case).keys:
        row, column, field = key.split("/")
        image = s.image(key)
        assert (image.row, image.column, image.field) == (row, column, int(field))


# ---- specific plans ----------------------------------------------------------------
def test_acquire_every_slots_listed() -> None:
    case = PLANS_BY_NAME["acquire-every-2"]
    s = build(case.seq)
    (image,) = s.images
    # FITC (c=1) only on even time points: odd ones stay at the fill value
    assert image.dim_names == ("t", "c", "y", "x")
    assert image.skipped == ((1, 1), (3, 1))


def test_do_stack_false_slots_listed() -> None:
    case = PLANS_BY_NAME["do-stack-false"]
    s = build(case.seq)
    (image,) = s.images
    # FITC (c=1) only on the middle of the 5 planes
    assert image.dim_names == ("c", "z", "y", "x")
    assert image.skipped == ((1, 0), (1, 1), (1, 3), (1, 4))


@pytest.mark.parametrize("go_up", [True, False])
def test_plane_0_not_acquired_is_still_where_the_translation_says(go_up: bool) -> None:
    """A lone `do_stack=False` channel is taken at the middle plane only: the
    image's first plane (its translation) is that plane minus one z step, not
    the middle plane's z."""
    seq = useq.MDASequence(
        stage_positions=[(0.0, 0.0, 10.0)],
        channels=[useq.Channel(config="DAPI", do_stack=False)],
        z_plan=useq.ZRangeAround(range=2.0, step=1.0, go_up=go_up),
    )
    (event,) = list(seq)  # useq: z index 1, at the position's z
    assert (event.index["z"], event.z_pos) == (1, 10.0)
    (image,) = build(seq).images
    assert image.dim_names == ("c", "z", "y", "x")
    z_scale = image.dimensions[1].scale
    assert z_scale == (1.0 if go_up else -1.0)
    # plane k is at stage_position.z + k * z_scale: plane 1 at 10 µm
    assert image.stage_position.z + 1 * z_scale == 10.0


def test_ragged_subsequence_shapes() -> None:
    s = build(PLANS_BY_NAME["subseq-channels-and-z"].seq)
    assert [im.shape for im in s.images] == [
        (2, 1, *IMAGE_SHAPE),
        (2, 3, 3, *IMAGE_SHAPE),
        (2, 1, *IMAGE_SHAPE),
    ]
    assert [c.name for c in s.images[1].channels] == ["DAPI", "FITC", "Cy5"]


def test_acquisition_order_follows_axis_order() -> None:
    a = build(PLANS_BY_NAME["tcz-tpgcz"].seq).images[0]
    b = build(PLANS_BY_NAME["tcz-tpgzc"].seq).images[0]
    assert a.dim_names == b.dim_names == ("t", "c", "z", "y", "x")
    assert a.acquisition_order == ("t", "c", "z")
    assert b.acquisition_order == ("t", "z", "c")


def test_positions_inside_time() -> None:
    assert build(PLANS_BY_NAME["positions-tpgcz"].seq).positions_inside_time
    assert not build(PLANS_BY_NAME["positions-ptgcz"].seq).positions_inside_time


def test_unicode_names_round_trip() -> None:
    s = build(PLANS_BY_NAME["unicode-names"].seq)
    again = AcquisitionSettings.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.images[0].name == "Pösition-µ 細胞"
    assert [c.name for c in again.images[0].channels] == ["GFP-λ", "mCherry-β"]


def test_settings_round_trip_json_every_plan() -> None:
    for case in PLANS:
        s = build(case.seq)
        again = AcquisitionSettings.model_validate_json(s.model_dump_json())
        assert again == s, case.name
        for ev in case.seq:
            assert again.locate(ev.index) == s.locate(ev.index)


def test_dict_plan_accepted() -> None:
    seq = PLANS_BY_NAME["positions-tpgcz"].seq
    as_dict = seq.model_dump(mode="json")
    assert build(as_dict) == build(seq)


# ---- unbounded t -------------------------------------------------------------------
def _unbounded_plan() -> useq.MDASequence:
    return useq.MDASequence(
        axis_order="tpgcz",
        time_plan=useq.TIntervalLoops(interval=0.5, loops=1),
        stage_positions=[(0.0, 0.0), (5.0, 5.0)],
        channels=[
            useq.Channel(config="DAPI"),
            useq.Channel(config="FITC", acquire_every=2),
            useq.Channel(config="Cy5", acquire_every=3),
        ],
        z_plan=useq.ZRangeAround(range=1, step=1),
    )


def test_unbounded_t_matches_a_long_useq_run() -> None:
    seq = _unbounded_plan()
    s = build(seq, unbounded_t=True)
    assert s.unbounded
    assert s.frames_planned is None
    assert s.bytes_planned is None
    for image in s.images:
        assert image.dimensions[0].name == "t"
        assert image.dimensions[0].size is None
        assert image.shape == (None, 3, 2, *IMAGE_SHAPE)
        assert image.skip_period == 6
        assert image.dim("t").scale == 0.5
    # a long bounded run of the same plan is what useq would emit, forever
    n_t = 14
    long = seq.model_copy(
        update={"time_plan": useq.TIntervalLoops(interval=0.5, loops=n_t)}
    )
    emitted: dict[str, set[tuple[int, ...]]] = {k: set() for k in s.keys}
    for ev in long:
        idx = plain_index(ev)
        key, storage = s.locate(ev.index)
        assert key == str(idx["p"])
        assert storage == (idx["t"], idx["c"], idx["z"])
        emitted[key].add(storage)
    for image in s.images:
        full = set(itertools.product(range(n_t), range(3), range(2)))
        assert {i for i in full if image.is_acquired(i)} == emitted[image.key]
        got = list(image.iter_indices(t_range=range(n_t)))
        assert set(got) == emitted[image.key]
        assert len(got) == len(emitted[image.key])
    # any t >= 0 is accepted, a negative one is not
    assert s.locate({"p": 1, "t": 10**6, "c": 0, "z": 1}) == ("1", (10**6, 0, 1))
    with pytest.raises(FrameError, match="t=-1"):
        s.locate({"p": 0, "t": -1, "c": 0, "z": 0})


def test_unbounded_t_without_time_plan() -> None:
    seq = useq.MDASequence(channels=["DAPI", "FITC"])
    with pytest.warns(MMZarrWarning, match="t scale of 1"):
        s = build(seq, unbounded_t=True)
    (image,) = s.images
    assert image.shape == (None, 2, *IMAGE_SHAPE)
    assert image.skipped == ()
    assert image.dim("t").scale == 1
    assert s.locate({"t": 7, "c": 1}) == ("", (7, 1))
    assert s.locate({"c": 1}) == ("", (0, 1))
    with pytest.raises(ValueError, match="unbounded"):
        list(image.iter_indices())
    assert list(image.iter_indices(range(2))) == [(0, 0), (0, 1), (1, 0), (1, 1)]


# ---- core= -------------------------------------------------------------------------
class FakeCore:
    """The part of `CMMCorePlus` that from_useq reads."""

    def __init__(
        self, h: int = 6, w: int = 12, nbytes: int = 1, px: float = 0.25
    ) -> None:
        self.h, self.w, self.nbytes, self.px = h, w, nbytes, px

    def getImageHeight(self) -> int:
        return self.h

    def getImageWidth(self) -> int:
        return self.w

    def getBytesPerPixel(self) -> int:
        return self.nbytes

    def getPixelSizeUm(self) -> float:
        return self.px

    def getROI(self) -> list[int]:
        return [0, 0, self.w, self.h]


@pytest.mark.parametrize(
    ("nbytes", "dtype"), [(1, "uint8"), (2, "uint16"), (4, "uint32")]
)
def test_core_gives_shape_dtype_pixel_size(nbytes: int, dtype: str) -> None:
    seq = PLANS_BY_NAME["tcz-tpgcz"].seq
    s = AcquisitionSettings.from_useq(seq, core=FakeCore(nbytes=nbytes))
    (image,) = s.images
    assert image.frame_shape == (6, 12)
    assert s.dtype == dtype
    assert image.dim("x").scale == image.dim("y").scale == 0.25


def test_explicit_values_beat_core() -> None:
    seq = PLANS_BY_NAME["c-only"].seq
    s = AcquisitionSettings.from_useq(
        seq, core=FakeCore(), image_shape=(3, 4), dtype="float32", pixel_size_um=2
    )
    assert s.images[0].frame_shape == (3, 4)
    assert s.dtype == "float32"
    assert s.images[0].dim("x").scale == 2


def test_core_without_pixel_size_warns() -> None:
    seq = PLANS_BY_NAME["c-only"].seq
    with pytest.warns(MMZarrWarning, match="pixel_size_um"):
        s = AcquisitionSettings.from_useq(seq, core=FakeCore(px=0))
    assert s.images[0].dim("y").scale == 1


def test_core_field_of_view_sets_grid_like_the_engine() -> None:
    # pymmcore-plus' engine replaces grid fov with the camera's (ROI x pixel size)
    # before it iterates; positions must be those of that iteration
    core = FakeCore(h=8, w=8, px=1.0)
    grid = useq.GridFromEdges(top=0, left=0, bottom=-16, right=16, fov_width=4)
    seq = useq.MDASequence(grid_plan=grid.model_copy(update={"fov_height": 4}))
    s = AcquisitionSettings.from_useq(seq, core=core)
    engine_grid = grid.model_copy(update={"fov_width": 8.0, "fov_height": 8.0})
    engine_seq = useq.MDASequence(grid_plan=engine_grid)
    assert len(s.images) == len(list(engine_seq)) != len(list(seq))
    for ev in engine_seq:
        key, _ = s.locate(ev.index)
        pos = s.image(key).stage_position
        assert (pos.x, pos.y) == (ev.x_pos, ev.y_pos)


def test_without_core_the_plan_fov_is_kept() -> None:
    grid = useq.GridFromEdges(
        top=0, left=0, bottom=-16, right=16, fov_width=4, fov_height=4
    )
    seq = useq.MDASequence(grid_plan=grid)
    s = build(seq, image_shape=(8, 8), pixel_size_um=1.0)
    assert len(s.images) == len(list(seq)) == 16


# ---- scales that are missing -----------------------------------------------------
def test_missing_pixel_size_warns_and_writes_1() -> None:
    seq = PLANS_BY_NAME["c-only"].seq
    with pytest.warns(MMZarrWarning, match="pixel_size_um"):
        s = AcquisitionSettings.from_useq(seq, image_shape=IMAGE_SHAPE)
    assert s.images[0].dim("x").scale == s.images[0].dim("y").scale == 1
    assert s.dtype == "uint16"


@pytest.mark.parametrize(
    "time_plan",
    [
        useq.TIntervalLoops(interval=0, loops=3),
        useq.TDurationLoops(duration=0, loops=3),
        useq.MultiPhaseTimePlan(phases=[useq.TIntervalLoops(interval=0, loops=2)] * 2),
    ],
    ids=["interval-0", "duration-0", "multiphase-0"],
)
def test_missing_interval_warns_and_writes_1(time_plan: Any) -> None:
    seq = useq.MDASequence(time_plan=time_plan, channels=["DAPI"])
    with pytest.warns(MMZarrWarning, match="t scale of 1"):
        s = build(seq)
    t = s.images[0].dim("t")
    assert t.scale == 1
    assert t.unit == "second"


def test_single_plane_z_scale_is_not_zero() -> None:
    seq = useq.MDASequence(z_plan=useq.ZRangeAround(range=0, step=0), channels=["A"])
    s = build(seq)
    for d in s.images[0].dimensions:
        assert d.scale > 0


# ---- bad input ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "seq",
    [
        useq.MDASequence(),
        # useq 0.9 yields no events for a top-down ZTopBottom with top < bottom
        useq.MDASequence(z_plan=useq.ZTopBottom(top=0, bottom=3, step=1, go_up=False)),
    ],
    ids=["no-axes", "empty-z-plan"],
)
def test_empty_plan(seq: useq.MDASequence) -> None:
    assert not list(seq)  # the oracle: useq yields nothing
    with pytest.raises(EmptyPlanError, match="acquires no frames"):
        build(seq)


@pytest.mark.parametrize(
    ("shape", "shown"),
    [
        ((0, 10), r"\(0, 10\)"),
        ((-1, 5), r"\(-1, 5\)"),
        ((10,), r"\(10,\)"),
        ("abc", "'abc'"),
        ((4.5, 3), r"\(4.5, 3\)"),
        (None, "None"),
    ],
)
def test_bad_image_shape(shape: Any, shown: str) -> None:
    with pytest.raises(ValueError, match=rf"image_shape.*{shown}"):
        build(PLANS_BY_NAME["c-only"].seq, image_shape=shape)


@pytest.mark.parametrize("dtype", ["uint17", "complex64", "not-a-type"])
def test_bad_dtype(dtype: str) -> None:
    with pytest.raises(ValueError, match=rf"dtype.*'{dtype}'"):
        build(PLANS_BY_NAME["c-only"].seq, dtype=dtype)


@pytest.mark.parametrize(
    ("px", "shown"),
    [(0, "0"), (-1, "-1"), (float("nan"), "nan"), (float("inf"), "inf"), ("x", "x")],
)
def test_bad_pixel_size(px: Any, shown: str) -> None:
    with pytest.raises(ValueError, match=rf"pixel_size_um.*{shown}"):
        build(PLANS_BY_NAME["c-only"].seq, pixel_size_um=px)


def test_positions_sharing_a_name_or_grid_cell_in_a_well_are_two_fields() -> None:
    """Positions are told apart by their index `p`, not their name: two
    positions in one well named alike (a plate's fields listed by hand, each
    named after its well) or with the same grid cell are two fields."""
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=0, plate_col=0, name="A1"),
            useq.Position(x=5, y=0, plate_row=0, plate_col=0, name="A1"),
            useq.Position(x=0, y=0, plate_row=1, plate_col=2, grid_row=0, grid_col=1),
            useq.Position(x=1, y=0, plate_row=1, plate_col=2, grid_row=0, grid_col=1),
        ]
    )
    s = build(seq)
    assert s.layout == "plate"
    assert s.keys == ("A/1/0", "A/1/1", "B/3/0", "B/3/1")
    assert [im.stage_position.x for im in s.images] == [0.0, 5.0, 0.0, 1.0]
    assert [im.coords for im in s.images] == [{"p": i} for i in range(4)]


def test_well_outside_the_plate() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=0, plate_col=0),
            useq.Position(x=0, y=0, plate_row=-1, plate_col=3),
        ]
    )
    with pytest.raises(ValueError, match=r"plate_row=-1, plate_col=3 is no well"):
        build(seq)


def test_a_negative_well_is_said_to_be_none() -> None:
    """A well at row -1 was said to be outside "the 0x1 plate (rows 0--1)",
    the plate's size taken from the rows given."""
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=0, y=0, plate_row=-1, plate_col=0)]
    )
    with pytest.raises(ValueError, match="count from 0") as e:
        build(seq)
    assert "0--1" not in str(e.value)


@pytest.mark.parametrize(
    ("positions", "said"),
    [
        # one position in a well, one beside the plate
        (
            [
                useq.Position(x=0, y=0, plate_row=0, plate_col=0),
                useq.Position(x=5, y=0, name="loose"),
            ],
            "p=1 ('loose') has plate_row=None, plate_col=None",
        ),
        # half a well: a row without a column, or a column without a row
        (
            [
                useq.Position(x=0, y=0, plate_row=0),
                useq.Position(x=5, y=0, plate_row=1),
            ],
            "p=0 has plate_row=0, plate_col=None",
        ),
        (
            [
                useq.Position(x=0, y=0, plate_col=0),
                useq.Position(x=5, y=0, plate_col=1),
            ],
            "p=0 has plate_row=None, plate_col=0",
        ),
    ],
    ids=["loose", "row-only", "column-only"],
)
def test_positions_not_all_in_wells_are_a_collection(
    positions: list[useq.Position], said: str
) -> None:
    """A plate holds images in wells only: a plan whose positions are not all in
    wells is written as a collection (each position its image), and a warning
    names the first position in no well (it went to the fallback layout, or
    the column of a position without a row was dropped without a word)."""
    seq = useq.MDASequence(stage_positions=positions, channels=["DAPI"])
    with pytest.warns(MMZarrWarning, match=re.escape(said)):
        s = build(seq)
    assert s.layout == "collection"
    assert s.keys == ("0", "1")
    assert [im.stage_position.x for im in s.images] == [0.0, 5.0]
    assert [im.coords for im in s.images] == [{"p": 0}, {"p": 1}]


@pytest.mark.parametrize(
    ("channels", "labels"),
    [
        # useq-schema's own tests use one config at two exposures
        (
            [{"config": "DAPI", "exposure": 10}, {"config": "DAPI", "exposure": 30}],
            ["DAPI", "DAPI (30 ms)"],
        ),
        (["DAPI", "DAPI", "FITC"], ["DAPI", "DAPI (2)", "FITC"]),
        (
            [
                {"config": "DAPI", "exposure": 30},
                {"config": "DAPI", "exposure": 30},
                {"config": "DAPI", "exposure": 5},
            ],
            ["DAPI", "DAPI (2)", "DAPI (5 ms)"],
        ),
        # exposures that print alike are numbered (was "DAPI (10 ms)" beside
        # "DAPI", whose exposure also prints as 10 ms)
        (
            [
                {"config": "DAPI", "exposure": 10},
                {"config": "DAPI", "exposure": 30},
                {"config": "DAPI", "exposure": 10.0000001},
            ],
            ["DAPI", "DAPI (30 ms)", "DAPI (3)"],
        ),
        # one config name in two config groups says its group (was "DAPI",
        # "DAPI (2)": which group acquired which was lost)
        (
            [
                useq.Channel(config="DAPI", group="Channel"),
                useq.Channel(config="DAPI", group="Other"),
                "FITC",
            ],
            ["DAPI (Channel)", "DAPI (Other)", "FITC"],
        ),
        (
            [
                "FITC",
                useq.Channel(config="DAPI", group="Other"),
                useq.Channel(config="DAPI"),
            ],
            ["FITC", "DAPI (Other)", "DAPI (Channel)"],
        ),
        (
            [
                {"config": "DAPI", "exposure": 10},
                {"config": "DAPI", "exposure": 30},
                {"config": "DAPI", "group": "Other", "exposure": 10},
                {"config": "DAPI", "group": "Other", "exposure": 10},
            ],
            [
                "DAPI (Channel)",
                "DAPI (Channel, 30 ms)",
                "DAPI (Other)",
                "DAPI (Other, 2)",
            ],
        ),
    ],
)
def test_repeated_channel_config_gets_unique_labels(
    channels: list[Any], labels: list[str]
) -> None:
    seq = useq.MDASequence(channels=channels)
    im = build(seq).images[0]
    assert [c.name for c in im.channels] == labels
    assert [c.config for c in im.channels] == [ch.config for ch in seq.channels]
    assert [c.exposure_ms for c in im.channels] == [ch.exposure for ch in seq.channels]


def test_repeated_position_names_give_unique_image_names() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, name="A"),
            useq.Position(x=1, name="A"),
            useq.Position(x=2, name="A_2"),
            useq.Position(x=3, name="B"),
        ]
    )
    assert [im.name for im in build(seq).images] == ["A", "A_3", "A_2", "B"]


def test_position_names_windows_cannot_hold_are_names_not_keys() -> None:
    """Keys come from the plan's order, so a name Windows has no folder for
    (a device, a trailing '.', ':' or '?') stays a name and the dataset copies."""
    names = ["con", "nul.", "a:b", "x?", "LPT1.txt", "a "]
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=i, name=n) for i, n in enumerate(names)]
    )
    s = build(seq)
    assert s.keys == ("0", "1", "2", "3", "4", "5")
    assert [im.name for im in s.images] == names


@pytest.mark.parametrize(
    "time_plan",
    [{"interval": 0, "loops": 3}, {"duration": 0, "loops": 3}],
)
def test_several_images_with_interval_0(time_plan: dict[str, Any]) -> None:
    # was TypeError: _image_settings() got an unexpected keyword 't_unknown'
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (1, 1, 0), (2, 2, 0)], time_plan=time_plan
    )
    with pytest.warns(MMZarrWarning, match="time interval is unknown"):
        s = build(seq)
    loops = len(list(seq.time_plan))  # type: ignore[arg-type]
    assert [im.shape for im in s.images] == [(loops, *IMAGE_SHAPE)] * 3


def test_interval_0_with_a_duration_is_a_plan_error() -> None:
    seq = useq.MDASequence(time_plan={"interval": 0, "duration": 1})
    with pytest.raises(PlanError, match=r"time_plan: interval 0 with duration 1"):
        build(seq)


@pytest.mark.parametrize(
    ("time_plan", "where"),
    [
        ({"interval": -1, "loops": 3}, "time_plan: interval -1 s"),
        ({"interval": -0.5, "duration": 2}, "time_plan: interval -0.5 s"),
        # it named the interval useq computes from it (-2.5 s)
        ({"duration": -5, "loops": 3}, "time_plan: duration -5 s"),
        (
            {"phases": [{"interval": 1, "loops": 2}, {"interval": -2, "loops": 2}]},
            "time_plan.phases[1]: interval -2 s",
        ),
    ],
)
def test_a_negative_interval_is_a_plan_error_naming_it(
    time_plan: dict[str, Any], where: str
) -> None:
    """useq takes a negative interval; it said only "dimension 't': scale must
    be a finite number > 0"."""
    seq = useq.MDASequence(time_plan=time_plan)  # useq takes it
    with pytest.raises(PlanError, match=re.escape(where) + " is negative"):
        build(seq)


@pytest.mark.parametrize("case", PLANS, ids=lambda c: c.name)
def test_frames_acquired_are_useqs_image_events(case: PlanCase) -> None:
    """What a dry run says the fallback layout would hold."""
    assert frames_acquired(case.seq) == len(list(case.seq))


def test_frames_acquired_of_a_long_plan_whose_time_points_repeat() -> None:
    """Counted from its first period; channels taken every 2nd and 3rd time."""
    seq = useq.MDASequence(
        channels=[
            useq.Channel(config="DAPI", acquire_every=3),
            useq.Channel(config="FITC", acquire_every=2),
        ],
        stage_positions=[(0, 0), (5, 5)],
        z_plan={"range": 2, "step": 1},
        time_plan={"interval": 0, "loops": 1001},
    )
    assert frames_acquired(seq) == len(list(seq)) == 2 * 3 * (334 + 501)


def test_a_duration_over_one_loop_is_a_plan_error() -> None:
    """useq cannot iterate a TDurationLoops of 1 loop (it divides the duration
    by loops - 1): a `PlanError` naming the time plan, not a ZeroDivisionError."""
    seq = useq.MDASequence(time_plan=useq.TDurationLoops(duration=1, loops=1))
    with pytest.raises(ZeroDivisionError):
        list(seq)
    with pytest.raises(PlanError, match=r"time_plan: useq cannot iterate it"):
        build(seq)
    phases = useq.MultiPhaseTimePlan(
        phases=[
            useq.TIntervalLoops(interval=1, loops=2),
            useq.TDurationLoops(duration=1, loops=1),
        ]
    )
    with pytest.raises(PlanError, match=r"time_plan\.phases\[1\]: useq cannot"):
        build(useq.MDASequence(time_plan=phases))


def test_plan_error_names_the_sub_sequence_time_plan() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(
                x=0, sequence=useq.MDASequence(time_plan={"interval": 0, "duration": 2})
            )
        ]
    )
    with pytest.raises(
        PlanError, match=r"stage_positions\[0\]\.sequence\.time_plan: interval 0"
    ):
        build(seq)


def test_plan_that_repeats_a_slot_is_refused() -> None:
    # a sub-sequence time plan nested in the main time plan: useq emits the same
    # (t, c) of position 1 once per outer time point
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0),
            useq.Position(
                x=1,
                y=1,
                sequence=useq.MDASequence(
                    time_plan=useq.TIntervalLoops(interval=1, loops=2)
                ),
            ),
        ],
        time_plan=useq.TIntervalLoops(interval=1, loops=2),
    )
    idx = [plain_index(ev) for ev in seq]
    assert len({tuple(sorted(i.items())) for i in idx}) < len(idx)
    with pytest.raises(PlanError, match=r"position p=1: the plan acquires.*more than"):
        build(seq)


def test_locate_rejects_unknown_images_and_out_of_range() -> None:
    s = build(PLANS_BY_NAME["positions-tpgcz"].seq)
    with pytest.raises(FrameError, match=r"'p': 7"):
        s.locate({"p": 7, "t": 0, "c": 0, "z": 0})
    with pytest.raises(FrameError, match=r"c=2"):
        s.locate({"p": 0, "t": 0, "c": 2, "z": 0})
    with pytest.raises(FrameError, match=r"t=2"):
        s.locate({"p": 0, "t": 2, "c": 0, "z": 0})
    with pytest.raises(FrameError, match=r"1.5"):
        s.locate({"p": 0, "t": 0, "c": 0, "z": 1.5})


def test_plan_errors_are_value_errors() -> None:
    assert issubclass(PlanError, ValueError)
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"compression": "gzip"}, r"compression.*'gzip'"),
        ({"max_buffer_bytes": -1}, r"max_buffer_bytes.*-1"),
        ({"flush_intervall_s": 1.0}, r"flush_intervall_s"),
        ({"flush_interval_s": math.nan}, r"flush_interval_s.*nan"),
        ({"chunks": {"t": 0}}, r"chunks\['t'\].*0"),
        ({"chunks": {"q": 2}}, r"chunks.*'q'"),
        ({"shards": [4]}, r"shards.*\[4\]"),
        ({"chunks": {"t": 2}, "shards": {"t": 3}}, r"shard 3.*chunk 2"),
    ],
)
def test_bad_options_name_field_and_value(kwargs: dict[str, Any], shown: str) -> None:
    with pytest.raises(PlanError, match=shown):
        build(PLANS_BY_NAME["t-only"].seq, **kwargs)


def test_autofocus_events_are_not_frames() -> None:
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 10, 0)],
        channels=["DAPI"],
        z_plan={"range": 2, "step": 1},
        autofocus_plan=useq.AxesBasedAF(
            autofocus_device_name="Z", autofocus_motor_offset=0, axes=("p",)
        ),
    )
    frames = [e for e in seq if type(e.action).__name__ == "AcquireImage"]
    assert len(frames) < len(list(seq))  # useq emits autofocus events too
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint8", pixel_size_um=1
    )
    assert settings.frames_planned == len(frames)
    assert {settings.locate(e.index) for e in frames} == {
        (str(e.index["p"]), (e.index["c"], e.index["z"])) for e in frames
    }


@cases
def test_root_only_group_document_is_the_full_ones_root(case: PlanCase) -> None:
    """`Stream.close` rewrites only the root: it must be the same document."""
    from mmzarr._layout import group_documents

    settings = build(case.seq)
    attrs = {"mmzarr": {"status": "complete"}}
    full = group_documents(settings, root_attributes=attrs)
    assert group_documents(settings, root_attributes=attrs, root_only=True) == {
        "": full[""]
    }


@cases
def test_group_documents_built_once_match_fresh_ones(case: PlanCase) -> None:
    """`Stream` builds the documents once and rebuilds only the windows at close:
    its documents equal those built from scratch, windows included."""
    from mmzarr._layout import GroupDocuments, group_documents

    settings = build(case.seq)
    attrs = {"mmzarr": {"status": "complete"}}
    # channel c of the i-th image spans (10 i + c, 1000 + 10 i + c)
    ranges = {
        im.key: [(10.0 * i + c, 1000.0 + 10 * i + c) for c in range(2)]
        for i, im in enumerate(settings.images)
    }
    docs = GroupDocuments(settings)
    opened = docs.documents(root_attributes={"mmzarr": {"status": "acquiring"}})
    closed = docs.documents(root_attributes=attrs, ranges=ranges)
    assert closed == group_documents(settings, root_attributes=attrs, ranges=ranges)
    assert set(closed) == set(opened)
    images = docs.documents(root_attributes=attrs, which="images", ranges=ranges)
    keys = {im.key for im in settings.images} | {""}
    assert images == {k: v for k, v in closed.items() if k in keys}
    for i, im in enumerate(settings.images):
        omero = images[im.key]["attributes"]["ome"].get("omero")
        if "c" not in im.dim_names:
            assert omero is None
            continue
        windows = [ch["window"] for ch in omero["channels"]]
        want = [(10 * i + c, 1000 + 10 * i + c) for c in range(len(windows))]
        assert [(w["start"], w["end"]) for w in windows][:2] == want[:2]
        # built before any range: the windows of the documents at open stay
        first = opened[im.key]["attributes"]["ome"]["omero"]["channels"][0]
        assert (first["window"]["start"], first["window"]["end"]) != want[0]


@pytest.mark.parametrize(
    "case", [c for c in PLANS if c.layout == "plate"], ids=lambda c: c.name
)
def test_plate_metadata_has_what_strict_ngff_wants(case: PlanCase) -> None:
    """NGFF's strict plate schema (SHOULD): a plate name, acquisition names."""
    from mmzarr._layout import group_documents

    settings = build(case.seq)
    plate = group_documents(settings, root_only=True)[""]["attributes"]["ome"]["plate"]
    assert plate["name"]
    for acq in plate["acquisitions"]:
        assert acq["name"]
        assert acq["maximumfieldcount"] >= 1


def test_time_phases_of_other_intervals_are_said() -> None:
    """OME-Zarr has one t scale: phases of other intervals cannot all be placed
    at their times; a warning says so (the first phase's was written silently)."""
    phases = [
        useq.TIntervalLoops(interval=0.1, loops=3),
        useq.TIntervalLoops(interval=5, loops=3),
    ]
    seq = useq.MDASequence(time_plan=useq.MultiPhaseTimePlan(phases=phases))
    with pytest.warns(MMZarrWarning, match=r"phases have intervals \[0\.1, 5\.0\] s"):
        settings = build(seq)
    assert settings.images[0].dimensions[0].scale == 0.1
    # a phase as fast as possible (interval 0) differs from a 1 s one too
    fast_then_slow = useq.MultiPhaseTimePlan(
        phases=[
            useq.TIntervalLoops(interval=0, loops=3),
            useq.TIntervalLoops(interval=1, loops=3),
        ]
    )
    with pytest.warns(MMZarrWarning, match=r"phases have intervals \[0\.0, 1\.0\] s"):
        settings = build(useq.MDASequence(time_plan=fast_then_slow))
    assert settings.images[0].dimensions[0].scale == 1.0
    same = useq.MultiPhaseTimePlan(phases=[phases[0], phases[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(useq.MDASequence(time_plan=same))  # one interval: no warning


@pytest.mark.parametrize(
    "z_plan",
    [
        {"absolute": [5, 1, 3]},
        {"relative": [0, -2, 4]},
        # planes that repeat a z (were written silently 1 µm apart)
        {"relative": [-1, -1]},
        {"relative": [0, 0, 1]},
    ],
    ids=str,
)
def test_unevenly_spaced_z_planes_are_said(z_plan: dict[str, Any]) -> None:
    """OME-Zarr has one z scale: planes not evenly spaced cannot be placed
    where the stage was; a warning says so (the scale was written silently)."""
    seq = useq.MDASequence(z_plan=z_plan)
    with pytest.warns(MMZarrWarning, match="not evenly spaced"):
        AcquisitionSettings.from_useq(
            seq, image_shape=(8, 8), dtype="uint16", pixel_size_um=1.0
        )


def test_a_channel_z_offset_is_said() -> None:
    """A channel's `z_offset` puts its planes elsewhere than the other
    channel's, but an image has one z per plane: a warning says so (the first
    channel's z was written silently)."""
    seq = useq.MDASequence(
        stage_positions=[(0.0, 0.0, 10.0)],
        channels=["DAPI", useq.Channel(config="FITC", z_offset=0.5)],
        z_plan={"range": 2, "step": 1},
    )
    # useq: FITC's plane 0 is 0.5 µm above DAPI's
    z = {(e.index["c"], e.index["z"]): e.z_pos for e in seq}
    assert (z[(0, 0)], z[(1, 0)]) == (9.0, 9.5)
    with pytest.warns(MMZarrWarning, match=r"at z 9 µm and at 9\.5 µm.*'FITC'"):
        (image,) = build(seq).images
    assert image.stage_position.z == 9.0
    same = useq.MDASequence(
        stage_positions=[(0.0, 0.0, 10.0)],
        channels=[
            useq.Channel(config="DAPI", z_offset=0.5),
            useq.Channel(config="FITC", z_offset=0.5),
        ],
        z_plan={"range": 2, "step": 1},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(same)  # every channel at the same planes: no warning


def test_a_position_that_moves_between_time_points_is_said() -> None:
    """A position that leaves y unset is, from the second time point on, where
    the position before it left the stage (pymmcore-plus moves only the axes
    an event gives): its image has one y, that of its first frame, and a
    warning says so (it was written silently)."""
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=1.0), useq.Position(x=2.0, y=0.0)],
        time_plan={"interval": 1, "loops": 2},
    )
    # useq: position 0 never sets y
    assert {e.y_pos for e in seq if e.index["p"] == 0} == {None}
    start = {"x": 11.0, "y": 22.0, "z": 3.0}
    with pytest.warns(MMZarrWarning, match=r"p=0: .*at y 22 µm and at 0 µm \(t=1\)"):
        image, _ = build(seq, stage_position=start).images
    assert image.stage_position.y == 22.0  # its first frame's
    every_axis = useq.MDASequence(
        stage_positions=[(1.0, 0.0, 0.0), (2.0, 0.0, 0.0)],
        time_plan={"interval": 1, "loops": 2},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(every_axis, stage_position=start)  # images that stay: no warning


def test_stage_position_takes_any_real_number() -> None:
    """numpy numbers are numbers (they were dropped); a bool is not one."""
    import numpy as np

    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    start = {"x": np.float32(123), "y": np.int64(-45), "z": True}
    image = build(seq, stage_position=start).images[0]
    assert (image.stage_position.x, image.stage_position.y) == (123.0, -45.0)
    assert image.stage_position.z is None
