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
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr._fallback import open_fallback, unplaced_path
from mmzarr._settings import AcquisitionSettings
from mmzarr._stream import Status, Stream, create_stream
from mmzarr.errors import FrameError, PlanError

if TYPE_CHECKING:
    import numpy as np
    import useq

__all__ = ["MDAWriter"]

logger = logging.getLogger("mmzarr")


def _running_core() -> Any:
    """The global pymmcore-plus core, without creating one."""
    try:
        from pymmcore_plus.core import _mmcore_plus
    except ImportError:  # pragma: no cover
        return None
    ref = getattr(_mmcore_plus, "_instance", None)
    return ref() if ref is not None else None


def _frame_metadata(event: useq.MDAEvent, meta: dict[str, Any]) -> dict[str, Any]:
    """What is worth keeping of pymmcore-plus' frame metadata, JSON-ready."""
    out: dict[str, Any] = {
        "runner_time_ms": meta.get("runner_time_ms"),
        "exposure_ms": meta.get("exposure_ms", event.exposure),
        "camera_device": meta.get("camera_device"),
        "pixel_size_um": meta.get("pixel_size_um"),
        "channel": event.channel.config if event.channel else None,
        "stage": {"x": event.x_pos, "y": event.y_pos, "z": event.z_pos},
    }
    if event.pos_name:
        out["position_name"] = event.pos_name
    for key in ("position", "property_values", "camera_metadata", "hardware_triggered"):
        if key in meta:
            out[key] = meta[key]
    return out


class MDAWriter:
    """Stream a pymmcore-plus MDA into an OME-Zarr v0.5 dataset.

    Parameters
    ----------
    path
        Output directory.
    backend
        Array backend (`"acquire-zarr"`, `"tensorstore"`, `"zarr-python"`).
    overwrite
        Replace an existing `path`.
    settings
        Use these settings instead of deriving them from the sequence.
    template
        For event-generator runs (no fixed plan): a plan for one time point;
        `t` is unbounded.
    core
        The core running the MDA (to cancel it on error); defaults to the
        global `CMMCorePlus` instance.
    **settings_options
        Passed to `AcquisitionSettings.from_useq` (`compression`, `chunks`,
        `shards`, `unbounded_t`, `max_buffer_bytes`, ...).

    Examples
    --------
    >>> from mmzarr import MDAWriter
    >>> from mmzarr.demo import demo_core
    >>> core = demo_core()
    >>> seq = useq.MDASequence(
    ...     channels=["DAPI"], time_plan={"interval": 0.1, "loops": 2}
    ... )
    >>> writer = MDAWriter("run.ome.zarr", overwrite=True)
    >>> core.mda.run(seq, output=writer)
    >>> writer.close()  # raises if anything failed during the run
    """

    def __init__(
        self,
        path: str | Path,
        *,
        backend: str = "acquire-zarr",
        overwrite: bool = False,
        settings: AcquisitionSettings | None = None,
        template: useq.MDASequence | None = None,
        core: Any = None,
        **settings_options: Any,
    ) -> None:
        self.path = Path(path)
        self.backend = backend
        self.overwrite = overwrite
        self.settings = settings
        self.template = template
        self.core = core
        self.settings_options = settings_options
        self.stream: Stream | None = None
        #: frames that did not fit the mapped dataset (see `unplaced_path`)
        self.unplaced: Stream | None = None
        #: why the plan could not be mapped (then `stream` is a fallback)
        self.fallback_reason: str | None = None
        self.error: BaseException | None = None
        self.frames_ignored = 0
        self._canceled = False
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # ---- pymmcore-plus callbacks -------------------------------------------------
    def sequenceStarted(
        self, sequence: useq.MDASequence, meta: dict[str, Any] | None = None
    ) -> None:
        """Build the settings from the plan and the camera; open the dataset.

        A plan that cannot be mapped is written in the fallback layout, opened
        at the first frame (whose shape and dtype it takes).
        """
        with self._lock:
            self._canceled = False
            self.error = None
            self.fallback_reason = None
            self.stream = self.unplaced = None
            self._summary = meta or None
            try:
                settings = self.settings or self._settings_for(sequence, meta or {})
            except Exception as e:  # a plan we cannot map: keep every frame
                self.fallback_reason = f"{type(e).__name__}: {e}"
                logger.warning(
                    "mmzarr: cannot map the plan (%s); writing every frame in "
                    "arrival order to the fallback layout at %s",
                    self.fallback_reason,
                    self.path,
                )
                return
            try:
                self.stream = create_stream(
                    self.path,
                    settings,
                    backend=self.backend,
                    overwrite=self.overwrite,
                    summary=self._summary,
                )
            except Exception as e:
                self._fail(e, "could not start writing")

    def frameReady(
        self, img: np.ndarray, event: useq.MDAEvent, meta: dict[str, Any]
    ) -> None:
        """Write one frame where its `event.index` says."""
        with self._lock:
            if self.error is not None or (
                self.stream is None and self.fallback_reason is None
            ):
                self.frames_ignored += 1
                return
            metadata = _frame_metadata(event, meta)
            try:
                if self.stream is None:
                    self.stream = self._open_fallback(
                        self.path, self.fallback_reason or "", img, meta
                    )
                    self.stream.append(img, index=event.index, metadata=metadata)
                    return
                try:
                    self.stream.append(img, index=event.index, metadata=metadata)
                except FrameError as e:  # does not fit: keep it beside
                    self._keep_unplaced(img, event, meta, metadata, e)
            except Exception as e:
                self._fail(e, f"frame {dict(event.index)} could not be written")

    def sequenceCanceled(self, sequence: useq.MDASequence) -> None:
        """Remember that the run was cancelled (the dataset will say so)."""
        self._canceled = True

    def sequenceFinished(self, sequence: useq.MDASequence) -> None:
        """Close the dataset; it records what was acquired."""
        with self._lock:
            self._close_stream()

    # ---- public -------------------------------------------------------------------
    def close(self) -> None:
        """Close the dataset if still open, then raise any error of the run."""
        with self._lock:
            self._close_stream()
        if self.error is not None:
            raise self.error

    @property
    def frames_written(self) -> int:
        """Frames written so far (into the dataset and beside it, unplaced)."""
        return sum(s.frames_written for s in (self.stream, self.unplaced) if s)

    @property
    def unplaced_path(self) -> str:
        """Where frames that do not fit the mapped dataset go (created on need)."""
        return unplaced_path(self.path)

    # ---- internals ------------------------------------------------------------------
    def _settings_for(
        self, sequence: useq.MDASequence, meta: dict[str, Any]
    ) -> AcquisitionSettings:
        infos = meta.get("image_infos") or ()
        options = dict(self.settings_options)
        if infos:
            if len(infos) > 1:
                raise PlanError(
                    f"{len(infos)} cameras: mmzarr writes one camera per dataset"
                )
            info = infos[0]
            options.setdefault("image_shape", tuple(info["plane_shape"][:2]))
            options.setdefault("dtype", info["dtype"])
            options.setdefault("pixel_size_um", info.get("pixel_size_um") or None)
        elif self._core() is not None:
            options.setdefault("core", self._core())
        plan: Any = sequence
        if type(sequence).__name__ == "GeneratorMDASequence":
            if self.template is None:
                raise PlanError(
                    "the MDA runs an event generator, whose shape is unknown: pass "
                    "MDAWriter(..., template=<MDASequence for one time point>) or "
                    "settings=..."
                )
            plan = self.template
            options["unbounded_t"] = True
        return AcquisitionSettings.from_useq(plan, **options)

    def _open_fallback(
        self, path: str | Path, reason: str, img: np.ndarray, meta: dict[str, Any]
    ) -> Stream:
        return open_fallback(
            path,
            reason,
            img,
            backend=self.backend,
            overwrite=self.overwrite,
            options=self.settings_options,
            pixel_size_um=meta.get("pixel_size_um"),
            summary=self._summary,
        )

    def _keep_unplaced(
        self,
        img: np.ndarray,
        event: useq.MDAEvent,
        meta: dict[str, Any],
        metadata: dict[str, Any],
        error: FrameError,
    ) -> None:
        if self.unplaced is None:
            logger.warning(
                "mmzarr: frame %s does not fit %s (%s); keeping it and any other "
                "such frame in %s",
                dict(event.index),
                self.path,
                error,
                self.unplaced_path,
            )
            self.unplaced = self._open_fallback(
                self.unplaced_path,
                f"frames that did not fit {self.path}: {error}",
                img,
                meta,
            )
        self.unplaced.append(img, index=event.index, metadata=metadata)

    def _core(self) -> Any:
        return self.core if self.core is not None else _running_core()

    def _fail(self, error: BaseException, what: str) -> None:
        logger.error("mmzarr: %s: %s; cancelling the MDA", what, error)
        self.error = error
        core = self._core()
        if core is not None:
            try:
                core.mda.cancel()
            except Exception:  # pragma: no cover - best effort
                logger.exception("mmzarr: could not cancel the MDA")

    def _close_stream(self) -> None:
        status: Status | None = None
        if self.error is not None:
            status = "failed"
        elif self._canceled:
            status = "cancelled"
        for stream in (self.stream, self.unplaced):
            if stream is None or stream.closed:
                continue
            try:
                stream.close(status if stream is self.stream else None)
            except Exception as e:
                if self.error is None:
                    self.error = e
                logger.error("mmzarr: closing %s failed: %s", stream.path, e)
