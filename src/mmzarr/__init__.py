"""mmzarr: stream microscope acquisitions into OME-Zarr v0.5."""

from __future__ import annotations

__version__ = "0.1.0"

from mmzarr._settings import (
    AcquisitionSettings,
    Channel,
    Dimension,
    ImageSettings,
    PlateAcquisition,
    PlateSettings,
    StagePosition,
)
from mmzarr._useq import MMZarrWarning

__all__ = [
    "AcquisitionSettings",
    "Channel",
    "Dimension",
    "ImageSettings",
    "MMZarrWarning",
    "PlateAcquisition",
    "PlateSettings",
    "StagePosition",
    "__version__",
]
