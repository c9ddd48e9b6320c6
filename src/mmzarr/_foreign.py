"""What a user added to a local mmzarr dataset, which `overwrite` must not delete.

A dataset holds its writer's nodes only: the root group, the groups above
each array (rows, wells, fields, positions, images), the arrays of every
resolution level (their `zarr.json` and chunks), `mmzarr/` (the settings, the
frame log, ...) and `OME/` (a collection's series group and its OME-XML).
Anything else in a group folder is a user's: a `labels/` group drawn in
napari, an `analysis.csv` beside the images, a notes file. `foreign_entries`
lists them; `_replaceable` then refuses to replace the dataset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mmzarr._dataset import SETTINGS_FILE
from mmzarr._lock import LOCK_SUFFIX, json_object
from mmzarr._storage import atomic_temp_pattern

__all__ = ["foreign_entries"]

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
    following no link. The nodes expected are those of the dataset's settings
    (`mmzarr/settings.json`); without readable settings, any zarr node (a
    folder with a `zarr.json`) is taken as the writer's.
    """
    arrays = _array_paths(root)
    groups = set() if arrays is None else _groups_above(arrays) | {"OME"}
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
            elif arrays is None:  # any zarr node; an array's chunks are not walked
                node = _node_type(where)
                if node is None:
                    found.append(path)
                elif node == "group":
                    walk.append(d)
            elif path in groups:
                walk.append(d)
            elif path not in arrays:
                found.append(path)
        dirs[:] = walk
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _node_type(folder: Path) -> str | None:
    """`group` or `array` for a zarr node (its `zarr.json` says), else None."""
    try:
        doc = json_object((folder / "zarr.json").read_bytes())
    except OSError:
        return None
    node = None if doc is None else doc.get("node_type")
    return node if node in ("group", "array") else None


def _array_paths(root: Path) -> set[str] | None:
    """The paths of the arrays the dataset's settings say, or None if unreadable."""
    from mmzarr._pyramid import all_arrays
    from mmzarr._settings import AcquisitionSettings

    try:
        text = (root / SETTINGS_FILE).read_text(encoding="utf-8")
        settings = AcquisitionSettings.model_validate_json(text)
    except (OSError, ValueError):
        return None
    return {spec.path for spec in all_arrays(settings)}


def _groups_above(arrays: set[str]) -> set[str]:
    """Every folder above an array, the root ("") excluded."""
    groups: set[str] = set()
    for path in arrays:
        parts = path.split("/")
        groups.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return groups
