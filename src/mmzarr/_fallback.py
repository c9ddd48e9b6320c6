"""The fallback layout: where front ends keep frames they cannot place.

A writer problem must never cost the user the acquisition. When a plan cannot
be mapped to images (or a frame does not fit the dataset that was), front ends
open a dataset in the fallback layout (`AcquisitionSettings.fallback`: one
image, `t` in arrival order, each frame's own index in the frame log) at the
first such frame, whose shape and dtype it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmzarr._open import create_stream
from mmzarr._settings import AcquisitionSettings

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy as np

    from mmzarr._stream import Stream

__all__ = ["open_fallback", "unplaced_path"]

#: settings options that apply to a fallback dataset too
STORAGE_OPTIONS = ("compression", "max_buffer_bytes", "on_full", "flush_interval_s")


def unplaced_path(path: str | Path) -> str:
    """The sibling of `path` for frames that do not fit it: `x.unplaced.ome.zarr`."""
    text = str(path).rstrip("/")
    stem = text.removesuffix(".zarr").removesuffix(".ome")
    return f"{stem}.unplaced.ome.zarr"


def open_fallback(
    path: str | Path,
    reason: str,
    frame: np.ndarray,
    *,
    backend: str,
    overwrite: bool,
    options: Mapping[str, Any],
    pixel_size_um: Any = None,
    summary: Mapping[str, Any] | None = None,
) -> Stream:
    """Open a fallback-layout dataset at `path` for frames like `frame`.

    `options` may hold any settings options; those that apply to the fallback
    (`STORAGE_OPTIONS`) are used; `summary` is the front end's summary
    metadata (`create_stream`).
    """
    try:
        px = float(pixel_size_um) if pixel_size_um is not None else None
    except (TypeError, ValueError):
        px = None
    settings = AcquisitionSettings.fallback(
        reason,
        image_shape=(int(frame.shape[-2]), int(frame.shape[-1])),
        dtype=str(frame.dtype),
        pixel_size_um=px,
        **{k: v for k, v in options.items() if k in STORAGE_OPTIONS},
    )
    return create_stream(
        path, settings, backend=backend, overwrite=overwrite, summary=summary
    )
