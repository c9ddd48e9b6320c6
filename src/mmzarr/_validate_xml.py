"""`validate`'s check of a collection's or plate's `OME/METADATA.ome.xml`.

The OME-XML is optional in NGFF, but a reader that takes the dimensions from
it (Bio-Formats) must find the arrays' own: the document parses (ome-types),
has one image per dataset image, each image's sizes are its array's shape, and
every plane lies inside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmzarr._layout import array_path
from mmzarr._omexml import OME_XML, has_ome_xml

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["ome_xml_problems"]

_SETTINGS = "mmzarr/settings.json"


def ome_xml_problems(root: Path, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """What is wrong with the OME-XML of the dataset at `root` (empty: nothing).

    `shapes`: each array's shape, by its path. A dataset without mmzarr's
    settings, or one that gets no OME-XML, has nothing to check.
    """
    from mmzarr._settings import AcquisitionSettings

    try:
        settings = AcquisitionSettings.model_validate_json(
            (root / _SETTINGS).read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return []
    if not has_ome_xml(settings):
        return []
    try:
        text = (root / OME_XML).read_text(encoding="utf-8")
    except FileNotFoundError:
        # written at close, before the root's status (an older mmzarr wrote
        # it after): its writer died while closing, or it was deleted
        return [
            f"{OME_XML} is missing (its writer died while closing, or it was "
            "deleted); run `mmzarr finalize` to write it"
        ]
    except OSError as e:
        return [f"{OME_XML} cannot be read ({type(e).__name__}: {e})"]
    try:
        import ome_types

        ome = ome_types.from_xml(text)
    except Exception as e:
        return [f"{OME_XML} does not parse: {type(e).__name__}: {e}"]
    if len(ome.images) != len(settings.images):
        return [
            f"{OME_XML} has {len(ome.images)} images, the dataset "
            f"{len(settings.images)}"
        ]
    problems = []
    for i, (image, described) in enumerate(
        zip(settings.images, ome.images, strict=True)
    ):
        path = array_path(image)
        shape = shapes.get(path)
        if shape is None or len(shape) != len(image.dimensions):
            continue  # the array's own problem, reported with the arrays
        sizes: dict[str, int] = dict(
            zip((str(d.name) for d in image.dimensions), shape, strict=True)
        )
        pixels = described.pixels
        for axis in "tczyx":
            said = getattr(pixels, f"size_{axis}")
            # OME's sizes are at least 1: an unbounded t without a frame yet is 0
            if said != max(sizes.get(axis, 1), 1):
                problems.append(
                    f"{OME_XML}: image {i} has Size{axis.upper()}={said}, its "
                    f"array {path!r} {sizes.get(axis, 1)}"
                )
        outside = [
            (p.the_t, p.the_c, p.the_z)
            for p in pixels.planes
            if p.the_t >= sizes.get("t", 1)
            or p.the_c >= sizes.get("c", 1)
            or p.the_z >= sizes.get("z", 1)
        ]
        if outside:
            problems.append(
                f"{OME_XML}: image {i} has planes (t, c, z) outside its array "
                f"{path!r}: {outside[:5]}"
            )
    return problems
