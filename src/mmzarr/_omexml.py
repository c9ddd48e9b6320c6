"""`OME/METADATA.ome.xml`: the OME-XML companion of collections and plates.

Built with ome-types from the settings and the frame log: one `Image` per
series (in series order, so `Image:i` is the image at path `i` of a collection),
its `Pixels` (sizes, type, physical sizes, `XYZCT` order, `MetadataOnly`),
`Channel`s and a `Plane` per acquired frame (TheT/TheC/TheZ, DeltaT,
ExposureTime, PositionX/Y/Z, from the front end's `runner_time_ms`,
`exposure_ms` and `stage` in each record's `metadata`); plates also get
`Plate`/`Well`/`WellSample` pointing at the images. With the microscope's
state at the start (pymmcore-plus' summary metadata, `mmzarr/summary.json`)
the images also get an `Instrument` (the camera as `Detector`, the pixel-size
configuration as `Objective`), `DetectorSettings` and `ObjectiveSettings`, and
their acquisition date. The file is replaced atomically, so a crash leaves
the last complete version.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mmzarr._metadata import frame_metadata
from mmzarr._writes import write_file_atomic
from mmzarr.backends._base import last_time_point

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from ome_types import OME

    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = [
    "OME_XML",
    "PIXEL_TYPES",
    "build_ome",
    "has_ome_xml",
    "render_ome_xml",
    "write_ome_xml",
]

#: Path of the OME-XML file, relative to the dataset root.
OME_XML = "OME/METADATA.ome.xml"


def _number(value: Any) -> float | None:
    """`value` as a finite float, or None (missing or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _abs(value: float | None) -> float | None:
    return None if value is None else abs(value)


def _plane(image: ImageSettings, rec: dict[str, Any]) -> dict[str, Any]:
    idx = dict(zip([d.name for d in image.index_dims], rec["index"], strict=True))
    plane: dict[str, Any] = {
        "the_t": idx.get("t", 0),
        "the_c": idx.get("c", 0),
        "the_z": idx.get("z", 0),
    }
    meta = frame_metadata(rec)
    ms = _number(meta.get("runner_time_ms"))
    if ms is None:
        ms = _number(rec.get("elapsed_ms"))
    if ms is not None:
        plane["delta_t"] = ms / 1000
        plane["delta_t_unit"] = "s"
    exposure = _number(meta.get("exposure_ms"))
    if exposure is not None:
        plane["exposure_time"] = exposure
        plane["exposure_time_unit"] = "ms"
    stage = meta.get("stage")
    for axis in ("x", "y", "z"):
        value = _number(stage.get(axis)) if isinstance(stage, dict) else None
        if value is not None:
            plane[f"position_{axis}"] = value
            plane[f"position_{axis}_unit"] = "µm"
    return plane


def _is_plane(image: ImageSettings, rec: dict[str, Any]) -> bool:
    """Whether `rec` is a frame-log record of a frame of `image` (not dropped)."""
    index = rec.get("index")
    return (
        not rec.get("dropped")
        and isinstance(index, list)
        and len(index) == len(image.index_dims)
        and all(isinstance(v, int) and v >= 0 for v in index)
    )


def _instrument(summary: Mapping[str, Any]) -> Any:
    """The camera(s) and pixel-size configuration of pymmcore-plus' summary."""
    from ome_types import model as m

    devices = {
        d.get("label"): d for d in summary.get("devices") or () if isinstance(d, dict)
    }
    detectors = []
    for n, info in enumerate(summary.get("image_infos") or ()):
        camera = devices.get(info.get("camera_label"), {})
        detectors.append(
            m.Detector(
                id=f"Detector:{n}",
                model=str(camera.get("name") or info.get("camera_label") or "camera"),
                manufacturer=camera.get("library") or None,
                serial_number=str(info.get("camera_label") or "") or None,
            )
        )
    objectives = []
    for n, info in enumerate(summary.get("image_infos") or ()):
        name = info.get("pixel_size_config_name")
        if name:
            objectives.append(m.Objective(id=f"Objective:{n}", model=str(name)))
            break
    return m.Instrument(id="Instrument:0", detectors=detectors, objectives=objectives)


#: OME's `PixelType` of each numpy dtype it has one for (int64 and uint64: none).
PIXEL_TYPES = {
    **{f"{k}{b}": f"{k}{b}" for k in ("int", "uint") for b in (8, 16, 32)},
    "float32": "float",
    "float64": "double",
}


def has_ome_xml(settings: AcquisitionSettings) -> bool:
    """Whether the dataset gets an OME-XML.

    Collections and plates do, when OME has a pixel type for their dtype
    (`PIXEL_TYPES`); the XML is optional in NGFF.
    """
    return settings.layout != "image" and settings.dtype in PIXEL_TYPES


def build_ome(
    settings: AcquisitionSettings,
    records: list[dict[str, Any]] | None = None,
    summary: Mapping[str, Any] | None = None,
    t_size: int = 0,
) -> OME:
    """The OME model for a dataset; `records` are its frame-log records.

    `summary`: pymmcore-plus' summary metadata of the run, for the instrument.
    `t_size`: an unbounded `t`'s time points when the arrays hold more than
    the records' (slots on disk that are no frame known: `finalize`). The
    images' references are not linked to their targets (`Reference.ref` is
    None): the model is made to be written (`render_ome_xml`).
    """
    from ome_types import model as m

    instrument = _instrument(summary) if summary else None
    detector = instrument.detectors[0] if instrument and instrument.detectors else None
    objective = (
        instrument.objectives[0] if instrument and instrument.objectives else None
    )
    date = summary.get("datetime") if summary else None

    by_image: dict[str, list[dict[str, Any]]] = {im.key: [] for im in settings.images}
    images_by_key = {im.key: im for im in settings.images}
    for rec in records or ():
        key = rec.get("image")
        im = images_by_key.get(key) if isinstance(key, str) else None
        if im is not None and _is_plane(im, rec):
            by_image[im.key].append(rec)
    # an unbounded t: the time points acquired, the same in every image
    t_end = last_time_point(
        [t_size]
        + [
            r["index"][0] + 1
            for im in settings.images
            if im.unbounded
            for r in by_image[im.key]
        ]
    )
    detectors = {d.serial_number: d for d in instrument.detectors} if instrument else {}
    images = []
    for i, im in enumerate(settings.images):
        recs = by_image[im.key]
        dims = {d.name: d for d in im.dimensions}
        # each channel's camera: the one that took its frames (several cameras)
        channel_detector: dict[int, Any] = {}
        for r in recs:
            c = _plane(im, r)["the_c"]
            cam = frame_metadata(r).get("camera_device")
            if c not in channel_detector and isinstance(cam, str) and cam in detectors:
                channel_detector[c] = detectors[cam]
        size_t = dims["t"].size if "t" in dims else 1
        if size_t is None:
            size_t = max(t_end, 1)
        pixels = m.Pixels(
            id=f"Pixels:{i}",
            dimension_order="XYZCT",
            type=PIXEL_TYPES[settings.dtype],
            size_x=im.frame_shape[1],
            size_y=im.frame_shape[0],
            size_z=dims["z"].size if "z" in dims else 1,
            size_c=dims["c"].size if "c" in dims else 1,
            size_t=size_t,
            # µm (OME's default unit); None (not written) without a length
            # unit: a pixel size unknown (`pixel_axis`)
            physical_size_x=dims["x"].step_um,
            physical_size_y=dims["y"].step_um,
            physical_size_z=_abs(dims["z"].step_um) if "z" in dims else None,
            channels=[
                m.Channel(
                    id=f"Channel:{i}:{c}",
                    name=ch.name,
                    samples_per_pixel=1,
                    detector_settings=m.DetectorSettings(
                        id=channel_detector.get(c, detector).id
                    )
                    if detector
                    else None,
                )
                for c, ch in enumerate(im.channels or ())
            ]
            or [m.Channel(id=f"Channel:{i}:0", samples_per_pixel=1)],
            metadata_only=m.MetadataOnly(),
            planes=[m.Plane(**_plane(im, r)) for r in recs],
        )
        images.append(
            m.Image(
                id=f"Image:{i}",
                name=im.name or im.key,
                pixels=pixels,
                acquisition_date=date,
                instrument_ref=m.InstrumentRef(id=instrument.id)
                if instrument
                else None,
                objective_settings=m.ObjectiveSettings(id=objective.id)
                if objective
                else None,
            )
        )
    ome = m.OME(creator="mmzarr", instruments=[instrument] if instrument else [])
    # the images are assigned, not passed: OME's constructor walks every object
    # it is given to link each reference to its target (`Reference.ref`), which
    # the XML, written by id, does not use; for a plate that walk over its
    # planes, channels and images costs a good part of the rendering
    ome.images = images
    if settings.plate is not None:
        ome.plates = [_plate(settings)]
    return ome


def _plate(settings: AcquisitionSettings) -> Any:
    from ome_types import model as m

    plate = settings.plate
    assert plate is not None
    wells: dict[str, Any] = {}
    for i, im in enumerate(settings.images):
        well_path = f"{im.row}/{im.column}"
        well = wells.get(well_path)
        if well is None:
            well = wells[well_path] = m.Well(
                id=f"Well:{len(wells)}",
                row=plate.rows.index(str(im.row)),
                column=plate.columns.index(str(im.column)),
            )
        pos = im.stage_position
        well.well_samples.append(
            m.WellSample(
                id=f"WellSample:{i}",
                index=i,
                image_ref=m.ImageRef(id=f"Image:{i}"),
                position_x=pos.x,
                position_x_unit="µm",
                position_y=pos.y,
                position_y_unit="µm",
            )
        )
    return m.Plate(
        id="Plate:0",
        name=plate.name,
        rows=len(plate.rows),
        columns=len(plate.columns),
        row_naming_convention="letter",
        column_naming_convention="number",
        wells=list(wells.values()),
    )


def render_ome_xml(
    settings: AcquisitionSettings,
    records: list[dict[str, Any]] | None = None,
    summary: Mapping[str, Any] | None = None,
    t_size: int = 0,
) -> str:
    """The OME-XML text of a dataset; `records` are its frame-log records.

    `t_size`: as `build_ome`'s.
    """
    from ome_types import to_xml

    # defaults left out by value, not by tracking which fields were set, which
    # walks the whole model first: the same document, read back, much faster
    return to_xml(
        build_ome(settings, records, summary, t_size),
        exclude_unset=False,
        exclude_defaults=True,
    )


def write_ome_xml(root: Path, xml: str) -> Path:
    """Write `OME/METADATA.ome.xml` atomically."""
    path = root / OME_XML
    write_file_atomic(path, xml.encode("utf-8"), fsync=True)
    return path
