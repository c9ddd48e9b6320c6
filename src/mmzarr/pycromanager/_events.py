"""`events_from_useq`: a useq plan as pycromanager event dicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import useq

from mmzarr._settings import NON_SPATIAL
from mmzarr._useq import (
    _collect,
    _engine_fov,
    _image_name,
    _positions,
    _with_fov,
    as_sequence,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Mapping


# ---- useq plan -> pycromanager events ---------------------------------------------
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
        Also for events Pycro-Manager cannot run (autofocus actions, SLM
        images, ROIs, per-event properties).

    Examples
    --------
    >>> seq = useq.MDASequence(channels=["DAPI"], time_plan={"interval": 1, "loops": 2})
    >>> events_from_useq(seq)[1]
    {'axes': {'time': 1, 'channel': 'DAPI'}, 'config_group': ['Channel', 'DAPI'], 'min_start_time': 1.0}
    """  # noqa: E501
    seq = as_sequence(seq, generator_hint="build the event dicts yourself")
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
