"""mmzarr: stream microscope acquisitions into OME-Zarr v0.5."""

from __future__ import annotations

import os as _os

# acquire-zarr bundles an OpenMP runtime (libgomp) whose idle threads spin for
# a few ms after every task by default: writing 800 512x512 frames took 3.6 s of
# CPU for 2.0 s wall, 1.8 s for 1.2 s with passive waiting, and the spinning
# starves the camera thread on small machines. libgomp reads this when
# acquire_zarr is first imported; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmzarr._finalize import finalize
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
from mmzarr._stream import Stream, create_stream
from mmzarr._validate import ValidationReport, validate
from mmzarr._version import __version__
from mmzarr.errors import (
    DatasetLockedError,
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
