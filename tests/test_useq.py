"""`AcquisitionSettings.from_useq` and `locate` checked against useq's own events.

Every expectation here is computed from iterating the plan with useq (indices,
positions, channel configs, z positions) or from the plan objects themselves,
never from what mmzarr returned.
"""

from __future__ import annotations

import itertools
import math
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import useq

from mmzarr import AcquisitionSettings, FrameError, MMZarrWarning, PlanError
from tests._plans import DTYPE, IMAGE_SHAPE, PIXEL_SIZE_UM, PLANS, PLANS_BY_NAME

if TYPE_CHECKING:
    from tests._plans import PlanCase

NS = ("t", "c", "z")


# ---- what useq says -------------------------------------------------------------
def _index(ev: useq.MDAEvent) -> dict[str, int]:
    return {str(k): int(v) for k, v in ev.index.items()}


@dataclass
class UseqImage:
    """The events of one image (one value of the non-t/c/z axes), per useq."""

    coords: dict[str, int]
    events: list[useq.MDAEvent] = field(default_factory=list)

    @property
    def axes(self) -> tuple[str, ...]:
        present = {k for ev in self.events for k in _index(ev)}
        return tuple(a for a in NS if a in present)

    @property
    def slots(self) -> list[tuple[int, ...]]:
        """Each event's (t, c, z) values, for the axes the image has, in order."""
        out = []
        for ev in self.events:
            idx = _index(ev)
            assert all(a in idx for a in self.axes), "plan table: ragged index keys"
            out.append(tuple(idx[a] for a in self.axes))
        return out

    @property
    def sizes(self) -> tuple[int, ...]:
        slots = self.slots
        return tuple(max(s[i] for s in slots) + 1 for i in range(len(self.axes)))

    def position(self, seq: useq.MDASequence) -> useq.Position | None:
        p = self.coords.get("p")
        return None if p is None else list(seq.stage_positions)[p]


def useq_images(seq: useq.MDASequence) -> list[UseqImage]:
    """Images in plan order (order of their first event)."""
    images: dict[tuple[tuple[str, int], ...], UseqImage] = {}
    for ev in seq:
        coords = {k: v for k, v in _index(ev).items() if k not in NS}
        key = tuple(sorted(coords.items()))
        images.setdefault(key, UseqImage(coords)).events.append(ev)
    return list(images.values())


def expected_layout(seq: useq.MDASequence) -> tuple[str, list[str]]:
    """Layout and image keys the issue's rules give for `seq`."""
    images = useq_images(seq)
    positions = [im.position(seq) for im in images]
    if any(p is not None and p.plate_row is not None for p in positions):
        fields: Counter[tuple[int, int]] = Counter()
        keys = []
        for p in positions:
            assert p is not None
            assert p.plate_row is not None
            assert p.plate_col is not None
            well = (p.plate_row, p.plate_col)
            row = string.ascii_uppercase[p.plate_row]
            keys.append(f"{row}/{p.plate_col + 1}/{fields[well]}")
            fields[well] += 1
        return "plate", keys
    if len(images) == 1:
        return "image", [""]
    return "collection", [str(i) for i in range(len(images))]


def build(seq: useq.MDASequence, **kwargs: Any) -> AcquisitionSettings:
    kwargs.setdefault("image_shape", IMAGE_SHAPE)
    kwargs.setdefault("dtype", DTYPE)
    kwargs.setdefault("pixel_size_um", PIXEL_SIZE_UM)
    return AcquisitionSettings.from_useq(seq, **kwargs)


def _pairs(case: PlanCase) -> list[tuple[UseqImage, Any]]:
    """(useq image, mmzarr image) pairs, matched by `locate` of the first event."""
    s = build(case.seq)
    out = []
    for im in useq_images(case.seq):
        key, _ = s.locate(im.events[0].index)
        out.append((im, s.image(key)))
    return out


cases = pytest.mark.parametrize("case", PLANS, ids=lambda c: c.name)


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
    layout, keys = expected_layout(case.seq)
    assert s.layout == case.layout == layout
    assert s.keys == tuple(keys)
    assert (s.plate is not None) == (layout == "plate")


@cases
def test_shapes_and_storage_order(case: PlanCase) -> None:
    s = build(case.seq)
    shapes = set()
    for im, image in _pairs(case):
        # NGFF order whatever the acquisition axis_order
        assert image.dim_names == (*im.axes, "y", "x")
        assert image.shape == (*im.sizes, *IMAGE_SHAPE)
        assert image.frame_shape == IMAGE_SHAPE
        shapes.add(image.shape)
    assert s.dtype == DTYPE
    assert (len(shapes) > 1) == case.ragged


@cases
def test_locate_every_event(case: PlanCase) -> None:
    s = build(case.seq)
    _, keys = expected_layout(case.seq)
    seen = set()
    n = 0
    for key, im in zip(keys, useq_images(case.seq), strict=True):
        for ev, slot in zip(im.events, im.slots, strict=True):
            loc = s.locate(ev.index)
            assert loc == (key, slot), dict(ev.index)
            # plain-str keys give the same answer as useq's Axis keys
            assert s.locate(_index(ev)) == loc
            seen.add(loc)
            n += 1
    assert n == len(list(case.seq))
    assert len(seen) == n, "two events share a storage slot"


@cases
def test_acquired_slots_and_skipped(case: PlanCase) -> None:
    s = build(case.seq)
    for im, image in _pairs(case):
        acquired = set(im.slots)
        full = set(itertools.product(*(range(n) for n in im.sizes)))
        assert set(image.skipped) == full - acquired
        assert len(image.skipped) == len(set(image.skipped))
        assert {i for i in full if image.is_acquired(i)} == acquired
        assert image.frames_planned == len(im.events)
        # appending in acquisition order visits exactly useq's events, in order
        assert list(image.iter_indices()) == im.slots
    assert s.frames_planned == len(list(case.seq))
    total = len(list(case.seq)) * math.prod(IMAGE_SHAPE) * 2
    assert s.bytes_planned == total


@cases
def test_scales_and_units(case: PlanCase) -> None:
    for im, image in _pairs(case):
        for ax in ("y", "x"):
            assert image.dim(ax).scale == PIXEL_SIZE_UM
            assert image.dim(ax).unit == "micrometer"
        if "t" in im.axes:
            t = image.dim("t")
            assert t.unit == "second"
            assert t.type == "time"
            assert case.t_scale is not None
            assert t.scale == pytest.approx(case.t_scale)
        if "c" in im.axes:
            assert image.dim("c").type == "channel"
            assert image.dim("c").scale == 1
        if "z" in im.axes:
            z = image.dim("z")
            assert z.unit == "micrometer"
            assert z.scale == pytest.approx(_z_step(im))


def _z_step(im: UseqImage) -> float:
    """Distance between planes 0 and 1 of one (t, c) stack, from useq's z_pos."""
    by_stack: dict[tuple[int, ...], dict[int, float]] = {}
    for ev in im.events:
        idx = _index(ev)
        stack = tuple(idx.get(a, 0) for a in ("t", "c"))
        by_stack.setdefault(stack, {})[idx["z"]] = float(ev.z_pos or 0)
    for planes in by_stack.values():
        if 0 in planes and 1 in planes:
            return abs(planes[1] - planes[0])
    return 1.0  # a single plane: nothing to measure


@cases
def test_positions_and_names(case: PlanCase) -> None:
    for im, image in _pairs(case):
        xy = {(ev.x_pos, ev.y_pos) for ev in im.events}
        assert len(xy) == 1, "plan table: an image moves in x/y"
        ((x, y),) = xy
        assert image.stage_position.x == pytest.approx(x)
        assert image.stage_position.y == pytest.approx(y)
        # z of the first plane (when the plan acquires plane 0 at all)
        planes0 = [ev for ev in im.events if _index(ev).get("z", 0) == 0]
        if planes0 and planes0[0].z_pos is None:
            assert image.stage_position.z is None
        elif planes0:
            assert image.stage_position.z == pytest.approx(planes0[0].z_pos)
        assert image.coords == im.coords
        names = {ev.pos_name for ev in im.events}
        assert len(names) == 1
        (pos_name,) = names
        if pos_name is not None:
            assert image.name is not None
            if "g" in im.coords:
                assert image.name.startswith(pos_name)
            else:
                assert image.name == pos_name


@cases
def test_channel_names(case: PlanCase) -> None:
    for im, image in _pairs(case):
        if "c" not in im.axes:
            assert len(image.channels) <= 1
            continue
        expected: dict[int, str] = {}
        for ev in im.events:
            assert ev.channel is not None
            expected.setdefault(_index(ev)["c"], ev.channel.config)
        n_c = im.sizes[im.axes.index("c")]
        assert len(image.channels) == n_c
        for i in range(n_c):
            # a channel slot useq never fills (do_stack=False quirks) gets a name
            # too, but only the acquired ones can be checked
            assert image.channels[i].name == expected.get(i, image.channels[i].name)
        for ch in image.channels:
            assert len(ch.color) == 6
            int(ch.color, 16)


@cases
def test_plate(case: PlanCase) -> None:
    s = build(case.seq)
    if case.layout != "plate":
        assert s.plate is None
        for image in s.images:
            assert image.row is image.column is image.field is None
        return
    assert s.plate is not None
    sp = case.seq.stage_positions
    wells = []
    for im, image in _pairs(case):
        pos = im.position(case.seq)
        assert pos is not None
        assert pos.plate_row is not None
        assert pos.plate_col is not None
        row = string.ascii_uppercase[pos.plate_row]
        col = str(pos.plate_col + 1)
        assert (image.row, image.column) == (row, col)
        assert image.key == f"{row}/{col}/{image.field}"
        if f"{row}/{col}" not in wells:
            wells.append(f"{row}/{col}")
        assert row in s.plate.rows
        assert col in s.plate.columns
    assert s.plate.wells == tuple(wells)
    # fields are numbered 0, 1, ... in plan order inside each well
    by_well: dict[str, list[int]] = {}
    for image in s.images:
        by_well.setdefault(f"{image.row}/{image.column}", []).append(image.field)
    assert all(f == list(range(len(f))) for f in by_well.values())
    if isinstance(sp, useq.WellPlatePlan):
        letters = string.ascii_uppercase
        assert s.plate.rows == tuple(letters[i] for i in range(sp.plate.rows))
        assert s.plate.columns == tuple(str(i + 1) for i in range(sp.plate.columns))
        names = [w.replace("/", "") for w in s.plate.wells]
        assert names == [str(n) for n in sp.selected_well_names]
        assert s.plate.name == sp.plate.name
        fields = sp.num_points_per_well * max(1, case.seq.sizes.get("g", 0))
        assert all(len(f) == fields for f in by_well.values())


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
    n_z = case.seq.z_plan.num_positions()
    mid = n_z // 2
    assert image.skipped == tuple((1, z) for z in range(n_z) if z != mid)


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
        idx = _index(ev)
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
def test_empty_plan() -> None:
    with pytest.raises(ValueError, match="empty"):
        build(useq.MDASequence())


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


def test_two_positions_claim_one_well_field() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=0, plate_col=0, name="f"),
            useq.Position(x=0, y=0, plate_row=0, plate_col=0, name="f"),
        ]
    )
    with pytest.raises(ValueError, match=r"'f'.*well A1|well A1.*'f'") as e:
        build(seq)
    assert "p=0" in str(e.value)
    assert "p=1" in str(e.value)


def test_two_positions_claim_one_grid_field() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=1, plate_col=2, grid_row=0, grid_col=1),
            useq.Position(x=1, y=0, plate_row=1, plate_col=2, grid_row=0, grid_col=1),
        ]
    )
    with pytest.raises(ValueError, match=r"well B3"):
        build(seq)


def test_well_outside_the_plate() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=0, plate_col=0),
            useq.Position(x=0, y=0, plate_row=-1, plate_col=3),
        ]
    )
    with pytest.raises(ValueError, match=r"plate_row=-1"):
        build(seq)


def test_mixing_plate_and_plain_positions() -> None:
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, plate_row=0, plate_col=0),
            useq.Position(x=0, y=0, name="loose"),
        ]
    )
    with pytest.raises(ValueError, match=r"'loose'"):
        build(seq)


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
    idx = [_index(ev) for ev in seq]
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
