"""The backend contract: three methods and declared capabilities.

A backend stores the arrays of a dataset, one per image and resolution level
(`Arrays`), at the paths `_layout.array_path` gives under a `Location`. Group
documents, routing, frame checks, the frame log and the `on_full` policy stay
above it (`Stream`, `backends._pressure`), so every backend honours them alike.

Lifecycle: `open` once; `write` per frame (level 0 of an image, then its
levels); `flush` every `flush_interval_s` (Stream's flush thread) and whenever
the shared backpressure needs fresh counts; `flush(final=True)` once, at close.
What a backend can do is declared in its `capabilities` class attribute, never
probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from mmzarr._pyramid import all_arrays

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import numpy as np

    from mmzarr._pyramid import ArraySpec
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location

__all__ = [
    "ArrayBackend",
    "Arrays",
    "Capabilities",
    "Limits",
    "Progress",
    "last_time_point",
]

#: Seconds a local disk may take nothing before a waiting write is an error.
LOCAL_TIMEOUT_S = 120.0
#: The same for object storage: a server that is gone fails `append` this soon.
OBJECT_STORAGE_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend declares about itself (its `capabilities` class attribute)."""

    #: Writes `s3://` locations; otherwise `create_stream` refuses them.
    object_storage: bool = False
    #: Flushing, with no more frames, eventually makes every frame written
    #: readable, those of incomplete uncompressed shards included
    #: (`Progress.readable` reaches the frames written). Completing a
    #: compressed shard moves its chunks in the file, so no backend counts the
    #: frames of an incomplete compressed shard before it is complete.
    flush_makes_readable: bool = True
    #: `Progress.readable` grows while writing on object storage too; otherwise
    #: it stays 0 there until the final flush.
    reports_readable: bool = True


@dataclass(frozen=True, slots=True)
class Arrays:
    """The arrays to create, with their dtype and compression.

    Level 0 of every image first (array `i` is image `i`), then the lower
    resolution levels (`_pyramid.all_arrays`).
    """

    specs: tuple[ArraySpec, ...]
    dtype: str
    compression: str

    @classmethod
    def of(cls, settings: AcquisitionSettings) -> Arrays:
        """The arrays of `settings`."""
        return cls(all_arrays(settings), settings.dtype, settings.compression)


def last_time_point(t_sizes: Iterable[int]) -> int:
    """The `t` every unbounded array of a dataset ends with: the largest.

    Time points are the acquisition's: an image whose last time point was
    not acquired (a run stopped within it) keeps it as the fill value, so
    that a plate's fields (and a collection's images) share one `t`, as
    plate readers (ome-zarr-py, napari-ome-zarr) require.
    """
    return max(t_sizes, default=0)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the layer above asks of a backend's resources."""

    #: Bytes of frames in flight `Stream` allows (the backend reports its share
    #: as `Progress.capacity`; acquire-zarr sizes its reorder window from it).
    max_buffer_bytes: int = 256 * 1024**2
    #: The longest a backend waits on storage (a pending write at the final
    #: flush, a resize) before it raises `OSError`.
    io_timeout_s: float = LOCAL_TIMEOUT_S
    #: Make array files durable (fsync) as they are written and at the final
    #: flush; off only for scratch data (acquire-zarr always syncs).
    durable: bool = True

    @classmethod
    def of(cls, settings: AcquisitionSettings, location: Location) -> Limits:
        """The limits of a stream of `settings` at `location`."""
        timeout = LOCAL_TIMEOUT_S if location.is_local else OBJECT_STORAGE_TIMEOUT_S
        return cls(settings.max_buffer_bytes, timeout)


@dataclass(frozen=True, slots=True)
class Progress:
    """What reached storage, as a backend reports it from `flush`."""

    #: Frames, counted in the order they were written to level-0 arrays, that
    #: another process can read whole now (with their resolution levels): frame
    #: `n` is readable, and so is every one before it, when this is more than
    #: `n`. It only grows, and counts every frame after the final flush.
    readable: int = 0
    #: Bytes of accepted frames on their way to storage that need no further
    #: frame to get there (not those of an incomplete shard held in memory).
    in_flight: int = 0
    #: Bytes this backend lets be in flight (its share of `max_buffer_bytes`):
    #: `Stream` applies `on_full` beyond it.
    capacity: int = 0
    #: The final flush overwrote group documents of the dataset (acquire-zarr on
    #: S3, or where it could not write to a hidden sibling:
    #: https://github.com/acquire-project/acquire-zarr/issues/186): `Stream`
    #: writes every group document again after it.
    groups_overwritten: bool = False


class ArrayBackend(Protocol):
    """A storage engine: `open`, `write`, `flush`; see the module docstring.

    Storage failures raise `OSError` (`Stream` reports them as a `StorageError`
    naming the dataset and fails the stream); a frame a backend cannot take
    raises `FrameError`; settings it cannot write raise `PlanError` at `open`.
    """

    #: Declared, never probed.
    capabilities: ClassVar[Capabilities]

    def open(self, location: Location, arrays: Arrays, limits: Limits) -> None:
        """Create every array under `location` (its groups already exist).

        On failure, anything it made outside the dataset is removed.
        """

    def write(
        self,
        array: int,
        index: tuple[int, ...],
        frame: np.ndarray,
        levels: Sequence[tuple[int, np.ndarray]] = (),
    ) -> None:
        """Accept `frame` (y, x) at the non-spatial storage `index` of `array`.

        Each of its resolution `levels` (array number, frame) goes to the same
        `index`, accepted together with the frame or not at all. The frame has
        the dataset's dtype and the array's frame shape, and is handed over:
        nobody changes it afterwards (`Stream` copies a frame whose caller
        keeps its buffer), so the backend may keep it without a copy. Writing
        may go on in the background: `flush` reports when it is done. A local
        backend refuses, with `OSError(ENOSPC)` and having accepted nothing, a
        frame whose files (with its levels') may not fit on the disk.
        """

    def abandon(self, array: int, index: tuple[int, ...]) -> None:
        """Slot `index` of `array` (and its levels) will get no frame.

        E.g. the camera failed to snap it. A backend that holds later frames
        until the slots before them are written (acquire-zarr) stops waiting
        for it: it is written as the fill value when its turn comes, and a
        frame that comes for it after all may be refused (`FrameError`).
        Others need do nothing.
        """

    def flush(self, *, final: bool = False) -> Progress:
        """Hand what is buffered to storage, without waiting; report progress.

        Raises the `OSError` of a background write that failed. With `final`,
        write everything, wait for it (at most `Limits.io_timeout_s` without
        progress), set the arrays' final shapes and release every resource;
        calling it again returns the same `Progress`.
        """
