"""The user's `MDASequence` object, and copies of it that useq's cache keeps apart.

useq caches each axis's values per plan, found by the plan's `uid` and then by
equality (`==` compares two plans' dumps, and raises for numpy values in their
metadata); pymmcore-plus' runner iterates the user's object on its own thread.
So mmzarr either iterates that very object, when that is safe
(`iterated_as_run`), or a copy with `uid`s of its own (`independent_copy`,
`with_time_plan`). Random points (`random_points`) may be drawn again at each
iteration (`redrawn_points`). Time plans useq takes but that go back, or that
it cannot iterate, are refused (`check_time_plans`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import useq

from mmzarr._plate_wells import wells_problem
from mmzarr.errors import PlanError

__all__ = [
    "as_sequence",
    "check_time_plans",
    "independent_copy",
    "is_event_generator",
    "iterated_as_run",
    "random_points",
    "redrawn_points",
    "redrawn_xy",
    "sub_sequences",
    "with_time_plan",
]


def _new_uid(plan: useq.MDASequence) -> useq.MDASequence:
    """`plan`, given a `uid` of its own (useq has no public way)."""
    plan._uid = uuid4()  # noqa: SLF001
    return plan


def independent_copy(seq: useq.MDASequence) -> useq.MDASequence:
    """A copy of `seq` that shares no object, and no useq cache entry, with it.

    Some plan parts keep state while they are iterated (useq's autofocus plans
    remember the previous event), and pymmcore-plus' runner iterates the user's
    object on its own thread while a handler describes the plan: iterating a
    shared object from two threads corrupts both iterations.

    useq caches each axis's values per plan, found by its `uid` and then by
    equality (`==`, which compares the two plans' dumps and raises for numpy
    values in their metadata): a copy with the user's `uid` would share the
    runner's entries and could break or slow the runner's own iteration. The
    copy and its sub-sequences get new `uid`s. (A deep copy, not a dump and
    validate: a `WellPlatePlan` without `selected_wells` would come back with
    no wells.)
    """
    copy = seq.model_copy(deep=True)
    for plan in (copy, *sub_sequences(copy)):
        _new_uid(plan)
    return copy


def iterated_as_run(seq: useq.MDASequence) -> bool:
    """Whether the runner's own plan object may be iterated beside the runner.

    useq keeps the values of each axis of a plan it has iterated, also after
    pymmcore-plus' engine has given its grids the camera's field of view: a
    plan previewed with `list(seq)`, or run before with another ROI, is run
    with its first grid. Iterating the same object gives those values. It is
    safe without autofocus plans (they remember the previous event while
    iterated) and without random points drawn anew at each iteration or
    shuffled with numpy's global generator (a draw beside the runner's could
    replace its points in useq's cache); seeded points in their own order are
    the same at every draw (how many, with ``allow_overlap=False``, depends on
    the field of view the cache kept).
    """
    plans = (seq, *sub_sequences(seq))
    drawn = [plan for _, plan in random_points(seq)]
    return all(
        plan.random_seed is not None and plan.order != useq.TraversalOrder.RANDOM
        for plan in drawn
    ) and all(p.autofocus_plan is None for p in plans)


def sub_sequences(seq: useq.MDASequence) -> list[useq.MDASequence]:
    """The sub-sequences of `seq`'s stage positions."""
    if isinstance(seq.stage_positions, useq.WellPlatePlan):
        return []
    return [p.sequence for p in seq.stage_positions if p.sequence is not None]


def random_points(seq: useq.MDASequence) -> list[tuple[str, useq.RandomPoints]]:
    """The `RandomPoints` plans of `seq`, each with where it is in the plan."""
    plans: list[tuple[str, Any]] = [("grid_plan", seq.grid_plan)]
    positions = seq.stage_positions
    if isinstance(positions, useq.WellPlatePlan):
        plans.append(("stage_positions.well_points_plan", positions.well_points_plan))
    else:
        plans += [
            (f"stage_positions[{i}].sequence.grid_plan", p.sequence.grid_plan)
            for i, p in enumerate(positions)
            if p.sequence is not None
        ]
    return [(w, plan) for w, plan in plans if isinstance(plan, useq.RandomPoints)]


def redrawn_xy(seq: useq.MDASequence, redrawn: set[str], event: useq.MDAEvent) -> bool:
    """Whether `event` is at random points drawn anew (`redrawn_points`' `redrawn`).

    A plate's random well points move every position; a grid's only its own
    fields (events with a `g`): a position's sub-sequence grid, else the
    sequence's. Other positions of the plan are where the plan says.
    """
    if "stage_positions.well_points_plan" in redrawn:
        return True
    if "g" not in event.index:
        return False
    p = event.index.get("p", 0)
    positions = seq.stage_positions
    if not isinstance(positions, useq.WellPlatePlan) and p < len(positions):
        sub = positions[p].sequence
        if sub is not None and sub.grid_plan is not None:
            return f"stage_positions[{p}].sequence.grid_plan" in redrawn
    return "grid_plan" in redrawn


def is_event_generator(seq: Any) -> bool:
    """Whether `seq` is pymmcore-plus' wrapper of an event generator.

    Its `GeneratorMDASequence` has no fixed list of events (by name: the class
    is private to pymmcore-plus' runner).
    """
    return type(seq).__name__ == "GeneratorMDASequence"


def as_sequence(
    seq: Any, *, generator_hint: str, running: bool = False
) -> useq.MDASequence:
    """`seq` as a `useq.MDASequence` (a dict is validated); `PlanError` otherwise.

    An event generator's `GeneratorMDASequence` has no fixed list of events:
    it is refused with `generator_hint`. `running`: `seq` is the object a
    pymmcore-plus runner is about to iterate; it is itself iterated when that
    is safe (`iterated_as_run`), else copied. A dict whose plate plan selects
    wells not on the plate says which (`wells_problem`).
    """
    if isinstance(seq, useq.MDASequence):
        return seq if running and iterated_as_run(seq) else independent_copy(seq)
    if is_event_generator(seq):
        raise PlanError(
            f"plan: a GeneratorMDASequence has no fixed shape; {generator_hint}"
        )
    try:
        return useq.MDASequence.model_validate(seq)
    except Exception as e:
        plate_plan = seq.get("stage_positions") if isinstance(seq, Mapping) else None
        # useq drops a plate plan's error; wells not on the plate are named
        why = wells_problem(plate_plan) if isinstance(plate_plan, Mapping) else None
        raise PlanError(f"plan: useq rejected it: {why or e}") from e


def check_time_plans(seq: useq.MDASequence) -> None:
    """Refuse time plans that go back, or that useq cannot iterate.

    useq takes a negative `interval` or `duration` without giving it a
    meaning: pymmcore-plus' runner then waits for nothing (as for 0), useq
    counts `duration // interval + 1` (negative) time points for an interval
    with a duration, and its v2 models refuse a negative duration. An
    `interval` of 0 with a `duration`, or a `duration` over one loop, makes
    useq divide by zero.

    Raises
    ------
    PlanError
        Naming the time plan (``time_plan``, ``time_plan.phases[1]``,
        ``stage_positions[0].sequence.time_plan``), the field and its value.
    """
    plans = [("time_plan", seq.time_plan)]
    for i, p in enumerate(seq.stage_positions):
        if p.sequence is not None:
            plans.append(
                (f"stage_positions[{i}].sequence.time_plan", p.sequence.time_plan)
            )
    for where, plan in plans:
        phases = plan.phases if isinstance(plan, useq.MultiPhaseTimePlan) else [plan]
        for k, phase in enumerate(phases):
            name = f"{where}.phases[{k}]" if len(phases) > 1 else where
            _check_phase(name, phase)


def _check_phase(name: str, phase: Any) -> None:
    """`check_time_plans` for one phase, called `name` in messages."""
    if phase is None:  # no time plan
        return
    # a duration given, not one useq computes (a TIntervalLoops' goes back
    # with its interval, named below)
    given = phase.duration if "duration" in type(phase).model_fields else None
    if given is not None and given.total_seconds() < 0:
        raise PlanError(
            f"{name}: duration {given.total_seconds():g} s is negative; give 0 or more"
        )
    try:
        # useq computes some of them: a TDurationLoops of 1 loop
        # divides its duration by loops - 1
        interval = getattr(phase, "interval", None)
        duration = getattr(phase, "duration", None)
    except Exception as e:
        raise PlanError(
            f"{name}: useq cannot iterate it ({type(e).__name__}: {e})"
        ) from e
    if interval is not None and interval.total_seconds() < 0:
        raise PlanError(
            f"{name}: interval {interval.total_seconds():g} s is negative; "
            "give 0 (as fast as possible) or more"
        )
    if (
        isinstance(phase, useq.TIntervalDuration)
        and interval is not None
        and interval.total_seconds() == 0
    ):
        seconds = duration.total_seconds() if duration is not None else None
        raise PlanError(
            f"{name}: interval 0 with duration {seconds:g} s has no number "
            "of time points; give loops (TIntervalLoops) or an interval > 0"
        )


def redrawn_points(seq: useq.MDASequence) -> set[str]:
    """Where `seq` places fields at random points drawn anew on each iteration.

    useq draws `RandomPoints` without a `random_seed` again every time the plan
    is iterated, and shuffles them with numpy's global generator when their
    `order` is `random` (seed or not): the points the runner visits, and which
    field number each gets, are not the ones iterated here. With a seed, or
    with `allow_overlap` (the default), there are `num_points` of them each
    time, so fields keep their numbers and only their positions are unknown;
    without either useq may place fewer, and the numbers of the fields (and,
    in a plate, their wells) cannot be known in advance: a `PlanError`.
    Returns where those plans are in `seq` (as `random_points` names them).
    """
    found: set[str] = set()
    for where, plan in random_points(seq):
        shuffled = plan.order == useq.TraversalOrder.RANDOM
        if plan.random_seed is not None and not shuffled:
            continue
        if plan.random_seed is None and not plan.allow_overlap:
            raise PlanError(
                f"{where}: RandomPoints without random_seed and with "
                "allow_overlap=False are drawn again each time the plan is "
                "iterated, and may be fewer than num_points: which frame belongs "
                "to which field is not known in advance; give a random_seed"
            )
        found.add(where)
    return found


def with_time_plan(
    seq: useq.MDASequence, time: useq.TIntervalLoops
) -> useq.MDASequence:
    """`seq` with another time plan, and a `uid` of its own.

    A copy with `seq`'s `uid` would be found in useq's cache under `seq`'s
    entries, compared with `==` (which raises for numpy values in metadata),
    also by the runner when `seq` is the plan it iterates.
    """
    return _new_uid(seq.model_copy(update={"time_plan": time}))
