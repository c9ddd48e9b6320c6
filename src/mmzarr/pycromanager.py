"""Pycro-Manager front end: stream `pycromanager.Acquisition` images into OME-Zarr.

* `ZarrHook` is an `image_process_fn`: it places each image by its pycromanager
  ``Axes`` (``time``, ``position``, ``channel``, ``z``) and appends it to a
  `mmzarr.Stream`.
* `events_from_useq` turns a useq plan into pycromanager event dicts, so one plan
  drives both pymmcore-plus (`mmzarr.MDAWriter`) and Pycro-Manager.
* `unicore_backend` runs pycromanager's Python acquisition engine on a given core
  (e.g. the `mmzarr.demo` `UniMMCore`) without Java. It relies on private
  internals of pycromanager and mmpycorex and checks their versions
  (`TESTED_VERSIONS`).

This module owns the mapping between pycromanager's metadata and event dicts and
mmzarr's useq-style indices. Dataset shape rules come from `mmzarr._useq` (the
events are converted to `useq.MDAEvent` and go through the same machinery as
`AcquisitionSettings.from_useq`); storage is `mmzarr._stream`'s job. Only
`unicore_backend` imports pycromanager.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import re
import threading
import types
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import useq

from mmzarr._settings import NON_SPATIAL, AcquisitionSettings
from mmzarr._stream import create_stream
from mmzarr._useq import (
    MMZarrWarning,
    _collect,
    _engine_fov,
    _image_name,
    _image_settings,
    _positions,
    _with_fov,
)
from mmzarr.errors import FrameError, MissingDependencyError, PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from typing_extensions import Self

    from mmzarr._stream import Stream

__all__ = ["TESTED_VERSIONS", "ZarrHook", "events_from_useq", "unicore_backend"]

logger = logging.getLogger("mmzarr")

#: pycromanager axis name (acq_eng_metadata.py:49-52) -> useq index key.
AXES: dict[str, str] = {"time": "t", "position": "p", "channel": "c", "z": "z"}
#: Versions `unicore_backend` was tested with (it uses their private internals).
TESTED_VERSIONS: dict[str, str] = {"pycromanager": "1.0.2", "mmpycorex": "0.3.16"}
#: Milestone of pycromanager's last notification (acq_notification.py:36).
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
_DEFAULT_BUFFER = 256 * 1024**2
_UNKNOWN_T = "time interval is unknown or 0: writing a t scale of 1 second"


# ---- pycromanager axes ----------------------------------------------------------
def _check_axes(axes: Any, where: str) -> dict[str, int | str]:
    """Return pycromanager `Axes` as a plain dict; PlanError for unplaceable axes."""
    if axes is None:
        return {}
    if not isinstance(axes, Mapping):
        raise PlanError(f"{where}: 'Axes' must be a dict, got {axes!r}")
    out: dict[str, int | str] = {}
    for name, value in axes.items():
        if name not in AXES:
            raise PlanError(
                f"{where}: mmzarr cannot place the axis {name!r} (= {value!r}) of "
                f"Axes {dict(axes)}; it places only {tuple(AXES)}"
            )
        ok_str = name in ("position", "channel") and isinstance(value, str)
        ok_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not (ok_str or ok_int) or (ok_int and int(value) < 0):
            kind = "an int >= 0" if name in ("time", "z") else "an int >= 0 or a str"
            raise PlanError(
                f"{where}: axis {name!r} must be {kind}, got {value!r} "
                f"(Axes {dict(axes)})"
            )
        out[name] = value if isinstance(value, str) else int(value)
    return out


def _float(value: Any) -> float | None:
    """A number from pycromanager metadata (str on the sequence path) or None."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class _Entry:
    """What one event (or one image's metadata) says about where it belongs."""

    axes: dict[str, int | str]
    x: float | None = None
    y: float | None = None
    z: float | None = None
    group: str | None = None
    start_s: float | None = None


@dataclass
class _Plan:
    """Events as useq events plus the maps from pycromanager values to indices."""

    events: list[useq.MDAEvent]
    positions: dict[int | str | None, int]
    channels: dict[str, int]
    t_scale: float | None
    order: str
    inside: bool
    unbounded_t: bool = False


def _entry_from_event(event: Any, where: str) -> _Entry:
    if not isinstance(event, Mapping) or "axes" not in event:
        raise PlanError(f"{where}: expected a dict with an 'axes' key, got {event!r}")
    group = event.get("config_group")
    return _Entry(
        axes=_check_axes(event["axes"], where),
        x=_float(event.get("x")),
        y=_float(event.get("y")),
        z=_float(event.get("z")),
        group=str(group[0]) if group else None,
        start_s=_float(event.get("min_start_time")),
    )


def _entry_from_metadata(axes: dict[str, int | str], md: Mapping[str, Any]) -> _Entry:
    # keys: acq_eng_metadata.py:17-21,36 (see tests/test_pycromanager.py)
    elapsed = _float(md.get("ElapsedTime-ms"))
    return _Entry(
        axes=axes,
        x=_float(md.get("XPosition_um_Intended")),
        y=_float(md.get("YPosition_um_Intended")),
        z=_float(md.get("ZPosition_um_Intended")),
        start_s=None if elapsed is None else elapsed / 1000,
    )


def _build_plan(
    entries: Sequence[_Entry], *, unbounded_t: bool = False, order: str | None = None
) -> _Plan:
    """Convert entries to useq events; image number = order of first position."""
    positions: dict[int | str | None, int] = {}
    channels: dict[str, int] = {}
    has_p = any("position" in e.axes for e in entries)
    kinds = {type(e.axes["channel"]) for e in entries if "channel" in e.axes}
    if len(kinds) > 1:
        raise PlanError("channel axis values mix names (str) and indices (int)")
    events: list[useq.MDAEvent] = []
    seen: dict[tuple[int, ...], int] = {}
    starts: dict[int, dict[int, float]] = {}
    times: list[int] = []
    for n, e in enumerate(entries):
        ax = e.axes
        p = positions.setdefault(ax.get("position"), len(positions))
        index: dict[str, int] = {"p": p} if has_p else {}
        if "time" in ax:
            index["t"] = 0 if unbounded_t else int(ax["time"])
            times.append(int(ax["time"]))
        if "z" in ax:
            index["z"] = int(ax["z"])
        channel = None
        if "channel" in ax:
            c = ax["channel"]
            if isinstance(c, str):
                index["c"] = channels.setdefault(c, len(channels))
                channel = {"config": c, "group": e.group or "Channel"}
            else:
                index["c"] = int(c)
        slot = (p, *(index.get(a, -1) for a in NON_SPATIAL))
        if slot in seen:
            raise PlanError(
                f"event {n}: Axes {ax} repeat those of event {seen[slot]}; every "
                "image needs its own axes or it would overwrite another"
            )
        seen[slot] = n
        if "time" in ax and e.start_s is not None:
            starts.setdefault(p, {}).setdefault(int(ax["time"]), e.start_s)
        events.append(
            useq.MDAEvent(
                index=index,
                channel=channel,
                x_pos=e.x,
                y_pos=e.y,
                z_pos=e.z,
                pos_name=ax["position"]
                if isinstance(ax.get("position"), str)
                else None,
                min_start_time=e.start_s,
            )
        )
    t_scale = None
    for ts in starts.values():
        if 0 in ts and 1 in ts and ts[1] > ts[0]:
            t_scale = round(ts[1] - ts[0], 9)
            break
    first = entries[0].axes if entries else {}
    inside = not (has_p and times) or all(a <= b for a, b in itertools.pairwise(times))
    return _Plan(
        events=events,
        positions=positions,
        channels=channels,
        t_scale=t_scale,
        order=order if order is not None else "".join(AXES[a] for a in first),
        inside=inside,
        unbounded_t=unbounded_t,
    )


def _settings_from_plan(
    plan: _Plan,
    frame: np.ndarray,
    md: Mapping[str, Any],
    options: Mapping[str, Any],
) -> AcquisitionSettings:
    """`AcquisitionSettings` for `plan`, with shape/dtype/pixel size of `frame`."""
    if frame.ndim != 2:
        raise PlanError(f"images must be 2D (y, x), got shape {frame.shape}")
    px = _float(options.get("pixel_size_um")) or _float(md.get("PixelSize_um"))
    if not px or px <= 0:
        warnings.warn(
            "pixel_size_um is unknown: writing a y/x scale of 1 micrometer",
            MMZarrWarning,
            stacklevel=2,
        )
        px = 1.0
    infos = list(_collect(plan.events, []).values())
    fallback = {c: name for name, c in plan.channels.items()}
    images = []
    for n, info in enumerate(infos):
        z0, z1 = info.z_by_index.get(0), info.z_by_index.get(1)
        z_scale = round(abs(z1 - z0), 9) if z0 is not None and z1 is not None else None
        images.append(
            _image_settings(
                info,
                key="" if len(infos) == 1 else str(n),
                shape=(int(frame.shape[0]), int(frame.shape[1])),
                pixel_size=px,
                t_scale=plan.t_scale or 1.0,
                z_scale=z_scale or None,
                unbounded_t=plan.unbounded_t,
                period=1,
                preferred_order=plan.order,
                fallback_channels=fallback,
                chunks=dict(options.get("chunks") or {}),
                shards=dict(options.get("shards") or {}),
            )
        )
    extra = {
        k: v
        for k, v in options.items()
        if k not in ("chunks", "shards", "pixel_size_um")
    }
    try:
        return AcquisitionSettings(
            layout="image" if len(images) == 1 else "collection",
            images=tuple(images),
            dtype=frame.dtype.name,
            positions_inside_time=plan.inside,
            **extra,
        )
    except ValueError as e:
        raise PlanError(str(e)) from e


def _frame_record(
    index: Mapping[str, int],
    channel: str | None,
    md: Mapping[str, Any],
) -> dict[str, Any]:
    """Per-frame metadata, with the keys `MDAWriter` uses where they mean the same."""
    record: dict[str, Any] = {
        "event_index": dict(index),
        "runner_time_ms": _float(md.get("ElapsedTime-ms")),
        "exposure_ms": _float(md.get("Exposure")),
        "camera_device": md.get("Camera"),
        "pixel_size_um": _float(md.get("PixelSize_um")),
        "channel": channel,
        "stage": {
            "x": _float(md.get("XPosition_um_Intended")),
            "y": _float(md.get("YPosition_um_Intended")),
            "z": _float(md.get("ZPosition_um_Intended")),
        },
    }
    if md.get("PositionName"):
        record["position_name"] = md["PositionName"]
    record["pycromanager"] = dict(md)
    return record


# ---- the hook ---------------------------------------------------------------------
class ZarrHook:
    """A pycromanager `image_process_fn` that streams every image into OME-Zarr.

    Each image is placed by its metadata ``Axes``: ``time`` -> t, ``z`` -> z,
    ``channel`` (a preset name, or an int index) -> c, ``position`` (an int or a
    label str) -> the image (a position of a collection). Other axes raise
    `PlanError` (a `ValueError`) at the first image that has one, which makes
    pycromanager abort the acquisition.

    The dataset's shape comes from, in order of preference:

    * `settings` (e.g. `AcquisitionSettings.from_useq(seq, core=core)`): the
      dataset is created here. ``position`` ints are image numbers
      (``settings.images`` order) and labels are image names.
    * `events` (the list given to ``acq.acquire``): created at the first image,
      whose shape, dtype and ``PixelSize_um`` it takes. Images are numbered by
      the first appearance of their ``position`` value; channels are numbered by
      the first appearance of their name.
    * neither: the images of the first time point are buffered (at most
      ``max_buffer_bytes``, default 256 MiB) until the first image of the next
      time point; they fix the positions, channels and z planes, and ``t`` grows
      without bound. A position, channel or plane that first appears later is an
      error naming what to pass instead (``events=`` or ``settings=``).

    Pycro-Manager does not tell an `image_process_fn` that the acquisition has
    ended: close the hook after the ``with Acquisition`` block (use it as a
    context manager, or call `close`), or pass `notification_callback` as
    ``notification_callback_fn`` to close on pycromanager's
    ``data_sink_finished`` notification.

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
        Replace an existing `path`.
    **settings_options
        Without `settings`: `compression`, `chunks`, `shards`, `pixel_size_um`
        (overrides ``PixelSize_um``), `max_buffer_bytes`, `on_full`,
        `flush_interval_s`.

    Raises
    ------
    PlanError
        For `events` with axes mmzarr cannot place, repeated axes, or events
        that do not fit `settings`.
    FileExistsError
        If `path` exists and not `overwrite`.

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
        self.path = Path(path)
        self.backend = backend
        self.keep_images = keep_images
        self.overwrite = overwrite
        unknown = sorted(set(settings_options) - _OPTIONS)
        if unknown:
            raise TypeError(
                f"ZarrHook: unknown option(s) {unknown}; options are {sorted(_OPTIONS)}"
            )
        if settings is not None and settings_options:
            raise TypeError(
                f"ZarrHook: options {sorted(settings_options)} apply only without "
                "settings=; put them in the settings"
            )
        self.settings_options = settings_options
        self.settings: AcquisitionSettings | None = settings
        self.stream: Stream | None = None
        self.error: BaseException | None = None
        self.frames_received = 0
        self.frames_ignored = 0
        self._lock = threading.RLock()
        self._closed = False
        self._plan: _Plan | None = None
        self._positions: dict[int | str | None, int] = {}
        self._pending: list[
            tuple[np.ndarray, dict[str, int | str], dict[str, Any]]
        ] = []
        self._pending_bytes = 0
        self._t0: int | None = None
        self._learned = False
        if events is not None:
            self._plan = self._plan_events(events)
            self._positions = self._plan.positions
        if settings is not None:
            if events is None:
                self._positions = {i: i for i in range(len(settings.images))}
                self._positions.update(
                    {im.name: i for i, im in enumerate(settings.images) if im.name}
                )
                if len(settings.images) == 1:
                    self._positions[None] = 0
            else:
                self._check_events_fit(settings)
            self.stream = create_stream(
                self.path, settings, backend=backend, overwrite=overwrite
            )
        elif self.path.exists() and not overwrite:
            raise FileExistsError(
                f"output {str(self.path)!r} already exists; pass overwrite=True to "
                "replace it"
            )

    # ---- pycromanager callbacks ----------------------------------------------------
    def __call__(
        self, image: np.ndarray, metadata: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Write one image (pycromanager calls this on its processing thread).

        Returns ``(image, metadata)`` with `keep_images`, else None. Errors are
        kept in `error` and raised, so that pycromanager aborts the acquisition;
        images that arrive after an error or `close` are counted in
        `frames_ignored`.
        """
        with self._lock:
            self.frames_received += 1
            if self.error is not None or self._closed:
                self.frames_ignored += 1
            else:
                try:
                    self._write(np.asarray(image), metadata)
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

    # ---- public ------------------------------------------------------------------
    def close(self) -> None:
        """Write what is still buffered, close the dataset, raise any error."""
        with self._lock:
            self._finish()
        if self.error is not None:
            raise self.error

    @property
    def closed(self) -> bool:
        """Whether the hook has been closed."""
        return self._closed

    @property
    def frames_written(self) -> int:
        """Images written to the dataset so far."""
        return self.stream.frames_written if self.stream is not None else 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        with self._lock:  # an error is on its way already; errors here are logged
            self._finish()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ZarrHook {str(self.path)!r} {self.frames_written} frames {state}>"

    # ---- internals -----------------------------------------------------------------
    def _plan_events(self, events: Any) -> _Plan:
        if isinstance(events, Mapping):
            events = [events]
        elif iter(events) is events:
            raise PlanError(
                "events: pass a list (the one given to acq.acquire), not an iterator "
                "that ZarrHook would consume"
            )
        entries = [_entry_from_event(ev, f"event {n}") for n, ev in enumerate(events)]
        if not entries:
            raise PlanError("events: the list is empty")
        plan = _build_plan(entries)
        times = {e.axes["time"] for e in entries if "time" in e.axes}
        if plan.t_scale is None and len(times) > 1 and self.settings is None:
            warnings.warn(_UNKNOWN_T, MMZarrWarning, stacklevel=3)
        return plan

    def _check_events_fit(self, settings: AcquisitionSettings) -> None:
        """Refuse events that `settings` cannot place, before anything runs."""
        assert self._plan is not None
        n_pos = len(self._plan.positions)
        if n_pos != len(settings.images):
            raise PlanError(
                f"events have {n_pos} positions but settings have "
                f"{len(settings.images)} images {settings.keys}"
            )
        for n, ev in enumerate(self._plan.events):
            image = int(ev.index.get("p", 0))
            axes: dict[str, int | str] = {
                a: ev.index[k] for a, k in AXES.items() if k in ev.index
            }
            if ev.channel is not None:
                axes["channel"] = ev.channel.config
            try:
                settings.locate(self._index(settings, image, axes))
            except FrameError as e:
                raise PlanError(f"event {n} does not fit the settings: {e}") from e

    def _write(self, frame: np.ndarray, md: Mapping[str, Any]) -> None:
        where = f"image {self.frames_received} (Axes {md.get('Axes')})"
        axes = _check_axes(md.get("Axes"), where)
        if self.stream is None:
            if self._plan is None:
                if self._buffer(frame, axes, md):
                    return
            else:
                self._open(
                    _settings_from_plan(self._plan, frame, md, self.settings_options)
                )
        self._append(frame, axes, md)

    def _open(self, settings: AcquisitionSettings) -> None:
        self.settings = settings
        self.stream = create_stream(
            self.path, settings, backend=self.backend, overwrite=self.overwrite
        )

    def _buffer(
        self, frame: np.ndarray, axes: dict[str, int | str], md: Mapping[str, Any]
    ) -> bool:
        """Learn mode: keep images of the first time point; False when it ended."""
        t = axes.get("time")
        if not self._pending:
            self._t0 = None if t is None else int(t)
        if t == self._t0:
            limit = int(self.settings_options.get("max_buffer_bytes", _DEFAULT_BUFFER))
            if self._pending_bytes + frame.nbytes > limit:
                raise PlanError(
                    f"the first time point is larger than max_buffer_bytes={limit}; "
                    "ZarrHook cannot learn the dataset's shape: pass events=<the list "
                    "given to acq.acquire> or settings=AcquisitionSettings(...)"
                )
            self._pending.append((frame.copy(), axes, dict(md)))
            self._pending_bytes += frame.nbytes
            return True
        self._flush_pending(next_image=(axes, md))
        return False

    def _flush_pending(
        self, next_image: tuple[dict[str, int | str], Mapping[str, Any]] | None = None
    ) -> None:
        """Learn mode: fix the shape from the buffered images and write them."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        entries = [_entry_from_metadata(ax, md) for _, ax, md in pending]
        unbounded = self._t0 is not None or (
            next_image is not None and "time" in next_image[0]
        )
        plan = _build_plan(entries, unbounded_t=unbounded, order="t")
        plan.t_scale = self._measured_t_scale(pending, next_image)
        self._plan = plan
        self._learned = True
        self._positions = plan.positions
        self._open(
            _settings_from_plan(
                plan, pending[0][0], pending[0][2], self.settings_options
            )
        )
        for frame, axes, md in pending:
            self._append(frame, axes, md)

    def _measured_t_scale(
        self,
        pending: Sequence[tuple[np.ndarray, dict[str, int | str], dict[str, Any]]],
        next_image: tuple[dict[str, int | str], Mapping[str, Any]] | None,
    ) -> float | None:
        """Seconds per time point from ``ElapsedTime-ms`` (learn mode)."""
        if next_image is None or self._t0 is None or "time" not in next_image[0]:
            return None
        axes, md = next_image
        same = [m for _, a, m in pending if {**a, "time": 0} == {**axes, "time": 0}]
        e0 = _float((same or [pending[0][2]])[0].get("ElapsedTime-ms"))
        e1 = _float(md.get("ElapsedTime-ms"))
        dt = int(axes["time"]) - self._t0
        if e0 is None or e1 is None or dt <= 0 or e1 <= e0:
            warnings.warn(_UNKNOWN_T, MMZarrWarning, stacklevel=2)
            return None
        return round((e1 - e0) / 1000 / dt, 3)

    def _hint(self) -> str:
        if self._learned:
            return (
                " (ZarrHook learned the dataset's shape from the first time point; "
                "pass events=<the list given to acq.acquire> or settings= to "
                "describe the whole acquisition)"
            )
        return ""

    def _image_number(self, axes: Mapping[str, int | str]) -> int:
        value = axes.get("position")
        try:
            return self._positions[value]
        except KeyError:
            known = [k for k in self._positions if k is not None]
            if value is None:
                raise FrameError(
                    f"Axes {dict(axes)} have no 'position' but the dataset has "
                    f"positions {known}"
                ) from None
            raise FrameError(
                f"position {value!r} is not one of the dataset's positions "
                f"{known}{self._hint()}"
            ) from None

    def _index(
        self, settings: AcquisitionSettings, image: int, axes: Mapping[str, int | str]
    ) -> dict[str, int]:
        im = settings.images[image]
        index = dict(im.coords)
        for name in ("time", "z"):
            if name in axes:
                index[AXES[name]] = int(axes[name])
        channel = axes.get("channel")
        if isinstance(channel, str):
            names = [c.name for c in im.channels]
            if "c" in im.dim_names and channel not in names:
                raise FrameError(
                    f"channel {channel!r} is not a channel of image {im.key!r} "
                    f"{names}{self._hint()}"
                )
            if "c" in im.dim_names:
                index["c"] = names.index(channel)
        elif channel is not None:
            index["c"] = int(channel)
        return index

    def _append(
        self, frame: np.ndarray, axes: dict[str, int | str], md: Mapping[str, Any]
    ) -> None:
        assert self.stream is not None
        settings = self.stream.settings
        image = self._image_number(axes)
        index = self._index(settings, image, axes)
        value = axes.get("channel")
        channel = value if isinstance(value, str) else None
        chans = settings.images[image].channels
        if isinstance(value, int) and index.get("c", len(chans)) < len(chans):
            channel = chans[index["c"]].name
        try:
            self.stream.append(
                frame, index=index, metadata=_frame_record(index, channel, md)
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
        if self.stream is None and self._pending and self.error is None:
            try:
                self._flush_pending()
            except Exception as e:
                self.error = e
                logger.error("mmzarr: writing %s failed: %s", self.path, e)
        stream = self.stream
        if stream is None or stream.closed:
            return
        try:
            stream.close("failed" if self.error is not None else None)
        except Exception as e:
            if self.error is None:
                self.error = e
            logger.error("mmzarr: closing %s failed: %s", self.path, e)


# ---- useq plan -> pycromanager events ---------------------------------------------
def _check_useq_event(ev: useq.MDAEvent) -> None:
    if not isinstance(ev.action, useq.AcquireImage):
        raise NotImplementedError(
            f"event {dict(ev.index)}: action {type(ev.action).__name__} (e.g. an "
            "autofocus_plan) has no Pycro-Manager event equivalent"
        )
    if ev.slm_image is not None or ev.roi is not None or ev.properties:
        raise NotImplementedError(
            f"event {dict(ev.index)}: slm_image/roi/properties are not translated "
            "to Pycro-Manager events"
        )
    if (ev.x_pos is None) != (ev.y_pos is None):
        raise PlanError(
            f"event {dict(ev.index)}: x={ev.x_pos}, y={ev.y_pos}; Pycro-Manager "
            "moves the XY stage only when an event has both x and y"
        )


def events_from_useq(
    seq: useq.MDASequence | Mapping[str, Any], *, core: Any = None
) -> list[dict[str, Any]]:
    """A useq plan as pycromanager event dicts, in the plan's order.

    Each event has ``axes`` (only the axes the plan uses: ``time``, ``position``,
    ``channel``, ``z``), and where the plan sets them ``x``, ``y``, ``z`` (µm),
    ``config_group`` (``[group, preset]``), ``exposure`` (ms), ``min_start_time``
    (s since the start); plain Python numbers, never ``tags``.

    ``channel`` is the preset name. ``position`` identifies one mmzarr image (a
    position, or one grid field of a position): it is the image's name (the
    position name, with ``_g0000``... for grid fields, as `MDAWriter` names
    images) when every image of the plan has a distinct name, otherwise the
    image number in plan order (0, 1, ...). Pycro-Manager puts a name in the
    image metadata as ``PositionName``.

    Parameters
    ----------
    seq
        A `useq.MDASequence` (or a dict useq accepts).
    core
        Optional core (camelCase API): as pymmcore-plus' engine does, grid plans
        then use the camera's field of view (ROI x pixel size).

    Raises
    ------
    PlanError
        For a plan useq rejects, an event generator, or a position with only
        one of x/y.
    NotImplementedError
        For events Pycro-Manager cannot run (autofocus actions, SLM images,
        ROIs, per-event properties).

    Examples
    --------
    >>> seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 1, "loops": 2})
    >>> events_from_useq(seq)[1]
    {'axes': {'time': 1, 'channel': 'DAPI'}, 'config_group': ['Channel', 'DAPI'], 'min_start_time': 1.0}
    """  # noqa: E501
    if not isinstance(seq, useq.MDASequence):
        if type(seq).__name__ == "GeneratorMDASequence":
            raise PlanError(
                "plan: a GeneratorMDASequence has no fixed list of events; build "
                "the event dicts yourself"
            )
        try:
            seq = useq.MDASequence.model_validate(seq)
        except Exception as e:
            raise PlanError(f"plan: useq rejected it: {e}") from e
    if core is not None and (fov := _engine_fov(core)) is not None:
        seq = _with_fov(seq, fov)
    mda = list(seq)
    for ev in mda:
        _check_useq_event(ev)
    infos = _collect(mda, _positions(seq))  # refuses slots acquired twice
    names = [_image_name(info) for info in infos.values()]
    by_name = all(names) and len(set(names)) == len(names)
    labels: dict[frozenset[tuple[str, int]], int | str] = {
        key: (str(names[n]) if by_name else n) for n, key in enumerate(infos)
    }
    has_position = any(labels)  # images have coords (p, g): the plan has positions
    order = [str(a) for a in seq.axis_order]
    events: list[dict[str, Any]] = []
    offset = last = 0.0
    for n, ev in enumerate(mda):
        index = {str(k): int(v) for k, v in ev.index.items()}
        axes: dict[str, int | str] = {}
        for a in [*order, "p"]:
            if a in ("p", "g"):
                if has_position and "position" not in axes:
                    coords = {k: v for k, v in index.items() if k not in NON_SPATIAL}
                    axes["position"] = labels[frozenset(coords.items())]
            elif a in index and a in NON_SPATIAL:
                name = {"t": "time", "c": "channel", "z": "z"}[a]
                axes[name] = ev.channel.config if a == "c" and ev.channel else index[a]
        out: dict[str, Any] = {"axes": axes}
        if ev.x_pos is not None and ev.y_pos is not None:
            out["x"], out["y"] = float(ev.x_pos), float(ev.y_pos)
        if ev.z_pos is not None:
            out["z"] = float(ev.z_pos)
        if ev.channel is not None:
            out["config_group"] = [ev.channel.group, ev.channel.config]
        if ev.exposure is not None:
            out["exposure"] = float(ev.exposure)
        if ev.reset_event_timer and n:
            offset = last  # pycromanager times are from the acquisition's start
        if ev.min_start_time is not None:
            last = offset + float(ev.min_start_time)
            out["min_start_time"] = last
        events.append(out)
    return events


# ---- pycromanager's Python engine on any core -------------------------------------
def _camel_to_snake(name: str) -> str:  # the same as mmpycorex/launcher.py:54-59
    s1 = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


class _SnakeCaseCore:
    """A core with mmpycorex's snake_case + TaggedImage API (what the engine calls).

    Unknown names (also camelCase ones) fall through to the wrapped core, so a
    `UniMMCore`'s Python devices are used.
    """

    def __init__(self, core: Any, launcher: Any) -> None:
        self._core = core
        self._snake = {
            _camel_to_snake(n): n for n in dir(type(core)) if not n.startswith("_")
        }
        self.TaggedImage = launcher.TaggedImage
        # bound to the proxy: they call self.get_image / self.pop_next_image_md
        self.get_tagged_image = types.MethodType(launcher.get_tagged_image, self)
        self.pop_next_tagged_image = types.MethodType(
            launcher.pop_next_tagged_image, self
        )

    def prepare_sequence_acquisition(self, camera_label: str) -> None:
        """No-op (engine.py:629).

        MMCore ignores it since 11.13 and `UniMMCore` deprecates it; its
        DeprecationWarning, raised in the engine thread under
        ``-W error``, silently ends an acquisition with 0 images.
        """

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, self._snake.get(name, name))


def _check_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in TESTED_VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            raise MissingDependencyError(
                f'{name} is not installed: pip install "mmzarr[pycromanager]"'
            ) from None
    if found != TESTED_VERSIONS:
        want = ", ".join(f"{k}=={v}" for k, v in TESTED_VERSIONS.items())
        got = ", ".join(f"{k}=={v}" for k, v in found.items())
        raise RuntimeError(
            f"unicore_backend relies on private internals of {want} and found "
            f"{got}; install those versions, or pass check_versions=False at your "
            "own risk"
        )


@contextlib.contextmanager
def unicore_backend(core: Any, *, check_versions: bool = True) -> Iterator[Any]:
    """Run ``pycromanager.Acquisition`` on `core` with pycromanager's Python engine.

    Why it is needed: ``pycromanager.start_headless(..., python_backend=True)``
    always creates its own bare ``pymmcore.CMMCore`` (mmpycorex/launcher.py:
    223-235), so an acquisition on it has no camera, and mmpycorex's snake_case
    core class binds the C++ ``CMMCore`` methods (launcher.py:70-77), which
    would bypass a `UniMMCore`'s Python devices. This context manager instead
    registers a snake_case proxy of `core` (a pymmcore-plus `CMMCorePlus` or
    `UniMMCore`, e.g. `mmzarr.demo.demo_core`), so that ``Acquisition(...)``
    inside it runs pycromanager's Python engine on it. No Java and no
    Micro-Manager installation are needed. Do not pass ``directory=`` to
    ``Acquisition`` under ``-W error``: ndstorage's NDTiff writer leaks a file
    handle (ResourceWarning).

    It relies on private internals of pycromanager 1.0.2 and mmpycorex 0.3.16
    (`TESTED_VERSIONS`; tested with pymmcore-plus 0.18.1):
    ``mmpycorex.launcher._PYMMCORES`` (read by ``is_pymmcore_active``, which
    makes ``Acquisition`` pick the Python backend), the ``Engine.singleton`` of
    ``pycromanager.acquisition.acq_eng_py.internal.engine`` and
    ``mmpycorex.launcher.{TaggedImage, get_tagged_image, pop_next_tagged_image}``.

    Parameters
    ----------
    core
        The core to run acquisitions on.
    check_versions
        Refuse other versions of pycromanager/mmpycorex than the tested ones.

    Yields
    ------
    Any
        The snake_case proxy of `core` that the engine uses.

    Raises
    ------
    RuntimeError
        For untested versions, or when another Python backend is active.
    MissingDependencyError
        If pycromanager is not installed.
    """
    if check_versions:
        _check_versions()
    try:  # untyped packages: import_module gives `Any` attributes
        launcher = importlib.import_module("mmpycorex.launcher")
        engine_module = "pycromanager.acquisition.acq_eng_py.internal.engine"
        Engine = importlib.import_module(engine_module).Engine
    except ImportError as e:  # pragma: no cover - covered by _check_versions
        raise MissingDependencyError(
            f'pycromanager is not installed: pip install "mmzarr[pycromanager]" ({e})'
        ) from e
    pymmcores = launcher._PYMMCORES  # noqa: SLF001 - the registry (launcher.py:88)
    if Engine.get_instance() is not None or pymmcores:
        raise RuntimeError(
            "another pycromanager Python backend is active (start_headless or "
            "unicore_backend); stop it first"
        )
    proxy = _SnakeCaseCore(core, launcher)
    pymmcores.append(proxy)  # -> is_pymmcore_active(): Acquisition is Python
    try:
        engine = Engine(proxy)  # sets Engine.singleton
        try:
            yield proxy
        finally:
            engine.shutdown()
            del Engine.singleton
    finally:
        pymmcores.remove(proxy)  # also keeps mmpycorex's atexit off the devices
