"""`ZarrHook`: a pycromanager `image_process_fn` that streams into OME-Zarr."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr._claim import check_output
from mmzarr._closing import ClosesOnExit
from mmzarr._fallback import FrontEndBase, check_options, open_fallback
from mmzarr._kept_planes import append_kept, kept_misfit, unkeepable
from mmzarr._open import create_stream
from mmzarr._pixel_size import RunPixelSize, of_settings
from mmzarr._slots import MMZarrWarning
from mmzarr.errors import FrameError, PlanError, StorageError
from mmzarr.pycromanager._learn import FirstTimePoint
from mmzarr.pycromanager._placing import (
    check_events_fit,
    image_place,
    settings_positions,
)
from mmzarr.pycromanager._plan import (
    UNKNOWN_T,
    EventPlan,
    Place,
    axes_key,
    camera_channel,
    check_axes,
    entry_from_event,
    frame_record,
    plan_events,
    settings_for,
)
from mmzarr.pycromanager._watch import Watched, close_status

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings

logger = logging.getLogger("mmzarr")

#: Milestone of pycromanager's last notification (``AcqNotification``).
DATA_SINK_FINISHED = "data_sink_finished"
_OPTIONS = frozenset(
    {
        "chunks",
        "compression",
        "flush_interval_s",
        "max_buffer_bytes",
        "on_full",
        "pixel_size_um",
        "shards",
    }
)


# ---- the hook ---------------------------------------------------------------------
class ZarrHook(FrontEndBase, ClosesOnExit):
    """A pycromanager `image_process_fn` that streams every image into OME-Zarr.

    Each image is placed by its metadata ``Axes``: ``time`` -> t, ``z`` -> z,
    ``channel`` (a channel name, or an int index) -> c, ``position`` (an int or
    a label str) -> the image. Given `events`, the image goes where the event
    with the same ``axes`` says; events made by `events_from_useq` carry their
    useq index and their image's facts (``"mmzarr"``), so the dataset is the
    one `mmzarr.MDAWriter` writes for the same plan: plate, wells and fields,
    grid cells, sub-sequences, names, scales and channels.

    The dataset's shape comes from, in order of preference:

    * `settings` (e.g. `AcquisitionSettings.from_useq(seq, core=core)`): the
      dataset is created here. ``position`` ints are image numbers
      (``settings.images`` order) and labels are image names.
    * `events` (the list given to ``acq.acquire``): created at the first image,
      whose shape, dtype and ``PixelSize_um`` it takes. Events written by hand
      (pycromanager's ``{"axes": {...}, "z": ..., "config_group": [...]}``
      dicts) make one image per ``position`` value and one channel per
      ``channel`` name, numbered by first appearance.
    * neither: the images of the first time point are buffered (at most
      ``max_buffer_bytes``, default 256 MiB) until the first image of the next
      time point; they fix the positions, channels and z planes, and ``t`` grows
      without bound. The first time point is that of the first image with a
      ``time`` axis: an image without one (a reference snap) neither starts
      nor ends it, and takes no part in the shape once an image has a time.

    An image the hook cannot place (an axis other than those four, a position
    or channel the dataset lacks, a slot already written, or Axes without an
    axis of which the image has several indices, such as a snap without
    ``time`` in a time series: it never takes index 0, where another image
    belongs) is never lost: it is kept with a warning that names the
    `PlanError` or `FrameError`, in a fallback-layout dataset at `path` if the
    dataset's shape is not known yet, else beside it at `unplaced_path`. An
    image of another byte order (``>u2``) is written in native order, every
    value kept. An image no dataset can store (a dtype OME-Zarr has no data
    type for, such as complex64, or no pixels) is not written: a warning names
    its dtype and shape, it is counted in `frames_ignored` and handed back to
    pycromanager; the acquisition goes on.

    Pycro-Manager does not tell an `image_process_fn` that the acquisition has
    ended: close the hook after the ``with Acquisition`` block (use it as a
    context manager, or call `close`), or pass `notification_callback` as
    ``notification_callback_fn`` to close on pycromanager's
    ``data_sink_finished`` notification. Nor does it tell the hook, or the
    notification callback, whether the acquisition was aborted (``acq.abort()``,
    or an exception in a hook or in the engine): give the hook the acquisition
    (`watch`), and the dataset is recorded `complete` only when the
    acquisition ran to its end (planned slots no image came for, or whose
    image was kept beside, are listed missing, as with `MDAWriter`),
    `cancelled` when it was aborted (or the hook was closed while it ran), and
    `failed` when an exception that pycromanager kept aborted it. Without
    `watch`, with `events` or `settings` of a bounded size the status says
    whether every planned image was written (`complete`, else `cancelled`); a
    dataset whose shape the hook learned, one with an unbounded ``t`` and one
    in the fallback layout have no plan to say so, and are recorded
    `cancelled`, with a warning.

    Parameters
    ----------
    path
        Output directory.
    settings
        The dataset to write.
    events
        The event dict(s) the acquisition runs (a list, not a generator).
    backend
        Array backend (`"acquire-zarr"`, `"tensorstore"`, `"zarr-python"`).
    keep_images
        Return ``(image, metadata)`` so that pycromanager also keeps the image
        (its own RAM or NDTiff dataset); with False it returns None and
        pycromanager drops the image.
    overwrite
        Replace an existing dataset at `path` (only a dataset or an empty
        directory; see `mmzarr.create_stream`).
    **settings_options
        Without `settings`: `compression`, `chunks`, `shards`, `pixel_size_um`
        (overrides ``PixelSize_um``), `max_buffer_bytes`, `on_full`,
        `flush_interval_s`.

    Raises
    ------
    PlanError
        For `events` with axes mmzarr cannot place, repeated axes, a malformed
        ``"mmzarr"`` entry (or one on some events only), or events that do not
        fit `settings`; for an unknown or bad option, or options given with
        `settings`.
    FileExistsError
        If `path` exists and not `overwrite`, or is not a dataset or an empty
        directory that `overwrite` may replace; a `DatasetLockedError` when
        another writer holds its lock.

    Examples
    --------
    >>> import useq
    >>> from pycromanager import Acquisition
    >>> from mmzarr.demo import demo_core
    >>> from mmzarr.pycromanager import ZarrHook, events_from_useq, unicore_backend
    >>> seq = useq.MDASequence(
    ...     channels=["DAPI", "FITC"], time_plan={"interval": 0.1, "loops": 2}
    ... )
    >>> core = demo_core()
    >>> events = events_from_useq(seq, core=core)
    >>> with unicore_backend(core), ZarrHook("run.ome.zarr", events=events) as hook:
    ...     with Acquisition(
    ...         image_process_fn=hook,
    ...         notification_callback_fn=hook.notification_callback,
    ...     ) as acq:
    ...         hook.watch(acq)  # an aborted run is then recorded `cancelled`
    ...         _ = acq.acquire(events)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        settings: AcquisitionSettings | None = None,
        events: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        backend: str = "acquire-zarr",
        keep_images: bool = True,
        overwrite: bool = False,
        **settings_options: Any,
    ) -> None:
        self._set_path(path)
        self.backend = backend
        self.keep_images = keep_images
        self.overwrite = overwrite
        unknown = sorted(set(settings_options) - _OPTIONS)
        if unknown:
            raise PlanError(
                f"ZarrHook: unknown option(s) {unknown}; options are {sorted(_OPTIONS)}"
            )
        check_options("ZarrHook", settings, settings_options)
        self.settings_options = settings_options
        self.settings: AcquisitionSettings | None = settings
        self._no_streams()
        self.frames_received = 0
        #: whether the images after an error or close were said to be ignored
        self._said_late = False
        self._lock = threading.RLock()
        self._closed = False
        self._plan: EventPlan | None = None
        self._positions: Mapping[int | str | None, int] = {}
        #: each event's place, by its axes
        self._places: Mapping[frozenset[tuple[str, int | str]], Place] = {}
        #: whether the places' indices are those of the dataset (made from them)
        self._own_places = settings is None
        #: the ``PixelSize_um`` of the first image that said one (µm): an image
        #: acquired at another (objective, binning changed) is kept beside
        self._pixel_size = RunPixelSize(
            given=settings_options.get("pixel_size_um"),
            key="PixelSize_um",
            settings_px=of_settings(settings),
        )
        #: learn mode: the images of the first time point
        self._first = FirstTimePoint()
        self._learned = False
        #: the acquisition given to `watch`, which says whether it was aborted
        self._watched: Watched | None = None
        if events is not None:
            self._plan = self._plan_events(events)
            self._positions = self._plan.positions
            self._places = self._plan.places
        if settings is not None:
            # ints are image numbers, labels image names: those of `settings`,
            # whatever order the events visit them in
            self._positions = settings_positions(settings)
            if self._plan is not None:
                check_events_fit(settings, self._plan, self._positions)
            self.stream = create_stream(
                self.path, settings, backend=backend, overwrite=overwrite
            )
        else:  # created at the first image: fail now where it could not be
            check_output(self.path, overwrite)

    # ---- pycromanager callbacks ----------------------------------------------------
    def __call__(
        self, image: np.ndarray, metadata: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Write one image (pycromanager calls this on its processing thread).

        Returns ``(image, metadata)`` with `keep_images`, else None. Errors
        (storage failures) are kept in `error` and raised, so that pycromanager
        aborts the acquisition. Images that are not written are counted in
        `frames_ignored`, said in a warning and returned, for pycromanager to
        keep, whatever `keep_images` says: those that arrive after an error or
        `close` (one warning), and those no dataset can store (a dtype OME-Zarr
        has no data type for, such as complex64, or no pixels; a warning per
        dtype and shape, naming them).
        """
        with self._lock:
            self.frames_received += 1
            if self.error is not None or self._closed:
                self.frames_ignored += 1
                if not self._said_late:
                    self._said_late = True
                    logger.warning(
                        "mmzarr: an image arrived after %s was %s: not written "
                        "(returned to pycromanager; counted in frames_ignored)",
                        self.path,
                        "closed" if self.error is None else "failed",
                    )
                return image, metadata
            frame = np.asarray(image)
            if (why := unkeepable(frame)) is not None:
                self._refuse(
                    why,
                    f"image {self.frames_received} (Axes {metadata.get('Axes')})",
                    " (returned to pycromanager; counted in frames_ignored)",
                )
                return image, metadata
            try:
                self._write(frame, metadata)
            except Exception as e:
                logger.error("mmzarr: %s", e)
                self.error = e
                raise
        return (image, metadata) if self.keep_images else None

    def notification_callback(self, notification: Any) -> None:
        """A ``notification_callback_fn`` that closes the dataset at the end.

        Closes on pycromanager's ``data_sink_finished`` notification (all images
        have been through the hook by then); never raises (an error is kept in
        `error` and raised by `close`).
        """
        try:
            if getattr(notification, "milestone", None) == DATA_SINK_FINISHED:
                with self._lock:
                    self._finish()
        except Exception:  # pragma: no cover - _finish keeps its errors
            logger.exception("mmzarr: closing %s on data_sink_finished", self.path)

    # ---- public (and `close`, `frames_written`, `unplaced_path`) -----------------
    def watch(self, acquisition: Any) -> None:
        """Read from `acquisition` at close whether it was aborted.

        Call it inside the ``with Acquisition(...) as acq:`` block, before
        ``acq.acquire``: pycromanager tells an ``image_process_fn`` nothing of
        an abort, and drops what says so once the acquisition has ended. At
        close the dataset is recorded `cancelled` if the acquisition was
        aborted (``acq.abort()``, a hook's exception) or still runs, `failed`
        if an exception that pycromanager kept aborted it; else `complete`
        (planned images that never came are listed missing). The engine's private
        state is read (pycromanager 1.0.2).

        Raises
        ------
        TypeError
            When `acquisition` is not a pycromanager acquisition.
        RuntimeError
            When it has ended, or the hook is closed (its status is written).
        """
        watched = Watched.of(acquisition)
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    f"watch: {self.path} is closed; its status is written already"
                )
            self._watched = watched

    @property
    def closed(self) -> bool:
        """Whether the hook has been closed."""
        return self._closed

    def _close_after_error(self, exc: BaseException | None) -> None:
        with self._lock:  # errors here are logged: `exc` is on its way
            self._finish()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ZarrHook {str(self.path)!r} {self.frames_written} frames {state}>"

    # ---- internals -----------------------------------------------------------------
    def _plan_events(self, events: Any) -> EventPlan:
        if isinstance(events, Mapping):
            events = [events]
        elif iter(events) is events:
            raise PlanError(
                "events: pass a list (the one given to acq.acquire), not an iterator "
                "that ZarrHook would consume"
            )
        entries = [entry_from_event(ev, f"event {n}") for n, ev in enumerate(events)]
        plan = plan_events(entries)
        if plan.t_unknown and self.settings is None:
            warnings.warn(UNKNOWN_T, MMZarrWarning, stacklevel=3)
        return plan

    def _write(self, frame: np.ndarray, md: Mapping[str, Any]) -> None:
        where = f"image {self.frames_received} (Axes {md.get('Axes')})"
        self._pixel_size = self._pixel_size.started(md)
        if self.fallback_reason is not None and self.stream is not None:
            self._into_fallback(
                frame, {"pycromanager": dict(md)}, self._pixel_size.kept(md)
            )
            return
        try:
            if self.stream is None and self._plan is not None:
                # the events describe the dataset; its frame format is that of
                # the first image, whatever its Axes say (an image the events
                # do not place is then kept beside, not the whole run in the
                # fallback layout)
                self._open(settings_for(self._plan, frame, md, self.settings_options))
            axes = check_axes(md.get("Axes"), where)
            if self.stream is None and self._buffer(frame, axes, md):
                return
        except PlanError as e:
            self._keep(frame, md, e)
            return
        self._place(frame, axes, md)

    def _place(
        self, frame: np.ndarray, axes: dict[str, int | str], md: Mapping[str, Any]
    ) -> None:
        """Append where `axes` say; an image that does not fit is kept beside."""
        try:
            self._append(frame, axes, md)
        except (FrameError, PlanError) as e:
            self._keep(frame, md, e)

    def _keep(self, frame: np.ndarray, md: Mapping[str, Any], error: Exception) -> None:
        """Keep an image mmzarr cannot place, in the fallback layout.

        Before the dataset exists, it becomes a fallback dataset (with any
        images buffered to learn the shape, the first of which sets its
        format); after, the image goes to `unplaced_path`. Either way a warning
        names the error.
        """
        reason = f"{type(error).__name__}: {error}"
        record = {"pycromanager": dict(md), "not_placed": reason}
        px = self._pixel_size.kept(md)
        if self.stream is not None:
            self._keep_beside(
                frame,
                what="an image",
                noun="image",
                why=reason,
                pixel_size_um=px,
                metadata=record,
            )
            return
        self.fallback_reason = reason
        logger.warning(
            "mmzarr: cannot map the images (%s); writing every image in arrival "
            "order to the fallback layout at %s",
            reason,
            self.path,
        )
        pending = self._first.take()
        images: list[tuple[np.ndarray, dict[str, Any], Mapping[str, Any]]] = [
            (old, {"pycromanager": old_md}, old_md) for old, _, old_md in pending
        ]
        images.append((frame, record, md))
        first, _, first_md = images[0]
        self.stream = open_fallback(
            self,
            self.path,
            reason,
            first,
            pixel_size_um=self._pixel_size.kept(first_md),
        )
        for image, meta, image_md in images:
            self._into_fallback(image, meta, self._pixel_size.kept(image_md))

    def _into_fallback(
        self, image: np.ndarray, record: dict[str, Any], px: Any
    ) -> None:
        """Append to the fallback dataset, or beside it an image of another format."""
        assert self.stream is not None
        if misfit := kept_misfit(self.stream, image, pixel_size_um=px):
            why = f"{FrameError.__name__}: {misfit}"
            self._keep_beside(
                image,
                what="an image",
                noun="image",
                why=why,
                pixel_size_um=px,
                metadata={**record, "not_placed": why},
            )
        else:
            append_kept(self.stream, image, metadata=record)

    def _open(self, settings: AcquisitionSettings) -> None:
        self.settings = settings
        self.stream = create_stream(
            self.path, settings, backend=self.backend, overwrite=self.overwrite
        )

    def _buffer(
        self, frame: np.ndarray, axes: dict[str, int | str], md: Mapping[str, Any]
    ) -> bool:
        """Learn mode: keep images of the first time point; False when it ended."""
        if self._first.add(frame, axes, md, self.settings_options):
            return True
        self._flush_pending(next_image=(axes, md))
        return False

    def _flush_pending(
        self, next_image: tuple[dict[str, int | str], Mapping[str, Any]] | None = None
    ) -> None:
        """Learn mode: fix the shape from the buffered images and write them.

        Raises
        ------
        StorageError
            When storage fails (a full disk) before every buffered image is
            written; it says how many were not: they were handed back to
            pycromanager when they were buffered, so only the hook held them.
        """
        plan = self._first.plan(next_image)
        first = self._first.planned[0]
        settings = settings_for(plan, first[0], first[2], self.settings_options)
        self._plan = plan
        self._learned = True
        # places by axes would be those of the first time point only
        self._positions = plan.positions
        pending = self._first.take()
        written = 0
        try:
            self._open(settings)
            for frame, axes, md in pending:
                self._place(frame, axes, md)
                written += 1
        except StorageError as e:
            error = StorageError(
                f"{e}; {len(pending) - written} of the {len(pending)} images of the "
                "first time point that ZarrHook held in memory to learn the "
                "dataset's shape were not written to it (pass events= or "
                "settings= for an acquisition that cannot be repeated)"
            )
            error.errno = e.errno  # ENOSPC stays ENOSPC
            raise error from e

    def _hint(self) -> str:
        if self._learned:
            return (
                " (ZarrHook learned the dataset's shape from the first time point; "
                "pass events=<the list given to acq.acquire> or settings= to "
                "describe the whole acquisition)"
            )
        return ""

    def _append(
        self, frame: np.ndarray, axes: dict[str, int | str], md: Mapping[str, Any]
    ) -> None:
        assert self.stream is not None
        if cam := camera_channel(md):
            raise FrameError(
                f"camera channel {cam} (CameraChannelIndex) of {md.get('Camera')!r}: "
                "pycromanager gives every camera's image of an event the same "
                f"Axes {dict(axes)}; ZarrHook writes camera channel 0's images "
                "to the dataset and keeps the other cameras' beside"
            )
        if why := self._pixel_size.misfit(
            md, self.stream.settings.images[0].pixel_size_um
        ):
            raise FrameError(why)
        index, channel = image_place(
            self.stream.settings,
            self._positions,
            axes,
            self._places.get(axes_key(axes)),
            made_from_events=self._own_places and bool(self._places),
            hint=self._hint(),
        )
        try:
            self.stream.append(
                frame, index=index, metadata=frame_record(index, channel, md)
            )
        except FrameError as e:
            hint = self._hint()
            if not hint:
                raise
            raise FrameError(f"{e}{hint}") from e

    def _finish(self) -> None:
        """Close once: write buffered images, close the stream, keep errors."""
        if self._closed:
            return
        self._closed = True
        if self.stream is None and self._first.images and self.error is None:
            try:
                try:
                    self._flush_pending()
                except PlanError as e:
                    self._keep(*self._first.images.pop()[::2], e)
            except Exception as e:
                self.error = e
                logger.error("mmzarr: writing %s failed: %s", self.path, e)
        stream = self.stream
        self._close_streams(
            close_status(
                self.path,
                failed=self.error is not None,
                watched=self._watched,
                planned=None
                if stream is None
                else stream.settings.frames_planned is not None,
                learned=self._learned,
                fallback=self.fallback_reason is not None,
            )
        )
