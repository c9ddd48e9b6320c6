"""Hypothesis strategies for useq `MDASequence` plans (useq-schema 0.9.2).

`mda_sequences()` draws over every plan type useq offers: all time plans
(interval 0 included), all z plans, channels (the same config twice, exposures,
``acquire_every``, ``do_stack=False``), every grid / points plan at top level
and in position sub-sequences, stage positions with sub-sequences, well-plate
plans, autofocus plans and any valid ``axis_order``. Plans are kept small
(`MAX_FRAMES` frames of `IMAGE_SHAPE`) and fast (time intervals <= 0.02 s), so
a test can write and read back every drawn plan, or run it on the demo rig.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import useq
from hypothesis import assume, settings
from hypothesis import strategies as st

from tests._oracle import USEQ_ITERATION_ERRORS, is_frame

if TYPE_CHECKING:
    from collections.abc import Callable

#: Presets of the demo rig's "Channel" group (configs/demo.cfg).
CHANNEL_GROUP = "Channel"
CHANNELS: tuple[str, ...] = ("DAPI", "FITC", "TRITC", "Cy5")
IMAGE_SHAPE: tuple[int, int] = (8, 10)
PIXEL_SIZE_UM = 0.5
#: one field of view in µm (grid plans get it explicitly)
FOV_W = IMAGE_SHAPE[1] * PIXEL_SIZE_UM
FOV_H = IMAGE_SHAPE[0] * PIXEL_SIZE_UM
MAX_FRAMES = 150
AXES = "tpgcz"


def examples(n: int) -> int:
    """`n` examples under the CI profile; the loaded profile's count otherwise."""
    current = settings.default
    if settings.get_current_profile_name() == "ci" or current is None:
        return n
    return current.max_examples


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# ---- time -----------------------------------------------------------------------
_INTERVALS = st.sampled_from([0.0, 0.01, 0.02])
_single_time = st.one_of(
    st.builds(useq.TIntervalLoops, interval=_INTERVALS, loops=st.integers(1, 7)),
    # loops >= 2: useq divides the duration by loops - 1
    st.builds(
        useq.TDurationLoops,
        duration=st.sampled_from([0.0, 0.02, 0.03]),
        loops=st.integers(2, 3),
    ),
    # interval > 0: useq divides the duration by the interval
    st.builds(
        useq.TIntervalDuration,
        interval=st.sampled_from([0.01, 0.02]),
        duration=st.sampled_from([0.0, 0.01, 0.02]),
        prioritize_duration=st.booleans(),
    ),
)
time_plans: st.SearchStrategy[Any] = st.one_of(
    _single_time,
    st.builds(
        useq.MultiPhaseTimePlan, phases=st.lists(_single_time, min_size=1, max_size=2)
    ),
)

# ---- z ----------------------------------------------------------------------------
_Z_VALUES = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])
_STEPS = st.sampled_from([0.0, 0.5, 1.0])
relative_z_plans: st.SearchStrategy[Any] = st.one_of(
    st.builds(
        useq.ZRangeAround,
        range=st.sampled_from([0.0, 1.0, 2.0]),
        step=_STEPS,
        go_up=st.booleans(),
    ),
    st.builds(
        useq.ZAboveBelow,
        above=st.sampled_from([0.0, 1.0]),
        below=st.sampled_from([0.0, 1.0]),
        step=_STEPS,
        go_up=st.booleans(),
    ),
    st.builds(
        useq.ZRelativePositions,
        relative=st.lists(_Z_VALUES, min_size=1, max_size=3),
        go_up=st.booleans(),
    ),
)
absolute_z_plans: st.SearchStrategy[Any] = st.one_of(
    # bottom > top with a positive step: no z positions at all
    st.builds(
        useq.ZTopBottom,
        top=_Z_VALUES,
        bottom=_Z_VALUES,
        step=st.sampled_from([1.0, 0.5]),
        go_up=st.booleans(),
    ),
    st.builds(
        useq.ZAbsolutePositions,
        absolute=st.lists(_Z_VALUES, min_size=1, max_size=3),
        go_up=st.booleans(),
    ),
)
z_plans: st.SearchStrategy[Any] = relative_z_plans | absolute_z_plans

# ---- channels ---------------------------------------------------------------------
channel_objs: st.SearchStrategy[useq.Channel] = st.builds(
    useq.Channel,
    config=st.sampled_from(CHANNELS),
    group=st.just(CHANNEL_GROUP),
    exposure=_maybe(st.sampled_from([1.0, 2.0, 5.0])),
    do_stack=st.booleans(),
    z_offset=st.sampled_from([0.0, 0.5]),
    acquire_every=st.integers(1, 3),
)
channel_lists: st.SearchStrategy[list[useq.Channel]] = st.lists(
    channel_objs, max_size=3
)

# ---- grids and points ---------------------------------------------------------------
_FOV = {"fov_width": st.just(FOV_W), "fov_height": st.just(FOV_H)}
_MODES = st.sampled_from(list(useq.OrderMode))
grid_rows_columns: st.SearchStrategy[Any] = st.builds(
    useq.GridRowsColumns,
    rows=st.integers(1, 2),
    columns=st.integers(1, 3),
    overlap=st.sampled_from([0.0, 10.0, (5.0, 50.0)]),
    mode=_MODES,
    relative_to=st.sampled_from(["center", "top_left"]),
    **_FOV,
)
random_points: st.SearchStrategy[Any] = st.builds(
    # via `_build`: useq warns for a `start_at` past the last point
    lambda **kwargs: _build(useq.RandomPoints, **kwargs),
    num_points=st.integers(1, 3),
    max_width=st.sampled_from([10.0, 40.0]),
    max_height=st.sampled_from([10.0, 40.0]),
    shape=st.sampled_from(list(useq.Shape)),
    random_seed=_maybe(st.integers(0, 99)),
    allow_overlap=st.booleans(),
    start_at=st.sampled_from([0, 1]),
    order=_maybe(st.sampled_from(list(useq.TraversalOrder))),
    **_FOV,
).filter(
    # drawn again at each iteration, maybe fewer: mmzarr refuses (a PlanError
    # the oracle knows nothing of; tests/test_fallback.py checks it)
    lambda p: p.random_seed is not None or p.allow_overlap
)
grid_plans: st.SearchStrategy[Any] = st.one_of(
    grid_rows_columns,
    st.builds(
        useq.GridFromEdges,
        top=st.sampled_from([0.0, 4.0, 6.0]),
        left=st.sampled_from([0.0, -5.0]),
        bottom=st.just(0.0),
        right=st.sampled_from([0.0, 5.0]),
        mode=_MODES,
        **_FOV,
    ),
    st.builds(
        useq.GridWidthHeight,
        width=st.sampled_from([5.0, 10.0]),
        height=st.sampled_from([4.0, 8.0]),
        mode=_MODES,
        relative_to=st.sampled_from(["center", "top_left"]),
        **_FOV,
    ),
    st.builds(
        useq.GridFromPolygon,
        vertices=st.sampled_from(
            [[(0.0, 0.0), (8.0, 0.0), (0.0, 6.0)], [(0, 0), (4, 0), (4, 3), (0, 3)]]
        ),
        convex_hull=st.booleans(),
        **_FOV,
    ),
    random_points,
    st.builds(useq.RelativePosition, x=st.just(1.0), y=st.just(-1.0), **_FOV),
)

# ---- autofocus --------------------------------------------------------------------
autofocus_plans: st.SearchStrategy[Any] = st.builds(
    useq.AxesBasedAF,
    axes=st.lists(st.sampled_from(AXES), unique=True, max_size=3).map(tuple),
    autofocus_device_name=_maybe(st.just("Z")),
    autofocus_motor_offset=_maybe(st.sampled_from([0.0, 10.0])),
)


def axis_orders(allow_subsets: bool = True) -> st.SearchStrategy[str]:
    """A permutation of ``tpgcz``; sometimes (`allow_subsets`) of part of it."""
    full = st.permutations(AXES).map("".join)
    if not allow_subsets:
        return full
    part = st.lists(st.sampled_from(AXES), unique=True, min_size=1, max_size=4).map(
        "".join
    )
    # one in four: a part of the axes (useq iterates only those)
    return st.integers(0, 3).flatmap(lambda i: part if i == 0 else full)


def _build(factory: Callable[..., Any], **kwargs: Any) -> Any:
    """`factory(**kwargs)`, rejected when useq refuses it; its warnings ignored."""
    with warnings.catch_warnings():
        # e.g. "acquire_every ... c precedes t", "x/y ignored with absolute grid"
        warnings.simplefilter("ignore")
        try:
            return factory(**kwargs)
        except ValueError:  # pydantic ValidationError included
            assume(False)


@st.composite
def sub_sequences(draw: st.DrawFn) -> useq.MDASequence:
    """A position sub-sequence: any of channels / z / grid / time / autofocus."""
    kwargs: dict[str, Any] = {}
    if draw(st.booleans()):
        kwargs["channels"] = draw(st.lists(channel_objs, min_size=1, max_size=2))
    if draw(st.booleans()):
        kwargs["z_plan"] = draw(z_plans)
    if draw(st.booleans()):
        kwargs["grid_plan"] = draw(grid_plans)
    if draw(st.integers(0, 2)) == 0:
        kwargs["time_plan"] = draw(time_plans)
    if draw(st.integers(0, 3)) == 0:
        kwargs["autofocus_plan"] = draw(autofocus_plans)
    if draw(st.integers(0, 3)) == 0:
        kwargs["axis_order"] = draw(axis_orders())
    return _build(useq.MDASequence, **kwargs)  # type: ignore[no-any-return]


_NAMES = st.sampled_from(["A", "B", "left", "Pos0", "well 1"])


@st.composite
def positions(draw: st.DrawFn) -> useq.Position:
    """A stage position, maybe named (names repeat), maybe with a sub-sequence."""
    coord = _maybe(st.sampled_from([0.0, 5.0, 100.0]))
    return _build(  # type: ignore[no-any-return]
        useq.Position,
        x=draw(coord),
        y=draw(coord),
        z=draw(_maybe(st.sampled_from([0.0, 1.0, 10.0]))),
        name=draw(_maybe(_NAMES)),
        sequence=draw(_maybe(sub_sequences())),
    )


@st.composite
def well_positions(draw: st.DrawFn) -> list[useq.Position]:
    """Hand-written positions in plate wells (no `WellPlatePlan`).

    Wells and names repeat: several fields of one well, maybe all named after
    the well, as a user listing a plate's fields by hand may write them.
    """
    n = draw(st.integers(1, 4))
    names = st.sampled_from(["A1", "B2", "site", "well 1"])
    return [
        _build(
            useq.Position,
            x=float(10 * k),
            y=0.0,
            name=draw(_maybe(names)),
            plate_row=draw(st.integers(0, 1)),
            plate_col=draw(st.integers(0, 2)),
            sequence=draw(_maybe(sub_sequences())),
        )
        for k in range(n)
    ]


@st.composite
def well_plate_plans(draw: st.DrawFn) -> useq.WellPlatePlan:
    """A plate with 1-3 selected wells (a well may be selected twice; a
    6-well plate maybe all of them) and 1-4 points per well."""
    plate = draw(st.sampled_from(["6-well", "24-well", "96-well", "1536-well"]))
    rows, cols = useq.WellPlate.from_str(plate).shape
    wells = draw(
        st.lists(
            st.tuples(st.integers(0, rows - 1), st.integers(0, cols - 1)),
            min_size=1,
            max_size=3,
        )
    )
    points = draw(
        st.one_of(
            st.builds(useq.RelativePosition),
            st.builds(
                useq.GridRowsColumns,
                rows=st.integers(1, 2),
                columns=st.integers(1, 2),
                **_FOV,
            ),
            st.builds(
                useq.RandomPoints,
                num_points=st.integers(1, 2),
                max_width=st.just(100.0),
                max_height=st.just(100.0),
                random_seed=st.integers(0, 99),
                **_FOV,
            ),
            # no field of view: useq iterates 1 µm fields, but has no len()
            st.builds(
                useq.GridWidthHeight,
                width=st.integers(1, 2).map(float),
                height=st.integers(1, 2).map(float),
            ),
        )
    )
    selected: Any = (tuple(r for r, _ in wells), tuple(c for _, c in wells))
    if plate == "6-well" and draw(st.booleans()):
        selected = None  # every well (useq's len() of such a plan is 0)
    return _build(  # type: ignore[no-any-return]
        useq.WellPlatePlan,
        plate=plate,
        a1_center_xy=(draw(st.sampled_from([0.0, 1000.0])), 0.0),
        rotation=draw(_maybe(st.sampled_from([0.0, 5.0]))),
        selected_wells=selected,
        well_points_plan=points,
    )


def frame_count(seq: useq.MDASequence) -> int:
    return sum(1 for e in seq if is_frame(e))


@st.composite
def mda_sequences(draw: st.DrawFn, max_frames: int = MAX_FRAMES) -> useq.MDASequence:
    """Any useq plan with 1..`max_frames` frames."""
    kwargs: dict[str, Any] = {"axis_order": draw(axis_orders())}
    if draw(st.booleans()):
        kwargs["time_plan"] = draw(time_plans)
    if draw(st.booleans()):
        kwargs["z_plan"] = draw(z_plans)
    if draw(st.booleans()):
        kwargs["channels"] = draw(channel_lists)
    if draw(st.integers(0, 2)) == 0:
        kwargs["grid_plan"] = draw(grid_plans)
    kinds = ["none", "positions", "positions", "plate", "wells"]
    kind = draw(st.sampled_from(kinds))
    if kind == "positions":
        kwargs["stage_positions"] = draw(st.lists(positions(), min_size=1, max_size=3))
    elif kind == "plate":
        kwargs["stage_positions"] = draw(well_plate_plans())
    elif kind == "wells":
        kwargs["stage_positions"] = draw(well_positions())
    if draw(st.integers(0, 3)) == 0:
        kwargs["autofocus_plan"] = draw(autofocus_plans)
    if draw(st.integers(0, 5)) == 0:
        kwargs["keep_shutter_open_across"] = draw(
            st.lists(st.sampled_from(AXES), unique=True, max_size=2).map(tuple)
        )
    if draw(st.integers(0, 5)) == 0:
        # (not numpy values: useq 0.9.2 cannot iterate a deep copy of such a
        # plan once it has iterated the plan, as `==` in its cache raises)
        kwargs["metadata"] = {"note": "drawn", "offsets": (0.0, 1.5), "n": None}
    seq: useq.MDASequence = _build(useq.MDASequence, **kwargs)
    try:
        n = frame_count(seq)
    except USEQ_ITERATION_ERRORS:  # plans useq itself cannot iterate
        assume(False)
    assume(1 <= n <= max_frames)
    return seq
