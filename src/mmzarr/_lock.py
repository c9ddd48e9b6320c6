"""The writer's lock: an exclusive `flock` on `.NAME.mmzarr-lock` beside a dataset.

The lock file sits beside the dataset (the dataset directory itself is
replaced on overwrite) and records the holder (pid, host, start time), so a
second writer or `finalize` is told who holds it. The kernel drops the lock
when its process dies: a crash leaves at most a stale, unlocked file. What
`overwrite` may replace is `_claim`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

from mmzarr.errors import DatasetLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_SUFFIX",
    "DatasetLock",
    "canonical",
    "hidden_name",
    "lock_file_holder",
    "lock_holder",
    "lock_path",
    "short_name",
]

#: Suffix of the lock file beside a dataset being written: `.NAME.mmzarr-lock`.
LOCK_SUFFIX = ".mmzarr-lock"


def canonical(path: Path) -> Path:
    """`path` with its parent resolved (the last component is kept, even a link)."""
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.parent.resolve() / path.name


def json_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def lock_path(dataset: Path) -> Path:
    """The lock file of a local dataset: `.NAME.mmzarr-lock` beside it.

    Beside the directory the path leads to (links resolved, the last one
    too): a writer and `finalize` reaching one dataset by different paths
    take the same lock.
    """
    canon = Path(os.path.realpath(dataset))
    return canon.parent / hidden_name(canon.name, LOCK_SUFFIX)


def hidden_name(name: str, suffix: str) -> str:
    """`.NAME{suffix}`: the name of a hidden file or folder beside dataset `name`.

    A long name is cut (`short_name`): two datasets whose names begin alike
    never share one.
    """
    return f".{short_name(name)}{suffix}"


def short_name(name: str) -> str:
    """`name`, or, beyond 200 bytes, its first 180 bytes and a digest of the whole.

    Leaves room within NAME_MAX (255 bytes) for what is added to it.
    """
    data = name.encode("utf-8", "surrogateescape")
    if len(data) <= 200:
        return name
    digest = hashlib.sha1(data).hexdigest()[:12]
    head = data[:180].decode("utf-8", "ignore")  # not inside a character
    return f"{head}-{digest}"


def _holder_text(data: bytes) -> str:
    doc = json_object(data)
    if doc is None:
        return "another process (its lock file names none)"
    return (
        f"pid {doc.get('pid')} on host {doc.get('host')!r} "
        f"({doc.get('purpose', 'writing')} since {doc.get('started')})"
    )


class DatasetLock:
    """An exclusive `flock` on a dataset's lock file, held while writing.

    The lock file lives beside the dataset (`lock_path`) and records the holder.
    `release` deletes it; a process that dies releases the lock with it (the
    kernel drops the `flock`), leaving an unlocked file the next writer reuses.
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, dataset: Path, purpose: str = "writing") -> DatasetLock:
        """Lock `dataset` (its parent directory must exist); never blocks long.

        Without `fcntl` (Windows) nothing is locked.

        Raises
        ------
        DatasetLockedError
            When another writer (or `finalize`) holds the lock.
        OSError
            When the lock file cannot be created.
        """
        path = lock_path(dataset)
        if fcntl is None:  # pragma: no cover
            return cls(path, None)
        while True:
            # never through a link: it would truncate (and later keep) the
            # link's target
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                raise FileExistsError(
                    errno.EEXIST,
                    "is a symbolic link, not mmzarr's lock file: left alone; "
                    "remove it to write this dataset",
                    str(path),
                ) from e
            locked = False
            try:
                _refuse_foreign(fd, path)
                if not _flock_exclusive(fd):
                    holder = _holder_text(os.pread(fd, 4096, 0))
                    raise DatasetLockedError(
                        f"{os.path.abspath(dataset)!r} is locked by another writer: "
                        f"{holder} (lock file {str(path)!r})",
                        holder,
                    )
                # the previous holder may have deleted the file we opened
                same = os.fstat(fd)
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    now = None
                if now is None or (now.st_ino, now.st_dev) != (
                    same.st_ino,
                    same.st_dev,
                ):
                    os.close(fd)
                    continue
                locked = True
                record = {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.datetime.now(datetime.UTC)
                    .isoformat(timespec="seconds")
                    .replace("+00:00", "Z"),
                    "purpose": purpose,
                    "path": str(canonical(dataset)),
                }
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
            except BaseException:
                if locked:  # ours (e.g. a full disk took no record): gone
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            return cls(path, fd)

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            same = os.fstat(fd)
            now = os.stat(self.path)
            if (now.st_ino, now.st_dev) == (same.st_ino, same.st_dev):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _refuse_foreign(fd: int, path: Path) -> None:
    """Raise unless `fd` is an empty file or a lock record (a killed writer's).

    A user's own file of the lock's name is never truncated.
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{str(path)!r} is not a regular file: not mmzarr's lock file")
    data = os.pread(fd, 4096, 0)
    if data and "pid" not in (json_object(data) or {}):
        raise FileExistsError(
            f"{str(path)!r} exists and is not mmzarr's lock file: left alone; "
            "move it to write this dataset"
        )


def _flock_exclusive(fd: int) -> bool:
    """Take an exclusive `flock` on `fd`; False when another process holds one.

    Tries a few times over ~0.1 s: `lock_holder` (a probe) holds a shared lock
    for microseconds, which must not fail a writer that starts meanwhile.
    """
    assert fcntl is not None
    for attempt in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < 4:
                time.sleep(0.02)
    return False


def lock_holder(dataset: Path) -> str | None:
    """Who holds the lock of the local `dataset`, or None (creates nothing)."""
    return lock_file_holder(lock_path(dataset))


def lock_file_holder(path: Path) -> str | None:
    """Who holds the lock file at `path`, or None (creates nothing)."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(os.pread(fd, 4096, 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None
