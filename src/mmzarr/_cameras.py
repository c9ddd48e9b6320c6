"""Several cameras in one MDA: where each camera's frames go (no I/O).

With a multi-camera set-up (Micro-Manager's *Multi Camera* adapter, or any core
whose `getNumberOfCameraChannels()` is above 1) pymmcore-plus' `MDAEngine`
emits one frame per camera for every event, each with the event's index plus
`cam` (0, 1, ... in the adapter's camera-channel order), and its summary
metadata has one `image_infos` entry per loaded camera.

`camera_layout` turns the settings of a plan (for one camera) into the settings
of the dataset that holds every camera's frames, in one of two ways:

- `"channels"`: each camera becomes channels of the same image. Channels are
  channel-major: plan channel `c` seen by camera `cam` is channel
  `c * n_cameras + cam` (each channel's cameras are adjacent), labelled
  `"<channel> / <camera label>"` (`DAPI / Camera-1`, `DAPI / Camera-2`, `FITC /
  Camera-1`, ...). An image without a `c` axis gets one, one channel per camera,
  labelled with the camera labels. Needs one frame shape for every camera.
- `"images"`: each image of the plan becomes one image per camera (coords gain
  `cam`), adjacent and in camera order, named `"<image name> / <camera label>"`.
  A single image becomes a collection (`0`, `1`, ...); a collection is
  renumbered; in a plate, field `f` of a well becomes fields `f * n_cameras +
  cam` of that well. Each image has its camera's frame shape and pixel size.

`"auto"` picks `"channels"` when every camera has the same frame shape,
dtype and pixel size (where known), else `"images"`. A dataset has one dtype:
when the cameras' dtypes differ it is the narrowest that holds each of them
exactly (`uint8` and `uint16` give `uint16`; `uint16` and `int16` give
`int32`), and the frames of the other cameras are upcast losslessly
(`CameraLayout.frame`). Each frame goes to the camera its metadata names
(`CameraLayout.index`), whatever `cam` pymmcore-plus gives it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mmzarr._core_camera import color_error
from mmzarr._fields import pixel_axis
from mmzarr._settings import AcquisitionSettings, Dimension, ImageSettings
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CAMERA_AXIS",
    "CAMERA_MODES",
    "Camera",
    "CameraLayout",
    "CameraMode",
    "camera_layout",
    "cameras_from_summary",
    "common_dtype",
    "upcast",
    "with_pixel_size",
]

#: The event-index key pymmcore-plus gives each camera's frame of an event.
CAMERA_AXIS = "cam"
CameraMode = Literal["auto", "channels", "images"]
#: The values of `CameraMode`.
CAMERA_MODES: tuple[CameraMode, ...] = ("auto", "channels", "images")
#: Value of an unused "Physical Camera N" property of the Multi Camera adapter.
_UNDEFINED = "Undefined"
_PHYSICAL = re.compile(r"Physical Camera (\d+)")


@dataclass(frozen=True, slots=True)
class Camera:
    """One camera of a multi-camera MDA, as its frames will look.

    Parameters
    ----------
    label
        The camera's device label (used in channel and image names).
    shape
        Frame (height, width).
    dtype
        Pixel type (a numpy name such as `"uint16"`).
    pixel_size_um
        Pixel size in µm, if known.
    """

    label: str
    shape: tuple[int, int]
    dtype: str
    pixel_size_um: float | None = None


@dataclass(frozen=True, slots=True)
class CameraLayout:
    """Where each camera's frames go, and how an event index is translated.

    Made by `camera_layout`. `mode` is `"single"` for one camera (nothing is
    changed), else the mode applied.
    """

    settings: AcquisitionSettings
    mode: Literal["single", "channels", "images"]
    cameras: tuple[Camera, ...]
    #: With `"channels"`: frames of camera `cam > 0` that arrive before the
    #: slots preceding them in append order (at most per image): a plan channel
    #: not innermost in the acquisition (useq's default `"tpgcz"` acquires a
    #: z-stack per channel) puts camera 1's plane `z` at `c * n + 1`, after all
    #: of camera 0's planes of that channel. 0 when none.
    held_frames: int = 0

    def index(self, index: Mapping[str, int], camera: object = None) -> dict[str, int]:
        """The useq-style index for `settings` of a frame with event index `index`.

        `camera`: the device that took the frame (pymmcore-plus' metadata
        `camera_device`). When it is one of `cameras`, it sets `cam`: the
        index pymmcore-plus gives counts the cameras on at that moment, so a
        camera turned off, or the cameras swapped, during the run moved it
        to another camera's place. `"channels"`: `cam` is dropped and `c`
        becomes `c * n_cameras + cam` (a missing `cam` or `c` counts as 0).
        Otherwise, and for a `cam` outside `[0, n_cameras)` (which then fits
        no slot), `index` is returned with `cam` so set.
        """
        out = dict(index)
        if self.mode == "single":
            return out
        labels = [c.label for c in self.cameras]
        if isinstance(camera, str) and camera in labels:
            out[CAMERA_AXIS] = labels.index(camera)
        elif camera == _UNDEFINED:
            # pymmcore-plus names no camera (a camera before it turned off):
            # which one took the frame is not known, so it fits no slot
            out[CAMERA_AXIS] = -1
        if self.mode != "channels":
            return out
        n = len(self.cameras)
        cam = out.pop(CAMERA_AXIS, 0)
        if not 0 <= cam < n:
            return {**out, CAMERA_AXIS: cam}
        out["c"] = out.get("c", 0) * n + cam
        return out

    def frame(self, img: np.ndarray) -> np.ndarray:
        """`img` in the dataset's dtype when that holds it exactly, else as is."""
        return upcast(img, self.settings.dtype)


def upcast(img: np.ndarray, dtype: str) -> np.ndarray:
    """`img` as `dtype` when that holds every value exactly, else `img` as is."""
    target = np.dtype(dtype)
    if img.dtype == target or not _exact(img.dtype, target):
        return img
    return img.astype(target)


def _exact(src: np.dtype[Any], dst: np.dtype[Any]) -> bool:
    """Whether `dst` holds every value of `src` exactly.

    numpy's "safe" casts include int64 -> float64, which rounds above 2**53.
    """
    if not np.can_cast(src, dst, "safe"):
        return False
    if src.kind in "iu" and dst.kind == "f":
        return src.itemsize * 8 <= np.finfo(dst).nmant + 1
    return True


def common_dtype(dtypes: Sequence[str]) -> str:
    """The narrowest dtype that holds every one of `dtypes` exactly.

    Raises
    ------
    PlanError
        When there is none among numpy's (`uint64` with `int64`) or a dtype is
        not a numpy dtype.
    """
    try:
        parsed = [np.dtype(d) for d in dtypes]
    except TypeError as e:
        raise PlanError(f"camera dtypes {list(dtypes)}: {e}") from e
    out = parsed[0]
    for d in parsed[1:]:
        out = np.promote_types(out, d)
    if not all(_exact(d, out) for d in parsed):
        raise PlanError(
            f"camera dtypes {list(dtypes)}: no dtype holds them all exactly (the "
            f"closest, {out.name}, does not); write each camera to its own dataset"
        )
    return str(out.name)


def cameras_from_summary(summary: Mapping[str, Any]) -> tuple[Camera, ...]:
    """The cameras whose frames an MDA emits, from pymmcore-plus' summary metadata.

    `image_infos[0]` is the selected camera. It is the only one unless it
    reports `num_camera_adapter_channels` (n > 1, Micro-Manager's Multi Camera
    adapter): its camera channels are then the physical cameras named by its
    `Physical Camera 1`, `Physical Camera 2`, ... properties (in the summary's
    `devices`), skipping `Undefined` ones as the adapter does, each described
    by its own `image_infos` entry. Where a physical camera is not named or
    has no entry, the adapter's entry is used (label `"<adapter> <k + 1>"`).
    No `image_infos` gives `()`.
    """
    infos = [i for i in summary.get("image_infos") or () if isinstance(i, Mapping)]
    if not infos:
        return ()
    first = infos[0]
    n = _count(first.get("num_camera_adapter_channels"))
    if n <= 1:
        return (_camera(first, str(first.get("camera_label") or "camera")),)
    adapter = str(first.get("camera_label") or "camera")
    labels = _physical_labels(summary, adapter)
    by_label = {str(i.get("camera_label")): i for i in infos[1:]}
    cameras = []
    for k in range(n):
        label = labels[k] if k < len(labels) else f"{adapter} {k + 1}"
        cameras.append(_camera(by_label.get(label, first), label))
    return tuple(cameras)


def camera_layout(
    settings: AcquisitionSettings,
    cameras: Sequence[Camera],
    mode: CameraMode = "auto",
) -> CameraLayout:
    """Settings that hold every camera's frames of a plan made for one camera.

    Parameters
    ----------
    settings
        The plan's settings for one camera (any frame shape: each image's `y`/`x`
        are replaced by the cameras' shapes).
    cameras
        The cameras, in the order of the frames' `cam` index.
    mode
        `"channels"`, `"images"` or `"auto"` (see the module docstring).

    Raises
    ------
    PlanError
        For `"channels"` with cameras of different frame shapes, for dtypes no
        dtype holds exactly, and for an unknown `mode`.

    Examples
    --------
    >>> import useq
    >>> seq = useq.MDASequence(channels=["DAPI", "FITC"])
    >>> s = AcquisitionSettings.from_useq(
    ...     seq, image_shape=(64, 64), dtype="uint16", pixel_size_um=1
    ... )
    >>> cams = [Camera(f"Camera-{k}", (64, 64), "uint16") for k in (1, 2)]
    >>> lay = camera_layout(s, cams)
    >>> [c.name for c in lay.settings.images[0].channels]
    ['DAPI / Camera-1', 'DAPI / Camera-2', 'FITC / Camera-1', 'FITC / Camera-2']
    >>> lay.index({"c": 1, "cam": 1})
    {'c': 3}
    """
    if mode not in CAMERA_MODES:
        raise PlanError(f"cameras: {mode!r} is not one of {CAMERA_MODES}")
    cams = tuple(cameras)
    if len(cams) <= 1:
        return CameraLayout(settings=settings, mode="single", cameras=cams)
    labels = [c.label for c in cams]
    if len(set(labels)) != len(labels):
        raise PlanError(f"cameras: duplicate labels in {labels}")
    dtype = common_dtype([c.dtype for c in cams])
    same_shape = len({c.shape for c in cams}) == 1
    if mode == "auto":
        same_dtype = len({np.dtype(c.dtype) for c in cams}) == 1
        # an image has one pixel size: binned cameras' channels took camera 0's
        sizes = {c.pixel_size_um for c in cams}
        same_size = len(sizes) == 1 or None in sizes
        mode = "channels" if same_shape and same_dtype and same_size else "images"
    if mode == "channels" and not same_shape:
        shapes = {c.label: c.shape for c in cams}
        raise PlanError(
            f"cameras='channels' needs one frame shape for every camera, got "
            f"{shapes}; use cameras='images' (or 'auto')"
        )
    try:
        if mode == "channels":
            images = tuple(
                _image_as_channels(_resized(im, cams[0]), cams)
                for im in settings.images
            )
            return CameraLayout(
                settings=settings.replace(images=images, dtype=dtype),
                mode="channels",
                cameras=cams,
                held_frames=max(_held_frames(im, len(cams)) for im in settings.images),
            )
        return CameraLayout(
            settings=_as_images(settings, cams, dtype), mode="images", cameras=cams
        )
    except ValueError as e:  # pydantic's ValidationError included
        raise PlanError(f"cameras {labels}: {e}") from e


# ---- channels ----------------------------------------------------------------------
def _image_as_channels(im: ImageSettings, cams: Sequence[Camera]) -> ImageSettings:
    """`im` with each channel split into one per camera (channel-major)."""
    n = len(cams)
    names = [d.name for d in im.index_dims]
    if "c" in names:
        at = names.index("c")
        size_c = int(im.dim("c").size or 1)
        return im.replace(
            dimensions=tuple(
                d.replace(size=size_c * n) if d.name == "c" else d
                for d in im.dimensions
            ),
            channels=tuple(
                ch.replace(name=f"{ch.name} / {cam.label}")
                for ch in im.channels
                for cam in cams
            ),
            skipped=tuple(
                sorted(
                    (*idx[:at], idx[at] * n + k, *idx[at + 1 :])
                    for idx in im.skipped
                    for k in range(n)
                )
            ),
        )
    at = 1 if names[:1] == ["t"] else 0
    numbered = im.replace(
        dimensions=(
            *im.dimensions[:at],
            Dimension(name="c", size=n),
            *im.dimensions[at:],
        ),
        channels=(),  # numbered, with distinct colors, by ImageSettings
        # the cameras of one event come one after the other: c is innermost
        acquisition_order=(*(im.acquisition_order or ()), "c"),
        skipped=tuple(
            sorted((*idx[:at], k, *idx[at:]) for idx in im.skipped for k in range(n))
        ),
    )
    # a single channel without a c axis (settings made by hand) keeps its facts
    facts = (
        {"config": im.channels[0].config, "exposure_ms": im.channels[0].exposure_ms}
        if im.channels
        else {}
    )
    return numbered.replace(
        channels=tuple(
            ch.replace(name=cam.label, **facts)
            for ch, cam in zip(numbered.channels, cams, strict=True)
        )
    )


def _held_frames(im: ImageSettings, n: int) -> int:
    """Frames of cameras > 0 that arrive ahead of their slot (see `CameraLayout`)."""
    order = list(im.acquisition_order or ())
    if "c" not in order:
        return 0
    inner = [im.dim(a).size for a in order[order.index("c") + 1 :]]
    if any(s is None for s in inner):  # an unbounded t inside c: not bounded
        return 0
    planes = math.prod(int(s or 1) for s in inner)  # per channel
    return (n - 1) * planes if planes > 1 else 0


# ---- images --------------------------------------------------------------------------
def _as_images(
    settings: AcquisitionSettings, cams: Sequence[Camera], dtype: str
) -> AcquisitionSettings:
    """One image per image and camera (see the module docstring)."""
    n = len(cams)
    layout = "collection" if settings.layout == "image" else settings.layout
    images: list[ImageSettings] = []
    for im in settings.images:
        base = im.name or " ".join(f"{k}{v}" for k, v in im.coords.items()) or None
        for k, cam in enumerate(cams):
            changes: dict[str, Any] = {
                "name": f"{base} / {cam.label}" if base else cam.label,
                "coords": {**im.coords, CAMERA_AXIS: k},
            }
            if layout == "plate":
                field = int(im.field or 0) * n + k
                changes["field"] = field
                changes["key"] = f"{im.row}/{im.column}/{field}"
            else:
                changes["key"] = str(len(images))
            images.append(_resized(im, cam).replace(**changes))
    return settings.replace(layout=layout, images=tuple(images), dtype=dtype)


def _resized(im: ImageSettings, cam: Camera) -> ImageSettings:
    """`im` with frames of `cam`'s shape (and pixel size, when known)."""
    dims = []
    for d in im.dimensions:
        if d.name not in ("y", "x"):
            dims.append(d)
            continue
        new = cam.shape[0] if d.name == "y" else cam.shape[1]
        old = int(d.size or 0)
        chunk = new if d.chunk_size >= old else min(d.chunk_size, new)
        shard = d.shard
        if shard is not None:
            shard = max(chunk, min(shard, new) // chunk * chunk)
        px = pixel_axis(cam.pixel_size_um) if cam.pixel_size_um else {}
        dims.append(d.replace(size=new, chunk=chunk, shard=shard, **px))
    return im.replace(dimensions=tuple(dims))


def with_pixel_size(
    settings: AcquisitionSettings, pixel_size_um: float
) -> AcquisitionSettings:
    """`settings` with every image's y/x scale `pixel_size_um` (µm)."""
    px = pixel_axis(pixel_size_um)
    images = tuple(
        im.replace(
            dimensions=tuple(
                d.replace(**px) if d.name in ("y", "x") else d for d in im.dimensions
            )
        )
        for im in settings.images
    )
    return settings.replace(images=images)


# ---- summary metadata ------------------------------------------------------------
def _count(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def _camera(info: Mapping[str, Any], label: str) -> Camera:
    shape = tuple(info.get("plane_shape") or (info.get("height"), info.get("width")))
    if len(shape) > 2:
        # an RGB camera: pymmcore-plus gives its frames as (y, x, 3 or 4)
        raise color_error(label, shape)
    try:
        px = float(info.get("pixel_size_um") or 0)
    except (TypeError, ValueError):
        px = 0.0
    return Camera(
        label=label,
        shape=(int(shape[0] or 0), int(shape[1] or 0)),
        dtype=str(info.get("dtype")),
        pixel_size_um=px if math.isfinite(px) and px > 0 else None,
    )


def _physical_labels(summary: Mapping[str, Any], adapter: str) -> list[str]:
    """The adapter's defined `Physical Camera N` values, in N order."""
    for dev in summary.get("devices") or ():
        if not isinstance(dev, Mapping) or dev.get("label") != adapter:
            continue
        found: list[tuple[int, str]] = []
        for prop in dev.get("properties") or ():
            m = _PHYSICAL.fullmatch(str(prop.get("name")))
            value = str(prop.get("value") or "")
            if m and value and value != _UNDEFINED:
                found.append((int(m.group(1)), value))
        return [label for _, label in sorted(found)]
    return []
