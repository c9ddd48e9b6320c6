"""What `MDAWriter` reads of pymmcore-plus.

Its global core, its runner's outputs, the cameras of a core, and the frames'
events and metadata.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from mmzarr._cameras import CAMERA_AXIS, Camera
from mmzarr._from_useq import core_dtype

if TYPE_CHECKING:
    from collections.abc import Mapping

    import useq

__all__ = [
    "cameras_of_core",
    "errored",
    "frame_metadata",
    "plain_index",
    "running_core",
    "runs",
]


def running_core() -> Any:
    """The global pymmcore-plus core, without creating one."""
    try:
        from pymmcore_plus.core import _mmcore_plus
    except ImportError:  # pragma: no cover
        return None
    ref = getattr(_mmcore_plus, "_instance", None)
    return ref() if ref is not None else None


def runs(core: Any, writer: object) -> bool:
    """Whether `core`'s runner has `writer` among the outputs of its run.

    False when the global core runs another acquisition than the writer's
    (another core's); True when the runner cannot say.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            outputs = tuple(core.mda.get_output_handlers())
    except Exception:  # an older or newer runner: assume it is ours
        return True
    return any(o is writer for o in outputs)


def errored(core: Any, writer: object) -> bool:
    """Whether `core`'s run with `writer` among its outputs ended by an exception.

    pymmcore-plus emits `sequenceFinished` alike when its run raised (e.g. the
    camera failed), then raises the exception from `run`; its runner's status
    says why the run finished. False when the runner cannot say.
    """
    if core is None or not runs(core, writer):
        return False
    try:
        reason = core.mda.status.finish_reason
    except Exception:  # an older or newer runner
        return False
    return str(getattr(reason, "value", reason)) == "errored"


def cameras_of_core(core: Any) -> tuple[Camera, ...]:
    """The camera channels of `core`'s selected camera when it has several.

    For runs without summary metadata. Micro-Manager's Multi Camera adapter
    requires one frame shape for all its cameras, so each has the core's.
    """
    try:
        n = int(core.getNumberOfCameraChannels()) if core is not None else 1
        if n <= 1:
            return ()
        shape = (int(core.getImageHeight()), int(core.getImageWidth()))
        dtype = core_dtype(core)
        px = float(core.getPixelSizeUm()) or None
        return tuple(
            Camera(str(core.getPhysicalCameraDevice(k)), shape, dtype, px)
            for k in range(n)
        )
    except Exception:  # a core without these: one camera, as before
        return ()


def plain_index(index: Mapping[str, int]) -> dict[str, int]:
    """A useq index with its axes as plain text, for messages."""
    return {str(getattr(k, "value", k)): v for k, v in index.items()}


def frame_metadata(
    event: useq.MDAEvent,
    meta: dict[str, Any],
    last_stage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What is worth keeping of pymmcore-plus' frame metadata, JSON-ready.

    Each axis is where pymmcore-plus says the stage was (its `position`,
    read from the stage for this frame), not where the event asked it to go:
    a stage that failed to move, or stopped off target, leaves the frame
    where the stage was. A hardware-triggered frame's metadata has no
    `position`: an axis its event sets is the event's (the sequence moved it
    there), another has not moved since `last_stage` (the previous frame's
    stage, or the summary's position at the start).
    """
    measured = meta.get("position")
    if not isinstance(measured, dict):
        measured = {}
    before = measured or dict(last_stage or {})

    def where(axis: str, planned: float | None) -> Any:
        if measured.get(axis) is not None:
            return measured[axis]
        return before.get(axis) if planned is None else planned

    out: dict[str, Any] = {
        "runner_time_ms": meta.get("runner_time_ms"),
        "exposure_ms": meta.get("exposure_ms", event.exposure),
        "camera_device": meta.get("camera_device"),
        "pixel_size_um": meta.get("pixel_size_um"),
        "channel": event.channel.config if event.channel else None,
        "stage": {
            axis: where(axis, value)
            for axis, value in (
                ("x", event.x_pos),
                ("y", event.y_pos),
                ("z", event.z_pos),
            )
        },
    }
    if event.pos_name:
        out["position_name"] = event.pos_name
    if CAMERA_AXIS in event.index:  # which camera (its label: camera_device)
        out[CAMERA_AXIS] = event.index[CAMERA_AXIS]
    for key in ("position", "property_values", "camera_metadata", "hardware_triggered"):
        if key in meta:
            out[key] = meta[key]
    return out
