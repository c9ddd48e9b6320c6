"""What an `MDAWriter` run's dataset is made from: its cameras and its plan.

At `sequenceStarted` the writer learns the cameras whose frames come
(`run_cameras`: pymmcore-plus' summary, else the core, with the writer's
`image_shape`/`dtype`/`pixel_size_um` options applied) and turns the running
plan, or the template of an event generator, into settings laid out for those
cameras (`run_layout`). Receiving frames is `MDAWriter`'s (`_pymmcore`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mmzarr._cameras import camera_layout, cameras_from_summary, common_dtype
from mmzarr._core_camera import python_camera_dtype
from mmzarr._sequence import is_event_generator
from mmzarr._settings import AcquisitionSettings
from mmzarr.errors import PlanError
from mmzarr.handlers._runner import cameras_of_core

if TYPE_CHECKING:
    from collections.abc import Mapping

    import useq

    from mmzarr._cameras import Camera, CameraLayout, CameraMode

__all__ = ["run_cameras", "run_dtype", "run_layout"]


def run_cameras(
    core: Any, meta: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[Camera, ...]:
    """The cameras whose frames come: the summary's (`meta`), else the core's.

    The `image_shape`, `dtype` and `pixel_size_um` `options` apply to each.
    """
    cameras = tuple(
        dataclasses.replace(c, dtype=python_camera_dtype(core, c.label) or c.dtype)
        for c in cameras_from_summary(dict(meta)) or cameras_of_core(core)
    )
    changes: dict[str, Any] = {}
    if options.get("image_shape") is not None:
        changes["shape"] = tuple(int(n) for n in options["image_shape"])
    if options.get("dtype") is not None:
        changes["dtype"] = str(options["dtype"])
    if options.get("pixel_size_um") is not None:
        changes["pixel_size_um"] = float(options["pixel_size_um"])
    return tuple(dataclasses.replace(c, **changes) for c in cameras)


def run_dtype(
    core: Any, meta: Mapping[str, Any], options: Mapping[str, Any]
) -> str | None:
    """The dtype that holds every camera's frames (several cameras), or None."""
    try:
        cameras = run_cameras(core, meta, options)
        return common_dtype([c.dtype for c in cameras]) if len(cameras) > 1 else None
    except Exception:
        return None


def run_layout(
    sequence: useq.MDASequence,
    cameras: tuple[Camera, ...],
    *,
    options: Mapping[str, Any],
    core: Any,
    start: Mapping[str, Any] | None,
    template: useq.MDASequence | None,
    mode: CameraMode,
) -> CameraLayout:
    """The settings of the run of `sequence`, laid out for `cameras` (`mode`).

    `options` are the writer's settings options; `start`, where the stage was
    as the run started (for axes the plan never sets). An event generator's
    run is described by `template`, one time point, with an unbounded `t`.
    """
    given = dict(options)
    given.setdefault("stage_position", start)
    if cameras:
        first = cameras[0]
        given["image_shape"] = first.shape
        given["dtype"] = first.dtype
        given["pixel_size_um"] = first.pixel_size_um
    elif core is not None:
        given.setdefault("core", core)
    plan: Any = sequence
    if is_event_generator(sequence):
        if template is None:
            raise PlanError(
                "the MDA runs an event generator, whose shape is unknown: pass "
                "MDAWriter(..., template=<MDASequence for one time point>) or "
                "settings=..."
            )
        plan = template
        given["unbounded_t"] = True
    else:
        given["running"] = True  # as the runner iterates it
    settings = AcquisitionSettings.from_useq(plan, **given)
    return camera_layout(settings, cameras, mode)
