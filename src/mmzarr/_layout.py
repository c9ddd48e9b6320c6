"""Layouts: where each image's array lives and the NGFF group documents.

Given `AcquisitionSettings`, this module returns the array path of every image and
the `zarr.json` document of every group (built with yaozarrs v0.5 models): a single
image, a bioformats2raw collection (root + `OME/` series group), or an HCS plate
(plate -> row -> well -> field). It does no I/O; `_metadata.py` writes the
documents.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from yaozarrs import v05

from mmzarr._fields import UM_PER_UNIT

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mmzarr._models import Dimension
    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = [
    "GroupDocuments",
    "array_path",
    "group_documents",
    "image_model",
    "omero_model",
    "plate_model",
]

#: Path of the full-resolution array inside an image group.
LEVEL0 = "0"


def array_path(image: ImageSettings | str, level: int = 0) -> str:
    """Path (relative to the dataset root) of an image's array at `level`.

    `image`: its settings, or its key.
    """
    key = image if isinstance(image, str) else image.key
    return f"{key}/{level}" if key else str(level)


def _axes(image: ImageSettings) -> list[Any]:
    axes: list[Any] = []
    for d in image.dimensions:
        if d.name == "t":
            axes.append(v05.TimeAxis(name="t", unit=d.unit))
        elif d.name == "c":
            axes.append(v05.ChannelAxis(name="c"))
        else:
            axes.append(v05.SpaceAxis(name=d.name, unit=d.unit))
    return axes


def _window(dtype: str, seen: tuple[float, float] | None = None) -> v05.OmeroWindow:
    """A channel's display window: the data's range within the dtype's.

    `seen` is the (lowest, highest) value acquired in the channel; without it
    (nothing acquired yet) the window spans the dtype. Viewers (napari,
    ome-zarr-py) show `start`..`end`; a 12-bit camera's 0-4095 in a uint16
    0-65535 window would look black.
    """
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        lo, hi = float(info.min), float(info.max)
    else:
        lo, hi = 0.0, 1.0
    start, end = lo, hi
    if seen is not None:
        start, end = float(seen[0]), float(seen[1])
        if end <= start:  # a flat channel: a window around its one value
            end = start + 1
            if end <= start:  # past 2**53 `start + 1` is `start`: the next float
                end = math.nextafter(start, math.inf)
                if not math.isfinite(end):  # the largest float64: the one below
                    start, end = math.nextafter(start, -math.inf), start
    return v05.OmeroWindow(start=start, end=end, min=min(lo, start), max=max(hi, end))


def image_model(
    image: ImageSettings,
    dtype: str,
    *,
    levels: int = 1,
    factor: int = 2,
    method: str = "mean",
    ranges: Sequence[tuple[float, float] | None] = (),
) -> v05.Image:
    """The `ome` attributes of an image group (multiscales + omero).

    Each level `k` scales y and x by `factor**k`; the translation is the stage
    position of the image's first plane, in each axis' unit (`_stage_at`), and
    the pixel-center shift of a level.
    `ranges[c]` is the (lowest, highest) value acquired in channel `c`, for its
    display window.
    """
    pos = image.stage_position
    base_scale = [d.scale for d in image.dimensions]
    stage = {"x": pos.x, "y": pos.y, "z": pos.z}
    datasets = []
    for level in range(levels):
        f = factor**level
        scale = [
            s * f if d.name in ("y", "x") else s
            for s, d in zip(base_scale, image.dimensions, strict=False)
        ]
        translation = []
        for s, d in zip(base_scale, image.dimensions, strict=False):
            t = _stage_at(stage.get(d.name), d)
            if d.name in ("y", "x") and f > 1 and method == "mean":
                t += (f - 1) * s / 2
            translation.append(t)
        transforms: list[Any] = [v05.ScaleTransformation(scale=scale)]
        if any(translation):
            transforms.append(v05.TranslationTransformation(translation=translation))
        datasets.append(
            v05.Dataset(path=str(level), coordinateTransformations=transforms)
        )
    multiscale = v05.Multiscale(
        name=image.name or image.key or "image",
        axes=_axes(image),
        datasets=datasets,
        type=method if levels > 1 else "none",
        metadata={"description": "written during acquisition by mmzarr"},
    )
    return v05.Image(
        multiscales=[multiscale], omero=omero_model(image, dtype, ranges=ranges)
    )


def _stage_at(um: float | None, d: Dimension) -> float:
    """A stage coordinate (`um` µm) along axis `d`, in the axis' unit.

    0 (no translation) along an axis without a length unit: y/x of an unknown
    pixel size count pixels, and a position in µm is none of them (written
    there, two positions 100 µm apart would be 100 pixels apart).
    """
    per_unit = UM_PER_UNIT.get(d.unit or "")
    if not um or per_unit is None:
        return 0.0
    return float(um) / per_unit


def omero_model(
    image: ImageSettings,
    dtype: str,
    *,
    ranges: Sequence[tuple[float, float] | None] = (),
) -> v05.Omero | None:
    """The channels' names, colors and display windows (None: no `c` axis)."""
    if not (image.channels and "c" in image.dim_names):
        return None
    return v05.Omero(
        channels=[
            v05.OmeroChannel(
                label=c.name,
                color=c.color,
                window=_window(dtype, ranges[i] if i < len(ranges) else None),
                active=True,
            )
            for i, c in enumerate(image.channels)
        ]
    )


def plate_model(settings: AcquisitionSettings) -> v05.Plate:
    """The `ome` attributes of the plate root group."""
    plate = settings.plate
    if plate is None:  # pragma: no cover - guarded by the settings validator
        raise ValueError("settings have no plate")
    fields: dict[str, int] = {}
    for im in settings.images:
        w = f"{im.row}/{im.column}"
        fields[w] = fields.get(w, 0) + 1
    wells = [
        v05.PlateWell(
            path=w,
            rowIndex=plate.rows.index(w.split("/")[0]),
            columnIndex=plate.columns.index(w.split("/")[1]),
        )
        for w in plate.wells
    ]
    return v05.Plate(
        plate=v05.PlateDef(
            name=plate.name or "plate",
            rows=[v05.Row(name=r) for r in plate.rows],
            columns=[v05.Column(name=c) for c in plate.columns],
            wells=wells,
            acquisitions=[
                v05.Acquisition(
                    id=a.id,
                    # the strict NGFF schema wants a name (SHOULD)
                    name=a.name or f"acquisition {a.id}",
                    maximumfieldcount=max(fields.values()),
                )
                for a in plate.acquisitions
            ],
            field_count=max(fields.values()),
        )
    )


def _dump(model: Any) -> dict[str, Any]:
    """A yaozarrs model as the JSON of its document."""
    out: dict[str, Any] = model.model_dump(
        mode="json", exclude_none=True, by_alias=True
    )
    return out


def _group(ome: Any | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if ome is not None:
        attrs["ome"] = _dump(ome)
    if extra:
        attrs.update(extra)
    return {"zarr_format": 3, "node_type": "group", "attributes": attrs}


#: mmzarr's own files (settings, frame log, set-aside chunks) live in this folder
OWN_FOLDER = "mmzarr"


def file_folder(description: str) -> dict[str, Any]:
    """The `zarr.json` of a folder that holds files, not zarr nodes.

    zarr-python warns that an object "is not recognized as a component of a
    Zarr hierarchy" for every file or folder inside a group that is not a zarr
    node, each time the dataset is listed. It never lists the inside of an
    array, so such a folder is declared an empty array (shape `[0]`, so it has
    no chunks) whose attributes say what it holds; OME-Zarr readers follow the
    OME metadata and ignore it.
    """
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [0],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": {"mmzarr": {"contents": description}},
    }


def is_file_folder(doc: Any) -> bool:
    """Whether a `zarr.json` document is a `file_folder`, not an image array."""
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    mm = attrs.get("mmzarr") if isinstance(attrs, dict) else None
    return isinstance(mm, dict) and "contents" in mm


#: Which group documents `GroupDocuments.documents` returns: all of them, the
#: root's, the root's and the images' (those whose display windows change), or
#: the images' alone ("windows"; collections and plates).
Which = Literal["all", "root", "images", "windows"]


class GroupDocuments:
    """The `zarr.json` document of every group of a dataset, built once.

    Only what changes while acquiring is built again on each call: the root's
    attributes and the images' display windows (`omero`). The multiscales,
    plate, rows and wells are built (and validated by yaozarrs) once: a
    96-well plate has ~500 groups, written at open and again at close.
    """

    def __init__(self, settings: AcquisitionSettings) -> None:
        self.settings = settings
        self._images: dict[str, dict[str, Any]] | None = None
        self._others: dict[str, dict[str, Any]] | None = None
        self._root: dict[str, Any] | None = None

    def documents(
        self,
        *,
        root_attributes: dict[str, Any] | None = None,
        which: Which = "all",
        ranges: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """`{group_path: zarr.json document}`; the root is `""`.

        `root_attributes` are added beside `ome` in the root group. `ranges`:
        per image key, the values acquired in each channel (`image_model`).
        The documents share their parts with the ones built before: read them,
        do not change them.
        """
        settings = self.settings
        docs: dict[str, dict[str, Any]] = {}
        if which == "all":
            docs.update(self._other_documents())
        if settings.layout == "image":  # the root is the image
            root = self._image_document(settings.images[0], ranges)
        else:
            root = self._root_document()
            if which != "root":
                docs.update(
                    (im.key, self._image_document(im, ranges)) for im in settings.images
                )
            if which == "windows":
                return docs
        docs[""] = {
            **root,
            "attributes": {**root["attributes"], **(root_attributes or {})},
        }
        return docs

    def to_rewrite(self, overwritten: bool) -> Which:
        """The documents to write at close.

        All of them when the backend overwrote them (`overwritten`,
        `Progress.groups_overwritten`); otherwise the root's (the status), and
        the images' when they have channels, whose display windows now span
        the data acquired.
        """
        if overwritten:
            return "all"
        if any("c" in im.dim_names for im in self.settings.images):
            return "images"
        return "root"

    def _image_document(
        self,
        image: ImageSettings,
        ranges: Mapping[str, Sequence[tuple[float, float] | None]] | None,
    ) -> dict[str, Any]:
        if self._images is None:
            s = self.settings
            ds = s.downsample
            self._images = {
                im.key: _group(
                    image_model(
                        im,
                        s.dtype,
                        levels=1 + ds.extra_levels(im.frame_shape) if ds else 1,
                        method=ds.method if ds else "mean",
                    )
                )
                for im in s.images
            }
        doc = self._images[image.key]
        seen = (ranges or {}).get(image.key)
        if not seen:
            return doc
        omero = omero_model(image, self.settings.dtype, ranges=seen)
        ome = dict(doc["attributes"]["ome"])
        if omero is not None:
            ome["omero"] = _dump(omero)
        return {**doc, "attributes": {**doc["attributes"], "ome": ome}}

    def _root_document(self) -> dict[str, Any]:
        """The root group of a collection or a plate (an image's is the image)."""
        if self._root is None:
            settings = self.settings
            if settings.layout == "collection":
                self._root = _group(
                    v05.Bf2Raw.model_validate({"bioformats2raw.layout": 3})
                )
            else:
                self._root = _group(plate_model(settings))
                # NGFF 0.5 text says the plate MUST carry a version (its JSON
                # schema and yaozarrs do not); ome-zarr-models rejects a plate
                # without one.
                self._root["attributes"]["ome"]["plate"]["version"] = "0.5"
        return self._root

    def _other_documents(self) -> dict[str, dict[str, Any]]:
        """The groups that are neither the root nor an image (and `mmzarr/`)."""
        if self._others is None:
            settings = self.settings
            docs = self._others = {
                OWN_FOLDER: file_folder(
                    "mmzarr's files: settings.json, frames.jsonl "
                    "(one JSON record per frame)"
                )
            }
            if settings.layout == "collection":
                docs["OME"] = _group(v05.Series(series=list(settings.keys)))
            elif settings.layout == "plate":
                docs["OME"] = file_folder("the dataset as OME-XML: METADATA.ome.xml")
                acq = settings.plate.acquisitions[0].id if settings.plate else 0
                by_well: dict[str, list[ImageSettings]] = {}
                for im in settings.images:
                    by_well.setdefault(f"{im.row}/{im.column}", []).append(im)
                for well, ims in by_well.items():
                    docs.setdefault(well.split("/")[0], _group(None))
                    docs[well] = _group(
                        v05.Well(
                            well=v05.WellDef(
                                images=[
                                    v05.FieldOfView(path=str(im.field), acquisition=acq)
                                    for im in ims
                                ]
                            )
                        )
                    )
        return self._others


def group_documents(
    settings: AcquisitionSettings,
    *,
    root_attributes: dict[str, Any] | None = None,
    root_only: bool = False,
    ranges: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
) -> dict[str, dict[str, Any]]:
    """`{group_path: zarr.json document}` for every group of the dataset.

    The root is `""`. `root_attributes` are added beside `ome` in the root group.
    `root_only`: just the root's document. `ranges`: per image key, the values
    acquired in each channel (`image_model`). `GroupDocuments` builds them once
    for many calls.
    """
    return GroupDocuments(settings).documents(
        root_attributes=root_attributes,
        which="root" if root_only else "all",
        ranges=ranges,
    )
