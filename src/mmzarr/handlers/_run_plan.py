"""What an `MDAWriter` run's dataset is made from: its cameras and its plan.

At `sequenceStarted` the writer learns the cameras whose frames come
(`run_cameras`: pymmcore-plus' summary, else the core, with the writer's
`image_shape`/`dtype`/`pixel_size_um` options applied) and turns the running
plan, or the template of an event generator, into settings laid out for those
cameras (`run_layout`). Receiving frames is `MDAWriter`'s (`_pymmcore`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmzarr._cameras import camera_layout, cameras_from_summary, common_dtype
from mmzarr._fallback import pixel_size_misfit
from mmzarr._from_useq import python_camera_dtype
from mmzarr._sequence import is_event_generator
from mmzarr._settings import AcquisitionSettings
from mmzarr.errors import PlanError
from mmzarr.handlers._runner import cameras_of_core

if TYPE_CHECKING:
    import useq

    from mmzarr._cameras import Camera, CameraLayout, CameraMode

__all__ = ["RunPixelSize", "run_cameras", "run_dtype", "run_layout"]


@dataclass(frozen=True)
class RunPixelSize:
    """A run's pixel size as it started, and the frames acquired at another.

    The dataset's y/x scale is the camera's pixel size as the run started (or
    the `pixel_size_um` given to the writer); a frame of the same shape
    acquired after an objective, binning or calibration change would be shown
    at the wrong size.
    """

    #: the core's pixel size (µm) at the run's start, if known
    start: float | None = None
    #: the `pixel_size_um` given to the writer
    given: Any = None

    @classmethod
    def of(cls, summary: Mapping[str, Any], given: Any) -> RunPixelSize:
        """From pymmcore-plus' summary metadata.

        The selected camera's (`image_infos[0]`; a Multi Camera adapter's with
        several cameras): the pixel size each frame's metadata says.
        """
        infos = summary.get("image_infos") or ()
        first = infos[0] if infos and isinstance(infos[0], Mapping) else {}
        try:
            px = float(first.get("pixel_size_um") or 0)
        except (TypeError, ValueError):  # a summary we cannot read
            px = 0.0
        return cls(px if math.isfinite(px) and px > 0 else None, given)

    def misfit(self, meta: Mapping[str, Any]) -> str | None:
        """Why a frame (`meta`: its metadata) does not belong in the dataset."""
        if self.start is None:
            return None
        return pixel_size_misfit(self.start, meta.get("pixel_size_um"))

    def kept(self, meta: Mapping[str, Any]) -> Any:
        """The pixel size of a frame kept in the fallback layout or beside.

        The one given to the writer, unless the frame was acquired at another
        pixel size than the run started with; else the frame's.
        """
        if self.given is None or self.misfit(meta) is not None:
            return meta.get("pixel_size_um")
        return self.given


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
