"""`Stream`: frames in, an OME-Zarr dataset out.

`create_stream` (`_open`) does the I/O of opening (claims the output, writes
the documents, reserves the space the final documents need, opens the frame
log and the backend). `Stream` then coordinates each frame: checks it (shape,
dtype; another byte order is converted, `native_order`), asks the `Router`
where it goes, applies `on_full` (the shared `backends._pressure.Backpressure`),
hands it (and its resolution levels) to the backend and logs its metadata; its
`Flusher` pushes buffered frames to storage every `flush_interval_s / 2` and
counts what is readable; its close sequence (`_stream_close`) records what
was acquired (`_dataset`), the status first when storage failed. Storage
itself is the backend's job (`mmzarr.backends`); where the dataset lives (a
local directory or an `s3://` prefix) is `_storage.Location`'s.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr._cameras import with_pixel_size
from mmzarr._closing import ClosesOnExit, ClosesWhenDropped, DeferredInterrupt
from mmzarr._dataset import ChannelRanges, write_settings
from mmzarr._flusher import Flusher
from mmzarr._layout import GroupDocuments
from mmzarr._live_reads import LiveReads
from mmzarr._metadata import frame_record
from mmzarr._pyramid import Levels
from mmzarr._recent import RecentFrames
from mmzarr._root_watch import RootWatch
from mmzarr._routing import Placement, Router
from mmzarr._stream_close import Status, StreamClosing
from mmzarr.backends import Limits
from mmzarr.backends._pressure import Backpressure
from mmzarr.errors import BufferFullError, FrameError, StorageError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from mmzarr import _metadata
    from mmzarr._claim import OutputClaim
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location
    from mmzarr.backends import ArrayBackend, Progress

__all__ = ["Status", "Stream", "native_order"]

#: Bytes of last-frame copies `Stream.latest` keeps (at least one frame): a
#: 96-well plate's 384 images would otherwise keep 384 frames.
LATEST_BYTES = 64 * 1024**2


def native_order(frame: Any) -> np.ndarray:
    """`frame` as an array in this machine's byte order, every value unchanged.

    A big-endian frame (``>u2``, as some cameras, file readers and bridges
    give) has the dataset's dtype in another byte order: it is converted (a
    new array), not refused. A frame in native order is returned as is.
    """
    arr = np.asarray(frame)
    if arr.dtype.isnative:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="))


class Stream(LiveReads, StreamClosing, ClosesOnExit, ClosesWhenDropped):
    """An open dataset that accepts frames. Create it with `create_stream`.

    Thread-safe: concurrent calls are serialized.
    """

    def __init__(
        self,
        location: Location,
        settings: AcquisitionSettings,
        backend: ArrayBackend,
        *,
        claim: OutputClaim,
        log: _metadata.FrameLog | _metadata.SegmentedFrameLog | None,
        limits: Limits | None = None,
        documents: GroupDocuments | None = None,
    ) -> None:
        self.location = location
        #: The local directory, or the `s3://` URL, of the dataset.
        self.path: Path | str = (
            location.path if location.path is not None else location.url
        )
        self.settings = settings
        self.backend_name = type(backend).__name__
        self._backend = backend
        self._claim = claim
        self._log = log
        limits = limits or Limits.of(settings, location)
        self._pressure = Backpressure(
            settings.on_full,
            capacity=limits.max_buffer_bytes,
            timeout_s=limits.io_timeout_s,
            where=self._where,
        )
        self._lock = threading.RLock()
        self._writing = f"writing a frame of {self.path}"  # said on Ctrl-C
        self._router = Router(settings)
        self._dtype = np.dtype(settings.dtype)
        self._shapes = [im.frame_shape for im in settings.images]
        self._ranges = ChannelRanges(settings)
        self._documents = documents or GroupDocuments(settings)
        self._levels = Levels(settings)
        # the most recent frames (owned by the stream), for `latest` and `view`
        self._recent = RecentFrames(LATEST_BYTES)
        self._frames = 0
        self._t0 = time.monotonic()
        self._status: Status = "acquiring"
        self._closed = False
        self._error: BaseException | None = None
        self.dropped = 0
        # the local root directory as opened (moved or removed: fails the stream)
        self._root = RootWatch(location.path, self._where)
        # the flusher reaches the stream through a weak reference: no cycle,
        # so a stream dropped without `close` is finalized (`__del__`) at once,
        # before the frame log and the backend it owns
        me = weakref.ref(self)

        def flushing() -> bool:
            stream = me()
            # its own state, through a weak reference
            return stream is not None and not (stream._closed or stream._error)  # noqa: SLF001

        def fail(e: BaseException) -> None:
            stream = me()
            if stream is not None:
                stream._fail(e)  # noqa: SLF001 (its own, through a weak reference)

        self._flusher = Flusher(
            backend,
            self._pressure,
            log,
            lock=self._lock,
            frames=lambda: getattr(me(), "_frames", 0),
            flushing=flushing,
            fail=fail,
            where=self._where,
            check=self._root.check,
        )

    def start(self) -> None:
        """Start flushing buffered frames (and an S3 frame log) in the background.

        `create_stream` calls it once the dataset has opened.
        """
        self._flusher.start(self.settings.flush_interval_s / 2)

    # ---- public API -----------------------------------------------------------
    @property
    def frames_written(self) -> int:
        """Frames written so far."""
        return self._frames

    @property
    def frames_flushed(self) -> int:
        """Frames known to be readable, whole, from storage by another process.

        Counted in the order they were appended: the first `frames_flushed`
        frames are readable, and their records are in the frame log. Updated
        every `flush_interval_s / 2` while acquiring, from what the backend
        reports has reached storage (with acquire-zarr: the complete time
        points whose shards are on disk, checked by their shard index; on S3 it
        stays 0 until `close`); all frames after `close`.
        """
        return self._flusher.flushed

    @property
    def status(self) -> Status:
        """`acquiring` until closed; then `complete`, `cancelled` or `failed`."""
        return self._status

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def append(
        self,
        frame: Any,
        *,
        index: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
        owned: bool = False,
    ) -> tuple[str, tuple[int, ...]]:
        """Write one frame.

        Parameters
        ----------
        frame
            A 2D array of the settings' dtype and the image's (y, x) shape,
            in either byte order (a non-native one is converted, values
            unchanged: `native_order`). Unless `owned`, the stream copies it
            once, so the caller may reuse its buffer when this returns.
        index
            A useq-style index (`{"p": 1, "t": 0, "c": 2, "z": 5}`); without one,
            frames go in acquisition order.
        metadata
            Per-frame metadata (JSON-able), logged to `mmzarr/frames.jsonl` as
            the record's `metadata`; the writer's own fields (`frame`, `image`,
            `index`, `elapsed_ms`, `dropped`, `event_index`: the `index` given)
            stay beside it. Non-finite numbers are logged as null. It is
            encoded on the flush thread (within `flush_interval_s`): the
            mapping is copied, values inside it must not change afterwards.
        owned
            The caller hands `frame` over: nobody changes it afterwards (e.g.
            pymmcore-plus, whose every frame is a new array). The stream then
            keeps it without a copy, for the backend and the live view.

        Returns
        -------
        tuple[str, tuple[int, ...]]
            The image key and storage index the frame went to (or would have,
            for a frame dropped by `on_full="drop"`).

        Raises
        ------
        FrameError
            (a `ValueError`) for a wrong shape/dtype, an index out of range, a
            frame already written, or one frame more than the plan holds.
        BufferFullError
            With `on_full="raise"`, when storage is behind: the frame was not
            accepted (the stream goes on).
        StorageError
            (an `OSError`) when storage fails, or takes nothing for
            `Limits.io_timeout_s` while `append` waits (`on_full="block"`); the
            stream is then failed.
        """
        with self._lock:
            self._check_open()
            # a fallback dataset takes frames in arrival order; the frame's own
            # index is kept in the log (`event_index`)
            given = np.asarray(frame)
            arr = native_order(given)
            owned = owned or arr is not given  # converted: a copy of our own
            where = self._placed(arr, index)
            try:
                if not self._pressure.admit(arr.nbytes, self._flush):
                    self._router.drop(where)
                    self.dropped += 1
                    self._log_frame(where, index, metadata, dropped=True)
                    return where.key, where.index
                if not owned:  # one copy, shared by the backend and the view
                    arr = np.array(arr, copy=True)
            except (FrameError, BufferFullError, StorageError):
                raise
            except Exception as e:
                raise self._failed(where, e) from e
            # the frame is accepted whole or not at all
            with DeferredInterrupt(self._writing):
                self._accept(where, index, metadata, arr)
            return where.key, where.index

    def check(self, frame: Any, *, index: Mapping[str, int] | None = None) -> None:
        """Raise what `append` would for `frame` at `index`; write nothing.

        A front end asks before the frame changes the dataset (its pixel size
        before the first frame, `set_pixel_size`), so that a frame that then
        goes beside it does not.

        Raises
        ------
        FrameError
            For a wrong shape/dtype, an index out of range or a slot already
            written (`append`).
        StorageError
            When the stream failed earlier.
        """
        with self._lock:
            self._check_open()
            self._placed(native_order(np.asarray(frame)), index)

    def _placed(self, arr: np.ndarray, index: Mapping[str, int] | None) -> Placement:
        """Where `arr` goes: `FrameError` if it does not fit there, or it is taken."""
        where = self._router.place(index)
        self._check_frame(arr, where.image)
        self._router.check_free(where, index)
        return where

    def _fail(self, e: BaseException) -> None:
        """Fail the stream with `e`, unless it failed already."""
        if self._error is None:
            self._error = e

    def _failed(self, where: Placement, e: Exception) -> StorageError:
        """Fail the stream with `e`; the error to raise."""
        self._error = e
        key = self.settings.images[where.image].key
        return StorageError(
            f"writing frame {where.index} of image {key!r} to {self._where} failed: {e}"
        )

    def _accept(
        self,
        where: Placement,
        index: Mapping[str, int] | None,
        metadata: Mapping[str, Any] | None,
        arr: np.ndarray,
    ) -> None:
        """Hand the frame (and its levels) to the backend; count and log it."""
        try:
            # a frame and its levels are accepted together, or none of them
            levels = list(self._levels.frames(where.image, arr))
            self._backend.write(where.image, where.index, arr, levels)
            nbytes = arr.nbytes + sum(level.nbytes for _, level in levels)
        except (FrameError, BufferFullError, StorageError):
            raise
        except Exception as e:
            raise self._failed(where, e) from e
        self._pressure.accepted(nbytes)
        self._router.mark(where)
        self._ranges.update(where.image, where.index, arr)
        self._frames += 1
        self._recent.keep(where.image, where.index, arr)
        self._log_frame(where, index, metadata)

    def abandon(self, image: int, index: tuple[int, ...]) -> None:
        """Say that storage `index` of image number `image` will get no frame.

        E.g. the camera failed to snap it and the acquisition went on. The
        backend stops holding later frames for it (acquire-zarr appends in
        order): they reach storage now, not at `close`. The slot reads as the
        fill value; a frame that comes for it after all may be refused
        (`FrameError`). A slot already written, or never acquired, is left.

        Raises
        ------
        FrameError
            For an image number or a storage index the dataset does not have
            (a `t` past the frame limit of a growing `t` too: `MAX_T_GAP`).
        """
        with self._lock:
            if self.closed or self._error is not None:
                return
            where = self._abandoned_slot(image, index)
            im = self.settings.images[image]
            if not im.is_acquired(where.index) or self._router.is_written(where):
                return
            try:
                self._backend.abandon(image, where.index)
            except OSError as e:  # a storage failure (filling the slot)
                raise self._failed(where, e) from e

    def _abandoned_slot(self, image: Any, index: Any) -> Placement:
        """The slot `abandon` names, checked as `append` checks an index."""
        n = len(self.settings.images)
        if isinstance(image, bool) or not isinstance(image, int | np.integer):
            raise FrameError(f"abandon: image {image!r} is not an image number")
        if not 0 <= image < n:
            raise FrameError(f"abandon: image {image} is not one of 0 to {n - 1}")
        im = self.settings.images[int(image)]
        values = index if isinstance(index, tuple | list) else None
        if values is None or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) for v in values
        ):
            raise FrameError(
                f"abandon: index {index!r} of image {im.key!r} is not a tuple of "
                f"ints (storage order {tuple(d.name for d in im.index_dims)})"
            )
        slot = tuple(int(v) for v in values)
        im.check_index(slot)
        where = Placement(int(image), im.key, slot)
        self._router.check_gap(where)  # a growing t: as far as a frame may go
        return where

    def set_pixel_size(self, pixel_size_um: float) -> None:
        """Give every image the y/x scale `pixel_size_um` (µm) before its first frame.

        E.g. the camera's pixel size changed between the dataset's creation and
        the first frame (the plan's first channel preset switched the
        objective). The settings and group documents are written again.

        Raises
        ------
        RuntimeError
            When a frame was written already (its scale would change).
        """
        with self._lock:
            self._check_open()
            if self._frames:
                raise RuntimeError(
                    f"{self.path}: the pixel size can change only before the first "
                    f"frame ({self._frames} written)"
                )
            settings = with_pixel_size(self.settings, pixel_size_um)
            try:
                write_settings(self.location, settings)
                self.settings = settings
                self._documents = GroupDocuments(settings)
                self._write_groups("all")
            except OSError as e:
                self._fail(e)
                raise StorageError(
                    f"writing the pixel size of {self._where} failed: {e}"
                ) from e

    def skip(self, n: int = 1) -> None:
        """Advance the default acquisition order by `n` frames without writing.

        Skipped slots read as the fill value.
        """
        with self._lock:
            self._check_open()
            self._router.skip(n)

    def __repr__(self) -> str:
        return (
            f"<Stream {str(self.path)!r} {self.settings.layout} "
            f"{self._frames}/{self.settings.frames_planned or '∞'} frames "
            f"{self._status}>"
        )

    # ---- internals ------------------------------------------------------------
    def _flush(self, *, final: bool = False) -> Progress:
        """Flush the backend (under the lock); what it reports."""
        return self._flusher.flush(self._frames, final=final)

    def _log_frame(
        self,
        where: Placement,
        index: Mapping[str, int] | None,
        metadata: Mapping[str, Any] | None,
        *,
        dropped: bool = False,
    ) -> None:
        """Log one frame (queued: the flush thread writes it)."""
        if self._log is not None:
            self._log.write(
                frame_record(
                    self._frames - (0 if dropped else 1),
                    where.key,
                    where.index,
                    time.monotonic() - self._t0,
                    event_index=index,
                    metadata=metadata,
                    dropped=dropped,
                )
            )

    def _check_open(self) -> None:
        if self._closed:
            raise FrameError(f"stream {str(self.path)!r} is closed")
        if self._error is not None:
            raise StorageError(
                f"stream {self._where!r} failed earlier: {self._error}"
            ) from self._error

    def _check_frame(self, arr: np.ndarray, image: int) -> None:
        if arr.dtype != self._dtype or arr.shape != self._shapes[image]:
            im = self.settings.images[image]
            raise FrameError(im.frame_problem(arr, self._dtype))
