"""Field types of the settings models: `Annotated` validators and value checks.

Each type checks one value (a dtype, a positive number, a color, a name) and
says what is wrong with it; the models that use them are in `_models.py`. A
y/x pixel size, known or not, becomes a unit and a scale here (`pixel_axis`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BeforeValidator, ValidationInfo

__all__ = [
    "UM_PER_UNIT",
    "DTypeStr",
    "HexColor",
    "Name",
    "check_finite_positive",
    "default_color",
    "dtype_name",
    "pixel_axis",
    "printable",
]

_SUPPORTED_DTYPES = (
    *(f"{kind}{bits}" for kind in ("uint", "int") for bits in (8, 16, 32, 64)),
    "float32",
    "float64",
)


def dtype_name(value: Any) -> str:
    """The numpy name of a supported dtype given as anything numpy accepts."""
    if value is None:  # np.dtype(None) would be float64
        raise ValueError("dtype: unknown dtype None")
    try:
        name = np.dtype(value).name
    except (TypeError, ValueError) as e:
        raise ValueError(f"dtype: unknown dtype {value!r}") from e
    if name not in _SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype: {value!r} is not supported; use one of {_SUPPORTED_DTYPES}"
        )
    return str(name)


def check_finite_positive(value: float) -> float:
    """`value` unless it is not a finite number > 0 (ValueError)."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value!r}")
    return float(value)


def _check_color(value: str) -> str:
    value = value.lstrip("#").upper()
    if not re.fullmatch(r"[0-9A-F]{6}", value):
        raise ValueError(f"color must be a hex RRGGBB string, got {value!r}")
    return value


def _check_name(value: str, info: ValidationInfo) -> str:
    """A name shown to users and written to OME-XML: no control characters.

    Refused: C0/C1 control characters (terminal escapes, NUL; XML 1.0 forbids
    most), lone surrogates (not UTF-8) and the non-characters U+FFFE/U+FFFF.
    """
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs") or ch in "\ufffe\uffff":
            model = (info.config or {}).get("title") or ""
            what = f"{_MODEL_NOUNS.get(model, model)} {info.field_name}".strip()
            raise ValueError(
                f"{what} {value!r} contains the control character "
                f"U+{ord(ch):04X}; use printable characters"
            )
    return value


def printable(text: str | None) -> str | None:
    """`text` with tabs and line breaks made spaces.

    For names that come from a plan: a position list imported from a
    spreadsheet can hold them, and the plan should map all the same. Other
    control characters (terminal escapes, NUL) are still refused by `Name`.
    """
    return None if text is None else text.translate(_WHITESPACE)


#: whitespace control characters `printable` makes spaces
_WHITESPACE = str.maketrans(dict.fromkeys("\t\n\r\x0b\x0c\x85", " "))


_MODEL_NOUNS = {
    "Channel": "channel",
    "ImageSettings": "image",
    "PlateSettings": "plate",
    "PlateAcquisition": "plate acquisition",
}


DTypeStr = Annotated[str, BeforeValidator(dtype_name)]
HexColor = Annotated[str, AfterValidator(_check_color)]
#: A user-visible name (image, channel, plate): printable characters only.
Name = Annotated[str, AfterValidator(_check_name)]

_CHANNEL_COLORS = {
    **dict.fromkeys(("dapi", "hoechst", "bfp"), "0000FF"),
    **dict.fromkeys(("fitc", "gfp", "egfp"), "00FF00"),
    **dict.fromkeys(("tritc", "rfp", "mcherry"), "FF0000"),
    **dict.fromkeys(("brightfield", "bf"), "FFFFFF"),
    **{"yfp": "FFFF00", "cy3": "FFA500", "cy5": "FF00FF"},
}
_CYCLE = ("00FF00", "FF00FF", "00FFFF", "FFFF00", "FF0000", "0000FF", "FFFFFF")


def default_color(name: str, index: int) -> str:
    """A display color for a channel, from its name (DAPI blue, FITC green...)."""
    return _CHANNEL_COLORS.get(name.strip().lower(), _CYCLE[index % len(_CYCLE)])


#: µm per NGFF length unit (of those a y/x pixel size is given in)
UM_PER_UNIT = {
    "picometer": 1e-6,
    "angstrom": 1e-4,
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
}


def pixel_axis(pixel_size_um: float | None) -> dict[str, Any]:
    """The y/x `unit` and `scale` of frames whose pixels are `pixel_size_um` µm.

    An unknown pixel size (None: the core has no pixel-size configuration for
    the microscope's state) has no unit and a scale of 1: the dataset counts
    pixels and claims no size it was never given (NGFF axes SHOULD, not MUST,
    have a unit; the OME-XML then has no `PhysicalSizeX`/`Y`). Read back by
    `ImageSettings.pixel_size_um`.
    """
    if pixel_size_um is None:
        return {"unit": None, "scale": 1.0}
    return {"unit": "micrometer", "scale": float(pixel_size_um)}
