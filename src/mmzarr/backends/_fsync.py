"""fsync of the files a library wrote without it (zarr-python, zarrs).

One path after the other, or on several threads at once: a file system commits
concurrent fsyncs together.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["FSYNC_THREADS", "fsync_at_once", "fsync_files"]

#: Threads that call fsync at once at the final flush (`fsync_at_once`).
FSYNC_THREADS = 4


def fsync_files(paths: Iterable[str], *, missing_ok: bool = False) -> None:
    """Call fsync on each path (file or, on POSIX, directory).

    `missing_ok`: skip a path that no longer exists.
    """
    for name in paths:
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            if missing_ok:
                continue
            raise
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_at_once(
    paths: Sequence[str], *, missing_ok: bool = False, threads: int = FSYNC_THREADS
) -> None:
    """`fsync_files(paths)` on `threads` threads at once.

    A file system commits concurrent fsyncs together.
    """
    if len(paths) < 2 * threads:
        fsync_files(paths, missing_ok=missing_ok)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="mmzarr-fsync") as pool:
        parts = [paths[i::threads] for i in range(threads)]
        futures = [pool.submit(fsync_files, p, missing_ok=missing_ok) for p in parts]
        for done in futures:
            done.result()
