"""What a writer may take over, and the lock while it writes.

The one rule for output paths (`claim`, `check_output`), used by
`create_stream`, the front ends and the CLI:

- `overwrite=True` replaces only an mmzarr dataset (a directory whose root
  `zarr.json` is a zarr v3 group with `mmzarr` attributes, or that holds
  `mmzarr/settings.json`) or an empty directory: `_replaceable`'s rule.
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
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mmzarr._leftovers import (
    aside_path,
    delete_half_deleted,
    deleting_path,
    replaced_copies,
)
from mmzarr._locations import parse_location
from mmzarr._lock import (
    DatasetLock,
    canonical,
    lock_holder,
)
from mmzarr._replaceable import check_replaceable, full_path
from mmzarr.errors import DatasetLockedError, StorageError

if TYPE_CHECKING:
    from mmzarr._storage import Location

__all__ = ["OutputClaim", "check_output", "claim", "delete_dataset"]

logger = logging.getLogger("mmzarr")


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
        When an S3 prefix cannot be listed (credentials, endpoint), or the
        local folder the dataset is made in is not writable.
    ValueError
        When `path` is a URL of another scheme, or an S3 URL without a bucket.
    """
    loc = parse_location(path)
    if loc.path is not None:  # S3 has no folders and no lock
        # not normalized: the system resolves `afile/../x` through afile (a
        # file: the writer failed after the run began), as `mkdir` will
        above = Path(loc.path).absolute().parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if not above.is_dir():
            raise NotADirectoryError(
                f"cannot create {str(loc.path)!r}: {above} is a file"
            )
        holder = lock_holder(loc.path)
        if holder is not None:
            raise DatasetLockedError(
                f"{full_path(loc.path)!r} is locked by another writer: {holder}", holder
            )
    if loc.exists():
        if not overwrite:
            raise FileExistsError(
                f"output {loc.url!r} already exists; pass overwrite=True to replace it"
            )
        check_replaceable(loc)
    if loc.path is not None and not os.access(above, os.W_OK):
        # the dataset is made (or the old one moved aside) in `above`; a
        # read-only mount too, which root's file modes do not stop
        raise StorageError(
            f"cannot write {full_path(loc.path)!r}: {str(above)!r} is not writable"
        )


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
    full = full_path(root)
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
