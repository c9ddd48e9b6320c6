"""Learn mode of `ZarrHook`: the images of the first time point, buffered.

Given neither `settings` nor `events`, the hook keeps the images of the first
time point (at most ``max_buffer_bytes``) until the first image of the next
one; they fix the positions, channels and z planes of the dataset. The first
time point is that of the first image with a ``time`` axis: images without one
(a reference snap before a time series) are kept in the buffer too, but take
no part in the plan once any image has a time (their place in `t` is not
known: the hook keeps them beside the dataset). This module holds those images
and makes the plan they describe; the hook opens the dataset and writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr.errors import PlanError
from mmzarr.pycromanager._plan import (
    AxesKey,
    axes_key,
    camera_channel,
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

        An image without a ``time`` axis is kept (it ends no time point).

        Raises
        ------
        PlanError
            When the first time point is larger than ``max_buffer_bytes`` (an
            option in `options`).
        """
        t = axes.get("time")
        if t is not None:
            if self._t0 is None:
                self._t0 = int(t)
            elif t != self._t0:
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

    @property
    def planned(self) -> list[Buffered]:
        """The images kept that fix the dataset's shape, in arrival order.

        Those of the first time point; all of them when none had a ``time``.
        Images of a second camera (``CameraChannelIndex`` > 0) take no part:
        they have the Axes of the first camera's (the hook keeps them beside).
        """
        first = [im for im in self.images if camera_channel(im[2]) == 0]
        if self._t0 is None:
            return first
        return [im for im in first if "time" in im[1]]

    def take(self) -> list[Buffered]:
        """The images kept, in arrival order; none are kept afterwards."""
        images, self.images, self._nbytes = self.images, [], 0
        self._t0 = None
        return images

    def plan(
        self,
        next_image: tuple[dict[str, int | str], Mapping[str, Any]] | None = None,
    ) -> EventPlan:
        """The plan the images kept describe.

        `next_image` is the (axes, metadata) of the first image after the first
        time point, if one came: its elapsed time gives the time scale. Images
        without a ``time`` take no part when others have one (`planned`).
        """
        kept = self.planned
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
