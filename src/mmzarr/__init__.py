"""mmzarr: stream microscope acquisitions into OME-Zarr v0.5."""

from __future__ import annotations

from mmzarr._finalize import finalize
from mmzarr._open import create_stream
from mmzarr._settings import (
    AcquisitionSettings,
    Channel,
    Dimension,
    Downsample,
    ImageSettings,
    PlateAcquisition,
    PlateSettings,
    StagePosition,
)
from mmzarr._slots import MMZarrWarning
from mmzarr._stream import Stream
from mmzarr._validate import ValidationReport, validate
from mmzarr._version import __version__
from mmzarr.errors import (
    DatasetLockedError,
    EmptyPlanError,
    FrameError,
    MMZarrError,
    PlanError,
    StorageError,
)
from mmzarr.handlers import MDAWriter

__all__ = [
    "AcquisitionSettings",
    "Channel",
    "DatasetLockedError",
    "Dimension",
    "Downsample",
    "EmptyPlanError",
    "FrameError",
    "ImageSettings",
    "MDAWriter",
    "MMZarrError",
    "MMZarrWarning",
    "PlanError",
    "PlateAcquisition",
    "PlateSettings",
    "StagePosition",
    "StorageError",
    "Stream",
    "ValidationReport",
    "__version__",
    "create_stream",
    "finalize",
    "validate",
]
