"""`MDAWriter`: a pymmcore-plus output handler that streams an MDA into OME-Zarr.

`core.mda.run(seq, output=MDAWriter("run.ome.zarr"))`. pymmcore-plus calls the
handler's `sequenceStarted`, `frameReady`, `sequenceCanceled` and
`sequenceFinished` from one relay thread; an exception there would end that
thread silently and lose every later frame, so nothing escapes a callback.

A writer problem never costs the user the acquisition: a plan mmzarr cannot
map is written in the fallback layout (`AcquisitionSettings.fallback`: every
frame in arrival order, its index in the frame log), and a frame that does not
fit the mapped dataset goes to a sibling `<name>.unplaced.ome.zarr` in the same
layout. Only a storage failure (or an output that exists without `overwrite`)
cancels the MDA: the error is logged, what was written is closed cleanly, and
the error is kept in `writer.error` and raised again by `writer.close()`.

Several cameras (one frame per camera and event, `event.index["cam"]`): the
settings come from `_cameras.camera_layout`, and each frame's index is
translated (`CameraLayout.index`) and its pixels upcast to the dataset's dtype
(`CameraLayout.frame`) before it is appended.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from mmzarr._cameras import (
    CAMERA_MODES,
    CameraLayout,
    CameraMode,
    upcast,
)
from mmzarr._claim import check_output
from mmzarr._fallback import FrontEndBase, check_options, open_fallback
from mmzarr._kept_planes import append_kept, kept_misfit, unkeepable
from mmzarr._open import create_stream
from mmzarr._pixel_size import RunPixelSize
from mmzarr._sequence import is_event_generator
from mmzarr.backends import DEFAULT_BACKEND
from mmzarr.errors import EmptyPlanError, FrameError
from mmzarr.handlers._backend_choice import choose_backend
from mmzarr.handlers._one_run import OneRun
from mmzarr.handlers._run_plan import run_cameras, run_dtype, run_layout
from mmzarr.handlers._runner import (
    PassedSlots,
    core_running,
    errored,
    frame_metadata,
    plain_index,
    runs,
)

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import useq

    from mmzarr._settings import AcquisitionSettings
    from mmzarr._stream import Status
    from mmzarr._view import LiveView

__all__ = ["MDAWriter"]

logger = logging.getLogger("mmzarr")


class MDAWriter(FrontEndBase):
    """Stream a pymmcore-plus MDA into an OME-Zarr v0.5 dataset.

    Parameters
    ----------
    path
        Output directory.
    backend
        Array backend (`"acquire-zarr"`, `"tensorstore"`, `"zarr-python"`).
        By default acquire-zarr, or tensorstore for a plan acquire-zarr cannot
        take in the order it acquires (e.g. `axis_order="zt"`: each z plane's
        whole time series before the next plane; acquire-zarr would have to
        hold more than a quarter of `max_buffer_bytes` of frames, and write
        the rest beside the dataset); a warning says so.
    overwrite
        Replace an existing `path` (an mmzarr dataset or an empty directory
        only). Checked here, before a run can start (an existing `path`
        without it raises `FileExistsError`, a locked one `DatasetLockedError`),
        and again when each run starts.
    settings
        Use these settings instead of deriving them from the sequence.
    template
        For event-generator runs (no fixed plan): a plan for one time point;
        `t` is unbounded.
    core
        The core running the MDA (its camera's dtype and cameras, whether its
        run raised, and cancelling it on error); defaults to the core whose
        run has this writer among its outputs (`run(..., output=writer)`),
        found at each run's start: the global `CMMCorePlus` instance, or
        another live core. Pass `core` for a writer connected by hand.
    cameras
        How the frames of several cameras are written (pymmcore-plus emits one
        frame per camera and event, its index carrying `cam`; the cameras and
        their frame shapes and dtypes come from the summary metadata's
        `image_infos`):

        - `"channels"`: the cameras are channels of the same image, channel-major:
          plan channel `c` of camera `cam` is channel `c * n_cameras + cam`
          (`DAPI / Camera-1`, `DAPI / Camera-2`, `FITC / Camera-1`, ...; labels
          `"<channel> / <camera label>"`, each keeps its config and exposure).
          An image without a `c` axis gets one, labelled with the camera labels.
          Needs one frame shape for every camera.
        - `"images"`: each image of the plan becomes one image per camera,
          adjacent, named `"<name> / <camera label>"`, with that camera's frame
          shape and pixel size: a single image becomes a collection (`0`, `1`,
          ...), a collection is renumbered, and in a plate field `f` becomes
          fields `f * n_cameras + cam` of its well.
        - `"auto"` (default): `"channels"` when every camera has the same frame
          shape, dtype and pixel size (where known), else `"images"`.

        Each frame goes to the camera its metadata names (`camera_device`),
        also when a camera was turned off or the cameras swapped during the
        run (pymmcore-plus' `cam` index then counts the cameras still on).

        A dataset has one dtype: when the cameras' differ, it is the narrowest
        that holds each exactly (`uint8` + `uint16`: `uint16`) and the other
        cameras' frames are upcast losslessly. With one camera this changes
        nothing; with `settings=`, frames keep their index, `cam` included
        (give images `coords={"cam": k}` to place camera `k`).
    **settings_options
        Passed to `AcquisitionSettings.from_useq` (`compression`, `chunks`,
        `shards`, `unbounded_t`, `max_buffer_bytes`, ...). `image_shape`,
        `dtype` and `pixel_size_um` apply to every camera.

    Notes
    -----
    With `"channels"` and a plan whose channel is not its innermost axis
    (useq's default `"tpgcz"` takes a z-stack per channel), camera 1's planes of
    a channel arrive before camera 0's last plane of it, ahead of their place in
    append order; with acquire-zarr the writer widens the backend's reorder
    window (`max_reorder_bytes`) to hold them (one channel's planes per extra
    camera and image), so that memory is used while a channel is acquired.

    Frames are taken without a copy (`Stream.append(owned=True)`): pymmcore-plus
    gives every frame an array of its own. Another `frameReady` callback that
    changes a frame in place must change a copy.

    Examples
    --------
    >>> import useq
    >>> from mmzarr import MDAWriter
    >>> from mmzarr.demo import demo_core, release_core
    >>> core = demo_core()
    >>> seq = useq.MDASequence(
    ...     channels=["DAPI"], time_plan={"interval": 0.1, "loops": 2}
    ... )
    >>> writer = MDAWriter("run.ome.zarr", overwrite=True)
    >>> core.mda.run(seq, output=writer)
    >>> writer.close()  # raises if anything failed during the run
    >>> release_core(core)  # done with the rig
    """

    def __init__(
        self,
        path: str | Path,
        *,
        backend: str | None = None,
        overwrite: bool = False,
        settings: AcquisitionSettings | None = None,
        template: useq.MDASequence | None = None,
        core: Any = None,
        cameras: CameraMode = "auto",
        **settings_options: Any,
    ) -> None:
        if cameras not in CAMERA_MODES:
            raise ValueError(f"cameras: {cameras!r} is not one of {CAMERA_MODES}")
        check_options("MDAWriter", settings, settings_options)
        self._set_path(path)
        # before the MDA: at its start, a refusal cancels it with the rig moving
        check_output(self.path, overwrite)
        #: the backend of the current run (`backend`, or chosen for the plan)
        self.backend = backend or DEFAULT_BACKEND
        self._chosen_backend = backend
        self.overwrite = overwrite
        self.settings = settings
        self.template = template
        self.core = core
        #: without `core`: the core whose run outputs to this writer (per run)
        self._run_core: Any = None
        #: a run of another core said to start while this one runs is refused
        self._one_run = OneRun()
        self.cameras: CameraMode = cameras
        self.settings_options = settings_options
        self._no_streams()
        self._canceled = False
        self._ran_to_end = False  # sequenceFinished came without a cancel
        self._errored = False  # the MDA ended by an exception (e.g. the camera's)
        self._summary: dict[str, Any] | None = None
        #: the run's pixel size: as it started, and the one each frame is kept at
        self._pixel_size = RunPixelSize()
        #: the stage at the last frame (a hardware-triggered frame has no position)
        self._last_stage: dict[str, Any] = {}
        #: where each camera's frames go (None: frames are appended as they come)
        self.camera_layout: CameraLayout | None = None
        self._fallback_dtype: str | None = None  # several cameras, fallback layout
        #: slots the run went past without a frame (a plan's run)
        self._passed: PassedSlots | None = None
        #: closed (`close`, or the run ended): frames until the next run are
        #: not written
        self._closed = False
        self._lock = threading.Lock()

    # ---- pymmcore-plus callbacks -------------------------------------------------
    def sequenceStarted(
        self, sequence: useq.MDASequence, meta: dict[str, Any] | None = None
    ) -> None:
        """Build the settings from the plan and the camera(s); open the dataset.

        A plan that cannot be mapped is written in the fallback layout, opened
        at the first frame (whose shape and dtype it takes); with several
        cameras, frames are upcast to the dtype that holds them all, and those
        of another frame shape go to the unplaced sibling.
        """
        with self._lock:
            self._one_run.start(
                sequence,
                writer=self,
                what=f"MDAWriter({str(self.path)!r})",
                running=self._core(),
                open_run=any(not s.closed for s in self._streams()),
            )
            if any(not s.closed for s in self._streams()):
                # the last run never said it finished (another output handler
                # failed): its datasets are closed now, and free their paths
                self._finish()
                if self.error is not None:
                    logger.error("mmzarr: the previous run failed: %s", self.error)
            self._canceled = self._ran_to_end = self._errored = False
            self._closed = False
            if self.core is None:
                self._run_core = core_running(self)
            self._no_streams()  # a run's error, streams and counts are its own
            self._summary = meta or None
            self._pixel_size = RunPixelSize.of(
                meta or {}, self.settings_options.get("pixel_size_um"), self.settings
            )
            start = (meta or {}).get("position")
            self._last_stage = dict(start) if isinstance(start, dict) else {}
            self.camera_layout = None
            self._fallback_dtype = None
            self._passed = None
            self.backend = self._chosen_backend or DEFAULT_BACKEND
            try:
                if self.settings is not None:
                    settings = self.settings
                else:
                    cameras = run_cameras(
                        self._core(), meta or {}, self.settings_options
                    )
                    self.camera_layout = run_layout(
                        sequence,
                        cameras,
                        options=self.settings_options,
                        core=self._core(),
                        # where the stage was: on axes the plan never sets
                        start=(self._summary or {}).get("position"),
                        template=self.template,
                        mode=self.cameras,
                    )
                    settings = self.camera_layout.settings
                self.backend, backend_options = choose_backend(
                    settings,
                    self._chosen_backend,
                    self.camera_layout,
                    path=str(self.path),
                    unplaced_path=str(self.unplaced_path),
                )
            except Exception as e:  # a plan we cannot map: keep every frame
                self.fallback_reason = f"{type(e).__name__}: {e}"
                if isinstance(e, EmptyPlanError):
                    logger.warning(
                        "mmzarr: the plan acquires no frames, so nothing is "
                        "written (a frame that comes anyway goes to the fallback "
                        "layout at %s): %s",
                        self.path,
                        e,
                    )
                else:
                    logger.warning(
                        "mmzarr: cannot map the plan (%s); writing every frame "
                        "in arrival order to the fallback layout at %s",
                        self.fallback_reason,
                        self.path,
                    )
                self._fallback_dtype = run_dtype(
                    self._core(), meta or {}, self.settings_options
                )
                return
            try:
                self.stream = create_stream(
                    self.path,
                    settings,
                    backend=self.backend,
                    overwrite=self.overwrite,
                    summary=self._summary,
                    **backend_options,
                )
            except Exception as e:
                self._fail(e, "could not start writing")
                return
            self._passed = self._passed_slots(sequence, settings)

    def frameReady(
        self, img: np.ndarray, event: useq.MDAEvent, meta: dict[str, Any]
    ) -> None:
        """Write one frame where its `event.index` says."""
        with self._lock:
            if self._closed:
                # e.g. a GUI's stop button closed the writer while the MDA runs:
                # its datasets are closed, and a new one is not opened for
                # the frames that follow
                self._refuse(
                    "the writer was closed before the MDA ended",
                    f"the frame of event {plain_index(event.index)}",
                )
                return
            if self.error is not None or (
                self.stream is None and self.fallback_reason is None
            ):
                self.frames_ignored += 1
                return
            if (why := unkeepable(img)) is not None:
                self._refuse(why, f"the frame of event {dict(event.index)}")
                return
            metadata = frame_metadata(event, meta, self._last_stage)
            self._last_stage.update(
                (k, v) for k, v in metadata["stage"].items() if v is not None
            )
            index: dict[str, int] = dict(event.index)
            layout = self.camera_layout
            taken = img  # as the camera gave it: what a sibling keeps
            if layout is not None and layout.mode != "single":
                index = layout.index(index, camera=meta.get("camera_device"))
                img = layout.frame(img)
            else:
                img = self._widened(img)
            try:
                if self.stream is None:
                    self.stream = open_fallback(
                        self,
                        self.path,
                        self.fallback_reason or "",
                        img,
                        pixel_size_um=self._pixel_size.kept(meta),
                        summary=self._summary,
                    )
                elif self.fallback_reason is not None and (
                    why := kept_misfit(
                        self.stream, img, pixel_size_um=self._pixel_size.kept(meta)
                    )
                ):
                    # another camera's format: refused by the stream, it would
                    # still take the next slot of the arrival order
                    self._keep_unplaced(taken, event, meta, metadata, FrameError(why))
                    return
                try:
                    if self.fallback_reason is not None:
                        append_kept(
                            self.stream, img, index=index, metadata=metadata, owned=True
                        )
                    else:
                        if not self.stream.frames_written:
                            # a frame that goes beside leaves the pixel size
                            # the dataset may still take (`admitted`) alone
                            self.stream.check(img, index=index)
                        self._pixel_size = self._pixel_size.admitted(meta, self.stream)
                        key, at = self.stream.append(
                            img, index=index, metadata=metadata, owned=True
                        )
                        if self._passed is not None:
                            image, gone = self._passed.passed(key, at)
                            try:
                                for slot in gone:  # will not come: stop holding
                                    self.stream.abandon(image, slot)  # later frames
                            except OSError:
                                raise
                            except Exception:  # only memory and timing are at stake
                                logger.exception("mmzarr: cannot give up %s", gone)
                                self._passed = None
                except FrameError as e:  # does not fit: keep it beside
                    self._keep_unplaced(taken, event, meta, metadata, e)
            except Exception as e:
                self._fail(e, f"frame {plain_index(event.index)} could not be written")

    def sequenceCanceled(self, sequence: useq.MDASequence) -> None:
        """Remember that the run was cancelled (the dataset will say so)."""
        self._canceled = True

    def sequenceFinished(self, sequence: useq.MDASequence) -> None:
        """Close the dataset; it records what was acquired.

        Its status is `complete` when the MDA ran to its end (frames that did
        not fit it are then in the unplaced sibling, or dropped), `cancelled`
        after a cancel, `failed` after a storage error or when the MDA ended
        by an exception (pymmcore-plus says it finished then too).
        """
        with self._lock:
            if self._one_run.refused(sequence):  # not this writer's run
                return
            self._errored = not self._canceled and errored(self._core(), self, sequence)
            self._ran_to_end = not self._canceled and not self._errored
            self._finish()

    # ---- public (and `close`, `frames_written`, `unplaced_path`) -------------------
    def view(self, key: str = "") -> LiveView:
        """An array-like over image `key` as acquired so far (`Stream.view`).

        For a viewer that displays the data while the MDA runs (ndv, napari);
        valid from the first frame on and after the run.

        Raises
        ------
        RuntimeError
            Before the dataset exists (no frame yet).
        """
        stream = self.stream
        if stream is None:
            why = (
                "the plan could not be mapped: the fallback dataset opens at the "
                "first frame"
                if self.fallback_reason is not None
                else "the MDA has not started"
            )
            raise RuntimeError(f"{self.path}: no dataset yet ({why})")
        return stream.view(key)

    # ---- internals ------------------------------------------------------------------
    def _passed_slots(
        self, sequence: useq.MDASequence, settings: AcquisitionSettings
    ) -> PassedSlots | None:
        """What gives up the slots this run goes past without a frame, or None.

        The runner iterates a plan itself, in order, each camera's frames of an
        event in event order: a slot it went past without a frame (the camera
        failed to snap it, a burst ended short) will get none. Not for an event
        generator: it may yield events in any order and an event again (a
        retake), whose frame would then come for a slot already given up. Not
        for `settings=`: they may expect the frames in another order.
        """
        if self.settings is not None or is_event_generator(sequence):
            return None
        layout = self.camera_layout
        cameras = len(layout.cameras) if layout and layout.mode == "channels" else 1
        return PassedSlots(settings, cameras)

    def _keep_unplaced(
        self,
        img: np.ndarray,
        event: useq.MDAEvent,
        meta: dict[str, Any],
        metadata: dict[str, Any],
        error: FrameError,
    ) -> None:
        self._keep_beside(
            img,
            what=f"frame {plain_index(event.index)}",
            noun="frame",
            why=str(error),
            pixel_size_um=self._pixel_size.kept(meta),
            summary=self._summary,
            index=event.index,
            metadata=metadata,
            owned=True,
        )

    def _widened(self, img: np.ndarray) -> np.ndarray:
        """`img` in the dtype of the dataset it goes to, where that holds it exactly.

        E.g. `dtype="uint16"` given for an 8-bit camera.
        """
        if self._fallback_dtype is not None:
            return upcast(img, self._fallback_dtype)
        if self.stream is not None and img.dtype != self.stream.settings.dtype:
            return upcast(img, self.stream.settings.dtype)
        return img

    def _core(self) -> Any:
        """The core running this writer: `core`, else the one found at the start."""
        return self.core if self.core is not None else self._run_core

    def _fail(self, error: BaseException, what: str) -> None:
        self.error = error
        core = self._core()
        if core is None or (self.core is None and not runs(core, self)):
            # no core's run outputs to this writer (called by hand, or a
            # runner that does not say its outputs)
            logger.error(
                "mmzarr: %s: %s; the MDA writing to %s goes on without it (pass "
                "core= to MDAWriter to have it cancelled)",
                what,
                error,
                self.path,
            )
            return
        logger.error("mmzarr: %s: %s; cancelling the MDA", what, error)
        try:
            core.mda.cancel()
        except Exception:  # pragma: no cover - best effort
            logger.exception("mmzarr: could not cancel the MDA")

    def _finish(self) -> None:
        self._closed = True
        status: Status | None = None
        if self.error is not None:
            status = "failed"
        elif self._errored:
            logger.warning(
                "mmzarr: the MDA writing to %s ended by an error before its end: "
                "recorded as failed, %d frames written",
                self.path,
                self.frames_written,
            )
            status = "failed"
        elif self._canceled:
            status = "cancelled"
        elif self._ran_to_end:
            status = "complete"
        elif self.stream is not None and not self.stream.closed:
            # `close` while the MDA runs; or another output handler raised:
            # pymmcore-plus stops sending events to every handler,
            # sequenceFinished included
            logger.warning(
                "mmzarr: closing %s before the MDA said it finished or was "
                "cancelled (closed while it runs, or sequenceFinished never came: "
                "another output handler may have failed): %d frames written",
                self.path,
                self.frames_written,
            )
            if self.fallback_reason is not None:
                # a fallback dataset has no plan to say whether frames are
                # missing: it would say `complete`
                status = "cancelled"
        self._close_streams(status)
