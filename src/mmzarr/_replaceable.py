"""What `overwrite=True` may replace: an mmzarr dataset or an empty directory.

`check_replaceable` is the rule `_claim` applies before it moves an old
dataset aside (local) or deletes it (S3): never a file, a symbolic link, the
current working directory, a directory containing it, one with a file system
mounted inside it, or a dataset holding a dataset that a writer has locked.
`dataset_problem` says whether a directory is a dataset at all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr._foreign import foreign_entries, node_type
from mmzarr._leftovers import opening_leftovers
from mmzarr._locations import as_location
from mmzarr._lock import LOCK_SUFFIX, json_object, lock_file_holder
from mmzarr.errors import StorageError

if TYPE_CHECKING:
    from mmzarr._storage import Location

__all__ = [
    "MOUNTINFO",
    "check_replaceable",
    "dataset_problem",
    "full_path",
    "zarr_v2_note",
]

_SETTINGS = "mmzarr/settings.json"
#: how many of a user's files in a dataset a refusal names
_NAMED = 3
#: Linux's list of the mounts this process sees
MOUNTINFO = "/proc/self/mountinfo"


def check_replaceable(loc: Location) -> None:
    """Raise unless `overwrite=True` may replace what is at the root.

    Replaceable: nothing, an empty directory, or a dataset (see
    `dataset_problem`) holding only what its writer wrote (`foreign_entries`:
    not a user's labels or notes). Never a file, a symbolic
    link, a group inside a zarr hierarchy (part of a dataset), the current
    working directory, a directory containing it, one with a file system
    mounted inside it, or a dataset holding a dataset that a writer has locked.

    Raises
    ------
    FileExistsError
        Naming the path and why it is not replaced.
    """
    if loc.path is None:
        if not loc.exists():
            return
        problem = _dataset_problem(loc.read_bytes)
        if problem is not None:
            raise FileExistsError(
                f"refusing to replace {loc.url!r}: {problem}; overwrite=True "
                "replaces only an mmzarr dataset"
            )
    else:
        problem = _local_problem(loc.path)
        if problem is not None:
            raise FileExistsError(
                f"refusing to replace {full_path(loc.path)!r}: {problem}; "
                "overwrite=True replaces only an mmzarr dataset or an empty "
                "directory"
            )
        if not loc.path.is_dir():
            return  # nothing there, or an empty directory made by the user
    where = loc.url if loc.path is None else full_path(loc.path)
    try:
        added = foreign_entries(loc, limit=_NAMED + 1)
    except StorageError:  # S3 cannot be listed: said as such
        raise
    except OSError as e:  # a folder that cannot be listed may hold anything
        raise FileExistsError(
            f"refusing to replace the dataset {where!r}: what it holds cannot be "
            f"looked through ({e}); delete the dataset yourself"
        ) from e
    if added:
        named = ", ".join(map(repr, added[:_NAMED]))
        more = ", and more" if len(added) > _NAMED else ""
        raise FileExistsError(
            f"refusing to replace the dataset {where!r}: it holds "
            f"what mmzarr did not write ({named}{more}); move that out of it, or "
            "delete the dataset yourself"
        )


def full_path(path: Path) -> str:
    """`path` made absolute (not resolved), for messages."""
    return os.path.abspath(path)


def dataset_problem(root: Path | Location) -> str | None:
    """Why `root` is not an mmzarr dataset, or None when it is one.

    A dataset's root `zarr.json` is a zarr v3 group whose attributes have
    `mmzarr` (an OME-Zarr another tool wrote is not one); a dataset whose
    writer died before its first group document, or while acquire-zarr's
    close had left its groups bare, holds `mmzarr/settings.json`.
    """
    return _dataset_problem(as_location(root).read_bytes)


def _dataset_problem(read: Any) -> str | None:
    try:
        doc = read("zarr.json")
    except OSError as e:
        return f"its zarr.json cannot be read ({e})"
    if doc is None:
        if _has_settings(read):
            return None  # a writer killed while opening it: mmzarr's settings
        if _is_zarr_v2(read):
            return "it is a zarr v2 dataset (.zgroup/.zarray, no zarr.json)"
        return "it is not a zarr dataset (no zarr.json)"
    parsed = json_object(doc)
    if parsed is None:
        return "its zarr.json is not a JSON object"
    if parsed.get("zarr_format") != 3 or parsed.get("node_type") != "group":
        return "its zarr.json is not a zarr v3 group"
    attrs = parsed.get("attributes")
    if isinstance(attrs, dict) and "mmzarr" in attrs:
        return None
    if _has_settings(read):
        return None  # a writer killed while acquire-zarr left bare groups
    if isinstance(attrs, dict) and "ome" in attrs:
        return "it is an OME-Zarr dataset that mmzarr did not write"
    return "its zarr.json has no 'mmzarr' attributes"


def zarr_v2_note(root: Path) -> str:
    """What to say of a local zarr v2 dataset at `root` ("" when it is not one)."""
    if not _is_zarr_v2(lambda key: _read_local(root / key)):
        return ""
    return (
        "it is a zarr v2 dataset (.zgroup/.zarray: OME-Zarr 0.4 or older); mmzarr "
        "reads the OME-Zarr 0.5 (zarr v3) datasets it writes"
    )


def _is_zarr_v2(read: Any) -> bool:
    """Whether a zarr v2 group or array document is there."""
    for name in (".zgroup", ".zarray"):
        try:
            if read(name) is not None:
                return True
        except OSError:
            continue
    return False


def _has_settings(read: Any) -> bool:
    """Whether mmzarr's settings of a dataset are there."""
    try:
        settings = read(_SETTINGS)
    except OSError:
        return False
    parsed = None if settings is None else json_object(settings)
    return parsed is not None and {"layout", "images"} <= set(parsed)


def _local_problem(path: Path) -> str | None:
    """Why the local `path` may not be replaced, or None (see `check_replaceable`)."""
    if path.is_symlink():
        return (
            f"it is a symbolic link (to {os.readlink(path)!r}); write to the "
            "target or remove the link"
        )
    if not path.exists():
        return None
    if not path.is_dir():
        return "it is a file, not a dataset directory"
    real, cwd = path.resolve(), Path.cwd().resolve()
    if real == cwd:
        return "it is the current working directory"
    if real in cwd.parents:
        return f"it contains the current working directory {str(cwd)!r}"
    try:
        if not any(path.iterdir()):
            return None
    except OSError as e:
        return f"it cannot be listed ({e})"
    if (top := _dataset_above(path)) is not None:
        return f"it is part of the dataset {str(top)!r}"
    if opening_leftovers(path):
        return None  # a writer killed before it wrote its settings
    problem = _dataset_problem(lambda key: _read_local(path / key))
    if problem is not None:
        return f"a non-empty directory: {problem}"
    mount = _mount_inside(path)
    if mount is not None:
        return (
            f"a file system is mounted inside it at {mount!r}, and deleting the "
            "old dataset would delete what is there; unmount it first"
        )
    live = _live_dataset_inside(path)
    return None if live is None else f"a dataset inside it is being written ({live})"


def _dataset_above(path: Path) -> Path | None:
    """The topmost zarr v3 group of those holding `path`, or None.

    `path` is then a node of that hierarchy (a well, a field, a position of
    a dataset): replacing it would take that part out of the dataset.
    """
    top = None
    for above in Path(full_path(path)).parents:
        try:
            doc = json_object(_read_local(above / "zarr.json") or b"")
        except OSError:  # unreadable: not a dataset's document
            doc = None
        if doc is not None and doc.get("zarr_format") == 3:
            top = above
        elif top is not None:
            break
    return top


def _mount_inside(path: Path) -> str | None:
    """A mount point below `path` (not `path` itself), or None.

    Linux lists every mount in `/proc/self/mountinfo`, bind mounts of the same
    file system included (`os.path.ismount` misses those); elsewhere the
    folders below `path` are asked one by one, following no link.
    """
    real = os.path.realpath(path)
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        for folder, dirs, _ in os.walk(real):
            for d in dirs:
                if os.path.ismount(os.path.join(folder, d)):
                    return os.path.join(folder, d)
        return None
    below = real.rstrip(os.sep) + os.sep
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        # field 5 is the mount point, with space, tab, newline and backslash
        # written as octal escapes
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
        if point.startswith(below):
            return point
    return None


def _live_dataset_inside(path: Path) -> str | None:
    """A dataset below `path` that a writer holds (its lock file, and who), or None.

    Walks the groups, not the arrays' chunks (the `c` folder of an array),
    and follows no link.
    """
    for folder, dirs, files in os.walk(path):
        if "c" in dirs and "zarr.json" in files and node_type(Path(folder)) == "array":
            dirs.remove("c")
        for name in files:
            if name.startswith(".") and name.endswith(LOCK_SUFFIX):
                holder = lock_file_holder(Path(folder) / name)
                if holder is not None:
                    return f"{os.path.join(folder, name)!r} is held by {holder}"
    return None


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
