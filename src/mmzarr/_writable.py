"""Folders `finalize` cannot write: checked before it starts, named when it stops.

A dataset made read-only (`chmod a-w`, a read-only mount, another user's
files) fails `finalize` in one line naming the folder to make writable, not
with the path of a temporary file or a traceback. The folders every finalize
writes (the root's group metadata, `mmzarr/`'s record) are checked before
anything is changed; one found later (a chunk folder a file is moved out of, a
group's) stops it where it is: its record says what it did, and the next
finalize, once the folder is writable, finishes it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["check_writable", "not_writable"]

#: The errors of writing where one may not.
_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_CHMOD = "make it writable (e.g. `chmod u+w`) and run finalize again"


def _fix(folder: Path) -> str:
    """How to make `folder` writable: chmod, or another disk for a read-only mount."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # gone; no statvfs (Windows)
        read_only = False
    if read_only:
        return (
            "it is on a read-only file system: copy the dataset to a writable "
            "disk (or remount this one read-write) and run finalize there"
        )
    return _CHMOD


def check_writable(root: Path, folders: tuple[str, ...]) -> None:
    """Raise `PermissionError` naming the first of `folders` not writable.

    `folders` are relative to `root` ("" for `root`).

    Raises
    ------
    PermissionError
        In one line: which folder, and that nothing was changed.
    """
    for rel in folders:
        folder = root / rel if rel else root
        if folder.is_dir() and not os.access(folder, os.W_OK):
            raise PermissionError(
                f"{str(folder)!r} is not writable: finalize writes there; "
                f"{_fix(folder)}; nothing was changed"
            )


def not_writable(e: OSError) -> PermissionError | None:
    """`e` said in one line naming the folder not writable; None if `e` is another.

    The folder is the first one named by `e` (a file's, for a file `e` names)
    that this process cannot write, else the file `e` names.
    """
    if e.errno not in _REFUSED:
        return None
    names = [os.fsdecode(n) for n in (e.filename, e.filename2) if n is not None]
    folder = next(
        (p for n in names if not os.access(p := Path(n).parent, os.W_OK)),
        Path(names[0]) if names else None,
    )
    where = "the dataset" if folder is None else repr(str(folder))
    fix = _CHMOD if folder is None else _fix(folder)
    return PermissionError(
        f"{where} is not writable ({e.strerror}): {fix}, which finishes what "
        "this one started"
    )
