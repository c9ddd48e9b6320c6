"""Pycro-Manager events and image metadata -> frame slots, image places, settings.

`plan_events` reads the events list given to ``ZarrHook(events=...)``:

* events made by `events_from_useq` carry their useq index and their image's
  facts (``"mmzarr"``, see `_events.py`): the slots, and so the dataset, are
  those `AcquisitionSettings.from_useq` makes for the plan (plate, grid cells,
  sub-sequences, names, scales);
* events written by hand (pycromanager's documented
  ``{"axes": {...}, "x": ..., "config_group": [...]}`` dicts, or
  ``multi_d_acquisition_events``) are read by their axes: ``position`` -> an
  image, numbered by first appearance (named by a str value), ``time`` -> t,
  ``z`` -> z, ``channel`` -> c (named by a str value, numbered by first
  appearance);

and `plan_images` does the same for the metadata of the images buffered in
learn mode. Each event's `Place` is keyed by its ``axes``: pycromanager copies
them into the image metadata (``Axes``), so the hook finds the event of each
image there. The dataset shape rules are `mmzarr._plan`'s; an image's place
found from its ``Axes`` alone (in settings given to the hook) is `_placing`'s.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr._models import NON_SPATIAL
from mmzarr._plan import settings_from_slots
from mmzarr._settings import AcquisitionSettings
from mmzarr._slots import (
    ChannelUse,
    FrameSlot,
    ImageFacts,
    MMZarrWarning,
    PlanFacts,
    Stage,
    frame_format,
)
from mmzarr.errors import PlanError
from mmzarr.pycromanager._events import read_facts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mmzarr._slots import ImageId
    from mmzarr.pycromanager._events import EventFacts

#: pycromanager axis name (``AcqEngMetadata``'s axes) -> useq index key.
AXES: dict[str, str] = {"time": "t", "position": "p", "channel": "c", "z": "z"}
UNKNOWN_T = "time interval is unknown or 0: writing a t scale of 1 second"
#: ``Axes`` of an image (or an event's ``axes``), hashable.
AxesKey = frozenset[tuple[str, int | str]]
PositionValue = int | str | None


def check_axes(axes: Any, where: str) -> dict[str, int | str]:
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


def axes_key(axes: Mapping[str, int | str]) -> AxesKey:
    """`axes` as a dict key."""
    return frozenset(axes.items())


def as_float(value: Any) -> float | None:
    """A number from pycromanager metadata (str on the sequence path) or None."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def camera_channel(md: Mapping[str, Any]) -> int:
    """The camera channel of an image (``CameraChannelIndex``; 0 if not said).

    With several cameras (Micro-Manager's Multi Camera) the engine hands one
    image per camera channel for each event, all with the event's ``Axes``
    (``engine.py:310-396``); only this tag tells them apart. An image of a
    hardware sequence has the Multi Camera adapter's own tag
    (``Multi Camera-CameraChannelIndex``), which the engine trusts first.
    """
    for key in ("Multi Camera-CameraChannelIndex", "CameraChannelIndex"):
        value = as_float(md.get(key))
        if value is not None and value.is_integer():
            return int(value)
    return 0


@dataclass(frozen=True, slots=True)
class Entry:
    """What one event (or one image's metadata) says about its frame."""

    axes: dict[str, int | str]
    x: float | None = None
    y: float | None = None
    z: float | None = None
    config: str | None = None
    group: str | None = None
    start_s: float | None = None
    exposure: float | None = None
    facts: EventFacts | None = None


#: top-level event keys pycromanager 1.0 moves into the axes, and their axis
_GRID_KEYS = (("row", "row"), ("col", "column"))


def entry_from_event(event: Any, where: str) -> Entry:
    """An event dict's `Entry` (PlanError for what mmzarr cannot place)."""
    if not isinstance(event, Mapping) or "axes" not in event:
        raise PlanError(f"{where}: expected a dict with an 'axes' key, got {event!r}")
    group = event.get("config_group")
    axes = event["axes"]
    moved = {axis: event[key] for key, axis in _GRID_KEYS if key in event}
    if moved and isinstance(axes, Mapping):
        # pycromanager moves these (deprecated) keys into the axes it runs
        axes = {**axes, **moved}
    return Entry(
        axes=check_axes(axes, where),
        x=as_float(event.get("x")),
        y=as_float(event.get("y")),
        z=as_float(event.get("z")),
        config=str(group[1]) if group and len(group) > 1 else None,
        group=str(group[0]) if group and len(group) > 1 else None,
        start_s=as_float(event.get("min_start_time")),
        exposure=as_float(event.get("exposure")),
        facts=read_facts(event, where),
    )


def entry_from_metadata(axes: dict[str, int | str], md: Mapping[str, Any]) -> Entry:
    """An image's `Entry` from the metadata pycromanager's engine gives it.

    Keys: ``AcqEngMetadata.add_image_metadata`` (see tests/test_pycromanager.py).
    """
    elapsed = as_float(md.get("ElapsedTime-ms"))
    return Entry(
        axes=axes,
        x=as_float(md.get("XPosition_um_Intended")),
        y=as_float(md.get("YPosition_um_Intended")),
        z=as_float(md.get("ZPosition_um_Intended")),
        start_s=None if elapsed is None else elapsed / 1000,
        exposure=as_float(md.get("Exposure")),
    )


@dataclass(frozen=True, slots=True)
class Place:
    """Where the image of one event goes: image number and useq-style index.

    `channel` is the channel config it is acquired with (for the frame log).
    """

    image: int
    index: Mapping[str, int]
    channel: str | None


@dataclass(frozen=True, slots=True)
class EventPlan:
    """The slots of the events, and how to find each image's place.

    `positions` maps a ``position`` axis value to its image number, `places`
    an event's ``axes`` to its `Place`; `t_unknown` says that several time
    points have no known interval.
    """

    slots: tuple[FrameSlot, ...]
    plan: PlanFacts
    positions: Mapping[PositionValue, int]
    places: Mapping[AxesKey, Place]
    t_unknown: bool = False


def _check_unique_axes(entries: Sequence[Entry]) -> None:
    seen: dict[AxesKey, int] = {}
    for n, e in enumerate(entries):
        key = axes_key(e.axes)
        if key in seen:
            raise PlanError(
                f"event {n}: Axes {e.axes} repeat those of event {seen[key]}; every "
                "image needs its own axes or it would overwrite another"
            )
        seen[key] = n


def plan_events(entries: Sequence[Entry]) -> EventPlan:
    """The plan of an events list (`events_from_useq`'s, or written by hand)."""
    if not entries:
        raise PlanError("events: the list is empty")
    _check_unique_axes(entries)
    with_facts = sum(e.facts is not None for e in entries)
    if with_facts == 0:
        return _by_axes(entries, unbounded_t=False)
    if with_facts != len(entries):
        raise PlanError(
            f"events: {with_facts} of {len(entries)} events have an 'mmzarr' entry "
            "(made by events_from_useq); pass events_from_useq's list whole, or "
            "events without it"
        )
    return _from_facts(entries)


def _from_facts(entries: Sequence[Entry]) -> EventPlan:
    """Slots of `events_from_useq`'s events: their useq index and facts."""
    slots: list[FrameSlot] = []
    places: dict[AxesKey, Place] = {}
    positions: dict[PositionValue, int] = {}
    numbers: dict[frozenset[tuple[str, int]], int] = {}
    stage = Stage()  # an event without x stays where the last one with x was
    for e in entries:
        assert e.facts is not None
        at = stage.move(e.x, e.y, e.z)
        index = e.facts.index
        image: ImageId = tuple((k, v) for k, v in index.items() if k not in NON_SPATIAL)
        n = numbers.setdefault(frozenset(image), len(numbers))
        positions.setdefault(e.axes.get("position"), n)
        places[axes_key(e.axes)] = Place(n, index, e.config)
        slots.append(
            FrameSlot(
                image=image,
                t=index.get("t"),
                c=index.get("c"),
                z=index.get("z"),
                channel=ChannelUse(e.config, e.exposure, e.group) if e.config else None,
                x_um=at["x"],
                y_um=at["y"],
                z_um=at["z"],
                facts=e.facts.image,
            )
        )
    timed = {s.facts for s in slots if s.t is not None}
    return EventPlan(
        slots=tuple(slots),
        plan=entries[0].facts.plan if entries[0].facts else PlanFacts(),
        positions=positions,
        places=places,
        t_unknown=any(f.t_scale is None for f in timed)
        and len({s.t for s in slots}) > 1,
    )


def _by_axes(
    entries: Sequence[Entry], *, unbounded_t: bool, t_scale: float | None = None
) -> EventPlan:
    """Slots of events (or image metadata) read by their axes alone.

    With `unbounded_t` the entries are one time point (`t` = 0 for all) and
    `t_scale` is what was measured; otherwise it comes from the events'
    ``min_start_time`` (`t_unknown` when that does not say).
    """
    kinds = {type(e.axes["channel"]) for e in entries if "channel" in e.axes}
    if len(kinds) > 1:
        raise PlanError("channel axis values mix names (str) and indices (int)")
    has_p = any("position" in e.axes for e in entries)
    positions: dict[PositionValue, int] = {}
    channels: dict[str, int] = {}
    indices: list[dict[str, int]] = []
    starts: dict[int, dict[int, float]] = {}
    times: list[int] = []
    for e in entries:
        ax = e.axes
        p = positions.setdefault(ax.get("position"), len(positions))
        index: dict[str, int] = {"p": p} if has_p else {}
        if "time" in ax:
            index["t"] = 0 if unbounded_t else int(ax["time"])
            times.append(int(ax["time"]))
            if e.start_s is not None:
                starts.setdefault(p, {}).setdefault(int(ax["time"]), e.start_s)
        c = ax.get("channel")
        if c is not None:
            index["c"] = (
                channels.setdefault(c, len(channels)) if isinstance(c, str) else int(c)
            )
        if "z" in ax:
            index["z"] = int(ax["z"])
        indices.append(index)
    if not unbounded_t:
        t_scale = _t_scale(starts)
    names = {n: v for v, n in positions.items() if isinstance(v, str)}
    facts = {
        n: ImageFacts(name=names.get(n), t_scale=t_scale) for n in positions.values()
    }
    slots = []
    places: dict[AxesKey, Place] = {}
    stage = Stage()  # an event without x stays where the last one with x was
    for e, index in zip(entries, indices, strict=True):
        n = index.get("p", 0)
        label = e.axes.get("channel")
        # a channel index names no config: the event's config_group does
        config = label if isinstance(label, str) else e.config
        places[axes_key(e.axes)] = Place(n, index, config)
        at = stage.move(e.x, e.y, e.z)
        slots.append(
            FrameSlot(
                image=(("p", n),) if has_p else (),
                t=index.get("t"),
                c=index.get("c"),
                z=index.get("z"),
                channel=ChannelUse(config, e.exposure) if config else None,
                x_um=at["x"],
                y_um=at["y"],
                z_um=at["z"],
                facts=facts[n],
            )
        )
    first = entries[0].axes
    inside = not (has_p and times) or all(a <= b for a, b in itertools.pairwise(times))
    return EventPlan(
        slots=tuple(slots),
        plan=PlanFacts(
            axis_order="t" if unbounded_t else "".join(AXES[a] for a in first),
            positions_inside_time=inside,
            unbounded_t=unbounded_t,
        ),
        positions=positions,
        places=places,
        t_unknown=t_scale is None and len(set(times)) > 1,
    )


def _t_scale(starts: Mapping[int, Mapping[int, float]]) -> float | None:
    """Seconds per time point between the first two time points of an image.

    Of the first image with two time points (their indices may start above
    0, or skip some) a step apart in time. Warns when that image's time points
    are not evenly spaced (a list of `time_interval_s`): OME-Zarr has one t
    scale.
    """
    for ts in starts.values():
        points = sorted(ts)
        if len(points) < 2 or ts[points[1]] <= ts[points[0]]:
            continue
        first, second = points[:2]
        scale = round((ts[second] - ts[first]) / (second - first), 9)
        if any(
            not math.isclose(
                ts[t] - ts[first], (t - first) * scale, rel_tol=1e-6, abs_tol=1e-6
            )
            for t in points
        ):
            at = [round(ts[t] - ts[first], 6) for t in points]
            warnings.warn(
                f"the time points (at {at} s) are not evenly spaced: OME-Zarr has "
                f"one t scale, {scale:g} s (the first interval) is written; the "
                "frame log has each image's time",
                MMZarrWarning,
                stacklevel=2,
            )
        return scale
    return None


def plan_images(
    entries: Sequence[Entry], *, unbounded_t: bool, t_scale: float | None
) -> EventPlan:
    """The plan learned from the images of one time point (their metadata)."""
    return _by_axes(entries, unbounded_t=unbounded_t, t_scale=t_scale)


def measured_t_scale(
    first: Sequence[tuple[Mapping[str, int | str], Mapping[str, Any]]],
    t0: int,
    axes: Mapping[str, int | str],
    md: Mapping[str, Any],
) -> float | None:
    """Seconds per time point from ``ElapsedTime-ms`` (learn mode).

    `first` are the (axes, metadata) of the first time point `t0`, `axes` and
    `md` those of the first image after it; None (and a warning) when they
    do not tell.
    """
    if "time" not in axes:
        return None
    same = [m for a, m in first if {**a, "time": 0} == {**axes, "time": 0}]
    e0 = as_float((same or [first[0][1]])[0].get("ElapsedTime-ms"))
    e1 = as_float(md.get("ElapsedTime-ms"))
    dt = int(axes["time"]) - t0
    if e0 is None or e1 is None or dt <= 0 or e1 <= e0:
        warnings.warn(UNKNOWN_T, MMZarrWarning, stacklevel=3)
        return None
    seconds = (e1 - e0) / 1000 / dt
    # to the ms, or 3 significant digits for intervals under a ms (not 0)
    return round(seconds, 3) or float(f"{seconds:.3g}")


def settings_for(
    plan: EventPlan,
    frame: np.ndarray,
    md: Mapping[str, Any],
    options: Mapping[str, Any],
) -> AcquisitionSettings:
    """`AcquisitionSettings` for `plan`, with shape/dtype/pixel size of `frame`."""
    if frame.ndim != 2:
        raise PlanError(f"images must be 2D (y, x), got shape {frame.shape}")
    px = as_float(options.get("pixel_size_um")) or as_float(md.get("PixelSize_um"))
    fmt = frame_format(frame.shape, frame.dtype, px if px and px > 0 else None)
    return settings_from_slots(
        AcquisitionSettings,
        plan.slots,
        plan=plan.plan,
        frame=fmt,
        chunks=options.get("chunks"),
        shards=options.get("shards"),
        **{
            k: v
            for k, v in options.items()
            if k not in ("chunks", "shards", "pixel_size_um")
        },
    )


def frame_record(
    index: Mapping[str, int],
    channel: str | None,
    md: Mapping[str, Any],
) -> dict[str, Any]:
    """Per-frame metadata, with the keys `MDAWriter` uses where they mean the same."""
    record: dict[str, Any] = {
        "runner_time_ms": as_float(md.get("ElapsedTime-ms")),
        "exposure_ms": as_float(md.get("Exposure")),
        "camera_device": md.get("Camera"),
        "pixel_size_um": as_float(md.get("PixelSize_um")),
        "channel": channel,
        "stage": {
            "x": as_float(md.get("XPosition_um_Intended")),
            "y": as_float(md.get("YPosition_um_Intended")),
            "z": as_float(md.get("ZPosition_um_Intended")),
        },
    }
    if md.get("PositionName"):
        record["position_name"] = md["PositionName"]
    record["pycromanager"] = dict(md)
    return record
