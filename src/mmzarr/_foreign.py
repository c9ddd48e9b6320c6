"""What a user added to a local mmzarr dataset, which `overwrite` must not delete.

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

import os
import re
from pathlib import Path

from mmzarr._dataset import SETTINGS_FILE
from mmzarr._lock import LOCK_SUFFIX, json_object
from mmzarr._storage import atomic_temp_pattern

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


def foreign_entries(root: Path, limit: int = 3) -> list[str]:
    """Up to `limit` paths (relative to `root`) of what its writer did not write.

    Walks the groups, not the arrays (whose folders hold their chunks),
    following no link. The images are those `mmzarr/settings.json` names (read
    as JSON, not checked: a dataset of another mmzarr version too); in an
    image group every array is the writer's (a resolution level; a folder
    named by a number too), a group is not (e.g. `labels`). Without readable
    settings, every zarr node but a labels group is taken as the writer's.
    """
    images = _image_keys(root)
    above = set() if images is None else _folders_above(images) | {"OME"}
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        found += [_join(rel, f) for f in files if not _OWN_FILES.fullmatch(f)]
        walk = []
        for d in dirs:
            path, where = _join(rel, d), Path(folder) / d
            if rel == "" and d in _OWN_FOLDERS:
                continue
            if where.is_symlink():
                found.append(path)
                continue
            node = node_type(where)
            if images is None:
                own = node == "array" or (node == "group" and d != "labels")
                array = node == "array"
            elif rel in images:
                # its levels' arrays (a level's folder made before its document)
                own = array = node == "array" or d.isdigit()
            else:
                own, array = path in above or path in images, False
            if not own:
                found.append(path)
            elif not array:  # an array's chunks are not walked
                walk.append(d)
        dirs[:] = walk
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def node_type(folder: Path) -> str | None:
    """`group` or `array` for a zarr node (its `zarr.json` says), else None.

    None too when the document cannot be read (a link in a loop, no permission).
    """
    try:
        doc = json_object((folder / "zarr.json").read_bytes())
    except OSError:
        return None
    node = None if doc is None else doc.get("node_type")
    return node if node in ("group", "array") else None


def _image_keys(root: Path) -> set[str] | None:
    """The image groups' paths the settings name ("" for the root), or None.

    None when the settings cannot be read or name no image key.
    """
    try:
        doc = json_object((root / SETTINGS_FILE).read_bytes())
    except OSError:
        return None
    images = None if doc is None else doc.get("images")
    if not isinstance(images, list):
        return None
    keys = {im.get("key") for im in images if isinstance(im, dict)}
    if not keys or not all(isinstance(k, str) for k in keys):
        return None
    return {str(k) for k in keys}


def _folders_above(keys: set[str]) -> set[str]:
    """Every folder above an image group, the root ("") excluded."""
    folders: set[str] = set()
    for key in keys:
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return folders
