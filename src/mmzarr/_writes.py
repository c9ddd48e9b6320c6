"""Writing a file whole, and doing a few I/O calls at once.

`write_file_atomic` writes a local file through a temporary one and a rename
(`atomic_temp_pattern` finds such a temporary again); `in_threads` runs a call
on several items, `WRITERS` at once, on plain threads (the group documents,
the overwrite check's listings).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

__all__ = ["WRITERS", "atomic_temp_pattern", "in_threads", "write_file_atomic"]

T = TypeVar("T")
R = TypeVar("R")

#: Items `in_threads` takes at once: `Location.write_many`'s objects (creating
#: and renaming the ~500 group documents of a 96-well plate took ~0.2-0.3 s one
#: by one on a 2-core machine, ~0.17 s four at a time), the overwrite check's
#: listings
WRITERS = 4


def in_threads(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fn(item) for item in items]`, `WRITERS` items at once (fewer: in turn).

    The first failure is raised and the items not started by then are not
    done. Plain threads, not an executor: executors take no work once the
    main thread has returned, while an acquisition on another thread may go on.
    """
    if len(items) < 2 * WRITERS:
        return [fn(item) for item in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []

    def work(first: int) -> None:
        for k in range(first, len(items), WRITERS):
            if errors:
                return
            try:
                results[k] = fn(items[k])
            except BaseException as e:
                errors.append(e)  # list.append is atomic
                return

    threads = [
        threading.Thread(target=work, args=(k,), name="mmzarr-io")
        for k in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def atomic_temp_pattern(name: str) -> str:
    """A regex (unanchored) of `write_file_atomic`'s temporary file for `name`.

    `name` is itself a regex of the file's name: `.NAME.PID.THREAD.tmp`.
    """
    return rf"\.{name}\.\d+\.\d+\.tmp"


def write_file_atomic(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write `data` to `path` via a temporary file and `os.replace`.

    A crash leaves the old or the new content, never part of one; a failure
    (a full disk) leaves the old content and no temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomic_temp_pattern(path.name) finds it again
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk: leave no temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
