"""What a writer may take over, and the lock while it writes.

The one rule for output paths (`claim`, `check_output`), used by
`create_stream`, the front ends and the CLI:

- `overwrite=True` replaces only a dataset (`dataset_problem`: a directory whose
  root `zarr.json` is a zarr v3 group with `ome` or `mmzarr` attributes, or
  that holds `mmzarr/settings.json`) or an empty directory; never a file, a
  symbolic link, the current working directory, a directory containing it or
  one with a file system mounted inside it.
  Anything else is a `FileExistsError` saying why.
- A local dataset being written is locked (`_lock.DatasetLock`, taken here
  before anything is touched): a second writer or `finalize` gets a
  `DatasetLockedError` naming the holder, whatever `overwrite` says. S3 has no
  lock.
- An old local dataset is moved aside (`.NAME.mmzarr-old-XXXXXXXX`, a rename)
  and deleted only once the new one has opened (`OutputClaim.commit`); if the
  open fails, what this writer created is removed and the old dataset renamed
  back (`OutputClaim.abort`). On S3 the old objects are deleted first (there is
  no rename), but only under a prefix that holds a dataset.

What a writer killed while opening or replacing a dataset leaves behind, and
the names of the old dataset moved aside, are `_leftovers`'; where a dataset
lives and how its objects are written is `_storage`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mmzarr._leftovers import (
    aside_path,
    delete_half_deleted,
    deleting_path,
    opening_leftovers,
    replaced_copies,
)
from mmzarr._lock import (
    LOCK_SUFFIX,
    DatasetLock,
    canonical,
    json_object,
    lock_file_holder,
    lock_holder,
)
from mmzarr._storage import Location, as_location, parse_location
from mmzarr.errors import DatasetLockedError, StorageError

__all__ = [
    "OutputClaim",
    "check_output",
    "check_replaceable",
    "claim",
    "dataset_problem",
    "delete_dataset",
]

logger = logging.getLogger("mmzarr")

_SETTINGS = "mmzarr/settings.json"
#: Linux's list of the mounts this process sees
MOUNTINFO = "/proc/self/mountinfo"


def check_replaceable(loc: Location) -> None:
    """Raise unless `overwrite=True` may replace what is at the root.

    Replaceable: nothing, an empty directory, or a dataset (see
    `dataset_problem`). Never a file, a symbolic link, the current working
    directory, a directory containing it, one with a file system mounted
    inside it, or a dataset holding a dataset that a writer has locked.

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
                "replaces only an mmzarr/OME-Zarr dataset"
            )
        return
    problem = _local_problem(loc.path)
    if problem is not None:
        raise FileExistsError(
            f"refusing to replace {_full(loc.path)!r}: {problem}; "
            "overwrite=True replaces only an mmzarr/OME-Zarr dataset or an "
            "empty directory"
        )


def claim(loc: Location, overwrite: bool) -> OutputClaim:
    """Make the root an empty dataset directory that this writer owns.

    Local: lock it (`DatasetLock`), then create it, or reuse an empty
    directory, or (`overwrite`) move the dataset there aside; the returned
    claim deletes the old dataset (`commit`) or undoes everything
    (`abort`). S3: check the bucket is writable and (`overwrite`) delete the
    dataset there.

    Raises
    ------
    DatasetLockedError
        When another writer holds the lock (whatever `overwrite` says).
    FileExistsError
        When the root exists and not `overwrite`, or it is not replaceable.
    StorageError
        When the root, its parents or the lock file cannot be created.
    """
    if loc.path is None:
        # the preflight (put + delete a probe) comes first, so wrong
        # credentials or a missing bucket are reported as such
        loc.check_writable()
        if loc.exists():
            if not overwrite:
                raise FileExistsError(
                    f"output {loc.url!r} already exists; pass overwrite=True "
                    "to replace it"
                )
            delete_dataset(loc)
        return OutputClaim(loc)
    return _claim_local(loc, overwrite)


def delete_dataset(loc: Location) -> None:
    """Delete the dataset at `loc`, if `overwrite` may replace it.

    Raises
    ------
    FileExistsError
        When the root is not replaceable (`check_replaceable`).
    """
    check_replaceable(loc)
    loc.delete()


# ---- what overwrite may replace ------------------------------------------------------
def _full(path: Path) -> str:
    """`path` made absolute (not resolved), for messages."""
    return os.path.abspath(path)


def dataset_problem(root: Path | Location) -> str | None:
    """Why `root` is not an mmzarr/OME-Zarr dataset, or None when it is one.

    A dataset's root `zarr.json` is a zarr v3 group whose attributes have `ome`
    or `mmzarr`; a dataset whose writer died before its first group document,
    or while acquire-zarr's close had left its groups bare, holds
    `mmzarr/settings.json`.
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
        return "it is not a zarr dataset (no zarr.json)"
    parsed = json_object(doc)
    if parsed is None:
        return "its zarr.json is not a JSON object"
    if parsed.get("zarr_format") != 3 or parsed.get("node_type") != "group":
        return "its zarr.json is not a zarr v3 group"
    attrs = parsed.get("attributes")
    if isinstance(attrs, dict) and {"ome", "mmzarr"} & set(attrs):
        return None
    if _has_settings(read):
        return None  # a writer killed while acquire-zarr left bare groups
    return "its zarr.json has no 'ome' or 'mmzarr' attributes"


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
        if "c" in dirs and "zarr.json" in files and _is_array(Path(folder)):
            dirs.remove("c")
        for name in files:
            if name.startswith(".") and name.endswith(LOCK_SUFFIX):
                holder = lock_file_holder(Path(folder) / name)
                if holder is not None:
                    return f"{os.path.join(folder, name)!r} is held by {holder}"
    return None


def _is_array(folder: Path) -> bool:
    """Whether `folder` holds a zarr array (its `zarr.json` says so)."""
    doc = json_object(_read_local(folder / "zarr.json") or b"")
    return doc is not None and doc.get("node_type") == "array"


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def check_output(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Fail early, without touching anything, where a writer could not start.

    For front ends that create the dataset later (at the first frame) and the
    CLI: the same checks as `claim`, without taking the lock or writing. On S3
    that is whether the prefix holds anything and, with `overwrite`, a dataset
    (`check_replaceable`); the bucket's writability is `claim`'s to check.

    Raises
    ------
    DatasetLockedError
        When a writer holds the dataset's lock.
    FileExistsError
        When `path` exists and not `overwrite`, or is not replaceable.
    NotADirectoryError
        When a folder above `path` is a file.
    StorageError
        When an S3 prefix cannot be listed (credentials, endpoint).
    ValueError
        When `path` is a URL of another scheme, or an S3 URL without a bucket.
    """
    loc = parse_location(path)
    if loc.path is not None:  # S3 has no folders and no lock
        above = Path(_full(loc.path)).parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if not above.is_dir():
            raise NotADirectoryError(
                f"cannot create {str(loc.path)!r}: {above} is a file"
            )
        holder = lock_holder(loc.path)
        if holder is not None:
            raise DatasetLockedError(
                f"{_full(loc.path)!r} is locked by another writer: {holder}", holder
            )
    if loc.exists():
        if not overwrite:
            raise FileExistsError(
                f"output {loc.url!r} already exists; pass overwrite=True to replace it"
            )
        check_replaceable(loc)


# ---- claiming a local output ---------------------------------------------------------
class OutputClaim:
    """What `Location.claim` did to make the root this writer's, to finish or undo.

    `commit` once the new dataset has opened (deletes the old one, moved
    aside); `abort` if it did not (removes what this writer created and puts
    the old dataset back); `release` at close (drops the lock).
    """

    def __init__(
        self,
        location: Location,
        *,
        root: Path | None = None,
        lock: DatasetLock | None = None,
        parents: list[Path] | None = None,
    ) -> None:
        self.location = location
        #: the local root, its parent resolved (see `_canonical`)
        self.root = root
        self.lock = lock
        #: parent directories this writer created, outermost first
        self.parents = parents or []
        #: the old dataset, moved aside until `commit`
        self.aside: Path | None = None
        #: this writer created the root
        self.made_root = False
        #: the root is an empty directory that existed before
        self.reused = False

    def commit(self) -> None:
        """Delete the old dataset moved aside (a failure is logged, not raised).

        It is renamed (`.NAME.mmzarr-deleting-XXXXXXXX`) before its deletion
        starts: one stopped midway is not a dataset to move back.
        """
        aside, self.aside = self.aside, None
        if aside is not None:
            doomed = deleting_path(aside)
            try:
                os.rename(aside, doomed)
            except OSError:
                doomed = aside
            try:
                shutil.rmtree(doomed)
            except OSError as e:
                logger.warning(
                    "mmzarr: could not delete the replaced dataset %s: %s", doomed, e
                )

    def abort(self) -> None:
        """Undo the claim: remove what this writer created, restore the old dataset.

        Best effort: failures are logged (the caller is raising already).
        """
        loc = self.location
        try:
            root = self.root
            if root is None:  # S3: every object there is this writer's
                loc.delete()
                return
            if self.made_root:
                shutil.rmtree(root)
            elif self.reused:  # it was empty: everything in it is ours
                for child in list(root.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            if self.aside is not None:
                if root.exists():  # a backend thread wrote on: its files too
                    shutil.rmtree(root)
                os.rename(self.aside, root)
                self.aside = None
            self.release()  # before the parents: the lock file sits there
            _remove_empty(self.parents)
        except Exception as e:
            logger.warning(
                "mmzarr: could not undo the creation of %s: %s%s",
                loc.url,
                e,
                f" (the old dataset is at {self.aside})" if self.aside else "",
            )
        finally:
            self.release()

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self.lock is not None:
            self.lock.release()


def _make_dirs(path: Path) -> list[Path]:
    """Create `path` and its missing parents; those created, outermost first."""
    missing: list[Path] = []
    p = path
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    made: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        made.append(d)
    return made


def _claim_local(loc: Location, overwrite: bool) -> OutputClaim:
    root = loc.path
    assert root is not None
    full = _full(root)
    exists = loc.exists()
    if exists and not overwrite:
        holder = lock_holder(root)
        if holder is not None:
            raise DatasetLockedError(
                f"{full!r} is locked by another writer: {holder}", holder
            )
        raise FileExistsError(
            f"output {str(root)!r} already exists; pass overwrite=True to replace it"
        )
    if exists:
        check_replaceable(loc)  # before anything is created or locked
    canon = canonical(root)
    earlier = replaced_copies(root)
    if earlier:
        logger.warning(
            "mmzarr: a dataset replaced at %s earlier is still kept at %s (its "
            "writer was stopped while replacing it): move it back or delete it",
            full,
            [str(p) for p in earlier],
        )
    try:
        made = _make_dirs(canon.parent)
    except OSError as e:
        raise StorageError(f"cannot create output {full!r}: {e}") from e
    try:
        lock = DatasetLock.acquire(root)
    except DatasetLockedError:
        _remove_empty(made)
        raise
    except OSError as e:
        _remove_empty(made)
        raise StorageError(
            f"cannot create output {full!r}: its lock file cannot be created ({e})"
        ) from e
    delete_half_deleted(canon)  # under the lock: no writer is deleting it now
    claim = OutputClaim(loc, root=canon, lock=lock, parents=made)
    try:
        # again, under the lock: another writer may have finished meanwhile
        empty = False
        if loc.exists():
            if not overwrite:
                raise FileExistsError(
                    f"output {str(root)!r} already exists; pass overwrite=True to "
                    "replace it"
                )
            check_replaceable(loc)
            empty = claim.reused = not any(canon.iterdir())
            if not empty:
                aside = aside_path(canon)
                try:
                    os.rename(canon, aside)
                except OSError as e:
                    raise StorageError(
                        f"cannot replace {full!r}: moving it aside to "
                        f"{str(aside)!r} failed ({e})"
                    ) from e
                claim.aside = aside
        if not empty:
            try:
                canon.mkdir()
            except OSError as e:
                raise StorageError(f"cannot create output {full!r}: {e}") from e
            claim.made_root = True
    except BaseException:
        claim.abort()
        raise
    return claim


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):
            d.rmdir()
