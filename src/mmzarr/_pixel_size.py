"""The pixel size a run's frames are acquired at, and frames acquired at another.

A dataset's y/x scale is the camera's pixel size as the run started (or the
one given to the writer); a frame of the same shape acquired after an
objective, binning or calibration change would be shown at the wrong size,
so the front ends (`MDAWriter`, `ZarrHook`) keep it beside (`RunPixelSize`,
one rule: `pixel_size_misfit`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmzarr.errors import FrameError

if TYPE_CHECKING:
    from mmzarr._stream import Stream

__all__ = ["RunPixelSize", "pixel_size_misfit"]

logger = logging.getLogger("mmzarr")


def pixel_size_misfit(scale: float, pixel_size_um: Any) -> str | None:
    """Why a frame of `pixel_size_um` does not belong where pixels are `scale` µm.

    None when they agree, or when the frame's pixel size is unknown (None, 0,
    not a number).
    """
    try:
        px = float(pixel_size_um)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(px) or px <= 0 or math.isclose(px, scale, rel_tol=1e-6):
        return None
    return (
        f"frame pixel size {px:g} µm, not {scale:g} µm (the pixel size changed "
        "during the run: another objective, binning or calibration)"
    )


@dataclass(frozen=True)
class RunPixelSize:
    """A run's pixel size as it started, and the frames acquired at another."""

    #: the pixel size (µm) at the run's start, if known
    start: float | None = None
    #: the `pixel_size_um` given to the writer
    given: Any = None
    #: the frame-metadata key of a frame's pixel size (pycromanager's
    #: ``PixelSize_um``; pymmcore-plus' ``pixel_size_um``)
    key: str = "pixel_size_um"

    @classmethod
    def of(cls, summary: Mapping[str, Any], given: Any) -> RunPixelSize:
        """From pymmcore-plus' summary metadata.

        The selected camera's (`image_infos[0]`; a Multi Camera adapter's with
        several cameras): the pixel size each frame's metadata says.
        """
        infos = summary.get("image_infos") or ()
        first = infos[0] if infos and isinstance(infos[0], Mapping) else {}
        return cls(_known(first.get("pixel_size_um")), given)

    def started(self, meta: Mapping[str, Any]) -> RunPixelSize:
        """The run's pixel size, the frame `meta`'s when none was known yet."""
        if self.start is not None:
            return self
        return dataclasses.replace(self, start=_known(meta.get(self.key)))

    def misfit(self, meta: Mapping[str, Any]) -> str | None:
        """Why a frame (`meta`: its metadata) does not belong in the dataset."""
        if self.start is None:
            return None
        return pixel_size_misfit(self.start, meta.get(self.key))

    def kept(self, meta: Mapping[str, Any]) -> Any:
        """The pixel size of a frame kept in the fallback layout or beside.

        The one given to the writer, unless the frame was acquired at another
        pixel size than the run started with; else the frame's.
        """
        if self.given is None or self.misfit(meta) is not None:
            return meta.get(self.key)
        return self.given

    def admitted(self, meta: Mapping[str, Any], stream: Stream) -> RunPixelSize:
        """The run's pixel size once `stream` takes the frame `meta`; else `FrameError`.

        Before the dataset's first frame, the dataset takes the frame's pixel
        size instead (the plan's first channel preset may switch the objective
        after the run's start), unless one was given to the writer: as
        `pixel_size_um`, or as the scale of the `settings` given (any other than
        the run's start).
        """
        why = self.misfit(meta)
        if why is None:
            return self
        assert self.start is not None  # a misfit is one with the start's
        scale = stream.settings.images[0].dim("x").scale
        if (
            self.given is not None
            or stream.frames_written
            or pixel_size_misfit(self.start, scale) is not None  # the user's own
        ):
            raise FrameError(why)
        px = float(meta[self.key])
        stream.set_pixel_size(px)
        logger.info(
            "mmzarr: the pixel size changed between the run's start (%g µm) and "
            "its first frame (%g µm): the dataset's scale is the first frame's",
            self.start,
            px,
        )
        return dataclasses.replace(self, start=px)


def _known(value: Any) -> float | None:
    """`value` as a pixel size (µm) > 0, else None (unknown)."""
    try:
        px = float(value or 0)
    except (TypeError, ValueError):
        return None
    return px if math.isfinite(px) and px > 0 else None
