"""useq `MDASequence` (+ camera facts) -> settings, in typed steps.

1. `_sequence.as_sequence`: the plan as an `MDASequence` (a dict is validated),
   the runner's own object or an independent copy;
2. camera facts: frame shape, dtype and pixel size (given, or from a core), and
   the camera's field of view, which grid plans use as pymmcore-plus' engine
   does (`mmzarr._core_camera`);
3. `useq_plan`: useq iterates the plan, so every ragged case (sub-sequences,
   `do_stack=False`, `acquire_every`, grids inside positions, well-plate fields)
   is described by exactly the events useq emits; each frame event becomes a
   `FrameSlot` whose `ImageFacts` come from the (sub-)plan that governs its
   image (name, time and z steps, channels, well, grid cell);
4. `AcquisitionSettings.from_useq` runs these steps and builds the settings
   with `_plan.settings_from_slots`, then `warn_unknown_interval`.

It imports `_models` and `_slots`, never `_settings` (no import cycle) nor
pymmcore-plus (a `core` is duck-typed). It does no I/O.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import useq

from mmzarr._core_camera import camera_fov, with_fov
from mmzarr._models import NON_SPATIAL
from mmzarr._sequence import (
    check_time_plans,
    redrawn_points,
    redrawn_xy,
    with_time_plan,
)
from mmzarr._slots import (
    ChannelUse,
    FrameSlot,
    ImageFacts,
    MMZarrWarning,
    PlanFacts,
    PlateFacts,
    Stage,
)
from mmzarr.errors import EmptyPlanError, PlanError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mmzarr._slots import ImageId

__all__ = [
    "GENERATOR_HINT",
    "UseqPlan",
    "acquires_image",
    "camera_plan",
    "frames_acquired",
    "useq_plan",
    "warn_unknown_interval",
]

#: How `AcquisitionSettings.from_useq` refuses an event generator's sequence.
GENERATOR_HINT = "pass a template MDASequence for one time point with unbounded_t=True"
_GRIDS = (useq.GridRowsColumns, useq.GridFromEdges, useq.GridWidthHeight)
#: Periods of a long, repeating time plan that are iterated (`useq_plan`): useq
#: takes ~0.1 ms per event, so a plan of 100,000 frames would take seconds.
REPEATED_PERIODS = 2


# ---- step 3: slots -----------------------------------------------------------------
def _time_scale(plan: Any) -> float | None:
    """Seconds between time points, or None when the plan does not say."""
    if plan is None:
        return None
    if isinstance(plan, useq.MultiPhaseTimePlan):
        # phases of several time points (0: as fast as possible)
        spaced = [_time_scale(p) or 0.0 for p in plan.phases if p.num_timepoints() > 1]
        scales = [s for s in spaced if s]
        if any(not math.isclose(s, spaced[0], rel_tol=1e-6) for s in spaced):
            warnings.warn(
                f"the time plan's phases have intervals {spaced} s: OME-Zarr has "
                f"one t scale, {scales[0] if scales else 1:g} s is written; the "
                "frame log has each frame's time",
                MMZarrWarning,
                stacklevel=2,
            )
        return scales[0] if scales else None
    if isinstance(plan, useq.TDurationLoops):
        if plan.loops < 2:
            return None
        return plan.duration.total_seconds() / (plan.loops - 1) or None
    interval = getattr(plan, "interval", None)
    if isinstance(interval, timedelta):
        return interval.total_seconds() or None
    return None


def _z_scale(plan: Any) -> float | None:
    """Distance between planes (µm) of a z plan, or None when it has no step.

    Negative for a plan that goes down (e.g. `go_up=False`): plane k is at
    the first plane's z plus k times it.
    """
    if plan is None:
        return None
    step = abs(float(getattr(plan, "step", None) or 0))
    zs = [float(z) for z in plan]
    if len(zs) < 2:
        return step or None
    gaps = [b - a for a, b in itertools.pairwise(zs)]
    # the first step that moves (planes may repeat a z: [0, 0, 1])
    down = next((g for g in gaps if not math.isclose(g, 0, abs_tol=1e-9)), None)
    scale = math.copysign(step or abs(down), down) if down is not None else None
    if down is None or any(
        not math.isclose(g, down, rel_tol=1e-6, abs_tol=1e-9) for g in gaps
    ):
        written = (
            f"{scale:g} µm (the first nonzero step)" if scale else f"{step or 1:g} µm"
        )
        warnings.warn(
            f"the z planes {zs} are not evenly spaced: OME-Zarr has one z "
            f"scale, {written} is written; the frame log has each plane's z",
            MMZarrWarning,
            stacklevel=2,
        )
    return scale or step or None


def _plan_of(seq: useq.MDASequence, position: useq.Position | None, attr: str) -> Any:
    """The `time_plan`/`z_plan`/`grid_plan` that governs the images of `position`."""
    sub = position.sequence if position is not None else None
    if sub is not None and getattr(sub, attr) is not None:
        return getattr(sub, attr)
    return getattr(seq, attr)


def _skip_period(seq: useq.MDASequence) -> int:
    everies = [c.acquire_every for c in seq.channels]
    for p in seq.stage_positions:
        if p.sequence is not None:
            everies += [c.acquire_every for c in p.sequence.channels]
    return math.lcm(*everies) if everies else 1


def acquires_image(event: useq.MDAEvent) -> bool:
    """Whether `event` produces a frame (autofocus and custom actions do not)."""
    action = getattr(event, "action", None)
    return action is None or getattr(action, "type", "acquire_image") == "acquire_image"


def _events(seq: useq.MDASequence, before_t: int | None = None) -> list[useq.MDAEvent]:
    """Every event useq yields for `seq`; a plan useq cannot iterate is a PlanError.

    With `before_t`, those of the time points before it (time must then be the
    outermost axis).
    """
    check_time_plans(seq)
    try:
        if before_t is None:
            return list(seq)
        return list(itertools.takewhile(lambda e: e.index.get("t", 0) < before_t, seq))
    except PlanError:
        raise
    except Exception as e:
        raise PlanError(
            f"plan: useq cannot iterate it ({type(e).__name__}: {e})"
        ) from e


@dataclass(frozen=True, slots=True)
class UseqPlan:
    """A useq plan as slots: every event useq yields, and the slot of each frame.

    `slots[k]` describes `events[k]`, or is None for an event that acquires
    no frame (an autofocus action).
    """

    events: tuple[useq.MDAEvent, ...]
    slots: tuple[FrameSlot | None, ...]
    plan: PlanFacts

    @property
    def frame_slots(self) -> list[FrameSlot]:
        """The slots of the events that acquire a frame."""
        return [s for s in self.slots if s is not None]


class _Facts:
    """`ImageFacts` of each image of a plan, made at its first frame event."""

    def __init__(self, seq: useq.MDASequence) -> None:
        self.seq = seq
        # iterated, not sized: a plate's len() needs its points plan's field
        # of view, which iterating does not (the runner leaves it unset)
        self.positions = list(iter(seq.stage_positions))
        self.known: dict[frozenset[tuple[str, int]], ImageFacts] = {}
        self.grid_cells: dict[int, list[Any]] = {}

    def of(self, image: ImageId, event: useq.MDAEvent) -> ImageFacts:
        key = frozenset(image)
        facts = self.known.get(key)
        if facts is None:
            facts = self.known[key] = self._make(dict(image), event)
        return facts

    def _make(self, coords: dict[str, int], event: useq.MDAEvent) -> ImageFacts:
        seq, p, g = self.seq, coords.get("p"), coords.get("g")
        pos = self.positions[p] if p is not None and p < len(self.positions) else None
        base = event.pos_name or (pos.name if pos is not None else None)
        name: str | None = base
        if g is not None:
            name = f"{base or 'Pos' + str(coords.get('p', 0))}_g{g:04d}"
        sub = pos.sequence if pos is not None else None
        channels = sub.channels if sub is not None and sub.channels else seq.channels
        cell = pos
        if g is not None:
            cell = self._grid_cell(_plan_of(seq, pos, "grid_plan"), g)
        return ImageFacts(
            name=name,
            t_scale=_time_scale(_plan_of(seq, pos, "time_plan")),
            z_scale=_z_scale(_plan_of(seq, pos, "z_plan")),
            channels=tuple(ChannelUse(c.config, c.exposure, c.group) for c in channels),
            plate_row=getattr(pos, "plate_row", None),
            plate_col=getattr(pos, "plate_col", None),
            grid_row=getattr(cell, "grid_row", None),
            grid_col=getattr(cell, "grid_col", None),
        )

    def _grid_cell(self, grid: Any, g: int) -> Any:
        """Cell `g` of a grid plan (random points have no cells)."""
        if not isinstance(grid, _GRIDS):
            return None
        cells = self.grid_cells.get(id(grid))
        if cells is None:  # listed once per grid, not once per image
            cells = self.grid_cells[id(grid)] = list(grid)
        return cells[g] if g < len(cells) else None


def _slot(
    event: useq.MDAEvent, facts: _Facts, stage: Stage, *, xy: bool = True
) -> FrameSlot:
    """The slot of `event`; without its x and y unless `xy`."""
    # useq's keys are `Axis` str-enums; keep plain strings
    index = {str(k): int(v) for k, v in event.index.items()}
    image = tuple((k, v) for k, v in index.items() if k not in NON_SPATIAL)
    channel = event.channel
    at = stage.move(event.x_pos, event.y_pos, event.z_pos)
    return FrameSlot(
        image=image,
        t=index.get("t"),
        c=index.get("c"),
        z=index.get("z"),
        channel=(
            ChannelUse(channel.config, event.exposure, channel.group)
            if channel
            else None
        ),
        x_um=at["x"] if xy else None,
        y_um=at["y"] if xy else None,
        z_um=at["z"],
        facts=facts.of(image, event),
    )


def repeating_time_points(seq: useq.MDASequence, period: int) -> int | None:
    """The time points of `seq` when each repeats its period's events, if many.

    That holds when time is the outermost axis and no position has a time plan
    of its own: useq then yields the same events at every time point (but for
    channels' `acquire_every`, whose pattern repeats every `period`). None when
    it may not, or when there are no more than `REPEATED_PERIODS` periods.
    """
    if seq.time_plan is None:
        return None
    check_time_plans(seq)  # a plan useq cannot count is refused as before
    if not seq.used_axes.startswith("t"):
        return None
    for p in seq.stage_positions:
        if p.sequence is not None and p.sequence.time_plan is not None:
            return None
    # the time points useq iterates (its `num_timepoints` can differ, e.g. for
    # a MultiPhaseTimePlan of one phase at interval 0); cheap: no events
    n = sum(1 for _ in seq.time_plan)
    return n if n > REPEATED_PERIODS * period else None


def useq_plan(
    seq: useq.MDASequence,
    *,
    unbounded_t: bool = False,
    repeat_time: bool = False,
    stage_position: Mapping[str, Any] | None = None,
) -> UseqPlan:
    """Iterate `seq` with useq; its events, their slots and the plan's facts.

    With `unbounded_t`, one period of the plan's channel `acquire_every`
    pattern is iterated (time then grows as frames arrive). With `repeat_time`,
    a long time plan whose time points repeat their period's events
    (`repeating_time_points`) is iterated for `REPEATED_PERIODS` periods only
    (`PlanFacts.time_points` says how many there are): the events are then not
    all of them, the slots describe every frame. Each slot's stage position is
    where pymmcore-plus has the stage then (`Stage`: an axis an event does not
    set stays put; `stage_position` is where it starts).

    Raises
    ------
    PlanError
        For a plan useq cannot iterate, or that acquires no frame.
    """
    period = _skip_period(seq)
    time_points = None
    if unbounded_t:
        time = useq.TIntervalLoops(interval=0, loops=period)
        events = _events(with_time_plan(seq, time))
    elif repeat_time and (time_points := repeating_time_points(seq, period)):
        # time is outermost: the first time points are the first events of
        # `seq` itself (the runner's object when `seq` is: its cached grid)
        events = _events(seq, before_t=REPEATED_PERIODS * period)
    else:
        events = _events(seq)
    redrawn = redrawn_points(seq)
    facts = _Facts(seq)
    stage = Stage(stage_position)
    slots: list[FrameSlot | None] = []
    for e in events:
        if acquires_image(e):
            xy = not redrawn_xy(seq, redrawn, e)
            slots.append(_slot(e, facts, stage, xy=xy))
        else:  # an autofocus event moves the stage too
            stage.move(e.x_pos, e.y_pos, e.z_pos)
            slots.append(None)
    if not any(slots):
        raise EmptyPlanError(
            f"plan: the MDASequence acquires no frames (useq yields no image "
            f"events for it): {seq!r}"
        )
    order = "".join(seq.axis_order)
    plate = seq.stage_positions
    return UseqPlan(
        events=tuple(events),
        slots=tuple(slots),
        plan=PlanFacts(
            axis_order=order,
            positions_inside_time="t" not in order
            or "p" not in order
            or order.index("t") < order.index("p"),
            plate=PlateFacts(
                plate.plate.name, int(plate.plate.rows), int(plate.plate.columns)
            )
            if isinstance(plate, useq.WellPlatePlan)
            else None,
            unbounded_t=unbounded_t,
            period=period,
            time_points=time_points,
        ),
    )


def camera_plan(
    seq: useq.MDASequence,
    core: Any,
    *,
    unbounded_t: bool = False,
    stage_position: Mapping[str, Any] | None = None,
) -> UseqPlan:
    """`useq_plan` of `seq` as run with `core`: grids use the camera's field of view.

    Without a `core` (or its pixel size) the plan's own fields of view are kept.
    """
    if core is not None and (fov := camera_fov(core)) is not None:
        seq = with_fov(seq, fov)
    return useq_plan(
        seq, unbounded_t=unbounded_t, repeat_time=True, stage_position=stage_position
    )


def frames_acquired(seq: useq.MDASequence, core: Any = None) -> int:
    """The frames a run of `seq` acquires with one camera: useq's image events.

    Grids use the camera's field of view, as in `camera_plan`. A long time
    plan whose time points repeat their period's events
    (`repeating_time_points`) is counted from its first period. Used where
    `seq` has no settings (the fallback layout of a dry run).

    Raises
    ------
    PlanError
        For a plan useq cannot iterate.
    """
    if core is not None and (fov := camera_fov(core)) is not None:
        seq = with_fov(seq, fov)
    period = _skip_period(seq)
    time_points = repeating_time_points(seq, period)
    if time_points is None:
        return sum(1 for e in _events(seq) if acquires_image(e))
    first = _events(seq, before_t=period)
    per_t = Counter(e.index.get("t", 0) for e in first if acquires_image(e))
    # time point t acquires what time point t % period does
    return sum(n * len(range(t, time_points, period)) for t, n in per_t.items())


def warn_unknown_interval(plan: UseqPlan) -> None:
    """Warn (for the caller's caller) when a timed image has no time interval."""
    timed = [
        s.facts for s in plan.frame_slots if s.t is not None or plan.plan.unbounded_t
    ]
    if any(f.t_scale is None for f in timed):
        warnings.warn(
            "time interval is unknown or 0: writing a t scale of 1 second",
            MMZarrWarning,
            stacklevel=3,
        )
