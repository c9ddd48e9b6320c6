"""What `mmzarr info` and `acquire --dry-run` show: a dataset, or settings.

Builds rich renderables and plain lines from a dataset's documents (group
metadata, status, `mmzarr/summary.json`) or from `AcquisitionSettings`; the
CLI prints them. Reads only, never writes.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import TYPE_CHECKING, Any

from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "count",
    "dataset_tree",
    "fallback_line",
    "microscope_lines",
    "settings_lines",
    "settings_table",
]

_UNIT_SYMBOLS = {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm"}


def count(n: int, noun: str) -> str:
    """`1 image`, `2 images`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def settings_table(settings: AcquisitionSettings, frames: int | None = None) -> Table:
    """The dry-run view's table: layout, images, shapes, chunks/shards.

    `frames`: the frames a run writes into the fallback layout's image (its
    `t` grows by one per frame), shown as its size.
    """
    layout = "fallback" if settings.fallback_reason is not None else settings.layout
    table = Table(title=f"layout: {layout}  dtype: {settings.dtype}")
    for col in ("image", "name", "shape", "chunks", "shards", "frames"):
        table.add_column(col)
    unbounded = "∞" if frames is None else str(frames)
    for im in settings.images:
        table.add_row(
            escape(im.key or "(root)"),
            escape(im.name or ""),
            "x".join(unbounded if s is None else str(s) for s in im.shape),
            "x".join(str(d.chunk_size) for d in im.dimensions),
            "x".join(str(d.shard_size) for d in im.dimensions)
            if any(d.shard for d in im.dimensions)
            else "-",
            str(im.frames_planned if im.frames_planned is not None else unbounded),
        )
    return table


def settings_lines(
    settings: AcquisitionSettings, frames: int | None = None
) -> list[str]:
    """The dry-run view's summary lines: plate wells, frames, bytes.

    `frames`: the frames a run writes in the fallback layout (None: unknown).
    """
    if settings.fallback_reason is not None:
        per_frame = fallback_frame_bytes(settings)
        total = "unknown" if frames is None else decimal(frames * per_frame)
        return [
            f"1 image, {'an unknown number of' if frames is None else frames} "
            "frames in arrival order (the index of each in mmzarr/frames.jsonl), "
            f"expected {total} uncompressed, compression {settings.compression}"
        ]
    lines = []
    if settings.plate is not None:
        wells = ", ".join(settings.plate.wells)
        lines.append(f"plate {settings.plate.name}: wells {wells}")
    nbytes = settings.bytes_planned
    total = "unbounded" if nbytes is None else decimal(nbytes)
    lines.append(
        f"{count(len(settings.images), 'image')}, "
        f"{settings.frames_planned or '∞'} frames, "
        f"expected {total} uncompressed, compression {settings.compression}"
    )
    return lines


def fallback_frame_bytes(settings: AcquisitionSettings) -> int:
    """The bytes of one camera frame in the fallback layout's `settings`.

    Its image is `t`, then the planes of one frame (an RGB frame's samples as
    `c`).
    """
    image = settings.images[0]
    return math.prod(int(n or 0) for n in image.shape[1:]) * settings.itemsize


def fallback_line(frames: int | None) -> str:
    """The dry-run view of the fallback layout when the camera's frames are unknown."""
    n = "an unknown number of" if frames is None else str(frames)
    return (
        f"layout: fallback (one image, frames in arrival order): {n} frames, "
        "the shape and dtype of the first frame (the camera's are not known)"
    )


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _attributes(group: Path) -> dict[str, Any] | None:
    """A group's `zarr.json` attributes, or None when unreadable."""
    try:
        doc = json.loads((group / "zarr.json").read_text(encoding="utf-8"))
        return dict(doc["attributes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _logged_frames(out: Path) -> tuple[dict[str, dict[str, int]], int]:
    """Frames in the frame log: `({image: {"frames_written": n}}, total)`."""
    from mmzarr._log_lines import frame_key
    from mmzarr._metadata import read_frame_log

    frames = set()
    for record in read_frame_log(out):
        key = frame_key(record)
        if key is not None and not record.get("dropped"):
            frames.add(key)
    images: dict[str, dict[str, int]] = {}
    for image, _ in frames:
        entry = images.setdefault(image, {"frames_written": 0})
        entry["frames_written"] += 1
    return images, len(frames)


def _enclosing_dataset(group: Path) -> Path | None:
    """The mmzarr dataset a group (a well, a field, a position) is part of."""
    for above in group.absolute().parents:
        if "mmzarr" in (_attributes(above) or {}):
            return above
    return None


def dataset_tree(out: Path) -> Tree:
    """The dataset as a tree: layout, size, status, each image's array.

    Raises
    ------
    ValueError
        When `out` is not a zarr v3 dataset or its root document is unreadable.
    """
    from mmzarr._dataset import SETTINGS_FILE
    from mmzarr._validate import array_documents

    if not (out / "zarr.json").is_file():
        from mmzarr._leftovers import replaced_note
        from mmzarr._replaceable import zarr_v2_note

        notes = [n for n in (zarr_v2_note(out), replaced_note(out)) if n]
        aside = "".join(f"; {n}" for n in notes)
        raise ValueError(f"{str(out)!r} is not a zarr v3 dataset (no zarr.json){aside}")
    attrs = _attributes(out)
    if attrs is None:
        raise ValueError(
            f"{out / 'zarr.json'}: unreadable; run "
            f"`mmzarr validate {shlex.quote(str(out))}`"
        )
    mm = attrs.get("mmzarr", {})
    ome = attrs.get("ome", {})
    if not ome and not mm and not (out / SETTINGS_FILE).is_file():
        raise ValueError(
            f"{str(out)!r} is not an OME-Zarr dataset (its zarr.json has no 'ome' "
            "attributes)"
        )
    layout = "plate" if "plate" in ome else "well" if "well" in ome else "image"
    if "bioformats2raw.layout" in ome:
        layout = "collection"
    images = mm.get("images", {})
    written = mm.get("frames_written", "?")
    unknown: int | str = "?"  # frames of an image the counts do not name
    if mm.get("status") == "acquiring":
        unknown = 0
        # the counts are set at close: a writer still running, or killed, has
        # its frame log (written every flush_interval_s / 2)
        images, written = _logged_frames(out)
        written = f"{written} logged"
    # a plan of unknown length (unbounded t, the fallback layout): no total
    planned = mm.get("frames_planned")
    tree = Tree(
        f"[bold]{escape(str(out))}[/] ({layout}, {decimal(_du(out))} on disk, "
        f"status {mm.get('status', 'unknown')}, {written}"
        f"{f'/{planned}' if planned else ''} frames)"
    )
    if mm.get("status") == "acquiring":
        tree.add(
            "[yellow]not closed:[/] its writer is running, or was stopped "
            f"(then `mmzarr finalize {escape(shlex.quote(str(out)))}` makes it valid)"
        )
    if not mm and (top := _enclosing_dataset(out)) is not None:
        tree.add(
            f"part of the dataset {escape(str(top))}: "
            f"`mmzarr info {escape(shlex.quote(str(top)))}` shows its status and frames"
        )
    if mm:
        from mmzarr._unplaced import unplaced_siblings

        for sibling in unplaced_siblings(out):
            tree.add(f"[yellow]frames that did not fit it are in[/] {escape(sibling)}")
    if mm.get("fallback"):  # the plan could not be mapped: frames in arrival order
        tree.add(f"[yellow]fallback layout:[/] {escape(str(mm['fallback']))}")
    arrays = array_documents(out)
    branches: dict[str, Tree] = {}
    pixel_sizes: dict[str, None] = {}  # each image's, in order
    for path in sorted(
        arrays, key=lambda a: [int(x) if x.isdigit() else x for x in a.split("/")]
    ):
        doc = arrays[path]
        key = path.rsplit("/", 1)[0] if "/" in path else ""
        parent = tree
        if layout == "plate":
            well = "/".join(key.split("/")[:2])
            if well not in branches:
                branches[well] = tree.add(f"well {well}")
            parent = branches[well]
        group = (_attributes(out / key) or {}).get("ome", {})
        chans = [c.get("label") for c in group.get("omero", {}).get("channels", [])]
        pixel_sizes[_pixel_size(group)] = None
        name = _image_name(group, key)
        dims = "".join(doc.get("dimension_names") or [])
        written = images.get(key, {}).get("frames_written", unknown)
        if missing := images.get(key, {}).get("missing_count"):
            written = f"{written} ({missing} planned never written)"
        label = (
            f"field {key.split('/')[-1]}"
            if layout in ("plate", "well")
            else key or "(root)"
        )
        # names and channel labels are the user's: escaped, or rich takes
        # "[bold]" as markup and "[/]" fails to render
        parent.add(
            f"{escape(label)}:{escape(f' name={name!r}') if name else ''}"
            f" {dims} {tuple(doc['shape'])} {doc['data_type']}"
            f" channels={escape(str(chans))} frames={written}"
        )
    if pixel_sizes:  # under the dataset's line
        tree.label = f"{tree.label}\npixel size: {', '.join(pixel_sizes)}"
    return tree


def _pixel_size(group: dict[str, Any]) -> str:
    """The x pixel size of an image (its `ome` attributes) as `mmzarr info` says it.

    `unknown (no unit)` for x without a unit (`pixel_axis`).
    """
    try:
        ms = group["multiscales"][0]
        x = [a.get("name") for a in ms["axes"]].index("x")
        unit = ms["axes"][x].get("unit")
        scale = float(ms["datasets"][0]["coordinateTransformations"][0]["scale"][x])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return "?"
    if not unit:
        return "unknown (no unit: y/x count pixels)"
    return escape(f"{scale:g} {_UNIT_SYMBOLS.get(unit, unit)}")


def _image_name(group: dict[str, Any], key: str) -> str | None:
    """The image's `multiscales` name, unless it only repeats its path.

    An image without a name of its own is written under its key (`"0"`,
    `"A/1/0"`) or, at the root, as `"image"`.
    """
    multiscales = group.get("multiscales")
    if not (isinstance(multiscales, list) and multiscales):
        return None
    name = multiscales[0].get("name") if isinstance(multiscales[0], dict) else None
    if not isinstance(name, str) or name == (key or "image"):
        return None
    return name


def microscope_lines(out: Path) -> list[str]:
    """Key facts of the microscope's state at the start (`mmzarr/summary.json`)."""
    from mmzarr._dataset import SUMMARY_FILE

    try:
        summary = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(summary, dict):
        return []
    devices = {d.get("label"): d for d in summary.get("devices") or ()}
    lines = []
    for info in summary.get("image_infos") or ():
        label = info.get("camera_label")
        cam = devices.get(label, {})
        props = {p.get("name"): p.get("value") for p in cam.get("properties") or ()}
        lines.append(
            f"camera: {label} ({cam.get('library', '?')} {cam.get('name', '?')}), "
            f"{info.get('width')}x{info.get('height')} {info.get('dtype')}, "
            f"exposure {props.get('Exposure', '?')} ms"
        )
        px = info.get("pixel_size_um")
        lines.append(
            "pixel size at the start: "
            + (f"{px} µm" if isinstance(px, (int, float)) and px > 0 else "unknown")
            + f" (config {info.get('pixel_size_config_name') or 'none'})"
        )
    channels = list(
        dict.fromkeys(
            f"{c.get('config')}"
            + (f" {c['exposure']:g} ms" if c.get("exposure") is not None else "")
            for c in _plan_channels(summary.get("mda_sequence"))
        )
    )
    if channels:
        lines.append("channels: " + ", ".join(channels))
    if summary.get("datetime"):
        lines.append(f"started: {summary['datetime']}")
    return lines


def _plan_channels(seq: Any, depth: int = 0) -> list[dict[str, Any]]:
    """The channels of a plan (as JSON) and of its positions' sub-sequences."""
    if not isinstance(seq, dict) or depth > 8:
        return []
    out = [c for c in seq.get("channels") or () if isinstance(c, dict)]
    positions = seq.get("stage_positions")
    for pos in positions if isinstance(positions, list) else ():
        if isinstance(pos, dict):
            out += _plan_channels(pos.get("sequence"), depth + 1)
    return out
