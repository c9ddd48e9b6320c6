"""A shared table of small useq plans, one per kind of plan mmzarr must handle.

Use with ``@pytest.mark.parametrize("case", PLANS, ids=lambda c: c.name)``.
Frames are tiny (`IMAGE_SHAPE`) and every plan yields at most ~200 events, so a
test may write every case to disk. The expectations stored here are only the ones
useq cannot tell (the layout the issue asks for); everything else should be
computed from useq's own iteration of ``case.seq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import useq

IMAGE_SHAPE: tuple[int, int] = (8, 10)
PIXEL_SIZE_UM: float = 0.5
DTYPE = "uint16"
# one camera field of view in µm, as a grid plan should use it
FOV_W = IMAGE_SHAPE[1] * PIXEL_SIZE_UM
FOV_H = IMAGE_SHAPE[0] * PIXEL_SIZE_UM


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
        Expected seconds per time point (None: the plan has no time axis).
    ragged
        Whether images of the plan differ in shape (sub-sequences).
    """

    name: str
    seq: useq.MDASequence
    layout: Literal["image", "collection", "plate"]
    t_scale: float | None = None
    ragged: bool = False


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
    ),
    PlanCase("c-only", _mda(channels=TWO_CH), "image"),
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
    ),
    PlanCase(
        "duration-loops",
        _mda(time_plan=useq.TDurationLoops(duration=3, loops=4), channels=["DAPI"]),
        "image",
        t_scale=1.0,
    ),
    PlanCase(
        "interval-duration",
        _mda(time_plan=useq.TIntervalDuration(interval=0.25, duration=1)),
        "image",
        t_scale=0.25,
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
    ),
    PlanCase(
        "z-above-below",
        _mda(z_plan=useq.ZAboveBelow(above=1, below=0.5, step=0.5), channels=TWO_CH),
        "image",
    ),
    PlanCase(
        "z-top-bottom-down",
        _mda(z_plan=useq.ZTopBottom(top=2, bottom=0, step=0.5, go_up=False)),
        "image",
    ),
    PlanCase(
        "z-range-around-down",
        _mda(z_plan=useq.ZRangeAround(range=3, step=0.75, go_up=False)),
        "image",
    ),
    PlanCase(
        "z-absolute",
        _mda(
            z_plan=useq.ZAbsolutePositions(absolute=[10.0, 10.5, 11.0, 11.5]),
            channels=["DAPI"],
        ),
        "image",
    ),
    PlanCase(
        "z-relative-with-position",
        _mda(
            stage_positions=[useq.Position(x=5.0, y=6.0, z=100.0, name="only")],
            z_plan=useq.ZRelativePositions(relative=[-0.5, 0.0, 0.5]),
            channels=TWO_CH,
        ),
        "image",
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
    ),
    PlanCase(
        "unicode-names",
        _mda(
            stage_positions=[useq.Position(x=1.0, y=2.0, name="Pösition-µ 細胞")],
            channels=["GFP-λ", "mCherry-β"],
        ),
        "image",
    ),
    PlanCase(
        "one-position-z",
        _mda(
            stage_positions=[useq.Position(x=10.0, y=20.0, z=30.0)],
            z_plan=useq.ZRangeAround(range=1, step=0.5),
        ),
        "image",
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
    ),
    PlanCase(
        "positions-only",
        _mda(stage_positions=[(0.0, 0.0), (10.0, 10.0), (20.0, 0.0, 5.0)]),
        "collection",
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
    ),
]

# a plan for each name, for tests that want one specific plan
PLANS_BY_NAME: dict[str, PlanCase] = {c.name: c for c in PLANS}
