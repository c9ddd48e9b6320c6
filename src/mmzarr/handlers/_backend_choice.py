"""Which backend an MDA is written with, and how much acquire-zarr may hold.

`MDAWriter` asks at `sequenceStarted`, once the plan's settings are known.
Without a backend asked for, `backends.backend_for` chooses (tensorstore for a
plan acquire-zarr cannot take in its order). acquire-zarr holds frames that
come ahead of their slot: cameras as channels send some
(`CameraLayout.held_frames`), a plan in another order holds them until their
turn (`reorder_bytes`); its reorder window grows to hold them, up to
`max_buffer_bytes`, and a warning says what does not fit.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from mmzarr.backends import DEFAULT_BACKEND, backend_for
from mmzarr.backends._acquire_array import default_window, reorder_bytes

if TYPE_CHECKING:
    from mmzarr._cameras import CameraLayout
    from mmzarr._settings import AcquisitionSettings

__all__ = ["choose_backend"]

logger = logging.getLogger("mmzarr")


def choose_backend(
    settings: AcquisitionSettings,
    asked: str | None,
    layout: CameraLayout | None,
    *,
    path: str,
    unplaced_path: str,
) -> tuple[str, dict[str, Any]]:
    """The backend (`asked`, or `backend_for`'s choice) and its extra options.

    `layout`: the run's cameras, when they are written as channels; `path` and
    `unplaced_path` name the dataset and its sibling in the warnings.
    """
    reorder = reorder_bytes(settings)  # one pass over the arrays
    backend = asked
    if backend is None:
        backend = backend_for(settings, reorder)
        if backend != DEFAULT_BACKEND:
            logger.warning(
                "mmzarr: this plan acquires an axis outside the one %s appends "
                "first (it would hold up to %s bytes of frames until their "
                "turn): writing %s with %s",
                DEFAULT_BACKEND,
                f"{reorder:,}",
                path,
                backend,
            )
    if backend != "acquire-zarr":
        return backend, {}
    held = 0
    if layout is not None and layout.held_frames:
        frame = max(math.prod(im.frame_shape) for im in settings.images)
        held = (layout.held_frames + 1) * frame * settings.itemsize
        logger.info(
            "mmzarr: %d cameras as channels: holding up to %d frames (%d "
            "bytes) that arrive ahead of their slot",
            len(layout.cameras),
            layout.held_frames,
            held,
        )
    need = held + reorder
    if need <= default_window(settings.max_buffer_bytes):
        return backend, {}
    if need > settings.max_buffer_bytes:
        logger.warning(
            "mmzarr: acquire-zarr may have to hold %s bytes of frames until "
            "their turn, more than max_buffer_bytes (%s): frames that do not "
            "fit go to %s; backend='tensorstore' writes this plan in place",
            f"{need:,}",
            f"{settings.max_buffer_bytes:,}",
            unplaced_path,
        )
    return backend, {"max_reorder_bytes": min(need, settings.max_buffer_bytes)}
