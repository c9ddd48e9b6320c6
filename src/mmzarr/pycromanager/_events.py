"""`events_from_useq`: a useq plan as pycromanager event dicts; their `"mmzarr"` entry.

pycromanager's own event keys say where a frame is acquired (``axes``, ``x``,
``y``, ``z``, ``config_group``, ``exposure``, ``min_start_time``) but not what
the dataset needs beyond that: which image a frame belongs to (a grid cell, a
plate well's field) and its useq index, the image's name, time and z steps,
well, field and grid cell, and the plan's axis order and plate. Each event made
by `events_from_useq` carries them under the key `KEY` (``"mmzarr"``), as plain
JSON values; `read_facts` reads them back for `ZarrHook`.

Why pycromanager runs such events unchanged (pycromanager 1.0.2):

* ``acquisition_superclass._validate_acq_dict`` requires ``axes`` and only
  rewrites the top-level ``row``/``col`` keys (grid tiles) into the axes; it
  does not refuse other keys (a TODO there plans to: re-check on upgrade).
* The Python engine turns each dict into an event with
  ``AcquisitionEvent.from_json`` (``acq_eng_py/main/acquisition_event.py``,
  ``event_from_json``), which reads the keys it knows and ignores the others;
  the Java engine's ``AcquisitionEvent.fromJSON`` (AcqEngJ) reads known keys
  with ``json.has`` likewise.
* ``tags`` cannot carry them: ``event_from_json`` calls ``event.setTags``,
  which 1.0.2's ``AcquisitionEvent`` does not have (it has ``set_tags``), so
  an event with ``tags`` raises AttributeError in the engine. Nothing of an
  event reaches the image metadata but its ``axes`` (``Axes``) and stage
  positions, so `ZarrHook` reads these facts from the events list it is given
  and matches each image to its event by ``Axes``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import useq

from mmzarr._core_camera import camera_fov, with_fov
from mmzarr._from_useq import useq_plan
from mmzarr._models import NON_SPATIAL
from mmzarr._plan import settings_from_slots
from mmzarr._sequence import as_sequence
from mmzarr._settings import AcquisitionSettings
from mmzarr._slots import ChannelUse, FrameFormat, ImageFacts, PlanFacts, PlateFacts
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mmzarr._slots import FrameSlot

__all__ = ["KEY", "EventFacts", "events_from_useq", "read_facts"]

#: The event-dict key of what pycromanager's own keys cannot say.
KEY = "mmzarr"
#: Any frame: the layout of a plan does not depend on the frames' shape.
_ANY_FRAME = FrameFormat((1, 1), "uint16", 1.0)
_IMAGE_INTS = ("plate_row", "plate_col", "field", "grid_row", "grid_col")
_IMAGE_FLOATS = ("t_scale", "z_scale")


# ---- the "mmzarr" entry -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EventFacts:
    """The `KEY` entry of an event: its useq index and the facts it carries."""

    index: dict[str, int]
    image: ImageFacts
    plan: PlanFacts


def _image_entry(
    facts: ImageFacts, field: int | None, channels: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": facts.name} if facts.name is not None else {}
    for name in (*_IMAGE_FLOATS, *_IMAGE_INTS):
        value = field if name == "field" else getattr(facts, name)
        if value is not None:
            out[name] = value
    if channels:  # some `c` of the image is never acquired: name it by the plan
        out["channels"] = [[c.config, c.exposure, c.group] for c in facts.channels]
    return out


def _plan_entry(plan: PlanFacts) -> dict[str, Any]:
    out: dict[str, Any] = {
        "axis_order": plan.axis_order,
        "positions_inside_time": plan.positions_inside_time,
    }
    if plan.plate is not None:
        p = plan.plate
        out["plate"] = {"name": p.name, "rows": p.rows, "columns": p.columns}
    return out


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    return value


def _opt(value: Any, kind: Callable[[Any, str], Any], what: str) -> Any:
    return None if value is None else kind(value, what)


def _number(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a number, got {value!r}")
    return float(value)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {value!r}")
    return value


def _channel(entry: Any) -> ChannelUse:
    # [config, exposure, group]; the group may be left out
    config, exposure, *group = entry
    return ChannelUse(
        _str(config, "a channel config"),
        _opt(exposure, _number, "exposure"),
        _opt(group[0] if group else None, _str, "a channel group"),
    )


def _read(entry: Any) -> EventFacts:
    index = {
        _str(k, "an index key"): _int(v, f"index {k!r}")
        for k, v in entry["index"].items()
    }
    image, plan = entry.get("image", {}), entry.get("plan", {})
    plate = plan.get("plate")
    return EventFacts(
        index=index,
        image=ImageFacts(
            name=_opt(image.get("name"), _str, "name"),
            **{k: _opt(image.get(k), _number, k) for k in _IMAGE_FLOATS},
            **{k: _opt(image.get(k), _int, k) for k in _IMAGE_INTS},
            channels=tuple(_channel(c) for c in image.get("channels", ())),
        ),
        plan=PlanFacts(
            axis_order=_str(plan.get("axis_order", "tpgcz"), "axis_order"),
            positions_inside_time=bool(plan.get("positions_inside_time", True)),
            plate=None
            if plate is None
            else PlateFacts(
                _opt(plate.get("name"), _str, "plate name"),
                _int(plate["rows"], "plate rows"),
                _int(plate["columns"], "plate columns"),
            ),
        ),
    )


def read_facts(event: Mapping[str, Any], where: str) -> EventFacts | None:
    """The `KEY` entry of `event` (None if it has none); `PlanError` if malformed."""
    if KEY not in event:
        return None
    try:
        return _read(event[KEY])
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise PlanError(
            f"{where}: its '{KEY}' entry is not one events_from_useq makes "
            f"({type(e).__name__}: {e}): {event[KEY]!r}"
        ) from None


# ---- useq plan -> pycromanager events -----------------------------------------------
def _check_useq_event(ev: useq.MDAEvent) -> None:
    if not isinstance(ev.action, useq.AcquireImage):
        raise PlanError(
            f"event {dict(ev.index)}: action {type(ev.action).__name__} (e.g. an "
            "autofocus_plan) has no Pycro-Manager event equivalent"
        )
    if ev.slm_image is not None or ev.roi is not None or ev.properties:
        raise PlanError(
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
    (s since the start); plain Python numbers.

    ``position`` identifies one mmzarr image (a position, a grid cell of a
    position, a field of a well): it is the image's name (the position name,
    with ``_g0000``... for grid cells, as `MDAWriter` names images) when every
    image of the plan has a distinct name, otherwise the image number in plan
    order (0, 1, ...). ``channel`` is the image's channel name: the preset, or
    e.g. ``DAPI (30 ms)`` for the second use of one preset.

    ``"mmzarr"`` holds what pycromanager's keys cannot say, for
    ``ZarrHook(events=...)``: ``index`` (the useq event index), ``image`` (the
    image's ``name``, ``t_scale`` and ``z_scale``, ``plate_row``,
    ``plate_col`` and ``field`` in a plate, ``grid_row``/``grid_col``) and
    ``plan`` (``axis_order``, ``positions_inside_time``, ``plate`` name and
    size). pycromanager ignores it.

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
        For a plan useq rejects or `AcquisitionSettings.from_useq` refuses, an
        event generator, or a position with only one of x/y. Also for events
        Pycro-Manager cannot run (autofocus actions, SLM images, ROIs,
        per-event properties).

    Examples
    --------
    >>> seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 1, "loops": 2})
    >>> event = events_from_useq(seq)[1]
    >>> {k: v for k, v in event.items() if k != "mmzarr"}
    {'axes': {'time': 1, 'channel': 'DAPI'}, 'config_group': ['Channel', 'DAPI'], 'min_start_time': 1.0}
    >>> event["mmzarr"]["index"], event["mmzarr"]["image"]
    ({'t': 1, 'c': 0}, {'t_scale': 1.0})
    """  # noqa: E501
    seq = as_sequence(seq, generator_hint="build the event dicts yourself")
    if core is not None and (fov := camera_fov(core)) is not None:
        seq = with_fov(seq, fov)
    plan = useq_plan(seq)
    for ev in plan.events:
        _check_useq_event(ev)
    slots = plan.frame_slots
    # the dataset (refuses what from_useq refuses, e.g. a slot acquired twice)
    settings = settings_from_slots(
        AcquisitionSettings, slots, plan=plan.plan, frame=_ANY_FRAME
    )
    firsts = _first_slots(slots)
    numbers = {image: n for n, image in enumerate(firsts)}
    names = [slots[first].facts.name for first in firsts.values()]
    by_name = all(names) and len(set(names)) == len(names)
    has_position = any(s.image for s in slots)
    # the plan's axis order, then axes only a sub-sequence adds
    order = list(dict.fromkeys([*(str(a) for a in seq.axis_order), *"tpgcz"]))
    plan_entry = _plan_entry(plan.plan)
    unnamed = _unnamed_channels(slots)
    entries = [
        _image_entry(slots[first].facts, settings.images[n].field, image in unnamed)
        for n, (image, first) in enumerate(firsts.items())
    ]
    events: list[dict[str, Any]] = []
    offset = last = 0.0
    for k, (ev, slot) in enumerate(zip(plan.events, plan.slots, strict=True)):
        if slot is None:  # pragma: no cover - refused by _check_useq_event
            continue
        n = numbers[frozenset(slot.image)]
        index = {str(a): int(v) for a, v in ev.index.items()}
        channels = settings.images[n].channels
        axes: dict[str, int | str] = {}
        for a in order:
            if a in ("p", "g"):
                if has_position and "position" not in axes:
                    axes["position"] = str(names[n]) if by_name else n
            elif a in index and a in NON_SPATIAL:
                name = {"t": "time", "c": "channel", "z": "z"}[a]
                axes[name] = channels[index["c"]].name if a == "c" else index[a]
        out: dict[str, Any] = {"axes": axes}
        if ev.x_pos is not None and ev.y_pos is not None:
            out["x"], out["y"] = float(ev.x_pos), float(ev.y_pos)
        if ev.z_pos is not None:
            out["z"] = float(ev.z_pos)
        if ev.channel is not None:
            out["config_group"] = [ev.channel.group, ev.channel.config]
        if ev.exposure is not None:
            out["exposure"] = float(ev.exposure)
        if ev.reset_event_timer and k:
            offset = last  # pycromanager times are from the acquisition's start
        if ev.min_start_time is not None:
            last = offset + float(ev.min_start_time)
            out["min_start_time"] = last
        out[KEY] = {
            "index": index,
            "image": copy.deepcopy(entries[n]),
            "plan": copy.deepcopy(plan_entry),
        }
        events.append(out)
    return events


def _first_slots(slots: list[FrameSlot]) -> dict[frozenset[tuple[str, int]], int]:
    """Each image (in order of first appearance) and the number of its first slot."""
    firsts: dict[frozenset[tuple[str, int]], int] = {}
    for k, slot in enumerate(slots):
        firsts.setdefault(frozenset(slot.image), k)
    return firsts


def _unnamed_channels(slots: list[FrameSlot]) -> set[frozenset[tuple[str, int]]]:
    """Images some `c` index of which (below their largest) is never acquired."""
    cs: dict[frozenset[tuple[str, int]], set[int]] = {}
    for s in slots:
        if s.c is not None:
            cs.setdefault(frozenset(s.image), set()).add(s.c)
    return {image for image, c in cs.items() if len(c) != max(c) + 1}
