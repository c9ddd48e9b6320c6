"""Every plan, every path: drawn useq plans against an oracle from useq's iteration.

Expectations come from `tests._oracle` (useq's events and the layout rules),
never from mmzarr. Stream path: `AcquisitionSettings.from_useq` + `create_stream`
on every backend, read back with zarr-python and tensorstore. MDA path: the
plan runs on the demo rig through `MDAWriter`; what the camera produced
(``frameReady``) must read back at the oracle's places, or, for a plan that
cannot be mapped to arrays, in the fallback layout (every frame along ``t``).
Pycro-Manager path: the plan's `events_from_useq` events drive
``ZarrHook(events=...)`` with (image, metadata) pairs built by pycromanager's
own code (`tests.test_pycromanager.pycro_image`), one per event; the dataset
must match the oracle and be the one `from_useq` (so `MDAWriter`) describes.

``pytest --hypothesis-profile=sweep tests/test_plan_space.py`` draws 1000 plans
per test instead of the CI profile's few dozen.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis
import numpy as np
import pytest
import useq
from hypothesis import HealthCheck, example, given, settings

import mmzarr
from tests._oracle import (
    USEQ_ITERATION_ERRORS,
    Oracle,
    build_oracle,
    frame_events,
    plain_index,
)
from tests._readback import (
    array_of,
    check_metadata,
    group_json,
    read_tensorstore,
    read_zarr,
)
from tests._strategies import IMAGE_SHAPE, PIXEL_SIZE_UM, examples, mda_sequences

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pymmcore_plus.experimental.unicore import UniMMCore

DTYPE = "uint16"
#: camera frames of the MDA path (the demo camera's smallest sensor)
MDA_SHAPE: tuple[int, int] = (64, 64)
_IGNORE_MMZARR_WARNINGS = pytest.mark.filterwarnings(
    # unknown/zero time interval: expected for drawn plans, not what is tested
    "ignore::mmzarr.MMZarrWarning"
)


# ---- regression plans ------------------------------------------------------------
def _mda(**kwargs: Any) -> useq.MDASequence:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return useq.MDASequence(**kwargs)


#: plans that once broke mmzarr (name -> plan)
REGRESSIONS: dict[str, useq.MDASequence] = {
    # TypeError 't_unknown' for >= 2 images with interval 0
    "two positions, interval 0": _mda(
        stage_positions=[(0.0, 0.0), (10.0, 10.0)],
        time_plan={"interval": 0, "loops": 3},
    ),
    # useq cannot iterate it (ZeroDivisionError): a PlanError, not a crash
    "interval 0 with a duration": _mda(time_plan={"interval": 0, "duration": 1}),
    "one channel twice, two exposures": _mda(
        channels=[
            {"config": "DAPI", "exposure": 10.0},
            {"config": "DAPI", "exposure": 30.0},
        ],
        z_plan={"range": 1, "step": 1},
    ),
    "two positions, one name": _mda(
        stage_positions=[
            useq.Position(x=0.0, y=0.0, name="A"),
            useq.Position(x=5.0, y=5.0, name="A"),
        ],
        channels=["DAPI"],
    ),
    # found by the sweep profile: PlanError "acquisition_order () must be a
    # permutation of ('t',)" (a sub-sequence axis missing from axis_order)
    "sub-sequence t, axis_order without t": _mda(
        axis_order="p",
        stage_positions=[
            useq.Position(
                sequence=useq.MDASequence(time_plan={"interval": 0, "loops": 1})
            )
        ],
    ),
    # found by a sweep: described from one period of its time plan, c (which
    # only the sub-sequence has) was put outside t: acquisition_order (c, t)
    # and no index-less appends, where useq yields t0c0, t0c1, t1c0, ...
    "sub-sequence channels, axis_order c before t": _mda(
        axis_order="ctp",
        stage_positions=[
            useq.Position(sequence=useq.MDASequence(channels=["DAPI", "FITC"]))
        ],
        time_plan={"interval": 0, "loops": 5},
    ),
    # useq's tests/fixtures/mda.yaml, smaller: autofocus on c, a position whose
    # sub-sequence has its own grid and z plan, DAPI every 3rd t and unstacked
    "useq fixture: autofocus + position z sub-plan": _mda(
        autofocus_plan=useq.AxesBasedAF(
            autofocus_device_name="Z", autofocus_motor_offset=50.0, axes=("c",)
        ),
        channels=[
            {"config": "Cy5", "exposure": 5.0},
            {"config": "FITC", "exposure": 1.0},
            {"config": "DAPI", "acquire_every": 3, "do_stack": False},
        ],
        grid_plan=useq.GridRowsColumns(rows=2, columns=1, fov_width=5, fov_height=4),
        stage_positions=[
            useq.Position(x=10.0, y=20.0),
            useq.Position(
                name="test_name",
                x=10.0,
                y=20.0,
                z=50.0,
                sequence=useq.MDASequence(
                    grid_plan=useq.GridRowsColumns(
                        rows=2, columns=3, fov_width=5, fov_height=4
                    ),
                    z_plan=useq.ZAboveBelow(above=2.0, below=0.0, step=1.0),
                ),
            ),
        ],
        time_plan=useq.MultiPhaseTimePlan(
            phases=[
                useq.TIntervalLoops(interval=0.01, loops=2),
                useq.TIntervalDuration(interval=0.01, duration=0.01),
            ]
        ),
        z_plan=useq.ZRangeAround(range=1.0, step=0.5),
    ),
    # found by the sweep profile: the camera's field of view leaves room for 1
    # of these 2 points; useq warns and the runner goes on (the test, whose
    # warnings are errors, failed in the runner)
    "non-overlapping random points, fewer in the camera's field": _mda(
        axis_order="g",
        grid_plan=useq.RandomPoints(
            fov_width=5.0,
            fov_height=4.0,
            num_points=2,
            max_width=10.0,
            max_height=10.0,
            random_seed=0,
            allow_overlap=False,
        ),
    ),
    # found by an audit (helper 94): a position in no well beside positions in
    # wells went to the fallback layout; a row without a column did too, and a
    # column without a row was dropped silently. A collection, with a warning
    "positions partly in wells": _mda(
        stage_positions=[
            useq.Position(x=0.0, y=0.0, plate_row=0, plate_col=1),
            useq.Position(x=100.0, y=0.0, name="outside"),
        ],
        channels=["DAPI", "FITC"],
    ),
    "positions with a plate row only": _mda(
        stage_positions=[
            useq.Position(x=0.0, y=0.0, plate_row=0),
            useq.Position(x=100.0, y=0.0, plate_row=1),
        ],
        z_plan={"range": 1, "step": 1},
    ),
}


def with_regressions(
    *, skip: Sequence[str] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add every `REGRESSIONS` plan (but `skip`) as an explicit ``@example``."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for name, seq in reversed(REGRESSIONS.items()):
            if name not in skip:
                test = example(seq=seq).via(name)(test)
        return test

    return decorate


# ---- checks shared with tests/test_peer_plans.py ----------------------------------
def stamp(k: int, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """Frame `k` of a stream: ``(k + 1) * 100 + 10 * y + x`` (unique, never 0)."""
    assert k < 650, "stamp would overflow uint16"
    assert shape[0] <= 10, "stamp would collide"
    assert shape[1] <= 10, "stamp would collide"
    y, x = np.indices(shape)
    return ((k + 1) * 100 + 10 * y + x).astype(DTYPE)


def settings_for(seq: useq.MDASequence) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=IMAGE_SHAPE, dtype=DTYPE, pixel_size_um=PIXEL_SIZE_UM
    )


def check_channel_labels(
    labels: Sequence[str], configs: Sequence[str | None], key: str
) -> None:
    """Rule 8: a label per c index; the config, or unique and starting with it."""
    assert len(labels) == len(configs), (key, labels, configs)
    assert len(set(labels)) == len(labels), f"{key!r}: labels {labels} not unique"
    for label, config in zip(labels, configs, strict=True):
        if config is None:  # no event has this c: the rules say nothing
            continue
        # an unfilled c slot may hold the same config (useq skipped all its
        # events, e.g. do_stack=False): then this label may need a suffix too
        if configs.count(config) == 1 and None not in configs:
            assert label == config, (key, labels, configs)
        else:
            assert label.startswith(config), (key, labels, configs)


def check_names(names: Sequence[str | None], oracle: Oracle) -> None:
    """Rule 9: the oracle's name, unique; on a collision, prefixed by the base."""
    given_names = [n for n in names if n is not None]
    assert len(set(given_names)) == len(given_names), f"names not unique: {names}"
    expected = [i.name for i in oracle.images]
    for got, img in zip(names, oracle.images, strict=True):
        if img.name is None:  # no base and no g: any name (or none) will do
            continue
        if expected.count(img.name) == 1:
            assert got == img.name, (img.key, names, expected)
        else:
            prefix = img.base or (f"Pos{img.p}" if img.g is not None else "")
            assert got is not None, (img.key, names)
            assert got.startswith(prefix), (img.key, names)


def check_settings(s: mmzarr.AcquisitionSettings, oracle: Oracle) -> None:
    """Layout, keys, axes, shapes, channel labels and names match the oracle."""
    assert s.layout == oracle.layout
    assert tuple(s.keys) == oracle.keys
    assert len(s.images) == len(oracle.images)
    for img, exp in zip(s.images, oracle.images, strict=True):
        assert tuple(img.dim_names) == exp.dim_names, exp.key
        assert tuple(img.shape) == exp.shape, exp.key
        if "c" in exp.axes:
            labels = [c.name for c in img.channels]
            check_channel_labels(labels, exp.channels, exp.key)
    check_names([img.name for img in s.images], oracle)


READERS: tuple[Callable[[Path, str], np.ndarray], ...] = (read_zarr, read_tensorstore)


def check_arrays(root: Path, oracle: Oracle, frames: Sequence[np.ndarray]) -> None:
    """Every image reads back (zarr-python and tensorstore) as the oracle says.

    Frame ``k`` is at ``oracle.placements[k]``; every other plane is 0.
    """
    expected: dict[str, np.ndarray] = {
        img.key: np.zeros(img.shape, DTYPE) for img in oracle.images
    }
    for place, frame in zip(oracle.placements, frames, strict=True):
        expected[place.key][place.index] = frame
    for key, want in expected.items():
        for read in READERS:
            got = read(root, array_of(key))
            assert got.shape == want.shape, (read.__name__, key)
            if np.array_equal(got, want):
                continue
            for idx in np.ndindex(want.shape[:-2]):
                np.testing.assert_array_equal(
                    got[idx], want[idx], err_msg=f"{read.__name__}: {key!r} {idx}"
                )


def check_stream_plan(seq: useq.MDASequence, backend: str) -> str:
    """Stream every frame of `seq` and compare the dataset with the oracle.

    A plan useq cannot iterate, without frames, or whose images repeat a
    storage index must be refused by `from_useq` with a `PlanError`. Returns
    what was checked (for hypothesis' statistics).
    """
    try:
        events = list(seq)
    except USEQ_ITERATION_ERRORS:
        with pytest.raises(mmzarr.PlanError):
            settings_for(seq)
        return "PlanError: useq cannot iterate the plan"
    oracle = build_oracle(events, seq.stage_positions, IMAGE_SHAPE)
    if oracle.repeats or not oracle.events:
        with pytest.raises(mmzarr.PlanError):
            settings_for(seq)
        return "PlanError: " + ("repeats" if oracle.repeats else "no frames")
    s = settings_for(seq)
    check_settings(s, oracle)
    frames = [stamp(k) for k in range(len(oracle.events))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plan.ome.zarr"
        with mmzarr.create_stream(root, s, backend=backend, overwrite=True) as stream:
            for event, frame in zip(oracle.events, frames, strict=True):
                stream.append(frame, index=event.index)
        assert "fallback" not in group_json(root)["attributes"].get("mmzarr", {})
        check_metadata(root)
        check_arrays(root, oracle, frames)
    return f"written: {oracle.layout}"


_LAYOUT_ATTR = {
    "image": "multiscales",
    "collection": "bioformats2raw.layout",
    "plate": "plate",
}


def check_fallback(
    root: Path, frames: Sequence[tuple[useq.MDAEvent, np.ndarray]]
) -> None:
    """An unmappable plan: one image, frame k at t=k, the reason and a frame log."""
    attrs = group_json(root)["attributes"]
    assert "multiscales" in attrs["ome"], attrs["ome"].keys()
    reason = attrs.get("mmzarr", {}).get("fallback")
    assert isinstance(reason, str), attrs.get("mmzarr")
    assert reason, "empty fallback reason"
    for read in READERS:
        got = read(root, "0")
        assert got.shape == (len(frames), *MDA_SHAPE), read.__name__
        for k, (event, img) in enumerate(frames):
            np.testing.assert_array_equal(
                got[k], img, err_msg=f"{read.__name__}: frame {k} {dict(event.index)}"
            )
    lines = (root / "mmzarr" / "frames.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, filter(None, lines)) if "event_index" in r]
    assert [r["event_index"] for r in records] == [plain_index(e) for e, _ in frames]
    check_metadata(root)


def check_mda_plan(
    seq: useq.MDASequence, core: UniMMCore, backend: str = "acquire-zarr"
) -> str:
    """Run `seq` on the demo rig through `MDAWriter`; compare with the camera.

    Returns what was checked (for hypothesis' statistics).
    """
    # the engine sets the grid plans' FOV in place: keep the caller's plan as is
    seq = seq.model_copy(deep=True)
    core.setProperty("Camera", "SensorWidth", str(MDA_SHAPE[1]))
    core.setProperty("Camera", "SensorHeight", str(MDA_SHAPE[0]))
    frames: list[tuple[useq.MDAEvent, np.ndarray]] = []

    def on_frame(img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        frames.append((event, np.array(img, copy=True)))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mda.ome.zarr"
        writer = mmzarr.MDAWriter(root, core=core, backend=backend)
        core.mda.events.frameReady.connect(on_frame)
        try:
            core.mda.run(seq, output=writer)
        finally:
            core.mda.events.frameReady.disconnect(on_frame)
        writer.close()  # raises what went wrong during the run
        assert writer.error is None
        # not cancelled: every frame event of the plan was acquired, in order
        # (iterated after the run: the engine set the grids' FOV from the camera)
        planned = [plain_index(e) for e in frame_events(seq)]
        assert [plain_index(e) for e, _ in frames] == planned
        oracle = build_oracle([e for e, _ in frames], seq.stage_positions, MDA_SHAPE)
        if oracle.repeats:
            check_fallback(root, frames)
            return "fallback"
        attrs = group_json(root)["attributes"]
        # a plan that can be mapped is not written in the fallback layout
        assert "fallback" not in attrs.get("mmzarr", {}), attrs["mmzarr"]["fallback"]
        assert _LAYOUT_ATTR[oracle.layout] in attrs["ome"], oracle.layout
        check_metadata(root)
        check_arrays(root, oracle, [img for _, img in frames])
    return f"written: {oracle.layout}"


#: what `events_from_useq` refuses because Pycro-Manager events cannot say it
PYCRO_REFUSALS = (
    "has no Pycro-Manager event equivalent",  # autofocus (and custom) actions
    "slm_image/roi/properties are not translated",
    "moves the XY stage only when an event has both x and y",
)


def _draws_points_again(seq: useq.MDASequence) -> bool:
    """Whether a grid of `seq` is `RandomPoints` without a `random_seed`, or
    visited in `random` order (useq shuffles with numpy's global generator)."""
    grids = [seq.grid_plan]
    if isinstance(seq.stage_positions, useq.WellPlatePlan):
        grids.append(seq.stage_positions.well_points_plan)
    else:
        grids += [p.sequence.grid_plan for p in seq.stage_positions if p.sequence]
    return any(
        isinstance(g, useq.RandomPoints)
        and (g.random_seed is None or g.order == useq.TraversalOrder.RANDOM)
        for g in grids
    )


def check_hook_plan(seq: useq.MDASequence, backend: str = "acquire-zarr") -> str:
    """Drive ``ZarrHook(events=events_from_useq(seq))`` as pycromanager's engine does.

    One image per event, its metadata made by pycromanager's own code; the
    dataset must read back as the oracle says and be described exactly as
    `from_useq` describes the plan (layout, keys, names, shapes, scales,
    channels, plate, stage positions). Plans `from_useq` refuses must be
    refused by `events_from_useq` too; those Pycro-Manager events cannot say
    (`PYCRO_REFUSALS`) are skipped with the reason. Returns what was checked.
    """
    pytest.importorskip("pycromanager")
    from mmzarr.pycromanager import ZarrHook, events_from_useq
    from tests.test_pycromanager import pycro_image

    try:
        oracle = build_oracle(list(seq), seq.stage_positions, IMAGE_SHAPE)
    except USEQ_ITERATION_ERRORS:
        oracle = None
    if oracle is None or oracle.repeats or not oracle.events:
        with pytest.raises(mmzarr.PlanError):
            events_from_useq(seq)
        return "PlanError"
    try:
        events = events_from_useq(seq)
    except mmzarr.PlanError as e:
        refusal = next((r for r in PYCRO_REFUSALS if r in str(e)), None)
        if refusal is None:
            raise
        return f"skipped: {refusal}"
    want = settings_for(seq)
    frames = [stamp(k) for k in range(len(oracle.events))]
    assert len(events) == len(frames)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hook.ome.zarr"
        hook = ZarrHook(root, events=events, backend=backend, keep_images=False)
        for event, frame in zip(events, frames, strict=True):
            hook(*pycro_image(event, frame, pixel_size=PIXEL_SIZE_UM))
        hook.close()
        assert hook.fallback_reason is None, hook.fallback_reason
        assert hook.unplaced is None, "images kept beside the dataset"
        got = mmzarr.AcquisitionSettings.model_validate_json(
            (root / "mmzarr" / "settings.json").read_text()
        )
        check_settings(got, oracle)
        got_doc, want_doc = got.model_dump(mode="json"), want.model_dump(mode="json")
        if _draws_points_again(seq):
            # random points: each iteration of the plan draws (or orders) its own
            # (the hook's events have the points of one; from_useq leaves them out)
            for doc in (got_doc, want_doc):
                for im in doc["images"]:
                    im.pop("stage_position")
        assert got_doc == want_doc
        check_metadata(root)
        check_arrays(root, oracle, frames)
    return f"written: {oracle.layout}"


# ---- the tests ----------------------------------------------------------------------
@_IGNORE_MMZARR_WARNINGS
@settings(
    max_examples=examples(15),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seq=mda_sequences())
@with_regressions()
def test_stream_plan(seq: useq.MDASequence, backend: str) -> None:
    """Drawn plan -> settings, every frame streamed -> read back as useq says."""
    hypothesis.event(check_stream_plan(seq, backend))


# useq warns (and the run goes on) when the camera's field of view leaves room
# for fewer non-overlapping random points than asked: not an error for users
@pytest.mark.filterwarnings("ignore:Unable to generate:UserWarning")
@_IGNORE_MMZARR_WARNINGS
@settings(
    max_examples=examples(10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seq=mda_sequences())
@with_regressions(skip=["interval 0 with a duration"])  # the runner cannot run it
def test_mda_plan(seq: useq.MDASequence, core: UniMMCore) -> None:
    """Drawn plan run on the demo rig -> what the camera produced, where useq says."""
    hypothesis.event(check_mda_plan(seq, core))


@_IGNORE_MMZARR_WARNINGS
@settings(
    max_examples=examples(15),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seq=mda_sequences())
@with_regressions()
def test_hook_plan(seq: useq.MDASequence) -> None:
    """Drawn plan -> events_from_useq -> ZarrHook -> the oracle's dataset."""
    hypothesis.event(check_hook_plan(seq))


@_IGNORE_MMZARR_WARNINGS
@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow])
@given(seq=mda_sequences())
@with_regressions()
def test_append_without_index_follows_useq_or_refuses(seq: useq.MDASequence) -> None:
    """Frames appended without an index land where useq's own index says, in
    useq's order; a plan whose order the default order cannot follow refuses
    such an append (a `FrameError`), never placing a frame elsewhere."""
    from mmzarr._routing import Router

    try:
        s = settings_for(seq)
    except mmzarr.PlanError:
        return  # refused plans (and their fallback) are the other tests'
    frames = [
        e for e in seq if e.action is None or isinstance(e.action, useq.AcquireImage)
    ]
    router = Router(s)
    if not s.ordered_appends:
        with pytest.raises(mmzarr.FrameError, match="index"):
            router.place()
        return
    for event in frames:
        placed = router.place()
        assert (placed.key, placed.index) == s.locate(event.index), event.index
        router.mark(placed)


@pytest.mark.parametrize(
    ("seq", "ordered"),
    [
        (
            useq.MDASequence(
                channels=["A", "B"],
                time_plan={"interval": 1, "loops": 2},
                axis_order="ct",
            ),
            True,
        ),
        (
            useq.MDASequence(
                stage_positions=[(0, 0), (1, 1)], channels=["A", "B"], axis_order="tpc"
            ),
            True,
        ),
        (
            useq.MDASequence(
                stage_positions=[(0, 0), (1, 1)], channels=["A", "B"], axis_order="pct"
            ),
            True,
        ),
        (
            useq.MDASequence(
                stage_positions=[(0, 0), (1, 1)],
                channels=["A", "B"],
                time_plan={"interval": 1, "loops": 2},
                axis_order="tcp",
            ),
            False,
        ),
    ],
    ids=["ct", "tpc", "pct", "tcp"],
)
def test_which_plans_take_frames_without_an_index(
    seq: useq.MDASequence, ordered: bool
) -> None:
    """Positions inside channels (`tcp`) interleave images within a time point."""
    assert settings_for(seq).ordered_appends is ordered


def _settings_doc(seq: useq.MDASequence, repeated_periods: int) -> Any:
    """`settings_for(seq)` as JSON, with a long time plan iterated for
    `repeated_periods` of its periods (the full plan: a huge number)."""
    from unittest import mock

    with mock.patch("mmzarr._from_useq.REPEATED_PERIODS", repeated_periods):
        try:
            doc = settings_for(seq).model_dump(mode="json")
        except mmzarr.PlanError as e:
            return f"PlanError: {e}"
    for im in doc["images"]:
        im.pop("stage_position")  # random points: each copy draws its own
    return doc


@_IGNORE_MMZARR_WARNINGS
@settings(max_examples=examples(100), suppress_health_check=[HealthCheck.too_slow])
@given(seq=mda_sequences())
@with_regressions()
def test_long_time_plan_settings_equal_the_full_iteration(
    seq: useq.MDASequence,
) -> None:
    """A long time plan is described from its first periods (useq takes ~0.1 ms
    per event): the settings equal those of iterating every event (here with
    one period already counting as long)."""
    assert _settings_doc(seq, 1) == _settings_doc(seq, 10**9)
    # and with enough time points for several periods of `acquire_every`
    for loops in (6, 7):
        time_plan = useq.TIntervalLoops(interval=1, loops=loops)
        longer = seq.model_copy(update={"time_plan": time_plan})
        assert _settings_doc(longer, 1) == _settings_doc(longer, 10**9)


def test_a_long_time_plan_is_described_without_iterating_it() -> None:
    """100,000 time points of 2 channels (one acquired every 3rd time point)."""
    seq = useq.MDASequence(
        time_plan={"interval": 1, "loops": 100_000},
        channels=["DAPI", {"config": "FITC", "acquire_every": 3}],
    )
    s = settings_for(seq)
    (im,) = s.images
    assert [d.size for d in im.index_dims] == [100_000, 2]
    assert s.frames_planned == 100_000 + 33_334
    assert im.is_acquired((99_999, 1))
    assert not im.is_acquired((99_998, 1))
    # the events useq yields for the first time points, where useq puts them
    head = useq.MDASequence(
        time_plan={"interval": 1, "loops": 7}, channels=seq.channels
    )
    assert [s.locate(e.index) for e in head] == [
        ("", (e.index["t"], e.index["c"])) for e in head
    ]


@pytest.mark.parametrize("grid", ["rows_columns", "from_edges", "width_height"])
def test_a_grid_is_listed_a_fixed_number_of_times(
    grid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Describing a tile scan lists its grid a fixed number of times, not once
    per tile (a 40x40 grid took 20-30 s, growing with the square of the
    tiles)."""
    cls = {
        "rows_columns": useq.GridRowsColumns,
        "from_edges": useq.GridFromEdges,
        "width_height": useq.GridWidthHeight,
    }[grid]
    real = cls.__iter__
    calls: list[int] = []

    def counted(self: Any) -> Any:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(cls, "__iter__", counted)

    def times_listed(n: int) -> int:
        plan = {
            "rows_columns": lambda: useq.GridRowsColumns(rows=n, columns=n),
            "from_edges": lambda: useq.GridFromEdges(
                top=0, left=0, bottom=n - 1, right=n - 1
            ),
            "width_height": lambda: useq.GridWidthHeight(width=n, height=n),
        }[grid]()
        seq = useq.MDASequence(grid_plan=plan, channels=["DAPI"])
        calls.clear()
        s = settings_for(seq)
        assert len(s.images) == n * n
        return len(calls)

    assert times_listed(3) == times_listed(12)
