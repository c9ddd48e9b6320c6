"""How a `Stream` closes: its last frames, its documents and its status.

`StreamClosing` is the close sequence of `Stream` (`_stream`), whose state it
uses: stop the flusher, render the OME-XML from the frame log while the
backend writes its last frames, write the group documents (the root's, with
the status, last; first when storage failed, into the space reserved at open),
release the output. What a frame does on its way in is `Stream`'s.
"""

from __future__ import annotations

import logging
from concurrent.futures import wait
from typing import TYPE_CHECKING, Literal

from mmzarr._closing import DeferredInterrupt
from mmzarr._dataset import (
    in_background,
    render_ome_xml_ahead,
    rendered,
    write_group_metadata,
)
from mmzarr.errors import FrameError, StorageError

if TYPE_CHECKING:
    import threading
    from concurrent.futures import Future
    from pathlib import Path

    from mmzarr import _metadata
    from mmzarr._claim import OutputClaim
    from mmzarr._dataset import ChannelRanges
    from mmzarr._flusher import Flusher
    from mmzarr._layout import GroupDocuments, Which
    from mmzarr._root_watch import RootWatch
    from mmzarr._routing import Router
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location
    from mmzarr.backends import Progress

__all__ = ["CLOSING_STATUSES", "Status", "StreamClosing"]

logger = logging.getLogger("mmzarr")

Status = Literal["acquiring", "complete", "cancelled", "failed", "interrupted"]
#: The statuses a writer may close a stream with.
CLOSING_STATUSES = ("complete", "cancelled", "failed")


class StreamClosing:
    """`Stream`'s close sequence; the attributes below are the stream's."""

    location: Location
    path: Path | str
    settings: AcquisitionSettings
    backend_name: str
    dropped: int
    _lock: threading.RLock
    _claim: OutputClaim
    _log: _metadata.FrameLog | _metadata.SegmentedFrameLog | None
    _flusher: Flusher
    _root: RootWatch
    _router: Router
    _ranges: ChannelRanges
    _documents: GroupDocuments
    _frames: int
    _status: Status
    _closed: bool
    _error: BaseException | None

    if TYPE_CHECKING:

        @property
        def _where(self) -> str: ...

        def _flush(self, *, final: bool = False) -> Progress: ...

    def close(self, status: Status | None = None) -> None:
        """Flush and close (idempotent); the metadata records what was acquired.

        `status` defaults to `complete` when every planned frame was written,
        `cancelled` otherwise, `failed` after a storage error (also when
        `complete` is given). When storage
        failed, the root document with the status is written first (into the
        space reserved at open), so it is recorded even on a full disk.

        Raises
        ------
        ValueError
            For a `status` other than `complete`, `cancelled` or `failed`
            (nothing is closed).
        StorageError
            When the last frames or the documents could not be written (the
            status says `failed` if the root document could be).
        """
        if status not in (None, *CLOSING_STATUSES):
            raise ValueError(
                f"close: status {status!r} is not one of {CLOSING_STATUSES} (or None)"
            )
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flusher.stop()
            try:
                with DeferredInterrupt(
                    f"closing {self.path} (or run `mmzarr finalize` on it)"
                ):
                    self._close(status)
            finally:
                self._claim.release()  # another writer may take the path now

    def _close(self, status: Status | None) -> None:
        errors: list[BaseException] = []
        # a root moved or removed: its documents are not written at the old
        # path (they would make a dataset there again, without its frames)
        moved = self._root.moved()
        if moved is not None and self._error is None:
            self._error = moved
        try:
            if self._log is not None and self._error is None:
                self._log.flush()  # the records first: closing takes time
        except OSError as e:
            errors.append(e)
        # the OME-XML (~0.5 s for a 96-well plate) is rendered from the frame
        # log while the backend writes its last frames; after a storage error
        # the log's last records are written only below (`self._log.close()`),
        # so the OME-XML is rendered then, from the whole log
        xml = (
            render_ome_xml_ahead(self.location, self.settings)
            if self._error is None
            else None
        )
        # storage failed before close: on object storage the failed status is
        # written while the backend gives up its last writes (either may retry
        # for seconds)
        early: Future[None] | None = None
        if self._error is not None and status in (None, "failed"):
            if not self.location.is_local:
                self._status = "failed"
                early = in_background(self._write_groups, "root")
        # the images' display windows (~400 documents for a 96-well plate) are
        # written while the backend writes its last frames; the root's, with
        # the status, once it has
        windows: Future[None] | None = None
        if (
            self._error is None
            and self.location.is_local
            and self._documents.to_rewrite(False) == "images"
            and self.settings.layout != "image"
        ):
            windows = in_background(self._write_groups, "windows")
        overwritten = True  # the group documents, unless the backend says not
        try:
            overwritten = self._flush(final=True).groups_overwritten
        except Exception as e:
            errors.append(e)
        finally:
            if windows is not None:
                wait([windows])
        rewrite = self._documents.to_rewrite(overwritten)
        if windows is not None:
            try:
                windows.result()
                if rewrite == "images":
                    rewrite = "root"
            except Exception:  # written again below, where an error is reported
                logger.warning(
                    "mmzarr: writing the display windows failed", exc_info=True
                )
        self._status = status = self._final_status(status, bool(errors))
        self.location.release_space()  # room for the documents below
        stored = True  # whether storage takes documents
        moved = moved or self._root.moved()  # also while the backend closed
        if moved is not None:
            stored = False
            errors.insert(0, moved)
        if status == "failed" and stored:  # the status first: the disk may be full
            try:
                if early is not None:
                    early.result()
                else:
                    self._write_groups("root")
            except OSError as e:
                errors.append(e)
                stored = False  # the others would fail alike (or wait to)
        try:
            if self._log is not None and (stored or self.location.is_local):
                self._log.close()
        except OSError as e:
            errors.append(e)
        try:
            if stored:
                self._write_groups(rewrite, ome_xml=rendered(xml))
        except OSError as e:
            errors.append(e)
        if not errors:
            self._flusher.flushed = self._frames
        if errors:
            # documents storage did not take are a storage failure too
            self._status = self._final_status(status, True)
            raise StorageError(
                f"closing dataset {self._where} failed: {errors[0]}"
            ) from errors[0]

    def _final_status(self, given: Status | None, errors: bool) -> Status:
        """The status to record: `given`, or what the frames written say.

        After a storage failure (`errors` at close) it is `failed`, also when
        `complete` was given.
        """
        if self._error is not None or errors:
            return "failed" if given in (None, "complete") else given
        if given is not None:
            return given
        planned = self.settings.frames_planned
        if planned is not None and self._frames < planned:
            return "cancelled"
        return "complete"

    def _close_after_error(self, exc: BaseException | None) -> None:
        try:
            failed = not isinstance(exc, (KeyboardInterrupt, FrameError))
            self.close("failed" if failed else None)
        except Exception:
            logger.exception("closing %s after an error failed", self.path)

    def _write_groups(self, which: Which, *, ome_xml: bool | str = False) -> None:
        """Write the group documents `which` (and the OME-XML, `ome_xml`)."""
        write_group_metadata(
            self.location,
            self.settings,
            self._router.ledgers,
            status=self._status,
            backend=self.backend_name,
            dropped=self.dropped,
            ome_xml=ome_xml,
            durable=False,
            which=which,
            ranges=self._ranges.by_key(),
            documents=self._documents,
        )
