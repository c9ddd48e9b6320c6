"""The typed description of an acquisition that every front end produces.

Whatever its plan language, a front end describes what it will acquire as one
`FrameSlot` per frame (which image, which t/c/z slot, channel, stage position,
and the `ImageFacts` of its image: name, time and z steps, well, field, grid
cell), `PlanFacts` for the whole plan (axis order, plate, unbounded t) and a
`FrameFormat` (frame shape, dtype, pixel size; `frame_format` checks them).
`_plan.settings_from_slots` turns these into settings. `_from_useq.py` builds
them from useq plans, `mmzarr.pycromanager` from event dicts and image
metadata. Only plain data here: no plan library, no settings models.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmzarr._models import NGFF_ORDER, dtype_name
from mmzarr.errors import PlanError

__all__ = [
    "ChannelUse",
    "FrameFormat",
    "FrameSlot",
    "ImageFacts",
    "ImageId",
    "MMZarrWarning",
    "PlanFacts",
    "PlateFacts",
    "Stage",
    "axis_sizes",
    "describe_image",
    "frame_format",
    "positive_int",
]

#: An image's identity: its plan coordinates other than t/c/z, e.g. (("p", 1),).
ImageId = tuple[tuple[str, int], ...]


class MMZarrWarning(UserWarning):
    """A plan that can be written but lacks information (e.g. no pixel size)."""


# ---- the inputs ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelUse:
    """A channel config as one `c` index of the plan acquires it.

    `group` is the config group holding `config` (useq's `Channel.group`),
    None when the plan does not say.
    """

    config: str
    exposure: float | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the plan says about one image beyond its frames.

    Parameters
    ----------
    name
        The image's name (position name; ``_g0000``... for grid cells).
    t_scale, z_scale
        Seconds per time point and µm per plane; None when the plan does not
        say (`t`: 1 s; `z`: from the slots' z positions).
    channels
        The plan's channels, naming `c` indices that no slot of the image has.
    plate_row, plate_col
        0-based well of a plate plan.
    field
        The image's field in its well (None: numbered in order of appearance).
    grid_row, grid_col
        The grid cell of the image, when the plan has one.
    """

    name: str | None = None
    t_scale: float | None = None
    z_scale: float | None = None
    channels: tuple[ChannelUse, ...] = ()
    plate_row: int | None = None
    plate_col: int | None = None
    field: int | None = None
    grid_row: int | None = None
    grid_col: int | None = None


@dataclass(frozen=True, slots=True)
class FrameSlot:
    """One frame of the plan: its image, its t/c/z slot and what it acquires.

    `t`, `c`, `z` are None for axes the frame's index does not have; `x_um`,
    `y_um`, `z_um` are the stage position (µm) it is acquired at. Every slot of
    an image carries the same `facts` (the first slot's are used).
    """

    image: ImageId
    t: int | None = None
    c: int | None = None
    z: int | None = None
    channel: ChannelUse | None = None
    x_um: float | None = None
    y_um: float | None = None
    z_um: float | None = None
    facts: ImageFacts = field(default_factory=ImageFacts)

    @property
    def index(self) -> tuple[int, int, int]:
        """`(t, c, z)`, 0 for an axis the slot does not have."""
        return (self.t or 0, self.c or 0, self.z or 0)


@dataclass(frozen=True, slots=True)
class PlateFacts:
    """A plate plan's plate: its name and size (wells that hold no image too)."""

    name: str | None
    rows: int
    columns: int


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What the plan says about the whole acquisition.

    Parameters
    ----------
    axis_order
        useq axis letters, outermost first: the acquisition order preferred
        for each image (when its slots allow several).
    positions_inside_time
        Whether each time point visits every image (`AcquisitionSettings`).
    plate
        The plate of a plate plan (None: sized by the wells used).
    unbounded_t
        Time grows without bound; the slots describe `period` time points.
    period
        Time points after which the pattern of acquired slots repeats.
    time_points
        The plan's time points when the slots describe only its first ones
        (whole periods: every time point repeats the pattern of its period);
        None when the slots describe every frame.
    """

    axis_order: str = "tpgcz"
    positions_inside_time: bool = True
    plate: PlateFacts | None = None
    unbounded_t: bool = False
    period: int = 1
    time_points: int | None = None


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """Frames as the camera gives them: (height, width), dtype, pixel size (µm).

    `pixel_size_um` is None when unknown (`pixel_axis`).
    """

    shape: tuple[int, int]
    dtype: str
    pixel_size_um: float | None


def describe_image(image: ImageId, facts: ImageFacts) -> str:
    """`position p=1 ('name')` for error messages."""
    coords = ", ".join(f"{k}={v}" for k, v in image) or "(none)"
    return f"position {coords}" + (f" ({facts.name!r})" if facts.name else "")


# ---- checks ----------------------------------------------------------------------
def positive_int(name: str, value: Any) -> int:
    """`value` as an int > 0 (`PlanError` naming `name` otherwise)."""
    try:  # True == 1, but no size
        ok = not isinstance(value, bool) and int(value) == value and int(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise PlanError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_shape(image_shape: Any) -> tuple[int, int]:
    try:
        items = tuple(image_shape)
    except TypeError:
        raise PlanError(
            f"image_shape: expected (height, width), got {image_shape!r}"
        ) from None
    if len(items) != 2 or any(isinstance(v, bool) for v in items):
        raise PlanError(f"image_shape: expected (height, width), got {image_shape!r}")
    try:
        return (positive_int("height", items[0]), positive_int("width", items[1]))
    except PlanError:
        raise PlanError(
            f"image_shape: sizes must be positive integers, got {image_shape!r}"
        ) from None


def _check_pixel_size(pixel_size_um: Any) -> float | None:
    if pixel_size_um is None:
        warnings.warn(
            "pixel_size_um is unknown: y/x are written in pixels, without a unit "
            "(no physical size; give pixel_size_um or a pixel-size configuration)",
            MMZarrWarning,
            stacklevel=5,
        )
        return None
    try:
        value = float(pixel_size_um)
    except (TypeError, ValueError):
        raise PlanError(
            f"pixel_size_um: expected a number > 0, got {pixel_size_um!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise PlanError(f"pixel_size_um: must be finite and > 0, got {pixel_size_um!r}")
    return value


def frame_format(image_shape: Any, dtype: Any, pixel_size_um: Any) -> FrameFormat:
    """Checked frame facts; an unknown (None) pixel size warns and stays None.

    Raises
    ------
    PlanError
        Naming the bad value (a shape that is not two positive integers, a
        dtype mmzarr does not write, a pixel size that is not a number > 0).
    """
    shape = _check_shape(image_shape)
    try:
        name = dtype_name(dtype)
    except ValueError as e:
        raise PlanError(str(e)) from None
    return FrameFormat(shape, name, _check_pixel_size(pixel_size_um))


def axis_sizes(name: str, sizes: Any) -> dict[str, int]:
    """`chunks`/`shards` checked: a mapping of axis names to counts > 0."""
    if sizes is None:
        return {}
    if not isinstance(sizes, Mapping):
        raise PlanError(
            f"{name}: expected a mapping such as {{'y': 512}}, got {sizes!r}"
        )
    for k in sizes:
        if k not in NGFF_ORDER:
            raise PlanError(f"{name}: unknown axis {k!r}; axes are {NGFF_ORDER}")
    return {k: positive_int(f"{name}[{k!r}]", v) for k, v in sizes.items()}


class Stage:
    """Where the stage is at each event of a plan, in acquisition order.

    pymmcore-plus (and Pycro-Manager's engine) move an axis only for an event
    that gives it, so an axis an event leaves unset stays where the last
    event that set it left it, or at `start` (µm, keys x/y/z: where it was as
    the plan started; unknown when not given).
    """

    def __init__(self, start: Mapping[str, Any] | None = None) -> None:
        start = start or {}
        self.at: dict[str, float | None] = {
            axis: _coordinate(start.get(axis)) for axis in ("x", "y", "z")
        }

    def move(self, x: Any, y: Any, z: Any) -> dict[str, float | None]:
        """The position for an event that gives `x`, `y`, `z` (None: not moved).

        A coordinate that is no number (NaN, infinite) leaves the axis unknown.
        """
        for axis, value in (("x", x), ("y", y), ("z", z)):
            if value is not None:
                self.at[axis] = _coordinate(value)
        return dict(self.at)


def _coordinate(value: Any) -> float | None:
    """`value` as a stage coordinate (µm); None when it is not a finite number."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None
