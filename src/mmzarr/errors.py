"""Exceptions raised by mmzarr.

Every error subclasses a builtin so callers can catch what they already know
(`ValueError` for bad input, `OSError` for storage failures).
"""

from __future__ import annotations

__all__ = [
    "BufferFullError",
    "DatasetLockedError",
    "EmptyPlanError",
    "FrameError",
    "MMZarrError",
    "MissingDependencyError",
    "PlanError",
    "StorageError",
]


class MMZarrError(Exception):
    """Base class of all mmzarr errors."""


class PlanError(MMZarrError, ValueError):
    """An acquisition plan or settings value that cannot be written."""


class EmptyPlanError(PlanError):
    """A plan that acquires no frames (useq yields no image events for it)."""


class FrameError(MMZarrError, ValueError):
    """A frame that does not fit the dataset (shape, dtype, index)."""


class StorageError(MMZarrError, OSError):
    """Storage failed (disk full, permission denied, backend failure)."""


class MissingDependencyError(MMZarrError, ImportError):
    """An optional dependency needed for a backend is not installed."""


class BufferFullError(MMZarrError, BufferError):
    """Storage fell behind and `on_full="raise"`: the frame was not accepted."""


class DatasetLockedError(StorageError, FileExistsError):
    """Another writer (or `finalize`) holds the dataset's lock.

    `holder` says who (pid, host, since when), as recorded in the lock file.
    """

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder
