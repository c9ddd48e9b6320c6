"""What a user added to an mmzarr dataset, which `overwrite` must not delete.

A dataset holds its writer's nodes only: the root group, the groups above
each image (rows, wells, fields, positions), each image group and its arrays
(one per resolution level: their `zarr.json` and chunks), `mmzarr/` (the
settings, the frame log, ...) and `OME/` (a collection's series group and its
OME-XML). Anything else in a group folder is a user's: a `labels/` group drawn
in napari, an `analysis.csv` beside the images, a notes file.
`foreign_entries` lists them; `_replaceable` then refuses to replace the
dataset.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mmzarr._dataset import SETTINGS_FILE
from mmzarr._downsample import Downsample
from mmzarr._lock import LOCK_SUFFIX, json_object
from mmzarr._writes import atomic_temp_pattern, in_threads

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._storage import Location

__all__ = ["foreign_entries", "node_type"]

#: the folders at the root that are the writer's whatever they hold
_OWN_FOLDERS = ("mmzarr",)
#: files a group folder of a dataset holds: its document, a document half
#: written by a writer that died (`write_file_atomic`), the lock of a dataset
#: beside (`_lock`), `OME/`'s OME-XML; and what a file browser leaves in a
#: folder it showed (macOS Finder, Windows Explorer), no one's work
_OWN_FILES = re.compile(
    "|".join(
        (
            r"zarr\.json",
            atomic_temp_pattern(r"zarr\.json"),
            rf"\..+{re.escape(LOCK_SUFFIX)}",
            r"METADATA\.ome\.xml",
            atomic_temp_pattern(r"METADATA\.ome\.xml"),
            r"\.DS_Store|\._.+|Thumbs\.db|desktop\.ini",
        )
    )
)


def foreign_entries(loc: Location, limit: int = 3) -> list[str]:
    """Up to `limit` paths (relative to the root) of what its writer did not write.

    Walks the groups, not the arrays (whose folders hold their chunks),
    following no link (a local link is a user's). The images are those
    `mmzarr/settings.json` names (read as JSON, not checked: a dataset of
    another mmzarr version too); in an image group every array is the
    writer's (a resolution level; a folder named by the number of one of the
    levels its settings make too), a group is not (e.g. `labels`). Without
    readable settings, every zarr node but a labels group is taken as the
    writer's. Local or S3 alike (one listing per group there).

    Raises
    ------
    StorageError
        When S3 cannot be listed or read.
    """
    images = _image_keys(_read(loc, SETTINGS_FILE))
    above = set() if images is None else _folders_above(set(images)) | {"OME"}
    found: list[str] = []
    todo = [""]
    while todo and len(found) < limit:
        # a depth's folders are listed together (S3: a request each)
        level, todo = todo, []
        for rel, (files, dirs) in zip(
            level, in_threads(loc.children, level), strict=True
        ):
            found += [_join(rel, f) for f in files if not _OWN_FILES.fullmatch(f)]
            walk, theirs = _sorted_out(loc, rel, dirs, images, above)
            todo += walk
            found += theirs
    return sorted(found)[:limit]


def _sorted_out(
    loc: Location,
    rel: str,
    dirs: list[str],
    images: dict[str, int | None] | None,
    above: set[str],
) -> tuple[list[str], list[str]]:
    """The folders of `dirs` (in `rel`) to walk, and those not the writer's."""
    walk: list[str] = []
    found: list[str] = []
    for d in dirs:
        path = _join(rel, d)
        if rel == "" and d in _OWN_FOLDERS:
            continue
        if loc.path is not None and (loc.path / path).is_symlink():
            found.append(path)
            continue
        if images is None:
            node = _node(_read(loc, f"{path}/zarr.json"))
            own = node == "array" or (node == "group" and d != "labels")
            array = node == "array"
        elif rel in images:
            # its levels' arrays (a level's folder made before its
            # document), and any array (levels of an older level rule)
            levels = images[rel]
            own = array = (
                d.isdigit() if levels is None else d.isdecimal() and int(d) < levels
            ) or _node(_read(loc, f"{path}/zarr.json")) == "array"
        else:
            own, array = path in above or path in images, False
        if not own:
            found.append(path)
        elif not array:  # an array's chunks are not walked
            walk.append(path)
    return walk, found


def _join(folder: str, name: str) -> str:
    # "" is a folder with no name: S3 keys with "//" (named "A/1/", or "/")
    return f"{folder}/{name}" if folder else name or "/"


def node_type(folder: Path) -> str | None:
    """`group` or `array` for a local zarr node (its `zarr.json` says), else None.

    None too when the document cannot be read (a link in a loop, no permission).
    """
    try:
        return _node((folder / "zarr.json").read_bytes())
    except OSError:
        return None


def _node(document: bytes | None) -> str | None:
    doc = None if document is None else json_object(document)
    node = None if doc is None else doc.get("node_type")
    return node if node in ("group", "array") else None


def _read(loc: Location, key: str) -> bytes | None:
    """The object `key`, or None when it is missing or (locally) unreadable."""
    if loc.path is None:
        return loc.read_bytes(key)
    try:
        return (loc.path / key).read_bytes()
    except OSError:
        return None


def _image_keys(settings: bytes | None) -> dict[str, int | None] | None:
    """The image groups' paths the settings name ("" for the root), or None.

    Each with its number of levels as today's rule makes them (None: not
    known from these settings). None when the settings cannot be read or
    name no image key.
    """
    doc = None if settings is None else json_object(settings)
    images = None if doc is None else doc.get("images")
    if not isinstance(images, list):
        return None
    keys = {im.get("key") for im in images if isinstance(im, dict)}
    if not keys or not all(isinstance(k, str) for k in keys):
        return None
    assert doc is not None
    return {
        str(im["key"]): _levels(doc.get("downsample"), im)
        for im in images
        if isinstance(im, dict)
    }


def _levels(downsample: Any, image: dict[str, Any]) -> int | None:
    """How many levels `image` (its settings' JSON) has, or None: not known."""
    try:
        sizes = {d["name"]: int(d["size"]) for d in image["dimensions"]}
        shape = (sizes["y"], sizes["x"])
        if downsample is None:
            return 1
        return 1 + Downsample.model_validate(downsample).extra_levels(shape)
    except (KeyError, TypeError, ValueError):  # ValidationError is a ValueError
        return None


def _folders_above(keys: set[str]) -> set[str]:
    """Every folder above an image group, the root ("") excluded."""
    folders: set[str] = set()
    for key in keys:
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return folders
