"""Plans from other projects' test suites (`tests._peer_plans`), on every path.

Stream path: every plan on every backend, checked against the oracle of
`tests._oracle` (or a `PlanError` where the oracle says the plan cannot be
mapped). MDA path: the plans the demo rig can run quickly (`MDA_PLANS`: with
frames, only the rig's channel presets, at most `MDA_MAX_FRAMES` frames and
`MDA_MAX_WAIT_S` of waiting for time points, `MDA_MAX_WAIT_FALLBACK_S` for
plans that cannot be mapped) through `MDAWriter` (acquire-zarr), compared
pixel for pixel with what the camera produced, or with the fallback layout.
The other plans (channel presets the rig lacks, seconds-long time plans, the
empty plan, 176-292 frames) run on the stream path only. Pycro-Manager path:
every plan's `events_from_useq` events drive ``ZarrHook(events=...)``
(`tests.test_plan_space.check_hook_plan`); plans whose events Pycro-Manager
cannot run (autofocus, ...) are skipped with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._oracle import USEQ_ITERATION_ERRORS, build_oracle, frame_events
from tests._peer_plans import PEER_PLANS, PeerPlan
from tests._strategies import CHANNEL_GROUP, CHANNELS
from tests.test_plan_space import (
    MDA_SHAPE,
    check_hook_plan,
    check_mda_plan,
    check_stream_plan,
)

if TYPE_CHECKING:
    import useq
    from pymmcore_plus.experimental.unicore import UniMMCore

#: the MDA path runs a plan only if the runner waits at most this long for its
#: time points (peer plans use intervals of seconds) ...
MDA_MAX_WAIT_S = 1.0
#: ... or this long for a plan that cannot be mapped (the fallback layout is
#: the MDA path's own behaviour) ...
MDA_MAX_WAIT_FALLBACK_S = 10.0
#: ... and it has at most this many frames
MDA_MAX_FRAMES = 150


def planned_wait_s(seq: useq.MDASequence) -> float:
    """Seconds an MDA runner waits for the plan's ``min_start_time``s.

    The runner's clock restarts at events with ``reset_event_timer``; the wait
    is the sum of the last start time of each such stretch.
    """
    total, stretch = 0.0, 0.0
    for event in seq:
        if event.reset_event_timer:
            total, stretch = total + stretch, 0.0
        stretch = max(stretch, event.min_start_time or 0.0)
    return total + stretch


def _runs_on_demo_rig(seq: useq.MDASequence) -> bool:
    """The plan has frames, its channels are demo-rig presets and it is quick.

    pymmcore-plus raises for a channel preset the rig does not define; plans
    that cannot be mapped may take longer (`MDA_MAX_WAIT_FALLBACK_S`).
    """
    try:
        frames = frame_events(seq)
        wait = planned_wait_s(seq)
    except USEQ_ITERATION_ERRORS:
        return False
    presets = {(CHANNEL_GROUP, c) for c in CHANNELS}
    channels = {(e.channel.group, e.channel.config) for e in frames if e.channel}
    repeats = build_oracle(frames, seq.stage_positions, MDA_SHAPE).repeats
    max_wait = MDA_MAX_WAIT_FALLBACK_S if repeats else MDA_MAX_WAIT_S
    quick = 0 < len(frames) <= MDA_MAX_FRAMES and wait <= max_wait
    return quick and channels <= presets


#: peer plans the MDA path runs (the others only on the stream path)
MDA_PLANS: list[PeerPlan] = [p for p in PEER_PLANS if _runs_on_demo_rig(p.seq)]


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")
@pytest.mark.parametrize("plan", PEER_PLANS, ids=lambda p: p.id)
def test_peer_plan_stream(plan: PeerPlan, backend: str) -> None:
    """Every frame streamed -> settings and pixels as useq's iteration says."""
    check_stream_plan(plan.seq, backend)


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")
@pytest.mark.parametrize("plan", MDA_PLANS, ids=lambda p: p.id)
def test_peer_plan_mda(plan: PeerPlan, core: UniMMCore) -> None:
    """Run on the demo rig -> the camera's frames where useq says (or fallback)."""
    check_mda_plan(plan.seq, core)


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")
@pytest.mark.parametrize("plan", PEER_PLANS, ids=lambda p: p.id)
def test_peer_plan_hook(plan: PeerPlan) -> None:
    """events_from_useq -> ZarrHook -> the oracle's (and from_useq's) dataset."""
    checked = check_hook_plan(plan.seq)
    if checked.startswith("skipped: "):
        pytest.skip(f"Pycro-Manager events cannot say it: {checked[9:]}")
