"""Whether a local dataset's directory is still the one a writer opened.

A dataset directory moved, renamed or removed while it is written (it or a
folder above it) leaves the path leading elsewhere, or nowhere: the writer's
next documents would make a frameless dataset there again. `RootWatch` keeps
the directory's (device, inode) from the open and says when the path no
longer leads to it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mmzarr.errors import StorageError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["RootWatch"]


def _directory_id(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of the directory at `path`; None for none (or no path)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class RootWatch:
    """The local root `path` as it is now (None: object storage, never moves).

    `where` names the dataset in the error.
    """

    def __init__(self, path: Path | None, where: str) -> None:
        self._path = path
        self._where = where
        self._id = _directory_id(path)

    def moved(self) -> StorageError | None:
        """The error to fail with when the root is no longer the one opened."""
        if self._id is None or _directory_id(self._path) == self._id:
            return None
        return StorageError(
            f"the dataset directory {self._where} was moved, renamed or removed "
            "while it was being written (it or a folder above it): frames written "
            "since are not in it and nothing more is written there; run `mmzarr "
            "finalize` on the dataset where it is now"
        )

    def check(self) -> None:
        """Raise `moved()`'s error, if any (the flush thread's check)."""
        if (error := self.moved()) is not None:
            raise error
