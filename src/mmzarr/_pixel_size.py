"""The pixel size a run's frames are acquired at, and frames acquired at another.

A dataset's y/x scale is the camera's pixel size as the run started (or the
one given to the writer; none, without a unit, when unknown: `pixel_axis`); a
frame of the same shape acquired after an objective, binning or calibration
change would be shown at the wrong size, so the front ends (`MDAWriter`,
`ZarrHook`) keep it beside (`RunPixelSize`, one rule: `pixel_size_misfit`).
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
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._stream import Stream

__all__ = ["RunPixelSize", "of_settings", "pixel_size_misfit"]

logger = logging.getLogger("mmzarr")


def pixel_size_misfit(scale: float | None, pixel_size_um: Any) -> str | None:
    """Why a frame of `pixel_size_um` does not belong where pixels are `scale` µm.

    None when they agree, or when either is unknown (None; for the frame also 0
    or not a number): a dataset of unknown pixel size claims none.
    """
    px = _known(pixel_size_um)
    if scale is None or px is None or math.isclose(px, scale, rel_tol=1e-6):
        return None
    return f"frame pixel size {px:g} µm, not {scale:g} µm ({_CHANGED})"


#: why a run's frames come at another pixel size
_CHANGED = (
    "the pixel size changed during the run: another objective, binning or calibration"
)


@dataclass(frozen=True)
class RunPixelSize:
    """A run's pixel size, and the frames acquired at another.

    The run's pixel size is the core's as the run started, or, when that was
    unknown, that of the run's first frame that has one. It tells when the
    microscope changed; the dataset may be written at another (one given to
    the writer) or at none (unknown), and a misfit names it.
    """

    #: the run's pixel size (µm), if known
    start: float | None = None
    #: the `pixel_size_um` given to the writer
    given: Any = None
    #: the frame-metadata key of a frame's pixel size (pycromanager's
    #: ``PixelSize_um``; pymmcore-plus' ``pixel_size_um``)
    key: str = "pixel_size_um"
    #: the pixel size (µm) of the settings given to the writer, one for all
    #: their images (`of_settings`)
    settings_px: float | None = None

    @classmethod
    def of(
        cls,
        summary: Mapping[str, Any],
        given: Any,
        settings: AcquisitionSettings | None = None,
    ) -> RunPixelSize:
        """From pymmcore-plus' summary metadata.

        The selected camera's (`image_infos[0]`; a Multi Camera adapter's with
        several cameras): the pixel size each frame's metadata says.
        """
        infos = summary.get("image_infos") or ()
        first = infos[0] if infos and isinstance(infos[0], Mapping) else {}
        start = _known(first.get("pixel_size_um"))
        return cls(start, given, settings_px=of_settings(settings))

    def started(self, meta: Mapping[str, Any]) -> RunPixelSize:
        """The run's pixel size, the frame `meta`'s when none was known yet."""
        if self.start is not None:
            return self
        return dataclasses.replace(self, start=_known(meta.get(self.key)))

    def changed(self, meta: Mapping[str, Any]) -> float | None:
        """The frame (`meta`)'s pixel size if it is known and not the run's."""
        px = _known(meta.get(self.key))
        if self.start is None or pixel_size_misfit(self.start, px) is None:
            return None
        return px

    def misfit(self, meta: Mapping[str, Any], dataset: float | None) -> str | None:
        """Why a frame (`meta`) does not belong in a dataset at `dataset` µm.

        A frame acquired at another pixel size than the run's; the message
        names the dataset's pixel size when it is not the run's (one given to
        the writer, or unknown).
        """
        px = self.changed(meta)
        if px is None:
            return None
        assert self.start is not None  # a change is one from the run's
        if dataset is not None and math.isclose(dataset, self.start, rel_tol=1e-6):
            return pixel_size_misfit(self.start, px)
        written = (
            "the dataset's pixel size is unknown"
            if dataset is None
            else f"the dataset is written at {dataset:g} µm"
        )
        return (
            f"frame pixel size {px:g} µm, not the run's {self.start:g} µm "
            f"({_CHANGED}; {written})"
        )

    def kept(self, meta: Mapping[str, Any]) -> Any:
        """The pixel size of a frame kept in the fallback layout or beside.

        The one given to the writer (as `pixel_size_um`, or as the settings'),
        unless the frame was acquired at another pixel size than the run's;
        else the frame's.
        """
        fixed = self.given if self.given is not None else self.settings_px
        if fixed is None or self.changed(meta) is not None:
            return meta.get(self.key)
        return fixed

    def admitted(self, meta: Mapping[str, Any], stream: Stream) -> RunPixelSize:
        """The run's pixel size once `stream` takes the frame `meta`; else `FrameError`.

        Before the dataset's first frame, the dataset takes the frame's pixel
        size instead (the plan's first channel preset may switch the objective
        after the run's start; or the pixel size was unknown as the run
        started), unless one was given to the writer: as `pixel_size_um`, or
        as the scale of the `settings` given (any other than the run's start).
        After it, a dataset of unknown pixel size takes frames of any (its
        first known one becomes the run's).
        """
        dataset = stream.settings.images[0].pixel_size_um
        px = _known(meta.get(self.key))
        if self.start is None:
            if px is None:
                return self
            if self.given is not None or stream.frames_written or dataset is not None:
                return dataclasses.replace(self, start=px)  # the run's first known
        elif (why := self.misfit(meta, dataset)) is None:
            return self
        elif (
            self.given is not None
            or stream.frames_written
            # the user's own settings: of another pixel size, or of none
            or pixel_size_misfit(dataset, self.start) is not None
            or dataset is None
        ):
            raise FrameError(why)
        assert px is not None
        stream.set_pixel_size(px)
        logger.info(
            "mmzarr: the pixel size changed between the run's start (%s) and "
            "its first frame (%g µm): the dataset's scale is the first frame's",
            "unknown" if self.start is None else f"{self.start:g} µm",
            px,
        )
        return dataclasses.replace(self, start=px)


def of_settings(settings: AcquisitionSettings | None) -> float | None:
    """The pixel size (µm) of all images of `settings`.

    None without settings, or when their images differ or one has none.
    """
    if settings is None:
        return None
    found = {im.pixel_size_um for im in settings.images}
    return found.pop() if len(found) == 1 else None


def _known(value: Any) -> float | None:
    """`value` as a pixel size (µm) > 0, else None (unknown)."""
    try:
        px = float(value or 0)
    except (TypeError, ValueError):
        return None
    return px if math.isfinite(px) and px > 0 else None
