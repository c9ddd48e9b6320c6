"""Where an image and its planes are on the stage, from the slots of the image.

OME-Zarr places an image at one x and y, and each plane at one z for every
channel and time point. `_plan` builds an image's settings; the rules for
those positions are here:

- `stage_position`: the first frame's x and y, and plane 0's z (worked out
  when the plan acquires no frame there);
- `z_scale`: the plan's z step, else the distance of the first two planes;
- `frames_elsewhere` and `warn_frames_elsewhere`: frames of an image at other
  stage positions (a channel's `z_offset`, a position that leaves an axis
  unset) are written at those of its first frame, with a warning; the frame
  log has each frame's position.

Where a front end's stage is at each event is `_slots.Stage`'s.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

from mmzarr._models import StagePosition
from mmzarr._slots import MMZarrWarning, describe_image

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mmzarr._plan import ImageSlots
    from mmzarr._slots import FrameSlot

__all__ = ["frames_elsewhere", "stage_position", "warn_frames_elsewhere", "z_scale"]


def frames_elsewhere(
    group: Sequence[FrameSlot], z_um: Mapping[int, float]
) -> str | None:
    """Where frames of an image are at different stage positions, if any.

    OME-Zarr places an image at one x and y, and each plane at one z for
    every channel and time point: those of its first frame there. Frames
    elsewhere: a channel with a `z_offset` (z), a position that leaves an
    axis unset in a time-lapse (where the position before it left the stage).
    """
    first = group[0]
    where = describe_image(first.image, first.facts) if first.image else "image"
    for axis in ("x", "y"):
        at = getattr(first, f"{axis}_um")
        if at is None:  # no translation is written for this axis
            continue
        for s in group:
            value = getattr(s, f"{axis}_um")
            if value is None:
                continue
            if not math.isclose(value, at, rel_tol=1e-9, abs_tol=1e-6):
                t = f" (t={s.t})" if s.t is not None else ""
                return (
                    f"{where}: its frames are at {axis} {at:g} µm and at "
                    f"{value:g} µm{t}"
                )
    if not any(s.z is not None for s in group):
        return None  # no z axis: no z is written
    for s in group:
        z = z_um.get(s.z or 0)
        if s.z_um is None or z is None:
            continue
        if not math.isclose(s.z_um, z, rel_tol=1e-9, abs_tol=1e-6):
            channel = f" (channel {s.channel.config!r})" if s.channel else ""
            return (
                f"{where}: plane z={s.z or 0} is acquired at z {z:g} µm and at "
                f"{s.z_um:g} µm{channel}"
            )
    return None


def warn_frames_elsewhere(elsewhere: Sequence[str]) -> None:
    """One warning for the images `frames_elsewhere` found, naming the first.

    It points at the caller of `_plan.group_slots`, whose images they are.
    """
    if not elsewhere:
        return
    more = f" (and {len(elsewhere) - 1} more images)" if len(elsewhere) > 1 else ""
    warnings.warn(
        f"{elsewhere[0]}{more}: OME-Zarr places an image at one x and y, and "
        "a plane at one z (a channel's z_offset moves z; a position that "
        "leaves an axis unset is where the position before it left the "
        "stage), the first frame's are written; the frame log has each "
        "frame's position",
        MMZarrWarning,
        stacklevel=3,
    )


def stage_position(image: ImageSlots, z_step: float) -> StagePosition:
    """The image's translation: its first frame's x and y, plane 0's z."""
    first = image.first
    return StagePosition(x=first.x_um, y=first.y_um, z=_first_plane_z(image, z_step))


def _first_plane_z(image: ImageSlots, z_step: float) -> float | None:
    """The z (µm) of plane 0, where the translation puts it.

    A plan may acquire no frame at plane 0 (a channel with ``do_stack=False``
    alone: useq takes it at the middle plane only); plane 0 is then the
    lowest plane acquired minus its index times the z scale.
    """
    if not image.z_um:
        return image.first.z_um
    if 0 in image.z_um:
        return image.z_um[0]
    k = min(image.z_um)
    return round(image.z_um[k] - k * z_step, 9)


def z_scale(image: ImageSlots, sizes: Mapping[str, int]) -> float:
    """The plan's z step, else the distance of the first two planes, else 1.

    Negative when the planes go down (plane k is at plane 0's z + k * scale).
    """
    if image.facts.z_scale:
        return image.facts.z_scale
    z0, z1 = image.z_um.get(0), image.z_um.get(1)
    if sizes.get("z", 0) > 1 and z0 is not None and z1 is not None and z1 != z0:
        return round(z1 - z0, 9)
    return 1.0
