"""MDASequence plans taken from other projects' test suites.

The plans come from the tests of useq-schema, pymmcore-plus and ome-writers
(github.com/pymmcore-plus/*, at commits 867e9a1, 1b30530 and bac0f39 respectively),
so that mmzarr's tests can check it writes plans other people wrote. This module
is data only: it says nothing about what mmzarr should do with a plan.

Only the plan definitions were taken, as the source wrote them (dicts, tuples and
model objects alike), with these changes, each noted on its entry:

- "fov added": the source grid / points plan sets no field of view (pymmcore-plus
  fills it in from the camera at run time, useq falls back to 1 µm), so
  ``fov_width=5.0, fov_height=4.0`` was added; a field the source did set is kept.
- "A -> B": a loop, range or count shrunk so that the plan yields at most
  `MAX_FRAMES` events.
- a time / z / grid plan that the source tests on its own is wrapped in a bare
  ``MDASequence`` (marked "wrapped").

Where several tests build the same plan only the first is listed (with the
others named in its comment). Plans that useq-schema 0.9.2 cannot build or
iterate, and those left out, are listed at the end of the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import useq

# no plan below yields more events than this when iterated
MAX_FRAMES = 400


@dataclass(frozen=True)
class PeerPlan:
    id: str  # short unique test id, e.g. "useq-cases-autofocus-subseq"
    source: str  # "repo path::test_name"
    seq: useq.MDASequence


_USEQ = "pymmcore-plus/useq-schema"
_PMM = "pymmcore-plus/pymmcore-plus"
_OW = "pymmcore-plus/ome-writers"
_CASES = f"{_USEQ} tests/fixtures/cases.py"

# useq-schema warns (UserWarning) while building useq-seq-acquire-every-ct, as
# its source test expects; only that message is silenced, so that importing this
# module stays clean under ``-W error``.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Channels with skipped frames", UserWarning)

    PEER_PLANS: list[PeerPlan] = [
        # ------------------------------------------------------------------
        # useq-schema: tests/fixtures/cases.py (run by test_mda_sequence_cases.py
        # and v2/test_cases2.py)
        # ------------------------------------------------------------------
        PeerPlan(
            id="useq-cases-channel-only-in-subseq",
            # channel_in_main_and_position_sub_sequence adds a global Cy5 channel
            source=f"{_CASES}::channel_only_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    {},
                    useq.Position(
                        sequence=useq.MDASequence(
                            channels=[useq.Channel(config="FITC", exposure=100)]
                        )
                    ),
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-subchannel-inherits-global",
            source=f"{_CASES}::subchannel_inherits_global_channel",
            seq=useq.MDASequence(
                stage_positions=[
                    {},
                    {
                        "sequence": {
                            "z_plan": useq.ZTopBottom(bottom=28, top=30, step=1)
                        }
                    },
                ],
                channels=[useq.Channel(config="Cy5", exposure=50)],
            ),
        ),
        PeerPlan(
            id="useq-cases-grid-relative-multi-pos",
            # fov added
            source=f"{_CASES}::grid_relative_with_multi_stage_positions",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(x=0, y=0), (10, 20)],
                grid_plan=useq.GridRowsColumns(
                    rows=2, columns=2, fov_width=5.0, fov_height=4.0
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-grid-relative-only-in-subseq",
            # fov added
            source=f"{_CASES}::grid_relative_only_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(x=0, y=0),
                    useq.Position(
                        x=10,
                        y=10,
                        sequence={
                            "grid_plan": useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            ),
                        },
                    ),
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-grid-abs-main-rel-subseq",
            # fov added (both grids); with it the edges grid is a single tile
            source=(
                f"{_CASES}::"
                "grid_absolute_in_main_and_grid_relative_in_position_sub_sequence"
            ),
            seq=useq.MDASequence(
                stage_positions=[
                    {},
                    useq.Position(
                        name="name",
                        x=10,
                        y=10,
                        sequence={
                            "grid_plan": useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            )
                        },
                    ),
                ],
                grid_plan=useq.GridFromEdges(
                    top=1, bottom=-1, left=0, right=0, fov_width=5.0, fov_height=4.0
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-grid-rel-main-abs-subseq",
            # fov added (both grids); with it the edges grid is a single tile
            source=(
                f"{_CASES}::"
                "grid_relative_in_main_and_grid_absolute_in_position_sub_sequence"
            ),
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(x=0, y=0),
                    useq.Position(
                        name="name",
                        sequence={
                            "grid_plan": useq.GridFromEdges(
                                top=1,
                                bottom=-1,
                                left=0,
                                right=0,
                                fov_width=5.0,
                                fov_height=4.0,
                            )
                        },
                    ),
                ],
                grid_plan=useq.GridRowsColumns(
                    rows=2, columns=2, fov_width=5.0, fov_height=4.0
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-multi-g-in-subseq",
            # fov added (all three grids)
            source=f"{_CASES}::multi_g_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    {
                        "x": 0,
                        "y": 0,
                        "sequence": {
                            "grid_plan": {
                                "rows": 1,
                                "columns": 2,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            }
                        },
                    },
                    {
                        "x": 0,
                        "y": 0,
                        "sequence": {
                            "grid_plan": useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            )
                        },
                    },
                    {
                        "sequence": {
                            "grid_plan": useq.GridFromEdges(
                                top=1,
                                bottom=-1,
                                left=0,
                                right=0,
                                fov_width=5.0,
                                fov_height=4.0,
                            )
                        }
                    },
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-z-relative-only-in-subseq",
            source=f"{_CASES}::z_relative_only_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(z=0),
                    useq.Position(
                        name="name",
                        z=10,
                        sequence={"z_plan": useq.ZRangeAround(range=2, step=1)},
                    ),
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-z-relative-main-and-subseq",
            source=f"{_CASES}::z_relative_in_main_and_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(z=0),
                    useq.Position(
                        name="name",
                        z=10,
                        sequence={"z_plan": useq.ZRangeAround(range=3, step=1)},
                    ),
                ],
                z_plan=useq.ZRangeAround(range=2, step=1),
            ),
        ),
        PeerPlan(
            id="useq-cases-multi-z-in-subseq",
            source=f"{_CASES}::multi_z_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    {
                        "sequence": {
                            "z_plan": useq.ZTopBottom(bottom=58, top=60, step=1)
                        }
                    },
                    {"sequence": {"z_plan": useq.ZRangeAround(range=3, step=1)}},
                    {
                        "sequence": {
                            "z_plan": useq.ZTopBottom(bottom=28, top=30, step=1)
                        }
                    },
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-t-only-in-subseq",
            source=f"{_CASES}::t_only_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    {},
                    {
                        "sequence": {
                            "time_plan": [useq.TIntervalLoops(interval=1, loops=5)]
                        }
                    },
                ]
            ),
        ),
        PeerPlan(
            id="useq-cases-t-in-main-and-subseq",
            source=f"{_CASES}::t_in_main_and_in_position_sub_sequence",
            seq=useq.MDASequence(
                stage_positions=[
                    {},
                    {
                        "sequence": {
                            "time_plan": [useq.TIntervalLoops(interval=1, loops=5)]
                        }
                    },
                ],
                time_plan=[useq.TIntervalLoops(interval=1, loops=2)],
            ),
        ),
        PeerPlan(
            id="useq-cases-mix-cgz-axes",
            # fov added (both grids); with it the edges grid is a single tile
            source=f"{_CASES}::mix_cgz_axes",
            seq=useq.MDASequence(
                axis_order="tpgcz",
                stage_positions=[
                    useq.Position(z=2),
                    useq.Position(
                        name="name",
                        x=10,
                        y=10,
                        z=30,
                        sequence=useq.MDASequence(
                            channels=[
                                {"config": "FITC", "exposure": 200},
                                {"config": "Cy3", "exposure": 100},
                            ],
                            grid_plan=useq.GridRowsColumns(
                                rows=2, columns=1, fov_width=5.0, fov_height=4.0
                            ),
                            z_plan=useq.ZRangeAround(range=2, step=1),
                        ),
                    ),
                ],
                channels=[useq.Channel(config="Cy5", exposure=50)],
                z_plan={"top": 100, "bottom": 98, "step": 1},
                grid_plan=useq.GridFromEdges(
                    top=1, bottom=-1, left=0, right=0, fov_width=5.0, fov_height=4.0
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-order",
            source=f"{_CASES}::order",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(z=0),
                    useq.Position(
                        z=50,
                        sequence=useq.MDASequence(
                            channels=[
                                useq.Channel(config="FITC", exposure=100),
                                useq.Channel(config="Cy3", exposure=200),
                            ]
                        ),
                    ),
                ],
                channels=[
                    useq.Channel(config="FITC", exposure=100),
                    useq.Channel(config="Cy5", exposure=50),
                ],
                z_plan=useq.ZRangeAround(range=2, step=1),
            ),
        ),
        PeerPlan(
            id="useq-cases-channels-and-pos-zgt",
            # fov added
            source=f"{_CASES}::channels_and_pos_z_grid_and_time_plan",
            seq=useq.MDASequence(
                channels=[
                    useq.Channel(config="Cy5", exposure=50),
                    useq.Channel(config="FITC", exposure=100),
                ],
                stage_positions=[
                    useq.Position(
                        x=0,
                        y=0,
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            ),
                            z_plan=useq.ZRangeAround(range=2, step=1),
                            time_plan=[useq.TIntervalLoops(interval=1, loops=2)],
                        ),
                    )
                ],
            ),
        ),
        PeerPlan(
            id="useq-cases-sub-channels-and-any-plan",
            source=f"{_CASES}::sub_channels_and_any_plan",
            seq=useq.MDASequence(
                channels=["Cy5", "FITC"],
                stage_positions=[
                    useq.Position(
                        sequence=useq.MDASequence(
                            channels=["FITC"],
                            z_plan=useq.ZRangeAround(range=2, step=1),
                        )
                    )
                ],
            ),
        ),
        PeerPlan(
            id="useq-cases-af-no-axes",
            source=f"{_CASES}::af_no_axes_no_autofocus",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(z=30)],
                z_plan=useq.ZRangeAround(range=2, step=1),
                channels=["DAPI", "FITC"],
                autofocus_plan=useq.AxesBasedAF(
                    autofocus_device_name="Z", autofocus_motor_offset=40, axes=()
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-af-axes-c",
            # same plan with z=200 and motor offset 40: af_z_position_correction
            source=f"{_CASES}::af_axes_c_basic",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(z=30)],
                z_plan=useq.ZRangeAround(range=2, step=1),
                channels=["DAPI", "FITC"],
                autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("c",)),
            ),
        ),
        PeerPlan(
            id="useq-cases-af-axes-g",
            # fov added
            source=f"{_CASES}::af_axes_g_basic",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(x=0, y=0, z=30)],
                channels=["DAPI", "FITC"],
                grid_plan=useq.GridRowsColumns(
                    rows=2, columns=1, fov_width=5.0, fov_height=4.0
                ),
                autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("g",)),
            ),
        ),
        PeerPlan(
            id="useq-cases-af-axes-t",
            source=f"{_CASES}::af_axes_t_basic",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(z=30), useq.Position(z=200)],
                channels=["DAPI", "FITC"],
                time_plan=[useq.TIntervalLoops(interval=1, loops=2)],
                autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("t",)),
            ),
        ),
        PeerPlan(
            id="useq-cases-af-axis-order-tpgzc",
            source=f"{_CASES}::af_axis_order_effect",
            seq=useq.MDASequence(
                stage_positions=[useq.Position(z=30)],
                z_plan=useq.ZRangeAround(range=2, step=1),
                channels=["DAPI", "FITC"],
                axis_order="tpgzc",
                autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("z",)),
            ),
        ),
        PeerPlan(
            id="useq-cases-af-subseq",
            # af_z_position_subsequence: the same with a single position and z
            source=f"{_CASES}::af_subsequence_af",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(z=30),
                    useq.Position(
                        z=10,
                        sequence=useq.MDASequence(
                            autofocus_plan=useq.AxesBasedAF(
                                autofocus_device_name="Z",
                                axes=("c",),
                            )
                        ),
                    ),
                ],
                channels=["DAPI", "FITC"],
            ),
        ),
        PeerPlan(
            id="useq-cases-af-mixed-main-and-subseq",
            source=f"{_CASES}::af_mixed_main_and_sub",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(z=30),
                    useq.Position(
                        z=10,
                        sequence=useq.MDASequence(
                            autofocus_plan=useq.AxesBasedAF(
                                autofocus_device_name="Z",
                                autofocus_motor_offset=40,
                                axes=("z",),
                            ),
                        ),
                    ),
                ],
                channels=["DAPI", "FITC"],
                z_plan=useq.ZRangeAround(range=2, step=1),
                autofocus_plan=useq.AxesBasedAF(
                    autofocus_device_name="Z", autofocus_motor_offset=40, axes=("p",)
                ),
            ),
        ),
        PeerPlan(
            id="useq-cases-keep-shutter-z-tcz",
            source=f"{_CASES}::keep_shutter_open_across_z_order_tcz",
            seq=useq.MDASequence(
                axis_order=tuple("tcz"),
                channels=["DAPI", "FITC"],
                time_plan=useq.TIntervalLoops(loops=2, interval=0),
                z_plan=useq.ZRangeAround(range=1, step=1),
                keep_shutter_open_across="z",
            ),
        ),
        PeerPlan(
            id="useq-cases-keep-shutter-zt-czt",
            # same plan with keep_shutter_open_across="z":
            # keep_shutter_open_across_z_order_czt
            source=f"{_CASES}::keep_shutter_open_across_zt_order_czt",
            seq=useq.MDASequence(
                axis_order=tuple("czt"),
                channels=["DAPI", "FITC"],
                time_plan=useq.TIntervalLoops(loops=2, interval=0),
                z_plan=useq.ZRangeAround(range=1, step=1),
                keep_shutter_open_across=("z", "t"),
            ),
        ),
        PeerPlan(
            id="useq-cases-keep-shutter-g-pgc-subseq",
            # fov added
            source=f"{_CASES}::keep_shutter_open_across_g_order_pgc_with_subseq",
            seq=useq.MDASequence(
                axis_order=tuple("pgc"),
                channels=["DAPI", "FITC"],
                stage_positions=[
                    useq.Position(
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            )
                        ),
                    )
                ],
                keep_shutter_open_across="g",
            ),
        ),
        PeerPlan(
            id="useq-cases-reset-timer-nested-t",
            source=f"{_CASES}::reset_event_timer_with_nested_position_sequences",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(
                        x=0,
                        y=0,
                        sequence=useq.MDASequence(
                            channels=["Cy5"], time_plan={"interval": 1, "loops": 2}
                        ),
                    ),
                    useq.Position(
                        x=1,
                        y=1,
                        sequence=useq.MDASequence(
                            channels=["DAPI"], time_plan={"interval": 1, "loops": 2}
                        ),
                    ),
                ]
            ),
        ),
        # ------------------------------------------------------------------
        # useq-schema: other tests
        # ------------------------------------------------------------------
        PeerPlan(
            id="useq-conftest-mda1",
            # also tests/fixtures/mda.yaml (its serialised form).
            # fov added (both grids); time phase 2 duration 40 min -> 10 s;
            # sub-sequence z above 10 -> 4
            source=f"{_USEQ} tests/conftest.py::mda1",
            seq=useq.MDASequence(
                axis_order="tpgcz",
                metadata={"some info": "something"},
                stage_positions=[
                    (10, 20),
                    {
                        "x": 10,
                        "y": 20,
                        "z": 50,
                        "name": "test_name",
                        "sequence": useq.MDASequence(
                            z_plan={"above": 4, "below": 0, "step": 1},
                            grid_plan={
                                "rows": 2,
                                "columns": 3,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            },
                        ),
                    },
                ],
                channels=[
                    {"config": "Cy5", "exposure": 50},
                    {"config": "FITC", "exposure": 100.0},
                    {"config": "DAPI", "do_stack": False, "acquire_every": 3},
                ],
                time_plan=[
                    {"interval": 3, "loops": 3},
                    {"duration": {"seconds": 10}, "interval": 10},
                ],
                z_plan={"range": 1.0, "step": 0.5},
                grid_plan={
                    "rows": 2,
                    "columns": 1,
                    "fov_width": 5.0,
                    "fov_height": 4.0,
                },
                autofocus_plan={
                    "autofocus_device_name": "Z",
                    "autofocus_motor_offset": 50,
                    "axes": ("c",),
                },
            ),
        ),
        PeerPlan(
            id="useq-seq-p-before-z-pzc",
            source=f"{_USEQ} tests/test_sequence.py::test_axis_order_errors",
            # the "p before z ok" plan
            seq=useq.MDASequence(
                axis_order=tuple("pzc"),
                z_plan={"top": 6, "bottom": 0, "step": 1},
                channels=["DAPI"],
                stage_positions=[
                    {
                        "x": 0,
                        "y": 0,
                        "z": 0,
                        "sequence": {"z_plan": {"range": 2, "step": 1}},
                    }
                ],
            ),
        ),
        PeerPlan(
            id="useq-seq-acquire-every-ct",
            # useq warns "Channels with skipped frames detected" (c before t)
            source=f"{_USEQ} tests/test_sequence.py::test_axis_order_errors",
            seq=useq.MDASequence(
                axis_order=tuple("ct"),
                time_plan={"interval": 1, "duration": 10},
                channels=[{"config": "DAPI", "acquire_every": 3}],
            ),
        ),
        PeerPlan(
            id="useq-seq-global-abs-grid-sub-grids",
            # the "all but one sub-position has a grid plan" plan.
            # fov added (all three grids); with it the edges grids are one tile
            source=f"{_USEQ} tests/test_sequence.py::test_axis_order_errors",
            seq=useq.MDASequence(
                stage_positions=[
                    {"z": 0},
                    {
                        "sequence": {
                            "grid_plan": {
                                "rows": 2,
                                "columns": 2,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            }
                        }
                    },
                    {
                        "sequence": {
                            "grid_plan": {
                                "top": 1,
                                "bottom": -1,
                                "left": 0,
                                "right": 0,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            }
                        }
                    },
                ],
                grid_plan={
                    "top": 1,
                    "bottom": -1,
                    "left": 0,
                    "right": 0,
                    "fov_width": 5.0,
                    "fov_height": 4.0,
                },
            ),
        ),
        PeerPlan(
            id="useq-seq-shape-and-axes-tzp",
            source=f"{_USEQ} tests/test_sequence.py::test_shape_and_axes",
            seq=useq.MDASequence(
                z_plan=useq.ZAboveBelow(above=8, below=4, step=2),
                time_plan=useq.TIntervalDuration(interval=1, duration=4),
                axis_order=tuple("tzp"),
            ),
        ),
        PeerPlan(
            id="useq-seq-skip-do-stack-no-zplan",
            source=(
                f"{_USEQ} tests/test_sequence.py::test_skip_channel_do_stack_no_zplan"
            ),
            seq=useq.MDASequence(channels=[{"config": "DAPI", "do_stack": False}]),
        ),
        PeerPlan(
            id="useq-seq-setup-roi",
            source=f"{_USEQ} tests/test_sequence.py::test_mda_sequence_setup",
            seq=useq.MDASequence(
                setup=useq.MDAEvent(
                    properties=[("Camera", "Mode", "12bit")],
                    roi=(0, 12, 128, 256),
                ),
                channels=["DAPI"],
                time_plan={"interval": 1, "loops": 2},
            ),
        ),
        PeerPlan(
            id="useq-plate-in-seq",
            # selected_wells written np.s_[1:5:2, :6:3] in the source
            source=f"{_USEQ} tests/test_well_plate.py::test_plate_plan_in_seq",
            seq=useq.MDASequence(
                stage_positions=useq.WellPlatePlan(
                    plate=96,
                    a1_center_xy=(500, 200),
                    rotation=5,
                    selected_wells=(slice(1, 5, 2), slice(None, 6, 3)),
                )
            ),
        ),
        PeerPlan(
            id="useq-plate-well-points-random",
            # wrapped; fov added; num_points 10 -> 2 (96 wells: 192 fields, each
            # its own image; 4 points took ~25 s per path). No random_seed in the
            # source, so the points differ from one process to the next
            source=f"{_USEQ} tests/test_well_plate.py::test_plate_plan_well_points",
            seq=useq.MDASequence(
                stage_positions=useq.WellPlatePlan(
                    plate=96,
                    a1_center_xy=(500, 200),
                    rotation="0.2rad",
                    well_points_plan=useq.RandomPoints(
                        num_points=2, fov_width=5.0, fov_height=4.0
                    ),
                    selected_wells=slice(None),
                )
            ),
        ),
        PeerPlan(
            id="useq-time-est-same-config-twice",
            # SEQ_40_T2.replace(stage_positions=TWO_POS, z_plan=Z_4, grid_plan=GRID_4)
            # with DAPI_10 and FITC_30 (whose config is also "DAPI");
            # GRID_4 is useq.GridRelative (alias of GridRowsColumns). fov added
            source=f"{_USEQ} tests/test_time_estimation.py::SEQS_WITH_T",
            seq=useq.MDASequence(
                channels=[
                    useq.Channel(config="DAPI", exposure=10),
                    useq.Channel(config="DAPI", exposure=30),
                ],
                time_plan=useq.TIntervalLoops(interval=1, loops=2),
                stage_positions=[(0, 0), (1, 1)],
                z_plan=useq.ZRangeAround(range=3, step=1),
                grid_plan=useq.GridRowsColumns(
                    columns=2, rows=2, fov_width=5.0, fov_height=4.0
                ),
            ),
        ),
        # ------------------------------------------------------------------
        # pymmcore-plus
        # ------------------------------------------------------------------
        PeerPlan(
            id="pmm-mda-run-tpcz",
            # also tests/test_mda.py::test_mda_failures
            source=f"{_PMM} tests/test_mda.py::test_mda_waiting",
            seq=useq.MDASequence(
                channels=["Cy5"],
                time_plan={"interval": 1.5, "loops": 2},
                axis_order="tpcz",
                stage_positions=[(222, 1, 1), (111, 0, 0)],
            ),
        ),
        PeerPlan(
            id="pmm-mda-af-subseq-zabovebelow",
            # also tests/test_mda.py::test_autofocus_retries
            source=f"{_PMM} tests/test_mda.py::test_autofocus_relative_z_plan",
            seq=useq.MDASequence(
                stage_positions=[
                    {
                        "z": 25,
                        "sequence": {
                            "autofocus_plan": {
                                "autofocus_device_name": "Z",
                                "autofocus_motor_offset": 25,
                                "axes": ("p",),
                            }
                        },
                    }
                ],
                z_plan={"above": 1, "below": 1, "step": 1},
            ),
        ),
        PeerPlan(
            id="pmm-mda-fov-user-values",
            # sub-sequence grid: fov_width 180 from the source, fov_height added
            source=f"{_PMM} tests/test_mda.py::test_mda_fov_preserves_user_values",
            seq=useq.MDASequence(
                channels=["FITC"],
                stage_positions=(
                    {
                        "sequence": {
                            "grid_plan": {
                                "rows": 1,
                                "columns": 1,
                                "fov_width": 180,
                                "fov_height": 4.0,
                            }
                        }
                    },
                ),
                grid_plan={
                    "rows": 1,
                    "columns": 1,
                    "fov_width": 180,
                    "fov_height": 180,
                },
            ),
        ),
        PeerPlan(
            id="pmm-mda-keep-shutter-zpt-subseq-t",
            source=f"{_PMM} tests/test_mda.py::test_keep_shutter_open",
            seq=useq.MDASequence(
                axis_order="zpt",
                stage_positions=[
                    (0, 0),
                    useq.Position(
                        sequence=useq.MDASequence(
                            time_plan=useq.TIntervalLoops(interval=0.1, loops=3)
                        )
                    ),
                ],
                z_plan=useq.ZRangeAround(range=2, step=1),
                keep_shutter_open_across="t",
            ),
        ),
        PeerPlan(
            id="pmm-mda-single-timepoint",
            # also tests/test_mda.py::test_setup_event_roi and
            # test_setup_event_properties, with a setup event
            source=(
                f"{_PMM} tests/test_mda.py::"
                "test_roi_restore_failure_does_not_break_teardown"
            ),
            seq=useq.MDASequence(
                time_plan={"interval": 0, "loops": 1}, channels=["DAPI"]
            ),
        ),
        PeerPlan(
            id="pmm-mda-setup-roi-t3",
            source=f"{_PMM} tests/test_mda.py::test_setup_event_roi_multi_timepoint",
            seq=useq.MDASequence(
                setup=useq.MDAEvent(roi=(12, 32, 128, 256)),
                time_plan={"interval": 0, "loops": 3},
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="pmm-sequencing-pct",
            source=f"{_PMM} tests/test_sequencing.py::test_sequenced_mda",
            seq=useq.MDASequence(
                axis_order="pct",
                stage_positions=[(0, 0), (1, 1)],
                channels=[
                    useq.Channel(config="DAPI", exposure=5),
                    useq.Channel(config="FITC", exposure=10),
                ],
                time_plan=useq.TIntervalLoops(interval=0, loops=8),
            ),
        ),
        PeerPlan(
            id="pmm-sequencing-actions-ptc-af",
            source=f"{_PMM} tests/test_sequencing.py::test_sequence_actions",
            seq=useq.MDASequence(
                axis_order="ptc",
                stage_positions=[(0, 0), (1, 1)],
                channels=[useq.Channel(config="FITC", exposure=10)],
                time_plan=useq.TIntervalLoops(interval=0, loops=5),
                autofocus_plan={"autofocus_motor_offset": 25, "axes": ("p",)},
            ),
        ),
        PeerPlan(
            id="pmm-cli-file-upper-tpzc",
            source=f"{_PMM} tests/test_cli.py::test_run_mda",
            # the plan written to test.json (with_file=True)
            seq=useq.MDASequence(
                time_plan={"interval": 0.1, "loops": 10},
                channels=["DAPI", "FITC"],
                z_plan={"range": 6, "step": 1},
                axis_order="TPZC",
                metadata={"test": "test"},
            ),
        ),
        PeerPlan(
            id="pmm-cli-z-step-0.24",
            source=f"{_PMM} tests/test_cli.py::ARGS",
            # ARGS[0] with with_file=False
            seq=useq.MDASequence(z_plan={"step": 0.24, "above": 1, "below": 2}),
        ),
        PeerPlan(
            id="pmm-cli-channel-groups",
            source=f"{_PMM} tests/test_cli.py::test_run_mda_channels",
            seq=useq.MDASequence(
                channels=[
                    {"group": "test", "config": "DAPI"},
                    {
                        "config": "FITC",
                        "exposure": 0.1,
                        "do_stack": False,
                        "group": "test",
                    },
                    {"config": "Other", "exposure": 70, "group": "test"},
                ]
            ),
        ),
        PeerPlan(
            id="pmm-output-plate-two-wells",
            # also tests/test_mda_output.py::test_run_with_tiff_output_multiposition
            source=(
                f"{_PMM} tests/test_mda_output.py::"
                "test_run_with_zarr_output_multiposition"
            ),
            seq=useq.MDASequence(
                stage_positions=useq.WellPlatePlan(
                    plate="96-well",
                    a1_center_xy=(0, 0),
                    selected_wells=[(0, 0), (1, 0)],
                ),
                time_plan=useq.TIntervalLoops(interval=0, loops=2),
            ),
        ),
        PeerPlan(
            id="pmm-output-t-only",
            # the most common plan in these tests: also test_run_with_tiff_output,
            # test_run_with_acquisition_settings, test_run_with_custom_handler_and_path,
            # test_mda_status.py::test_finish_reason_completed, ...
            source=f"{_PMM} tests/test_mda_output.py::test_run_with_zarr_output",
            seq=useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0, loops=2)),
        ),
        PeerPlan(
            id="pmm-output-ragged-do-stack",
            source=f"{_PMM} tests/test_mda_output.py::test_run_with_ragged_sequence",
            seq=useq.MDASequence(
                channels=[
                    {"config": "DAPI", "exposure": 1},
                    {"config": "FITC", "exposure": 1, "do_stack": False},
                ],
                z_plan={"range": 3, "step": 1},
            ),
        ),
        PeerPlan(
            id="pmm-bench-z5c1p1t5-zcpt",
            source=f"{_PMM} tests/test_bench.py::ALL_MDAS[z5c1p1t5]",
            seq=useq.MDASequence(
                z_plan=useq.ZRangeAround(range=5, step=1),
                time_plan=useq.TIntervalLoops(interval=0, loops=5),
                channels=(useq.Channel(config="DAPI", exposure=0.001),),
                stage_positions=(useq.Position(x=0, y=0, z=0),),
                axis_order="zcpt",
            ),
        ),
        PeerPlan(
            id="pmm-bench-empty",
            source=f"{_PMM} tests/test_bench.py::test_mda_summary_metadata",
            seq=useq.MDASequence(),
        ),
        PeerPlan(
            id="pmm-io-ome-tiff-seq1",
            # also tests/io/test_image_sequence_writer.py::test_tiff_sequence_writer
            source=f"{_PMM} tests/io/test_ome_tiff.py::seq1",
            seq=useq.MDASequence(
                channels=["Cy5", "FITC"],
                time_plan={"interval": 0.1, "loops": 3},
                stage_positions=[(222, 1, 1), (111, 0, 0)],
                z_plan={"range": 0.3, "step": 0.1},
                axis_order="tpcz",
            ),
        ),
        PeerPlan(
            id="pmm-io-subseries-x-only",
            # fov added
            source=f"{_PMM} tests/io/test_image_sequence_writer.py::"
            "test_tiff_with_subseries",
            seq=useq.MDASequence(
                channels=["Cy5"],
                stage_positions=[
                    (222, 1, 1),
                    useq.Position(
                        x=111,
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridRowsColumns(
                                rows=1, columns=3, fov_width=5.0, fov_height=4.0
                            )
                        ),
                    ),
                ],
            ),
        ),
        PeerPlan(
            id="pmm-io-zarr-grid-snake",
            # SIMPLE_MDA.replace(grid_plan=...); fov added
            source=f"{_PMM} tests/io/test_zarr_writers.py::GRID_MDA",
            seq=useq.MDASequence(
                channels=["Cy5", "FITC"],
                time_plan={"interval": 0.1, "loops": 2},
                axis_order="tpcz",
                grid_plan={
                    "rows": 2,
                    "columns": 2,
                    "mode": "row_wise_snake",
                    "fov_width": 5.0,
                    "fov_height": 4.0,
                },
            ),
        ),
        PeerPlan(
            id="pmm-io-zarr-complex",
            # FULL_MDA.replace(...), FULL_MDA's z_plan kept; fov added
            source=f"{_PMM} tests/io/test_zarr_writers.py::COMPLEX_MDA",
            seq=useq.MDASequence(
                channels=["Cy5"],
                time_plan={"interval": 0.1, "loops": 3},
                axis_order="tpcz",
                z_plan={"range": 0.3, "step": 0.1},
                stage_positions=[
                    (222, 1, 1),
                    {
                        "x": 0,
                        "y": 0,
                        "sequence": useq.MDASequence(
                            grid_plan={
                                "rows": 2,
                                "columns": 1,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            },
                            z_plan={"range": 3, "step": 1},
                        ),
                    },
                ],
            ),
        ),
        # ------------------------------------------------------------------
        # ome-writers: tests/test_useq.py
        # ------------------------------------------------------------------
        PeerPlan(
            id="ow-simple-positions-ptcz",
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[simple_positions]",
            seq=useq.MDASequence(
                axis_order="ptcz",
                stage_positions=[(0.0, 0.0), (10.0, 10.0)],
                time_plan={"interval": 0.1, "loops": 3},
                channels=["DAPI", "Cy5"],
                z_plan={"range": 2, "step": 1.0},
            ),
        ),
        PeerPlan(
            id="ow-position-subsequences",
            # fov added
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[position_subsequences]",
            seq=useq.MDASequence(
                axis_order="pgtcz",
                stage_positions=[
                    useq.Position(x=0.0, y=0.0, name="single_pos"),
                    useq.Position(
                        x=10.0,
                        y=10.0,
                        name="grid",
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridRowsColumns(
                                rows=1, columns=2, fov_width=5.0, fov_height=4.0
                            )
                        ),
                    ),
                ],
                time_plan={"interval": 0.1, "loops": 3},
                channels=["DAPI", "Cy5"],
                z_plan={"range": 2, "step": 1.0},
            ),
        ),
        PeerPlan(
            id="ow-subseq-mixed-with-global-grid",
            # fov added (both grids)
            source=(
                f"{_OW} tests/test_useq.py::"
                "SEQ_CASES[subsequence_mixed_with_global_grid]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtcz",
                stage_positions=[
                    useq.Position(x=0.0, y=0.0, name="single_pos"),
                    useq.Position(
                        x=0.0,
                        y=0.0,
                        name="grid",
                        sequence=useq.MDASequence(
                            grid_plan={
                                "rows": 1,
                                "columns": 2,
                                "fov_width": 5.0,
                                "fov_height": 4.0,
                            }
                        ),
                    ),
                ],
                grid_plan=useq.GridRowsColumns(
                    rows=2, columns=1, fov_width=5.0, fov_height=4.0
                ),
                z_plan={"range": 2, "step": 1.0},
            ),
        ),
        PeerPlan(
            id="ow-position-not-first-tcpz",
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[position_not_first]",
            seq=useq.MDASequence(
                axis_order="tcpz",
                stage_positions=[(0.0, 0.0), (10.0, 10.0)],
                time_plan={"interval": 0.1, "loops": 2},
                channels=["DAPI", "Cy5"],
                z_plan={"range": 2, "step": 1.0},
            ),
        ),
        PeerPlan(
            id="ow-grid-only-no-position-gtc",
            # fov added
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[grid_only_no_position]",
            seq=useq.MDASequence(
                axis_order="gtc",
                grid_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=5.0, fov_height=4.0
                ),
                time_plan={"interval": 0.1, "loops": 2},
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-well-plate-with-points",
            # fov added. Same plate without time_plan:
            # tests/test_useq.py::test_well_plate_fov_folder_names
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[well_plate_with_points]",
            seq=useq.MDASequence(
                axis_order="ptcz",
                stage_positions=useq.WellPlatePlan(
                    plate=useq.WellPlate.from_str("96-well"),
                    a1_center_xy=(0.0, 0.0),
                    selected_wells=((0, 1), (0, 1)),
                    well_points_plan=useq.GridRowsColumns(
                        rows=1, columns=2, fov_width=5.0, fov_height=4.0
                    ),
                ),
                time_plan={"interval": 0.1, "loops": 2},
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-plate-positions-global-grid",
            # fov added. Same positions with names "site_a"/"site_b":
            # SEQ_CASES[plate_positions_with_explicit_names]
            source=(
                f"{_OW} tests/test_useq.py::SEQ_CASES[plate_positions_with_global_grid]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[
                    useq.Position(x=0, y=0, plate_row=0, plate_col=0),
                    useq.Position(x=10, y=10, plate_row=0, plate_col=1),
                    useq.Position(x=20, y=20, plate_row=1, plate_col=0),
                ],
                grid_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=5.0, fov_height=4.0
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-plate-from-position-annotations",
            # two positions in the same well (A1); same plan with names
            # fov0/fov1/fov0: test_plate_from_position_annotations_zarr
            source=f"{_OW} tests/test_useq.py::test_plate_from_position_annotations",
            seq=useq.MDASequence(
                stage_positions=[
                    useq.Position(x=0, y=0, name="A1_fov0", plate_row=0, plate_col=0),
                    useq.Position(x=1, y=0, name="A1_fov1", plate_row=0, plate_col=0),
                    useq.Position(x=0, y=9, name="B2_fov0", plate_row=1, plate_col=1),
                ],
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-multi-phase-time-plan",
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[multi_phase_time_plan]",
            seq=useq.MDASequence(
                axis_order="tc",
                time_plan=[
                    {"interval": 0.1, "loops": 3},
                    {"interval": 0.5, "loops": 2},
                ],
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-z-absolute-positions-cz",
            # same plan without axis_order: SEQ_CASES[axis_order_not_specified]
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[z_absolute_positions]",
            seq=useq.MDASequence(
                axis_order="cz",
                channels=["DAPI"],
                z_plan=useq.ZAbsolutePositions(absolute=[0, 1, 2, 3]),
            ),
        ),
        PeerPlan(
            id="ow-grid-first-with-positions-gptcz",
            # fov added
            source=f"{_OW} tests/test_useq.py::SEQ_CASES[grid_first_with_positions]",
            seq=useq.MDASequence(
                axis_order="gptcz",
                stage_positions=[(0.0, 0.0), (10.0, 10.0)],
                grid_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=5.0, fov_height=4.0
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-grid-from-edges-z-only-position",
            source=(
                f"{_OW} tests/test_useq.py::"
                "SEQ_CASES[grid_from_edges_with_stage_positions]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[(None, None, 3)],
                grid_plan=useq.GridFromEdges(
                    fov_width=50.0,
                    fov_height=50.0,
                    left=0.0,
                    right=100.0,
                    top=0.0,
                    bottom=100.0,
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-subseq-grid-from-edges",
            source=(
                f"{_OW} tests/test_useq.py::"
                "SEQ_CASES[position_subsequences_grid_from_edges]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[
                    useq.Position(x=0.0, y=0.0, name="single_pos"),
                    useq.Position(
                        z=3.0,
                        name="grid",
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridFromEdges(
                                fov_width=50.0,
                                fov_height=50.0,
                                left=0.0,
                                right=100.0,
                                top=0.0,
                                bottom=50.0,
                            )
                        ),
                    ),
                ],
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-grid-from-polygon",
            source=(
                f"{_OW} tests/test_useq.py::"
                "SEQ_CASES[grid_from_polygon_with_stage_position]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[useq.Position(z=3, name="poly")],
                grid_plan=useq.GridFromPolygon(
                    fov_width=50.0,
                    fov_height=50.0,
                    vertices=[(0, 0), (100, 0), (100, 100), (0, 100)],
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-random-points-two-positions",
            # fov added. Same points around one position, axis_order "gc":
            # SEQ_CASES[random_points_grid]
            source=(
                f"{_OW} tests/test_useq.py::"
                "SEQ_CASES[random_points_with_stage_position]"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[
                    useq.Position(x=1, y=2, z=3, name="rp"),
                    useq.Position(x=11, y=12, z=4, name="rp"),
                ],
                grid_plan=useq.RandomPoints(
                    num_points=3,
                    max_width=100,
                    max_height=100,
                    shape="ellipse",
                    random_seed=42,
                    fov_width=5.0,
                    fov_height=4.0,
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-random-points-subseq",
            # fov added
            source=(
                f"{_OW} tests/test_useq.py::test_random_points_subsequence_unique_names"
            ),
            seq=useq.MDASequence(
                axis_order="pgtc",
                stage_positions=[
                    useq.Position(
                        x=100.0,
                        y=200.0,
                        z=0.0,
                        name="grid",
                        sequence=useq.MDASequence(
                            grid_plan=useq.RandomPoints(
                                num_points=4,
                                max_width=50.0,
                                max_height=50.0,
                                random_seed=7,
                                fov_width=5.0,
                                fov_height=4.0,
                            )
                        ),
                    )
                ],
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-ragged-acquire-every-mixed",
            # same plan with acquire_every=2 on both channels:
            # RAGGED_CASES[acquire_every_uniform]
            source=f"{_OW} tests/test_useq.py::RAGGED_CASES[acquire_every_mixed]",
            seq=useq.MDASequence(
                axis_order="tc",
                time_plan={"interval": 0.1, "loops": 4},
                channels=[
                    useq.Channel(config="DAPI", acquire_every=1),
                    useq.Channel(config="Cy5", acquire_every=2),
                ],
            ),
        ),
        PeerPlan(
            id="ow-ragged-position-subsequences",
            # fov added
            source=f"{_OW} tests/test_useq.py::RAGGED_CASES[position_subsequences]",
            seq=useq.MDASequence(
                axis_order="pgtcz",
                stage_positions=[
                    useq.Position(
                        x=0.0,
                        y=0.0,
                        name="pos1",
                        sequence=useq.MDASequence(
                            grid_plan=useq.GridRowsColumns(
                                rows=2, columns=2, fov_width=5.0, fov_height=4.0
                            )
                        ),
                    ),
                    useq.Position(
                        x=10.0,
                        y=10.0,
                        name="pos2",
                        sequence=useq.MDASequence(z_plan={"range": 4, "step": 1.0}),
                    ),
                ],
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-ragged-grid-position-not-adjacent-gtpc",
            # fov added. Same idea with "ptgcz" / "ptgzc" plus z:
            # RAGGED_CASES[position_grid_not_adjacent_ptgcz / _ptgzc]
            source=(
                f"{_OW} tests/test_useq.py::RAGGED_CASES[grid_position_not_adjacent]"
            ),
            seq=useq.MDASequence(
                axis_order="gtpc",
                stage_positions=[(0.0, 0.0), (10.0, 10.0)],
                grid_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=5.0, fov_height=4.0
                ),
                time_plan={"interval": 0.1, "loops": 2},
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-ragged-well-plate-with-grid-plan",
            # fov added
            source=(
                f"{_OW} tests/test_useq.py::RAGGED_CASES[well_plate_with_grid_plan]"
            ),
            seq=useq.MDASequence(
                stage_positions=useq.WellPlatePlan(
                    plate=useq.WellPlate.from_str("96-well"),
                    a1_center_xy=(0.0, 0.0),
                    selected_wells=((0,), (0,)),
                ),
                grid_plan=useq.GridRowsColumns(
                    rows=1, columns=2, fov_width=5.0, fov_height=4.0
                ),
                channels=["DAPI"],
            ),
        ),
        PeerPlan(
            id="ow-combo-tdurationloops-ztopbottom-gridwh",
            # one of the 4 x 5 x 5 parametrisations; ZTopBottom top == bottom
            source=(
                f"{_OW} tests/test_useq.py::test_useq_plans_combination"
                "[GridWidthHeight-ZTopBottom-TDurationLoops]"
            ),
            seq=useq.MDASequence(
                time_plan=useq.TDurationLoops(duration=1.0, loops=4),
                z_plan=useq.ZTopBottom(top=2.0, bottom=2.0, step=1.0),
                grid_plan=useq.GridWidthHeight(
                    fov_height=50, fov_width=50, width=100.0, height=100.0
                ),
            ),
        ),
        PeerPlan(
            id="ow-combo-tintervalduration-zabovebelow-edges-spiral",
            source=(
                f"{_OW} tests/test_useq.py::test_useq_plans_combination"
                "[GridFromEdges-ZAboveBelow-TIntervalDuration]"
            ),
            seq=useq.MDASequence(
                time_plan=useq.TIntervalDuration(interval=0.1, duration=1.0),
                z_plan=useq.ZAboveBelow(above=2.0, below=1.0, step=1.0),
                grid_plan=useq.GridFromEdges(
                    fov_width=50.0,
                    fov_height=50.0,
                    left=0.0,
                    right=100.0,
                    top=0.0,
                    bottom=100.0,
                    mode=useq.OrderMode.spiral,
                ),
            ),
        ),
        PeerPlan(
            id="ow-combo-multiphase-zrelative-random",
            # fov added
            source=(
                f"{_OW} tests/test_useq.py::test_useq_plans_combination"
                "[RandomPoints-ZRelativePositions-MultiPhaseTimePlan]"
            ),
            seq=useq.MDASequence(
                time_plan=useq.MultiPhaseTimePlan(
                    phases=[
                        useq.TIntervalLoops(interval=0, loops=2),
                        useq.TIntervalLoops(interval=0.5, loops=2),
                    ]
                ),
                z_plan=useq.ZRelativePositions(relative=[-1.0, 0.0, 1.0]),
                grid_plan=useq.RandomPoints(
                    num_points=4,
                    max_width=100.0,
                    max_height=100.0,
                    random_seed=42,
                    fov_width=5.0,
                    fov_height=4.0,
                ),
            ),
        ),
    ]

# Not included:
# - fail in useq-schema 0.9.2:
#   ome-writers tests/test_useq.py::test_unbounded_tcz
#     (TIntervalDuration(interval=0, duration=3): building works, but iterating
#     raises ZeroDivisionError in TIntervalDuration.loops)
#   useq-schema tests/v2/* (useq.v2.MDASequence, not a useq.MDASequence; its
#     test_cases2.py reuses fixtures/cases.py)
# - near-duplicates of a plan above (named in the entries' comments) and, to
#   keep the table near 80 plans, these variants of listed plans:
#   useq-schema fixtures/cases.py: grid_relative_in_main_and_position_sub_sequence,
#     grid_absolute_only_in_position_sub_sequence,
#     grid_absolute_in_main_and_position_sub_sequence,
#     z_relative_with_multi_stage_positions, z_absolute_with_multi_stage_positions,
#     z_absolute_only_in_position_sub_sequence,
#     z_absolute_in_main_and_position_sub_sequence,
#     z_absolute_in_main_and_z_relative_in_position_sub_sequence,
#     z_relative_in_main_and_z_absolute_in_position_sub_sequence,
#     t_with_multi_stage_positions, channels_and_pos_grid_plan,
#     channels_and_pos_z_plan, channels_and_pos_time_plan, af_axes_z_basic,
#     af_axes_p_basic, af_no_device_name, keep_shutter_open_across_z_order_tzc,
#     reset_event_timer_with_time_intervals;
#   useq-schema test_sequence.py (test_z_position, the warning cases of
#     test_axis_order_errors), test_time_estimation.py (other sizes),
#     test_stage_positions.py, and the time/z/grid plans that test_time_plans.py,
#     test_z_plans.py and test_grid_and_points_plans.py test on their own;
#   pymmcore-plus test_mda.py::test_autofocus, test_set_mda_fov,
#     test_sequencing.py (test_fully_sequenceable_core, ...), test_core.py,
#     test_metadata.py, test_multicam_save.py, test_slm_image.py,
#     io/test_ome_tiff.py seq2/seq3, io/test_zarr_writers.py SIMPLE/MULTIPOINT/
#     FULL, test_bench.py's other plans (incl. z200, t200, t40p10c4z40: plain
#     tpcz loops) and the time-only plans with other loop counts;
#   ome-writers SEQ_CASES[no_position_dimension, plate_positions_no_grid,
#     z_relative_positions], RAGGED_CASES[mixed_do_stack,
#     position_grid_not_adjacent_ptgzc], test_useq_manual_units and the other
#     97 test_useq_plans_combination parametrisations.
