"""A shared table of small useq plans, one per kind of plan mmzarr must handle.

Use with ``@pytest.mark.parametrize("case", PLANS, ids=lambda c: c.name)``.
Frames are tiny (`IMAGE_SHAPE`) and every plan yields at most ~200 events, so a
test may write every case to disk.

Layout, keys, shapes, storage indices, names and channel configs come from
`tests._oracle` (useq's own iteration of ``case.seq``). The expectations stored
here are what the oracle does not give: scales, stage positions, acquisition
order, skipped slots and the plate. They are literals worked out by hand from
each plan (useq's z plans, grid and well-plate geometry), never by running
mmzarr; where useq draws random points the x/y are left out (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import useq

if TYPE_CHECKING:
    from collections.abc import Mapping

IMAGE_SHAPE: tuple[int, int] = (8, 10)
PIXEL_SIZE_UM: float = 0.5
DTYPE = "uint16"
# one camera field of view in µm, as a grid plan should use it
FOV_W = IMAGE_SHAPE[1] * PIXEL_SIZE_UM
FOV_H = IMAGE_SHAPE[0] * PIXEL_SIZE_UM


#: Expected stage position (x, y, z) of one image, in µm.
XYZ = tuple[float | None, float | None, float | None]


@dataclass(frozen=True)
class PlateCase:
    """What the plate metadata of a plate plan must say.

    Parameters
    ----------
    name
        Plate name (a `WellPlatePlan`'s plate; None for loose positions).
    rows
        Row names, one letter each, in order.
    columns
        Number of columns (named ``"1"`` to ``str(columns)``).
    wells
        ``"<row>/<column>"`` of the wells imaged, in plan order.
    """

    name: str | None
    rows: str
    columns: int
    wells: tuple[str, ...]


@dataclass(frozen=True)
class PlanCase:
    """One plan and what the issue says its layout must be.

    Parameters
    ----------
    name
        Test id.
    seq
        The plan.
    layout
        Expected `AcquisitionSettings.layout`.
    t_scale
        Expected seconds per time point of every image with a ``t`` axis (None:
        no image has one).
    ragged
        Whether images of the plan differ in shape (sub-sequences).
    z_scale
        Expected µm between planes of every image with a ``z`` axis (None: no
        image has one).
    positions
        Expected stage position of each image, in image (key) order: x/y of its
        frames, z of its plane 0. An entry is None where useq draws the x/y at
        random (`RandomPoints`).
    acquisition_order
        Expected ``acquisition_order`` (outermost axis first) of every image, or
        per image key when images differ.
    skipped
        Expected ``skipped`` slots per image key (images not listed skip none).
    plate
        Expected plate metadata (None: not a plate).
    """

    name: str
    seq: useq.MDASequence
    layout: Literal["image", "collection", "plate"]
    t_scale: float | None = None
    ragged: bool = False
    z_scale: float | None = None
    positions: tuple[XYZ | None, ...] = ()
    acquisition_order: tuple[str, ...] | Mapping[str, tuple[str, ...]] | None = None
    skipped: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    plate: PlateCase | None = None


def _mda(**kwargs: object) -> useq.MDASequence:
    return useq.MDASequence(**kwargs)  # type: ignore[arg-type]


TWO_CH = ("DAPI", "FITC")
POS3 = (
    useq.Position(x=0.0, y=0.0, z=1.0, name="left"),
    useq.Position(x=100.0, y=-50.0, z=2.0, name="middle"),
    useq.Position(x=200.0, y=25.0, z=3.0, name="right"),
)

PLANS: list[PlanCase] = [
    # ---- single image -------------------------------------------------------
    PlanCase(
        "t-only",
        _mda(time_plan=useq.TIntervalLoops(interval=0.5, loops=4)),
        "image",
        t_scale=0.5,
        acquisition_order=("t",),
        positions=((None, None, None),),
    ),
    PlanCase(
        "c-only",
        _mda(channels=TWO_CH),
        "image",
        acquisition_order=("c",),
        positions=((None, None, None),),
    ),
    PlanCase(
        "tcz-tpgcz",
        _mda(
            axis_order="tpgcz",
            time_plan=useq.TIntervalLoops(interval=2, loops=3),
            channels=TWO_CH,
            z_plan=useq.ZRangeAround(range=2, step=1),
        ),
        "image",
        t_scale=2.0,
        acquisition_order=("t", "c", "z"),
        z_scale=1.0,
        positions=((None, None, -1.0),),
    ),
    PlanCase(
        "tcz-tpgzc",
        _mda(
            axis_order="tpgzc",
            time_plan=useq.TIntervalLoops(interval=2, loops=3),
            channels=TWO_CH,
            z_plan=useq.ZRangeAround(range=1.4, step=0.7),
        ),
        "image",
        t_scale=2.0,
        acquisition_order=("t", "z", "c"),
        z_scale=0.7,
        positions=((None, None, -0.7),),
    ),
    PlanCase(
        "tcz-tpcz",
        _mda(
            axis_order="tpcz",
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=("Cy5", "DAPI", "FITC"),
            z_plan=useq.ZTopBottom(top=3, bottom=0, step=1.5),
        ),
        "image",
        t_scale=1.0,
        acquisition_order=("t", "c", "z"),
        z_scale=1.5,
        positions=((None, None, 0.0),),
    ),
    PlanCase(
        "tcz-ctz",
        _mda(
            axis_order="ctz",
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=TWO_CH,
            z_plan=useq.ZRangeAround(range=1, step=0.5),
        ),
        "image",
        t_scale=1.0,
        acquisition_order=("c", "t", "z"),
        z_scale=0.5,
        positions=((None, None, -0.5),),
    ),
    PlanCase(
        "duration-loops",
        _mda(time_plan=useq.TDurationLoops(duration=3, loops=4), channels=["DAPI"]),
        "image",
        t_scale=1.0,
        acquisition_order=("t", "c"),
        positions=((None, None, None),),
    ),
    PlanCase(
        "interval-duration",
        _mda(time_plan=useq.TIntervalDuration(interval=0.25, duration=1)),
        "image",
        t_scale=0.25,
        acquisition_order=("t",),
        positions=((None, None, None),),
    ),
    PlanCase(
        "multiphase",
        _mda(
            time_plan=useq.MultiPhaseTimePlan(
                phases=[
                    useq.TIntervalLoops(interval=0.5, loops=3),
                    useq.TIntervalLoops(interval=2, loops=3),
                ]
            ),
            channels=TWO_CH,
        ),
        "image",
        t_scale=0.5,
        acquisition_order=("t", "c"),
        positions=((None, None, None),),
    ),
    PlanCase(
        "multiphase-zero-first",
        _mda(
            time_plan=useq.MultiPhaseTimePlan(
                phases=[
                    useq.TIntervalLoops(interval=0, loops=3),
                    useq.TDurationLoops(duration=4, loops=3),
                ]
            ),
        ),
        "image",
        t_scale=2.0,
        acquisition_order=("t",),
        positions=((None, None, None),),
    ),
    PlanCase(
        "z-above-below",
        _mda(z_plan=useq.ZAboveBelow(above=1, below=0.5, step=0.5), channels=TWO_CH),
        "image",
        acquisition_order=("c", "z"),
        z_scale=0.5,
        positions=((None, None, -0.5),),
    ),
    PlanCase(
        "z-top-bottom-down",
        _mda(z_plan=useq.ZTopBottom(top=2, bottom=0, step=0.5, go_up=False)),
        "image",
        acquisition_order=("z",),
        z_scale=-0.5,  # downwards: plane k at 2.0 - 0.5 k
        positions=((None, None, 2.0),),
    ),
    PlanCase(
        "z-range-around-down",
        _mda(z_plan=useq.ZRangeAround(range=3, step=0.75, go_up=False)),
        "image",
        acquisition_order=("z",),
        z_scale=-0.75,  # downwards: plane k at 1.5 - 0.75 k
        positions=((None, None, 1.5),),
    ),
    PlanCase(
        "z-absolute",
        _mda(
            z_plan=useq.ZAbsolutePositions(absolute=[10.0, 10.5, 11.0, 11.5]),
            channels=["DAPI"],
        ),
        "image",
        acquisition_order=("c", "z"),
        z_scale=0.5,
        positions=((None, None, 10.0),),
    ),
    PlanCase(
        "z-relative-with-position",
        _mda(
            stage_positions=[useq.Position(x=5.0, y=6.0, z=100.0, name="only")],
            z_plan=useq.ZRelativePositions(relative=[-0.5, 0.0, 0.5]),
            channels=TWO_CH,
        ),
        "image",
        acquisition_order=("c", "z"),
        z_scale=0.5,
        positions=((5.0, 6.0, 99.5),),
    ),
    PlanCase(
        "do-stack-false",
        _mda(
            axis_order="tpgcz",
            channels=[
                useq.Channel(config="DAPI"),
                useq.Channel(config="FITC", do_stack=False),
            ],
            z_plan=useq.ZRangeAround(range=4, step=1),
        ),
        "image",
        acquisition_order=("c", "z"),
        z_scale=1.0,
        positions=((None, None, -2.0),),
        # FITC only on the middle plane
        skipped={"": ((1, 0), (1, 1), (1, 3), (1, 4))},
    ),
    PlanCase(
        "do-stack-false-zc",
        _mda(
            axis_order="tpgzc",
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=[
                useq.Channel(config="DAPI", do_stack=False),
                useq.Channel(config="FITC"),
            ],
            z_plan=useq.ZAboveBelow(above=1, below=1, step=1),
        ),
        "image",
        t_scale=1.0,
        acquisition_order=("t", "z", "c"),
        z_scale=1.0,
        positions=((None, None, -1.0),),
        # DAPI only on the middle plane
        skipped={"": ((0, 0, 0), (0, 0, 2), (1, 0, 0), (1, 0, 2))},
    ),
    PlanCase(
        "acquire-every-2",
        _mda(
            time_plan=useq.TIntervalLoops(interval=1, loops=5),
            channels=[
                useq.Channel(config="DAPI"),
                useq.Channel(config="FITC", acquire_every=2),
            ],
        ),
        "image",
        t_scale=1.0,
        acquisition_order=("t", "c"),
        positions=((None, None, None),),
        # FITC only on even time points
        skipped={"": ((1, 1), (3, 1))},
    ),
    PlanCase(
        "acquire-every-3-z",
        _mda(
            axis_order="tpgzc",
            time_plan=useq.TIntervalLoops(interval=1, loops=4),
            channels=[
                useq.Channel(config="DAPI", acquire_every=3),
                useq.Channel(config="FITC"),
            ],
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "image",
        t_scale=1.0,
        acquisition_order=("t", "z", "c"),
        z_scale=1.0,
        positions=((None, None, -0.5),),
        # DAPI only at t=0 and t=3
        skipped={"": ((1, 0, 0), (1, 0, 1), (2, 0, 0), (2, 0, 1))},
    ),
    PlanCase(
        "unicode-names",
        _mda(
            stage_positions=[useq.Position(x=1.0, y=2.0, name="Pösition-µ 細胞")],
            channels=["GFP-λ", "mCherry-β"],
        ),
        "image",
        acquisition_order=("c",),
        positions=((1.0, 2.0, None),),
    ),
    PlanCase(
        "one-position-z",
        _mda(
            stage_positions=[useq.Position(x=10.0, y=20.0, z=30.0)],
            z_plan=useq.ZRangeAround(range=1, step=0.5),
        ),
        "image",
        acquisition_order=("z",),
        z_scale=0.5,
        positions=((10.0, 20.0, 29.5),),
    ),
    # ---- collections --------------------------------------------------------
    PlanCase(
        "positions-tpgcz",
        _mda(
            axis_order="tpgcz",
            stage_positions=POS3,
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=TWO_CH,
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "collection",
        t_scale=1.0,
        acquisition_order=("t", "c", "z"),
        z_scale=1.0,
        positions=((0.0, 0.0, 0.5), (100.0, -50.0, 1.5), (200.0, 25.0, 2.5)),
    ),
    PlanCase(
        "positions-ptgcz",
        _mda(
            axis_order="ptgcz",
            stage_positions=POS3,
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=TWO_CH,
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "collection",
        t_scale=1.0,
        acquisition_order=("t", "c", "z"),
        z_scale=1.0,
        positions=((0.0, 0.0, 0.5), (100.0, -50.0, 1.5), (200.0, 25.0, 2.5)),
    ),
    PlanCase(
        "positions-tpzc",
        _mda(
            axis_order="tpzc",
            stage_positions=POS3[:2],
            time_plan=useq.TIntervalLoops(interval=0.1, loops=2),
            channels=TWO_CH,
            z_plan=useq.ZAboveBelow(above=1, below=1, step=1),
        ),
        "collection",
        t_scale=0.1,
        acquisition_order=("t", "z", "c"),
        z_scale=1.0,
        positions=((0.0, 0.0, 0.0), (100.0, -50.0, 1.0)),
    ),
    PlanCase(
        "positions-only",
        _mda(stage_positions=[(0.0, 0.0), (10.0, 10.0), (20.0, 0.0, 5.0)]),
        "collection",
        acquisition_order=(),
        positions=((0.0, 0.0, None), (10.0, 10.0, None), (20.0, 0.0, 5.0)),
    ),
    PlanCase(
        "positions-unicode",
        _mda(
            stage_positions=[
                useq.Position(x=0.0, y=0.0, name="Zelle Ä"),
                useq.Position(x=1.0, y=1.0, name="セル"),
            ],
            channels=["Señal"],
        ),
        "collection",
        acquisition_order=("c",),
        positions=((0.0, 0.0, None), (1.0, 1.0, None)),
    ),
    PlanCase(
        "grid-rows-columns",
        _mda(
            grid_plan=useq.GridRowsColumns(
                rows=2, columns=3, fov_width=FOV_W, fov_height=FOV_H
            ),
            channels=TWO_CH,
        ),
        "collection",
        acquisition_order=("c",),
        # row-wise snake around (0, 0), 5 x 4 µm steps
        positions=(
            (-5.0, 2.0, None),
            (0.0, 2.0, None),
            (5.0, 2.0, None),
            (5.0, -2.0, None),
            (0.0, -2.0, None),
            (-5.0, -2.0, None),
        ),
    ),
    PlanCase(
        "grid-rows-columns-overlap-positions",
        _mda(
            axis_order="tpgcz",
            stage_positions=POS3[:2],
            grid_plan=useq.GridRowsColumns(
                rows=2, columns=2, fov_width=FOV_W, fov_height=FOV_H, overlap=10
            ),
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
            channels=["DAPI"],
        ),
        "collection",
        t_scale=1.0,
        acquisition_order=("t", "c"),
        # 10 % overlap: 4.5 x 3.6 µm steps around each position
        positions=(
            (-2.25, 1.8, 1.0),
            (2.25, 1.8, 1.0),
            (2.25, -1.8, 1.0),
            (-2.25, -1.8, 1.0),
            (97.75, -48.2, 2.0),
            (102.25, -48.2, 2.0),
            (102.25, -51.8, 2.0),
            (97.75, -51.8, 2.0),
        ),
    ),
    PlanCase(
        "grid-from-edges",
        _mda(
            grid_plan=useq.GridFromEdges(
                top=0, left=0, bottom=-6, right=12, fov_width=6, fov_height=4
            ),
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "collection",
        acquisition_order=("z",),
        z_scale=1.0,
        # 2 x 2 fields of 6 x 4 µm from the top-left corner
        positions=(
            (3.0, -2.0, -0.5),
            (9.0, -2.0, -0.5),
            (9.0, -6.0, -0.5),
            (3.0, -6.0, -0.5),
        ),
    ),
    PlanCase(
        "random-points",
        _mda(
            grid_plan=useq.RandomPoints(
                num_points=4, max_width=100, max_height=80, random_seed=7
            ),
            channels=TWO_CH,
        ),
        "collection",
        acquisition_order=("c",),
        positions=(None, None, None, None),
    ),
    PlanCase(
        "subseq-grid-rows-columns",
        _mda(
            stage_positions=[
                useq.Position(
                    x=0.0,
                    y=0.0,
                    name="tiled",
                    sequence=useq.MDASequence(
                        grid_plan=useq.GridRowsColumns(
                            rows=1, columns=2, fov_width=FOV_W, fov_height=FOV_H
                        )
                    ),
                ),
                useq.Position(x=500.0, y=500.0, name="plain"),
            ],
            channels=TWO_CH,
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
        ),
        "collection",
        t_scale=1.0,
        acquisition_order=("t", "c"),
        positions=((-2.5, 0.0, None), (2.5, 0.0, None), (500.0, 500.0, None)),
    ),
    PlanCase(
        "subseq-grid-from-edges",
        _mda(
            stage_positions=[
                useq.Position(x=3.0, y=3.0, name="plain"),
                useq.Position(
                    name="edges",
                    sequence=useq.MDASequence(
                        grid_plan=useq.GridFromEdges(
                            top=10,
                            left=0,
                            bottom=0,
                            right=10,
                            fov_width=5,
                            fov_height=5,
                        )
                    ),
                ),
            ],
            channels=["DAPI"],
        ),
        "collection",
        acquisition_order=("c",),
        positions=(
            (3.0, 3.0, None),
            (2.5, 7.5, None),
            (7.5, 7.5, None),
            (7.5, 2.5, None),
            (2.5, 2.5, None),
        ),
    ),
    PlanCase(
        "subseq-random-points",
        _mda(
            stage_positions=[
                useq.Position(
                    x=50.0,
                    y=-50.0,
                    sequence=useq.MDASequence(
                        grid_plan=useq.RandomPoints(
                            num_points=3,
                            max_width=40,
                            max_height=40,
                            shape="rectangle",
                            random_seed=3,
                        )
                    ),
                ),
                useq.Position(x=0.0, y=0.0),
            ],
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "collection",
        acquisition_order=("z",),
        z_scale=1.0,
        positions=(None, None, None, (0.0, 0.0, -0.5)),
    ),
    PlanCase(
        "subseq-channels-and-z",
        _mda(
            axis_order="tpgcz",
            stage_positions=[
                useq.Position(x=0.0, y=0.0, z=0.0, name="plain"),
                useq.Position(
                    x=10.0,
                    y=10.0,
                    z=5.0,
                    name="richer",
                    sequence=useq.MDASequence(
                        channels=["DAPI", "FITC", "Cy5"],
                        z_plan=useq.ZRangeAround(range=2, step=1),
                    ),
                ),
                useq.Position(x=20.0, y=20.0, z=5.0, name="plain2"),
            ],
            channels=["DAPI"],
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
        ),
        "collection",
        t_scale=1.0,
        ragged=True,
        acquisition_order={"0": ("t", "c"), "1": ("t", "c", "z"), "2": ("t", "c")},
        z_scale=1.0,
        positions=((0.0, 0.0, 0.0), (10.0, 10.0, 4.0), (20.0, 20.0, 5.0)),
    ),
    PlanCase(
        "subseq-z-only-tpzc",
        _mda(
            axis_order="tpzc",
            stage_positions=[
                useq.Position(x=0.0, y=0.0, z=0.0),
                useq.Position(
                    x=10.0,
                    y=10.0,
                    z=1.0,
                    sequence=useq.MDASequence(
                        z_plan=useq.ZAbsolutePositions(absolute=[1.0, 2.0, 3.0])
                    ),
                ),
            ],
            channels=TWO_CH,
        ),
        "collection",
        ragged=True,
        acquisition_order={"0": ("c",), "1": ("c", "z")},
        z_scale=1.0,
        positions=((0.0, 0.0, 0.0), (10.0, 10.0, 1.0)),
    ),
    PlanCase(
        "subseq-fewer-channels",
        _mda(
            stage_positions=[
                useq.Position(
                    x=1.0,
                    y=1.0,
                    sequence=useq.MDASequence(
                        channels=["Cy5"], z_plan=useq.ZRangeAround(range=1, step=1)
                    ),
                ),
                useq.Position(x=2.0, y=2.0),
            ],
            channels=["DAPI", "FITC", "TRITC"],
        ),
        "collection",
        ragged=True,
        acquisition_order={"0": ("c", "z"), "1": ("c",)},
        z_scale=1.0,
        # position 1 sets no z: the stage stays at the last plane of position 0
        positions=((1.0, 1.0, -0.5), (2.0, 2.0, 0.5)),
    ),
    PlanCase(
        "subseq-acquire-every-ptgcz",
        _mda(
            axis_order="ptgcz",
            stage_positions=[
                useq.Position(x=0.0, y=0.0, name="a"),
                useq.Position(
                    x=1.0,
                    y=1.0,
                    name="b",
                    sequence=useq.MDASequence(
                        channels=[
                            useq.Channel(config="DAPI"),
                            useq.Channel(config="Cy5", acquire_every=2),
                        ],
                        time_plan=useq.TIntervalLoops(interval=1, loops=3),
                    ),
                ),
            ],
            channels=["DAPI"],
        ),
        "collection",
        t_scale=1.0,
        ragged=True,
        acquisition_order={"0": ("c",), "1": ("t", "c")},
        positions=((0.0, 0.0, None), (1.0, 1.0, None)),
        # Cy5 only on even time points of position b
        skipped={"1": ((1, 1),)},
    ),
    # ---- plates -------------------------------------------------------------
    PlanCase(
        "plate-grid",
        _mda(
            stage_positions=useq.WellPlatePlan(
                plate="96-well",
                a1_center_xy=(0.0, 0.0),
                selected_wells=([0, 0, 1], [0, 1, 0]),
                well_points_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=FOV_W, fov_height=FOV_H
                ),
            ),
            channels=TWO_CH,
        ),
        "plate",
        acquisition_order=("c",),
        # wells 9 mm apart, y down the rows; two fields 5 µm apart per well; a well
        # point is a RelativePosition, whose z (0) becomes the position's
        positions=(
            (-2.5, 0.0, 0.0),
            (2.5, 0.0, 0.0),
            (8997.5, 0.0, 0.0),
            (9002.5, 0.0, 0.0),
            (-2.5, -9000.0, 0.0),
            (2.5, -9000.0, 0.0),
        ),
        plate=PlateCase("96-well", "ABCDEFGH", 12, ("A/1", "A/2", "B/1")),
    ),
    PlanCase(
        "plate-random-tpzc",
        _mda(
            axis_order="tpzc",
            stage_positions=useq.WellPlatePlan(
                plate="24-well",
                a1_center_xy=(100.0, 200.0),
                selected_wells=([1, 3], [2, 5]),
                well_points_plan=useq.RandomPoints(
                    num_points=3, max_width=500, max_height=500, random_seed=11
                ),
            ),
            time_plan=useq.TIntervalLoops(interval=3, loops=2),
            z_plan=useq.ZRangeAround(range=1, step=1),
        ),
        "plate",
        t_scale=3.0,
        acquisition_order=("t", "z"),
        z_scale=1.0,
        positions=(None,) * 6,
        plate=PlateCase("24-well", "ABCD", 6, ("B/3", "D/6")),
    ),
    PlanCase(
        "plate-center-only",
        _mda(
            stage_positions=useq.WellPlatePlan(
                plate="384-well",
                a1_center_xy=(0.0, 0.0),
                selected_wells=(slice(14, 16), slice(0, 2)),
            ),
            channels=["DAPI"],
        ),
        "plate",
        acquisition_order=("c",),
        # wells 4.5 mm apart
        positions=(
            (0.0, -63000.0, 0.0),
            (4500.0, -63000.0, 0.0),
            (0.0, -67500.0, 0.0),
            (4500.0, -67500.0, 0.0),
        ),
        plate=PlateCase(
            "384-well", "ABCDEFGHIJKLMNOP", 24, ("O/1", "O/2", "P/1", "P/2")
        ),
    ),
    PlanCase(
        "plate-with-grid-plan",
        _mda(
            axis_order="tpgcz",
            stage_positions=useq.WellPlatePlan(
                plate="96-well",
                a1_center_xy=(0.0, 0.0),
                selected_wells=([2], [3]),
            ),
            grid_plan=useq.GridRowsColumns(
                rows=2, columns=1, fov_width=FOV_W, fov_height=FOV_H
            ),
            channels=["DAPI"],
        ),
        "plate",
        acquisition_order=("c",),
        positions=((27000.0, -17998.0, 0.0), (27000.0, -18002.0, 0.0)),
        plate=PlateCase("96-well", "ABCDEFGH", 12, ("C/4",)),
    ),
    PlanCase(
        "plate-positions",
        _mda(
            stage_positions=[
                useq.Position(x=0.0, y=0.0, plate_row=1, plate_col=2, name="C3-a"),
                useq.Position(x=1.0, y=0.0, plate_row=0, plate_col=0, name="A1-a"),
                useq.Position(x=2.0, y=0.0, plate_row=1, plate_col=2, name="C3-b"),
                useq.Position(x=3.0, y=0.0, plate_row=0, plate_col=0, name="A1-b"),
            ],
            channels=["DAPI"],
        ),
        "plate",
        acquisition_order=("c",),
        positions=(
            (0.0, 0.0, None),
            (1.0, 0.0, None),
            (2.0, 0.0, None),
            (3.0, 0.0, None),
        ),
        # rows/columns up to the last one used
        plate=PlateCase(None, "AB", 3, ("B/3", "A/1")),
    ),
    PlanCase(
        "plate-positions-grid-fields",
        _mda(
            stage_positions=[
                useq.Position(
                    x=0.0, y=0.0, plate_row=0, plate_col=0, grid_row=0, grid_col=0
                ),
                useq.Position(
                    x=5.0, y=0.0, plate_row=0, plate_col=0, grid_row=0, grid_col=1
                ),
                useq.Position(
                    x=90.0, y=0.0, plate_row=0, plate_col=1, grid_row=0, grid_col=0
                ),
            ],
            time_plan=useq.TIntervalLoops(interval=1, loops=2),
        ),
        "plate",
        t_scale=1.0,
        acquisition_order=("t",),
        positions=((0.0, 0.0, None), (5.0, 0.0, None), (90.0, 0.0, None)),
        plate=PlateCase(None, "A", 2, ("A/1", "A/2")),
    ),
    PlanCase(
        "plate-subseq-channels",
        _mda(
            stage_positions=[
                useq.Position(x=0.0, y=0.0, plate_row=0, plate_col=0, name="w1"),
                useq.Position(
                    x=9.0,
                    y=0.0,
                    plate_row=0,
                    plate_col=1,
                    name="w2",
                    sequence=useq.MDASequence(
                        channels=["DAPI", "FITC"],
                        z_plan=useq.ZRangeAround(range=1, step=1),
                    ),
                ),
            ],
            channels=["DAPI"],
        ),
        "plate",
        ragged=True,
        acquisition_order={"A/1/0": ("c",), "A/2/0": ("c", "z")},
        z_scale=1.0,
        positions=((0.0, 0.0, None), (9.0, 0.0, -0.5)),
        plate=PlateCase(None, "A", 2, ("A/1", "A/2")),
    ),
]

# a plan for each name, for tests that want one specific plan
PLANS_BY_NAME: dict[str, PlanCase] = {c.name: c for c in PLANS}
