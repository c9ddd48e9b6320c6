"""`ZarrHook` and aborted pycromanager acquisitions: never recorded `complete`.

Real acquisitions on the demo rig (pycromanager 1.0.2's Python engine through
`unicore_backend`), stopped at a known image from inside the acquisition, so
that no thread timing decides what is acquired:

* ``abort`` at event k: a pre-hardware hook calls ``acq.abort()`` on the
  engine's thread before it acquires event k (the engine checks the abort
  before it snaps, ``engine.py:317``, and submits no later event,
  ``engine.py:78``): images 0..k-1 come;
* ``abort-last``: the image processor calls ``acq.abort()`` as the last image
  arrives: every image comes, and the acquisition was still aborted;
* ``close`` at image k: the image processor closes the hook before handing it
  image k (a stop button): images 0..k-1 are written, the rest come after.

The status is read back from the root's ``zarr.json``, and every image written
is compared with the image pycromanager delivered (zarr-python).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr.pycromanager import ZarrHook, unicore_backend
from tests._readback import group_json, read_zarr

pytest.importorskip("pycromanager")

from pycromanager import Acquisition, multi_d_acquisition_events

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

#: a z-stack of 6 planes (one time point: the hook holds it until close), and
#: 3 time points of 2 planes
PLANS: dict[str, list[dict[str, Any]]] = {
    "z": multi_d_acquisition_events(z_start=0, z_end=5, z_step=1),
    "tz": multi_d_acquisition_events(
        num_time_points=3, time_interval_s=0.05, z_start=0, z_end=1, z_step=1
    ),
}
SEQS = {
    "z": useq.MDASequence(z_plan=useq.ZRangeAround(range=5, step=1)),
    "tz": useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=0.05, loops=3),
        z_plan=useq.ZRangeAround(range=1, step=1),
    ),
}

Stop = Literal["abort", "abort-last", "close", "none"]


@dataclass(frozen=True)
class Case:
    name: str
    plan: str
    given: Literal["learn", "events", "settings"]
    watch: bool
    stop: Stop
    at: int  # the event (abort) or image (close) it stops at
    status: str
    written: int  # images written to the dataset


CASES = [
    # learn mode: the shape comes from the images that came, so every
    # "expected" image is there; only the acquisition can say it was aborted
    Case("learn-z-abort", "z", "learn", False, "abort", 2, "cancelled", 2),
    Case("learn-z-abort-watched", "z", "learn", True, "abort", 2, "cancelled", 2),
    Case("learn-tz-abort", "tz", "learn", False, "abort", 3, "cancelled", 3),
    Case("learn-tz-abort-watched", "tz", "learn", True, "abort", 3, "cancelled", 3),
    Case("learn-z-abort-last", "z", "learn", True, "abort-last", 0, "cancelled", 6),
    Case("learn-z-closed-watched", "z", "learn", True, "close", 4, "cancelled", 4),
    Case("learn-z-closed", "z", "learn", False, "close", 4, "cancelled", 4),
    # a plan given: every planned image came, but the acquisition was aborted
    Case("events-last", "z", "events", True, "abort-last", 0, "cancelled", 6),
    Case("settings-last", "tz", "settings", True, "abort-last", 0, "cancelled", 6),
    # ran to its end: `complete` once the acquisition says so
    Case("learn-z-watched", "z", "learn", True, "none", 0, "complete", 6),
    Case("learn-tz-watched", "tz", "learn", True, "none", 0, "complete", 6),
    Case("learn-z-unwatched", "z", "learn", False, "none", 0, "cancelled", 6),
]


@dataclass
class Run:
    """What pycromanager delivered to the image processor, in order."""

    images: list[tuple[dict[str, Any], np.ndarray]]
    hook: ZarrHook


def run(
    core: UniMMCore,
    out: Path,
    case: Case,
    *,
    reason: BaseException | None = None,
) -> Run:
    events = PLANS[case.plan]
    given: dict[str, Any] = {}
    if case.given == "events":
        given["events"] = events
    elif case.given == "settings":
        given["settings"] = mmzarr.AcquisitionSettings.from_useq(
            SEQS[case.plan], core=core
        )
    hook = ZarrHook(out, keep_images=False, **given)
    acqs: list[Any] = []
    images: list[tuple[dict[str, Any], np.ndarray]] = []

    def pre_hardware(event: dict[str, Any]) -> dict[str, Any]:
        if case.stop == "abort" and event["axes"] == events[case.at]["axes"]:
            acqs[0].abort(reason)
        return event

    def process(image: np.ndarray, metadata: dict[str, Any]) -> Any:
        axes = dict(metadata["Axes"])
        if case.stop == "abort-last" and axes == events[-1]["axes"]:
            acqs[0].abort()
        if case.stop == "close" and len(images) == case.at:
            hook.close()
        images.append((axes, image.copy()))
        return hook(image, metadata)

    with (
        unicore_backend(core),
        Acquisition(
            image_process_fn=process,
            pre_hardware_hook_fn=pre_hardware,
            notification_callback_fn=hook.notification_callback,
        ) as acq,
    ):
        acqs.append(acq)
        if case.watch:
            hook.watch(acq)
        acq.acquire(events)
    hook.close()
    return Run(images, hook)


def status_of(out: Path) -> str:
    return str(group_json(out)["attributes"]["mmzarr"]["status"])


def check_written(out: Path, images: list[tuple[dict[str, Any], np.ndarray]]) -> None:
    """Each image is where its Axes say (dims t?, z, y, x), read with zarr-python."""
    data = read_zarr(out, "0")
    for axes, image in images:
        at = tuple(axes[k] for k in ("time", "z") if k in axes)
        np.testing.assert_array_equal(data[at], image)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_aborted_acquisition_is_never_complete(
    core: UniMMCore, tmp_path: Path, case: Case
) -> None:
    out = tmp_path / "run.ome.zarr"
    ran = run(core, out, case)
    events = PLANS[case.plan]
    delivered = {"abort": case.at, "close": len(events)}.get(case.stop, len(events))
    assert len(ran.images) == delivered
    assert ran.hook.frames_written == case.written
    assert ran.hook.frames_ignored == delivered - case.written
    assert status_of(out) == case.status
    check_written(out, ran.images[: case.written])


def test_a_watched_run_to_its_end_is_complete_with_an_image_kept_beside(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An image of another dtype goes to the unplaced sibling; the acquisition
    ran to its end, so the dataset is `complete` (as `MDAWriter` records it),
    its slot listed missing: it was `cancelled`."""
    out = tmp_path / "run.ome.zarr"
    events = PLANS["z"]
    hook = ZarrHook(out, events=events, keep_images=False)
    images: list[tuple[dict[str, Any], np.ndarray]] = []

    def process(image: np.ndarray, metadata: dict[str, Any]) -> Any:
        if len(images) == 2:
            image = image.astype(np.float32)  # not the dataset's dtype
        images.append((dict(metadata["Axes"]), image.copy()))
        return hook(image, metadata)

    with unicore_backend(core), Acquisition(image_process_fn=process) as acq:
        hook.watch(acq)
        acq.acquire(events)
    hook.close()
    assert len(images) == 6
    assert hook.frames_written == 6
    assert status_of(out) == "complete"
    counts = group_json(out)["attributes"]["mmzarr"]["images"][""]  # one image
    assert counts == {"frames_written": 5, "missing_count": 1, "missing": [[2]]}
    check_written(out, images[:2] + images[3:])
    beside = read_zarr(tmp_path / "run.unplaced.ome.zarr", "0")
    np.testing.assert_array_equal(beside[0], images[2][1])


def test_an_unwatched_run_says_why_it_is_cancelled(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `watch`, a dataset whose shape was learned is `cancelled`, and
    the warning says how to have it recorded `complete`."""
    out = tmp_path / "learned.ome.zarr"
    case = Case("learn-tz-unwatched", "tz", "learn", False, "none", 0, "", 6)
    with caplog.at_level(logging.WARNING, logger="mmzarr"):
        ran = run(core, out, case)
    assert len(ran.images) == ran.hook.frames_written == 6
    assert status_of(out) == "cancelled"
    assert "hook.watch(acq)" in caplog.text
    assert "shape was learned" in caplog.text
    check_written(out, ran.images)


@pytest.mark.parametrize("given", ["learn", "events"])
def test_an_acquisition_aborted_by_an_exception_is_failed(
    core: UniMMCore, tmp_path: Path, given: Literal["learn", "events"]
) -> None:
    """``acq.abort(exception)`` (as pycromanager aborts on a processor's error):
    pycromanager raises it when the acquisition ends; the dataset is `failed`,
    as `MDAWriter` records an MDA that ended by an exception."""
    out = tmp_path / "err.ome.zarr"
    case = Case("err", "z", given, True, "abort", 3, "", 3)
    with pytest.raises(RuntimeError, match="injected: stage jammed"):
        run(core, out, case, reason=RuntimeError("injected: stage jammed"))
    assert status_of(out) == "failed"
    data = read_zarr(out, "0")
    assert data.shape[0] == (3 if given == "learn" else 6)


def test_watch_refuses_what_it_cannot_read(core: UniMMCore, tmp_path: Path) -> None:
    hook = ZarrHook(tmp_path / "w.ome.zarr")
    with pytest.raises(TypeError, match=r"pycromanager Acquisition.*got object"):
        hook.watch(object())
    with unicore_backend(core), Acquisition() as acq:
        acq.acquire(PLANS["z"][:1])
    with pytest.raises(RuntimeError, match=r"has ended.*inside the `with"):
        hook.watch(acq)  # pycromanager dropped its engine
    with unicore_backend(core), Acquisition() as acq:
        hook.close()
        with pytest.raises(RuntimeError, match="is closed"):
            hook.watch(acq)


@pytest.mark.parametrize("given", ["settings-unbounded", "learn-fallback"])
def test_a_dataset_without_a_planned_size_is_not_claimed_complete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    """Without `watch`, a dataset of no planned size (a `t` that grows; the
    fallback layout, whose images are in arrival order) cannot say whether
    images are missing: `cancelled`, never `complete`."""
    out = tmp_path / "open.ome.zarr"
    if given == "settings-unbounded":
        settings = mmzarr.AcquisitionSettings.from_useq(
            useq.MDASequence(time_plan={"interval": 1, "loops": 1}),
            image_shape=(8, 8),
            dtype="uint16",
            pixel_size_um=0.5,
            unbounded_t=True,
        )
        hook = ZarrHook(out, settings=settings)
        axes: list[dict[str, Any]] = [{"time": t} for t in range(3)]
        why = "t is unbounded"
    else:
        hook = ZarrHook(out)
        axes = [{"time": 0, "angle": a} for a in range(3)]  # no dataset axis
        why = "fallback layout"
    frames = [np.full((8, 8), 10 + n, np.uint16) for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="mmzarr"):
        for ax, frame in zip(axes, frames, strict=True):
            hook(frame, {"Axes": ax, "PixelSize_um": 0.5})
        hook.close()
    assert status_of(out) == "cancelled"
    assert why in caplog.text
    data = read_zarr(out, "0")
    assert data.shape[0] == 3
    for n, frame in enumerate(frames):
        np.testing.assert_array_equal(data[n].reshape(frame.shape), frame)
