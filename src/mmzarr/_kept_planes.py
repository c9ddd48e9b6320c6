"""The planes a fallback dataset keeps of a frame, and whether it can.

The fallback layout keeps any frame it can store as 2D planes
(`kept_planes`): an RGB camera's samples as channels, a bool frame as uint8.
Front ends ask `unkeepable` before they open one, `kept_misfit` before they
append to one, and append with `append_kept`.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from mmzarr._pixel_size import pixel_size_misfit
from mmzarr._settings import AcquisitionSettings
from mmzarr._stream import native_order

if TYPE_CHECKING:
    from mmzarr._stream import Stream

__all__ = [
    "append_kept",
    "fallback_for",
    "frames_kept",
    "kept_misfit",
    "kept_planes",
    "unkeepable",
]

#: dtypes a fallback dataset keeps in a wider one, losslessly
_WIDER = {"bool": "uint8", "float16": "float32"}


def kept_planes(frame: np.ndarray) -> list[np.ndarray]:
    """The 2D planes a fallback dataset keeps of `frame`, in order.

    A 2D frame is one plane. An RGB(A) camera's frame, (y, x, 3 or 4) as
    pymmcore-plus and pycromanager give it, is one plane per sample; any
    other frame of more axes, one plane per 2D slice of its last two axes.
    bool and float16 frames are kept as uint8 and float32, frames of another
    byte order in this machine's (`native_order`, as `Stream.append` does).
    """
    arr = native_order(frame)
    if arr.dtype.name in _WIDER:
        arr = arr.astype(_WIDER[arr.dtype.name])
    if arr.ndim == 2:
        return [arr]
    if arr.ndim < 2:
        return [arr.reshape(1, -1)]
    if arr.ndim == 3 and arr.shape[-1] <= 4 < min(arr.shape[:2]):
        return [arr[..., s] for s in range(arr.shape[-1])]
    return list(arr.reshape(-1, *arr.shape[-2:]))


def unkeepable(frame: np.ndarray) -> str | None:
    """Why no dataset can keep `frame`, not even the fallback layout (None: one can).

    A frame without pixels, or one whose `kept_planes` the fallback layout's
    settings refuse: a dtype OME-Zarr has no data type for (complex, object,
    str, ...), a plane larger than mmzarr writes. A front end does not write
    such a frame, says so naming its dtype and shape, and goes on.
    """
    arr = np.asarray(frame)
    return _unkeepable(arr.dtype, arr.shape)


@functools.lru_cache(maxsize=64)
def _unkeepable(dtype: np.dtype[Any], shape: tuple[int, ...]) -> str | None:
    what = f"an image of dtype {dtype} and shape {shape}"
    if math.prod(shape) == 0:
        return f"{what} has no pixels"
    # the frames of one run share a format: checked once per format, on a
    # stand-in without pixels of its own
    planes = kept_planes(np.broadcast_to(np.zeros((), dtype), shape))
    try:
        AcquisitionSettings.fallback(
            "", image_shape=planes[0].shape, dtype=str(planes[0].dtype)
        )
    except ValidationError as e:
        why = "; ".join(str(err["msg"]) for err in e.errors())
        return f"{what} cannot be stored: {why}"
    except (ValueError, TypeError) as e:
        return f"{what} cannot be stored: {e}"
    return None


def append_kept(stream: Stream, frame: np.ndarray, **append: Any) -> None:
    """Append `frame` to a fallback-layout `stream` as its `kept_planes`."""
    planes = kept_planes(frame)
    if len(planes) == 1 and planes[0] is frame:
        stream.append(frame, **append)
        return
    append.pop("owned", None)
    for plane in planes:
        stream.append(plane, **append)


def kept_misfit(
    stream: Stream, frame: np.ndarray, *, pixel_size_um: Any = None
) -> str | None:
    """Why `frame` is not kept by the fallback-layout `stream` (None: it is).

    Its planes must have the dataset's frame shape and dtype, and be as many
    as the dataset's channels (an RGB camera's 3); a known `pixel_size_um`
    (µm, the frame's) must be the dataset's, when known: a frame acquired with
    another objective or binning would be shown at the wrong size.
    """
    settings = stream.settings
    image = settings.images[0]
    planes = kept_planes(frame)
    samples = _planes_per_frame(settings)
    if len(planes) != samples:
        return (
            f"a frame of {len(planes)} plane(s) of shape {planes[0].shape}; "
            f"{stream.path} keeps {samples} per frame"
        )
    if (why := image.frame_problem(planes[0], settings.dtype)) is not None:
        return why
    return pixel_size_misfit(image.pixel_size_um, pixel_size_um)


def fallback_for(
    reason: str,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    pixel_size_um: float | None = None,
    **storage: Any,
) -> AcquisitionSettings:
    """The fallback layout's settings for frames of `shape` and `dtype`.

    They keep each frame as its `kept_planes` (an RGB frame's samples as
    channels, a bool frame as uint8, ...); `storage` as in
    `AcquisitionSettings.fallback`.

    Raises
    ------
    ValueError
        (pydantic's `ValidationError` too) when no dataset can keep such
        frames (`unkeepable` says why).
    """
    # a stand-in without pixels of its own: the planes' format is what counts
    planes = kept_planes(np.broadcast_to(np.zeros((), dtype), shape))
    return AcquisitionSettings.fallback(
        reason,
        image_shape=planes[0].shape,
        dtype=str(planes[0].dtype),
        pixel_size_um=pixel_size_um,
        samples=len(planes),
        **storage,
    )


def frames_kept(stream: Stream) -> int:
    """The frames `stream` holds: a fallback dataset's planes per frame as one.

    A fallback dataset keeps each frame as its `kept_planes`, one per channel
    (an RGB camera's frame is 3); any other dataset's frames are its planes.
    """
    settings = stream.settings
    if settings.fallback_reason is None:
        return stream.frames_written
    return stream.frames_written // _planes_per_frame(settings)


def _planes_per_frame(settings: AcquisitionSettings) -> int:
    """The planes a fallback dataset keeps per frame: its channels (1 without)."""
    image = settings.images[0]
    return (image.dim("c").size or 1) if "c" in image.dim_names else 1
