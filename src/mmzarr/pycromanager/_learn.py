"""Learn mode of `ZarrHook`: the images of the first time point, buffered.

Given neither `settings` nor `events`, the hook keeps the images of the first
time point (at most ``max_buffer_bytes``) until the first image of the next
one; they fix the positions, channels and z planes of the dataset. This module
holds those images and makes the plan they describe; the hook opens the
dataset and writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr.errors import PlanError
from mmzarr.pycromanager._plan import (
    AxesKey,
    axes_key,
    entry_from_metadata,
    measured_t_scale,
    plan_images,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mmzarr.pycromanager._plan import EventPlan

__all__ = ["DEFAULT_BUFFER", "Buffered", "FirstTimePoint"]

#: The default ``max_buffer_bytes``: 256 MiB.
DEFAULT_BUFFER = 256 * 1024**2

#: An image kept: its pixels (a copy), axes and metadata.
Buffered = tuple[np.ndarray, dict[str, int | str], dict[str, Any]]


class FirstTimePoint:
    """The images of the first time point, kept to learn the dataset's shape."""

    def __init__(self) -> None:
        #: the images kept, in arrival order
        self.images: list[Buffered] = []
        self._nbytes = 0
        self._t0: int | None = None

    def add(
        self,
        frame: np.ndarray,
        axes: dict[str, int | str],
        md: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> bool:
        """Keep an image of the first time point; False for one after it.

        Raises
        ------
        PlanError
            When the first time point is larger than ``max_buffer_bytes`` (an
            option in `options`).
        """
        t = axes.get("time")
        if not self.images:
            self._t0 = None if t is None else int(t)
        if t != self._t0:
            return False
        limit = int(options.get("max_buffer_bytes", DEFAULT_BUFFER))
        if self._nbytes + frame.nbytes > limit:
            raise PlanError(
                f"the first time point is larger than max_buffer_bytes={limit}; "
                "ZarrHook cannot learn the dataset's shape: pass events=<the list "
                "given to acq.acquire> or settings=AcquisitionSettings(...)"
            )
        self.images.append((frame.copy(), axes, dict(md)))
        self._nbytes += frame.nbytes
        return True

    def take(self) -> list[Buffered]:
        """The images kept, in arrival order; none are kept afterwards."""
        images, self.images, self._nbytes = self.images, [], 0
        return images

    def plan(
        self,
        next_image: tuple[dict[str, int | str], Mapping[str, Any]] | None = None,
    ) -> EventPlan:
        """The plan the images kept describe.

        `next_image` is the (axes, metadata) of the first image after the first
        time point, if one came: its elapsed time gives the time scale.
        """
        kept = self.images
        seen: dict[AxesKey, int] = {}
        for n, (_, axes, _) in enumerate(kept):
            earlier = seen.setdefault(axes_key(axes), n)
            if earlier != n:
                raise PlanError(
                    f"images {earlier} and {n} of the first time point have the same "
                    f"Axes {dict(axes)}: ZarrHook cannot tell them apart (pycromanager "
                    "gives each image of an acquisition its own Axes); pass "
                    "events=<the list given to acq.acquire> or settings=..."
                )
        entries = [entry_from_metadata(ax, md) for _, ax, md in kept]
        unbounded = self._t0 is not None or (
            next_image is not None and "time" in next_image[0]
        )
        t_scale = None
        if next_image is not None and self._t0 is not None:
            first = [(axes, md) for _, axes, md in kept]
            t_scale = measured_t_scale(first, self._t0, *next_image)
        return plan_images(entries, unbounded_t=unbounded, t_scale=t_scale)
