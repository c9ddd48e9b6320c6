"""Pycromanager axes and events -> mmzarr placement and settings."""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import useq

from mmzarr._settings import NON_SPATIAL, AcquisitionSettings
from mmzarr._useq import (
    MMZarrWarning,
    _ChannelUse,
    _collect,
    _image_settings,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence


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
    exposure: float | None = None


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
        exposure=_float(event.get("exposure")),
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
                exposure=e.exposure,
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
    fallback = {c: _ChannelUse(name, None) for name, c in plan.channels.items()}
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
