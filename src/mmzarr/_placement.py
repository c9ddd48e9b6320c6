"""Images -> layout, keys and plate: where each image of an acquisition goes.

`place_images` is step 2 of `_plan.settings_from_slots`: images that are all
in plate wells make a plate (row -> well -> field), otherwise one image is the
root and several a collection `0`, `1`, ... It knows no plan library and no
settings class.
"""

from __future__ import annotations

import string
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mmzarr._models import PlateSettings
from mmzarr._slots import MMZarrWarning, PlateFacts, describe_image
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mmzarr._plan import ImageSlots

__all__ = ["Layout", "Placement", "place_images", "row_name"]

Layout = Literal["image", "collection", "plate"]


def row_name(i: int) -> str:
    """Plate row letters: 0 -> 'A', 25 -> 'Z', 26 -> 'AA'."""
    letters = string.ascii_uppercase
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = letters[r] + name
    return name


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an image goes: its key and, in a plate, its well and field."""

    key: str
    row: str | None = None
    column: str | None = None
    field: int | None = None


def place_images(
    images: Sequence[ImageSlots], plate: PlateFacts | None = None
) -> tuple[Layout, tuple[Placement, ...], PlateSettings | None]:
    """Layout, one `Placement` per image and the plate (for layout `"plate"`).

    Images that are all in wells (`plate_row` and `plate_col`) make a plate;
    otherwise one image is the root and several are a collection `0`, `1`,
    ... (with a warning when some images are in wells: a plate has no place
    for an image outside its wells).
    """
    outside = [im for im in images if None in (im.facts.plate_row, im.facts.plate_col)]
    if not outside:
        placements, plate_settings = _plate_placements(images, plate)
        return "plate", placements, plate_settings
    if any((im.facts.plate_row, im.facts.plate_col) != (None, None) for im in images):
        im = outside[0]
        warnings.warn(
            f"{describe_image(im.image, im.facts)} has plate_row="
            f"{im.facts.plate_row!r}, plate_col={im.facts.plate_col!r}: no well "
            "(a well needs both), but a plate holds images in wells only: the "
            f"plan is written as {'one image' if len(images) == 1 else 'a collection'}"
            " (the frame log has each frame's stage position)",
            MMZarrWarning,
            stacklevel=2,
        )
    if len(images) == 1:
        return "image", (Placement(""),), None
    return "collection", tuple(Placement(str(i)) for i in range(len(images))), None


def _plate_placements(
    images: Sequence[ImageSlots], plate: PlateFacts | None
) -> tuple[tuple[Placement, ...], PlateSettings]:
    if plate is None:
        rows = [im.facts.plate_row for im in images if im.facts.plate_row is not None]
        cols = [im.facts.plate_col for im in images if im.facts.plate_col is not None]
        plate = PlateFacts(None, max(rows) + 1, max(cols) + 1)
    placements: list[Placement] = []
    wells: dict[str, int] = {}  # well -> fields so far
    for im in images:
        f = im.facts
        where = describe_image(im.image, f)
        r, c = f.plate_row, f.plate_col
        assert r is not None  # (place_images)
        assert c is not None
        if r < 0 or c < 0:
            raise PlanError(
                f"{where}: well plate_row={r}, plate_col={c} is no well: rows and "
                "columns count from 0 (row A, column 1)"
            )
        if not (r < plate.rows and c < plate.columns):
            raise PlanError(
                f"{where}: well plate_row={r}, plate_col={c} is outside the "
                f"{plate.rows}x{plate.columns} plate (rows 0-{plate.rows - 1}, "
                f"columns 0-{plate.columns - 1})"
            )
        well = f"{row_name(r)}/{c + 1}"
        n = wells.setdefault(well, 0)
        wells[well] = n + 1
        fld = f.field if f.field is not None else n
        placements.append(Placement(f"{well}/{fld}", row_name(r), str(c + 1), fld))
    plate_settings = PlateSettings(
        name=plate.name,
        rows=tuple(row_name(i) for i in range(plate.rows)),
        columns=tuple(str(i + 1) for i in range(plate.columns)),
        wells=tuple(wells),
    )
    return tuple(placements), plate_settings
