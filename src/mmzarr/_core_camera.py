"""What a core says about its camera: its frames and its field of view.

The frames' shape, dtype and pixel size (`camera_frame`: each as given, else
the core's; `core_dtype`, with a pymmcore-plus Python camera's own dtype:
`python_camera_dtype`; a color camera's (y, x, samples): `camera_planes`)
and the field of view pymmcore-plus' engine gives grid plans (`camera_fov`,
`with_fov`). A `core` is duck-typed (no pymmcore-plus import); no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import useq

from mmzarr._slots import frame_format
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mmzarr._slots import FrameFormat

__all__ = [
    "camera_fov",
    "camera_frame",
    "camera_planes",
    "color_error",
    "core_dtype",
    "python_camera_dtype",
    "with_fov",
]

#: MMCore's bytes per pixel -> the dtype pymmcore-plus gives its frames
_DTYPE_OF_BYTES = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


def python_camera_dtype(core: Any, label: str | None = None) -> str | None:
    """The dtype a pymmcore-plus Python camera declares, or ``None``.

    MMCore describes a camera by its bytes per pixel only, and pymmcore-plus'
    summary metadata calls 2 bytes uint16: a `UniMMCore` Python camera of
    int16, float32 or bool frames is described wrongly there (its frames all
    went to the sibling). `label` (default: the selected camera) is asked
    through `UniMMCore._py_camera`, private in pymmcore-plus 0.18; ``None``
    for a C++ camera, another core, or an API that changed.
    """
    find = getattr(core, "_py_camera", None)
    if find is None:
        return None
    try:
        camera = find(label) if label else find()
        return None if camera is None else str(np.dtype(camera.dtype()))
    except Exception:  # a changed private API: the summary's dtype stands
        return None


def core_dtype(core: Any) -> str:
    """The dtype of the frames `core`'s selected camera gives."""
    if found := python_camera_dtype(core):
        return found
    return _DTYPE_OF_BYTES.get(int(core.getBytesPerPixel()), "uint16")


def color_error(label: str, shape: Sequence[int]) -> PlanError:
    """The error of a plan for a camera whose frames of `shape` are in color."""
    return PlanError(
        f"camera {label!r} gives frames of shape {tuple(shape)} (color): mmzarr "
        "maps 2D frames; they are kept one channel per sample"
    )


def camera_planes(core: Any) -> tuple[tuple[int, ...], str]:
    """The shape and dtype of the frames pymmcore-plus gives of `core`'s camera.

    (y, x) for a camera of one component; a color camera's are (y, x,
    samples), as pymmcore-plus' summary metadata says: a C++ camera's 4
    components (Micro-Manager's RGB32/RGB64, BGRA) are 3 samples, the alpha
    dropped (`CMMCorePlus.fixImage`), each of its bytes per pixel / 4; a
    Python camera's frames are as it gives them, of its own dtype.
    """
    shape = (int(core.getImageHeight()), int(core.getImageWidth()))
    try:
        n = int(core.getNumberOfComponents())
    except Exception:  # a duck-typed core: one component
        n = 1
    if n <= 1:
        return shape, core_dtype(core)
    if found := python_camera_dtype(core):
        return (*shape, n), found
    sample = _DTYPE_OF_BYTES.get(max(int(core.getBytesPerPixel()) // n, 1), "uint8")
    return (*shape, 3 if n == 4 else n), sample


def camera_pixel_size(core: Any) -> float | None:
    """The pixel size `core` reports in µm; None when it is unknown (0)."""
    px = float(core.getPixelSizeUm())
    return px if px > 0 else None


def _from_core(core: Any) -> tuple[tuple[int, ...], str, float | None]:
    return (*camera_planes(core), camera_pixel_size(core))


def camera_frame(
    core: Any,
    image_shape: Sequence[int] | None,
    dtype: Any,
    pixel_size_um: float | None,
) -> FrameFormat:
    """The camera's frames: each fact as given, else as `core` says.

    Without either, the dtype is uint16 (and the shape a `PlanError`). A
    color camera's frames, which no plan of 2D frames maps, are a `PlanError`
    unless `image_shape` is given.
    """
    core_shape, core_dtype, core_px = (None, None, None)
    if core is not None:
        core_shape, core_dtype, core_px = _from_core(core)
        if image_shape is None and len(core_shape) > 2:
            raise color_error(str(core.getCameraDevice()), core_shape)
    return frame_format(
        image_shape if image_shape is not None else core_shape,
        dtype if dtype is not None else core_dtype or "uint16",
        pixel_size_um if pixel_size_um is not None else core_px,
    )


def camera_fov(core: Any) -> tuple[float, float] | None:
    """The field of view (width, height) in µm pymmcore-plus gives grid plans.

    Its engine overwrites every grid plan's `fov_width`/`fov_height` with the
    camera ROI times the pixel size before it iterates the plan (and leaves them
    alone when the pixel size is unknown), so the positions it visits are those.
    """
    if (px := camera_pixel_size(core)) is None:
        return None
    *_, w, h = core.getROI()
    return float(w) * px, float(h) * px


def _grid_with_fov(plan: Any, fov: tuple[float, float]) -> Any:
    return plan.model_copy(update={"fov_width": fov[0], "fov_height": fov[1]})


def with_fov(seq: useq.MDASequence, fov: tuple[float, float]) -> useq.MDASequence:
    """A copy of `seq` whose grid plans use the camera's field of view."""
    update: dict[str, Any] = {}
    if seq.grid_plan is not None and hasattr(seq.grid_plan, "fov_width"):
        update["grid_plan"] = _grid_with_fov(seq.grid_plan, fov)
    if not isinstance(seq.stage_positions, useq.WellPlatePlan):
        positions = list(seq.stage_positions)
        for i, p in enumerate(positions):
            sub = p.sequence
            if sub is not None and sub.grid_plan is not None:
                grid = _grid_with_fov(sub.grid_plan, fov)
                sub = sub.model_copy(update={"grid_plan": grid})
                positions[i] = p.model_copy(update={"sequence": sub})
                update["stage_positions"] = tuple(positions)
    return seq.model_copy(update=update) if update else seq
