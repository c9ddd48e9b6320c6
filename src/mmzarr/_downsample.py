"""Resolution levels: how many a frame shape gets, and the warning when cut."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt  # noqa: TC002 (pydantic reads it at run time)

from mmzarr._models import FrozenModel
from mmzarr._slots import MMZarrWarning

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Downsample", "distinct_levels", "warn_levels_cut"]


class Downsample(FrozenModel):
    """Resolution levels written during acquisition (2x in y and x per level).

    A level's sides are half the level above's, rounded up: an odd last row or
    column is averaged with itself (`"mean"`).

    Parameters
    ----------
    method
        `"mean"` (average of each 2x2 block) or `"decimate"` (its top-left pixel).
    levels
        Extra levels beyond full resolution, or `"auto"`: halve until the
        smaller side of a level is <= `min_size`. A number is cut to the
        levels that differ (halving stops at 1x1; `AcquisitionSettings` warns).
    min_size
        The side length at which `"auto"` stops.
    """

    method: Literal["mean", "decimate"] = "mean"
    levels: PositiveInt | Literal["auto"] = "auto"
    min_size: PositiveInt = 256

    def extra_levels(self, frame_shape: tuple[int, int]) -> int:
        """Number of levels below full resolution for frames of `frame_shape`."""
        if self.levels != "auto":
            return min(int(self.levels), distinct_levels(frame_shape))
        n, side = 0, min(frame_shape)
        while side > self.min_size:
            side = -(-side // 2)
            n += 1
        return n


def distinct_levels(frame_shape: tuple[int, int]) -> int:
    """How many times `frame_shape` halves (rounding up) before it is 1x1."""
    return (max(frame_shape) - 1).bit_length()


def warn_levels_cut(
    downsample: Downsample | None, frame_shapes: Iterable[tuple[int, int]]
) -> None:
    """Warn when a number of levels is cut for some of `frame_shapes` (at 1x1)."""
    levels = downsample.levels if downsample else "auto"
    if levels == "auto":
        return
    cut = {}
    for shape in frame_shapes:
        n = distinct_levels(shape)
        if n < levels:
            cut[shape] = n
    if cut:
        shapes = ", ".join(f"{h}x{w}: {n}" for (h, w), n in cut.items())
        warnings.warn(
            f"downsample levels={levels}: frames of this shape reach 1x1 "
            f"sooner and get fewer extra levels ({shapes}); the levels past "
            "1x1 would all be the same",
            MMZarrWarning,
            stacklevel=2,
        )
