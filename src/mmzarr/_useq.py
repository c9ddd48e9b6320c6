"""useq `MDASequence` -> `AcquisitionSettings`.

The plan is iterated with useq itself, so every ragged case (per-position
sub-sequences, `do_stack=False`, `acquire_every`, grids inside positions,
well-plate fields) is described by exactly the events useq will emit. This module
decides layout, image keys, shapes, scales, channel names and positions; it does no
I/O and never imports pymmcore-plus (a `core` is duck-typed).
"""

from __future__ import annotations

import itertools
import math
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import useq
from pydantic import ValidationError

from mmzarr._settings import (
    NGFF_ORDER,
    NON_SPATIAL,
    AcquisitionSettings,
    Channel,
    Compression,
    Dimension,
    ImageSettings,
    PlateSettings,
    StagePosition,
    default_color,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["MMZarrWarning", "row_name", "settings_from_useq"]

_UNITS = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}


class MMZarrWarning(UserWarning):
    """A plan that can be written but lacks information (e.g. no pixel size)."""


def row_name(i: int) -> str:
    """Plate row letters: 0 -> 'A', 25 -> 'Z', 26 -> 'AA'."""
    letters = string.ascii_uppercase
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = letters[r] + name
    return name


@dataclass(frozen=True)
class _ChannelUse:
    """A channel config as one `c` index of the plan acquires it."""

    config: str
    exposure: float | None


@dataclass
class _ImageEvents:
    """Everything the events of one image tell about it."""

    coords: dict[str, int]
    position: useq.Position | None
    first: useq.MDAEvent
    axes: list[str] = field(default_factory=list)
    acquired: list[tuple[int, ...]] = field(default_factory=list)
    channels: dict[int, _ChannelUse] = field(default_factory=dict)
    z_by_index: dict[int, float] = field(default_factory=dict)


def _positive_int(name: str, value: Any) -> int:
    try:
        ok = int(value) == value and int(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise PlanError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_shape(image_shape: Any) -> tuple[int, int]:
    try:
        items = tuple(image_shape)
    except TypeError:
        raise PlanError(
            f"image_shape: expected (height, width), got {image_shape!r}"
        ) from None
    if len(items) != 2:
        raise PlanError(f"image_shape: expected (height, width), got {image_shape!r}")
    for v in items:
        if isinstance(v, bool):
            raise PlanError(f"image_shape: {image_shape!r} is not (height, width)")
    try:
        return (
            _positive_int("image_shape height", items[0]),
            _positive_int("image_shape width", items[1]),
        )
    except PlanError:
        raise PlanError(
            f"image_shape: sizes must be positive integers, got {image_shape!r}"
        ) from None


def _check_axis_sizes(name: str, sizes: Any) -> dict[str, int]:
    """`chunks`/`shards`: a mapping of axis names to positive element counts."""
    if sizes is None:
        return {}
    if not isinstance(sizes, Mapping):
        raise PlanError(
            f"{name}: expected a mapping such as {{'y': 512}}, got {sizes!r}"
        )
    for k in sizes:
        if k not in NGFF_ORDER:
            raise PlanError(f"{name}: unknown axis {k!r}; axes are {NGFF_ORDER}")
    return {k: _positive_int(f"{name}[{k!r}]", v) for k, v in sizes.items()}


def _check_pixel_size(pixel_size_um: Any) -> float:
    if pixel_size_um is None:
        warnings.warn(
            "pixel_size_um is unknown: writing a y/x scale of 1 micrometer",
            MMZarrWarning,
            stacklevel=4,
        )
        return 1.0
    try:
        value = float(pixel_size_um)
    except (TypeError, ValueError):
        raise PlanError(
            f"pixel_size_um: expected a number > 0, got {pixel_size_um!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise PlanError(f"pixel_size_um: must be finite and > 0, got {pixel_size_um!r}")
    return value


def _check_dtype(dtype: Any) -> str:
    from mmzarr._settings import _check_dtype as check

    try:
        return check(dtype)
    except ValueError as e:
        raise PlanError(str(e)) from None


def _from_core(core: Any) -> tuple[tuple[int, int], str, float | None]:
    shape = (int(core.getImageHeight()), int(core.getImageWidth()))
    nbytes = int(core.getBytesPerPixel())
    dtype = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}.get(nbytes, "uint16")
    px = float(core.getPixelSizeUm())
    return shape, dtype, (px if px > 0 else None)


def _engine_fov(core: Any) -> tuple[float, float] | None:
    """The field of view (width, height) in µm pymmcore-plus gives grid plans.

    Its engine overwrites every grid plan's `fov_width`/`fov_height` with the
    camera ROI times the pixel size before it iterates the plan (and leaves them
    alone when the pixel size is unknown), so the positions it visits are those.
    """
    px = float(core.getPixelSizeUm())
    if not px > 0:
        return None
    *_, w, h = core.getROI()
    return float(w) * px, float(h) * px


def _with_fov(seq: useq.MDASequence, fov: tuple[float, float]) -> useq.MDASequence:
    """A copy of `seq` whose grid plans use the camera's field of view."""
    w, h = fov
    update: dict[str, Any] = {}
    if seq.grid_plan is not None and hasattr(seq.grid_plan, "fov_width"):
        update["grid_plan"] = seq.grid_plan.model_copy(
            update={"fov_width": w, "fov_height": h}
        )
    if isinstance(seq.stage_positions, useq.WellPlatePlan):
        return seq.model_copy(update=update) if update else seq
    positions = []
    changed = False
    for p in seq.stage_positions:
        sub = p.sequence
        if sub is not None and sub.grid_plan is not None:
            sub = sub.model_copy(
                update={
                    "grid_plan": sub.grid_plan.model_copy(
                        update={"fov_width": w, "fov_height": h}
                    )
                }
            )
            p = p.model_copy(update={"sequence": sub})
            changed = True
        positions.append(p)
    if changed:
        update["stage_positions"] = tuple(positions)
    return seq.model_copy(update=update) if update else seq


def _time_scale(plan: Any) -> float | None:
    """Seconds between time points, or None when the plan does not say."""
    if plan is None:
        return None
    if isinstance(plan, useq.MultiPhaseTimePlan):
        for phase in plan.phases:
            s = _time_scale(phase)
            if s:
                return s
        return None
    if isinstance(plan, useq.TDurationLoops):
        if plan.loops < 2:
            return None
        return plan.duration.total_seconds() / (plan.loops - 1) or None
    interval = getattr(plan, "interval", None)
    if isinstance(interval, timedelta):
        return interval.total_seconds() or None
    return None


def _z_scale(plan: Any) -> float | None:
    """Distance between planes (µm) of a z plan, or None when it has no step."""
    if plan is None:
        return None
    step = getattr(plan, "step", None)
    if step:
        return abs(float(step))
    zs = list(plan)
    if len(zs) > 1 and zs[1] != zs[0]:
        return abs(float(zs[1]) - float(zs[0]))
    return None


def _from_plan(
    seq: useq.MDASequence, info: _ImageEvents, *, unbounded_t: bool
) -> dict[str, Any]:
    """Scales and channel names of an image from the (sub-)plan that governs it."""
    pos = info.position
    t_scale = None
    if unbounded_t or "t" in info.axes:
        t_scale = _time_scale(_plan_of(seq, pos, "time_plan"))
    sub = pos.sequence if pos is not None else None
    channels = sub.channels if sub is not None and sub.channels else seq.channels
    return {
        "t_scale": t_scale or 1.0,
        "t_unknown": t_scale is None and (unbounded_t or "t" in info.axes),
        "z_scale": _z_scale(_plan_of(seq, pos, "z_plan")),
        "fallback_channels": {
            i: _ChannelUse(c.config, c.exposure) for i, c in enumerate(channels)
        },
    }


def _plan_of(seq: useq.MDASequence, position: useq.Position | None, attr: str) -> Any:
    """The `time_plan`/`z_plan` that governs the images of `position`."""
    sub = position.sequence if position is not None else None
    if sub is not None and getattr(sub, attr) is not None:
        return getattr(sub, attr)
    return getattr(seq, attr)


def _skip_period(seq: useq.MDASequence) -> int:
    everies = [c.acquire_every for c in seq.channels]
    for p in seq.stage_positions:
        if p.sequence is not None:
            everies += [c.acquire_every for c in p.sequence.channels]
    return math.lcm(*everies) if everies else 1


def _positions(seq: useq.MDASequence) -> list[useq.Position]:
    return list(seq.stage_positions)


def _acquires_image(event: useq.MDAEvent) -> bool:
    """Whether `event` produces a frame (autofocus and custom actions do not)."""
    action = getattr(event, "action", None)
    return action is None or getattr(action, "type", "acquire_image") == "acquire_image"


def _collect(
    events: Iterable[useq.MDAEvent], positions: Sequence[useq.Position]
) -> dict[frozenset[tuple[str, int]], _ImageEvents]:
    images: dict[frozenset[tuple[str, int]], _ImageEvents] = {}
    for ev in events:
        if not _acquires_image(ev):
            continue  # e.g. a hardware-autofocus event: no frame
        # useq's keys are `Axis` str-enums; keep plain strings
        index = {str(k): int(v) for k, v in ev.index.items()}
        coords = {k: v for k, v in index.items() if k not in NON_SPATIAL}
        key = frozenset(coords.items())
        info = images.get(key)
        if info is None:
            p = coords.get("p")
            pos = positions[p] if p is not None and p < len(positions) else None
            info = images[key] = _ImageEvents(coords=coords, position=pos, first=ev)
        for ax in NON_SPATIAL:
            if ax in index and ax not in info.axes:
                info.axes.append(ax)
        info.acquired.append(tuple(int(index.get(a, 0)) for a in NON_SPATIAL))
        if ev.channel is not None and "c" in index:
            info.channels.setdefault(
                int(index["c"]), _ChannelUse(ev.channel.config, ev.exposure)
            )
        if ev.z_pos is not None:
            info.z_by_index.setdefault(int(index.get("z", 0)), float(ev.z_pos))
    for info in images.values():
        _check_no_repeats(info)
    return images


def _check_no_repeats(info: _ImageEvents) -> None:
    """Refuse a plan that acquires one storage slot of an image twice."""
    if len(set(info.acquired)) == len(info.acquired):
        return
    seen: set[tuple[int, ...]] = set()
    for idx in info.acquired:
        if idx in seen:
            slot = {
                a: v for a, v in zip(NON_SPATIAL, idx, strict=True) if a in info.axes
            }
            raise PlanError(
                f"{_describe(info)}: the plan acquires {slot} more than "
                "once (e.g. a position sub-sequence time plan inside the main time "
                "plan), so frames would overwrite each other; give the time plan "
                "either to the sequence or to its positions"
            )
        seen.add(idx)


def _acquisition_order(
    axes: Sequence[str], acquired: Sequence[tuple[int, ...]], preferred: str
) -> tuple[str, ...]:
    """The axis order (outermost first) in which `acquired` strictly increases."""
    pos = {a: i for i, a in enumerate(axes)}
    pref = tuple(a for a in preferred if a in axes)
    # a sub-sequence may add an axis the main axis_order leaves out
    pref += tuple(a for a in axes if a not in pref)
    candidates = [pref, *itertools.permutations(axes)]
    for order in candidates:
        keys = [tuple(idx[pos[a]] for a in order) for idx in acquired]
        if all(a < b for a, b in itertools.pairwise(keys)):
            return tuple(order)
    # not appendable in any order (e.g. a repeated index): storage order
    return tuple(a for a in NON_SPATIAL if a in axes)


def _describe(info: _ImageEvents) -> str:
    """`position p=1 ('name')` for error messages."""
    coords = ", ".join(f"{k}={v}" for k, v in info.coords.items()) or "(none)"
    name = info.position.name if info.position is not None else None
    return f"position {coords}" + (f" ({name!r})" if name else "")


def _image_name(info: _ImageEvents) -> str | None:
    name = info.first.pos_name or (info.position.name if info.position else None)
    g = info.coords.get("g")
    if g is not None:
        base = name or f"Pos{info.coords.get('p', 0)}"
        return f"{base}_g{g:04d}"
    return name


def _image_settings(
    info: _ImageEvents,
    *,
    key: str,
    shape: tuple[int, int],
    pixel_size: float,
    t_scale: float,
    z_scale: float | None,
    unbounded_t: bool,
    period: int,
    preferred_order: str,
    fallback_channels: Mapping[int, _ChannelUse],
    chunks: Mapping[str, int],
    shards: Mapping[str, int],
    row: str | None = None,
    column: str | None = None,
    field_index: int | None = None,
) -> ImageSettings:
    axes = [a for a in NON_SPATIAL if a in info.axes]
    if unbounded_t and "t" not in axes:
        axes.insert(0, "t")
    pos = [NON_SPATIAL.index(a) for a in axes]
    acquired = [tuple(idx[i] for i in pos) for idx in info.acquired]
    sizes = {a: max(idx[i] for idx in acquired) + 1 for i, a in enumerate(axes)}
    if unbounded_t:
        sizes["t"] = period
    full = set(itertools.product(*(range(sizes[a]) for a in axes)))
    skipped = tuple(sorted(full - set(acquired)))

    if z_scale is None and "z" in axes and sizes["z"] > 1:
        z0, z1 = info.z_by_index.get(0), info.z_by_index.get(1)
        if z0 is not None and z1 is not None and z1 != z0:
            z_scale = abs(z1 - z0)
    scales = {"t": t_scale, "c": 1.0, "z": z_scale or 1.0}
    dims: list[Dimension] = []
    for a in axes:
        size: int | None = None if (a == "t" and unbounded_t) else sizes[a]
        dims.append(
            Dimension(
                name=a,
                size=size,
                chunk=chunks.get(a, 1),
                shard=shards.get(a),
                unit=_UNITS.get(a),
                scale=scales[a],
            )
        )
    for a, n in zip(("y", "x"), shape, strict=True):
        dims.append(
            Dimension(
                name=a,
                size=n,
                chunk=min(chunks.get(a, n), n),
                shard=shards.get(a),
                unit="micrometer",
                scale=pixel_size,
            )
        )
    channels: tuple[Channel, ...] = ()
    if "c" in axes:
        found = [
            info.channels.get(i) or fallback_channels.get(i) for i in range(sizes["c"])
        ]
        channels = _channels(found)
    first = info.first
    z0 = info.z_by_index.get(0, first.z_pos)
    return ImageSettings(
        key=key,
        name=_image_name(info),
        dimensions=tuple(dims),
        acquisition_order=_acquisition_order(axes, acquired, preferred_order),
        channels=channels,
        stage_position=StagePosition(x=first.x_pos, y=first.y_pos, z=z0),
        coords=info.coords,
        row=row,
        column=column,
        field=field_index,
        skipped=skipped,
        skip_period=period if unbounded_t else None,
    )


def _channels(found: Sequence[_ChannelUse | None]) -> tuple[Channel, ...]:
    """Channels with unique labels; each keeps its config and exposure.

    A config used once is its own label. A config used at several `c` indices
    (e.g. DAPI at 10 ms and at 30 ms) is labelled by its exposure when that tells
    them apart (`DAPI`, `DAPI (30 ms)`), else numbered (`DAPI`, `DAPI (2)`).
    """
    configs = [ch.config if ch is not None else None for ch in found]
    labels: list[str] = []
    for i, ch in enumerate(found):
        if ch is None:
            labels.append(f"Channel {i}")
            continue
        same = [j for j, c in enumerate(configs) if c == ch.config]
        exposures = [u.exposure for j in same if (u := found[j]) is not None]
        if same[0] == i:
            labels.append(ch.config)
        elif ch.exposure is not None and exposures.count(ch.exposure) == 1:
            labels.append(f"{ch.config} ({ch.exposure:g} ms)")
        else:
            labels.append(f"{ch.config} ({same.index(i) + 1})")
    return tuple(
        Channel(
            name=label,
            color=default_color(ch.config if ch else label, i),
            config=ch.config if ch is not None else None,
            exposure_ms=ch.exposure if ch is not None else None,
        )
        for i, (label, ch) in enumerate(zip(unique_names(labels), found, strict=True))
    )


def unique_names(names: Sequence[str]) -> list[str]:
    """`names` with repeats made unique by a suffix (`a`, `a_2`, `a_3`).

    The first occurrence keeps its name; a suffix never collides with a name
    already in the list.
    """
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        new, k = name, 2
        while new in seen or (new != name and new in taken):
            new, k = f"{name}_{k}", k + 1
        seen.add(new)
        out.append(new)
    return out


def _plate_geometry(
    seq: useq.MDASequence, infos: Sequence[_ImageEvents]
) -> tuple[str | None, int, int]:
    plan = seq.stage_positions
    if isinstance(plan, useq.WellPlatePlan):
        return plan.plate.name, int(plan.plate.rows), int(plan.plate.columns)
    rows = max(int(i.position.plate_row or 0) for i in infos if i.position) + 1
    cols = max(int(i.position.plate_col or 0) for i in infos if i.position) + 1
    return None, rows, cols


def _plate_layout(
    seq: useq.MDASequence, infos: Sequence[_ImageEvents]
) -> tuple[PlateSettings, list[tuple[str, str, int]]]:
    name, n_rows, n_cols = _plate_geometry(seq, infos)
    placements: list[tuple[str, str, int]] = []
    wells: list[str] = []
    fields: dict[str, int] = {}
    claims: dict[tuple[str, Any], int] = {}
    for info in infos:
        pos = info.position
        where = _describe(info)
        if pos is None or pos.plate_row is None or pos.plate_col is None:
            raise PlanError(
                f"{where}: some positions of the plan are in plate wells "
                f"(plate_row/plate_col) but this one is not (plate_row="
                f"{getattr(pos, 'plate_row', None)!r}, plate_col="
                f"{getattr(pos, 'plate_col', None)!r})"
            )
        r, c = int(pos.plate_row), int(pos.plate_col)
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            raise PlanError(
                f"{where}: well plate_row={r}, plate_col={c} is outside the "
                f"{n_rows}x{n_cols} plate (rows 0-{n_rows - 1}, columns "
                f"0-{n_cols - 1})"
            )
        well = f"{row_name(r)}/{c + 1}"
        g = info.coords.get("g")
        identity: str | None = None
        if g is None and pos.name:
            identity = f"name={pos.name!r}"
        elif g is None and pos.grid_row is not None and pos.grid_col is not None:
            identity = f"grid_row={pos.grid_row}, grid_col={pos.grid_col}"
        if identity is not None:
            if (well, identity) in claims:
                raise PlanError(
                    f"positions p={claims[(well, identity)]} and "
                    f"p={info.coords.get('p')} both claim the field with {identity} "
                    f"of well {well.replace('/', '')}; give them distinct names"
                )
            claims[(well, identity)] = int(info.coords.get("p", 0))
        if well not in fields:
            wells.append(well)
            fields[well] = 0
        placements.append((row_name(r), str(c + 1), fields[well]))
        fields[well] += 1
    plate = PlateSettings(
        name=name,
        rows=tuple(row_name(i) for i in range(n_rows)),
        columns=tuple(str(i + 1) for i in range(n_cols)),
        wells=tuple(wells),
    )
    return plate, placements


def _unique_image_names(images: list[ImageSettings]) -> list[ImageSettings]:
    """Images whose names repeat (two positions called `A`) get a suffix."""
    named = [im.name for im in images if im.name is not None]
    fresh = iter(unique_names(named))
    return [
        im
        if im.name is None
        else (im if (n := next(fresh)) == im.name else im.replace(name=n))
        for im in images
    ]


def _independent_copy(seq: useq.MDASequence) -> useq.MDASequence:
    """A copy of `seq` that shares no object with it.

    Some plan parts keep state while they are iterated (useq's autofocus plans
    remember the previous event), and pymmcore-plus' runner iterates the user's
    object on its own thread while a handler describes the plan: iterating a
    shared object from two threads corrupts both iterations.
    """
    try:
        return type(seq).model_validate(seq.model_dump())
    except Exception:  # a subclass that does not round-trip: a deep copy
        return seq.model_copy(deep=True)


def _frame_events(seq: useq.MDASequence) -> list[useq.MDAEvent]:
    """Every event useq yields for `seq`; a plan useq cannot iterate is a PlanError."""
    _check_time_plans(seq)
    try:
        return list(seq)
    except PlanError:
        raise
    except Exception as e:
        raise PlanError(
            f"plan: useq cannot iterate it ({type(e).__name__}: {e})"
        ) from e


def _check_time_plans(seq: useq.MDASequence) -> None:
    """Time plans useq would iterate forever or divide by zero on."""
    plans = [("time_plan", seq.time_plan)]
    for i, p in enumerate(_positions(seq)):
        if p.sequence is not None:
            plans.append(
                (f"stage_positions[{i}].sequence.time_plan", p.sequence.time_plan)
            )
    for where, plan in plans:
        phases = plan.phases if isinstance(plan, useq.MultiPhaseTimePlan) else [plan]
        for k, phase in enumerate(phases):
            name = f"{where}.phases[{k}]" if len(phases) > 1 else where
            interval = getattr(phase, "interval", None)
            duration = getattr(phase, "duration", None)
            if (
                isinstance(phase, useq.TIntervalDuration)
                and interval is not None
                and interval.total_seconds() == 0
            ):
                seconds = duration.total_seconds() if duration is not None else None
                raise PlanError(
                    f"{name}: interval 0 with duration {seconds:g} s has no number "
                    "of time points; give loops (TIntervalLoops) or an interval > 0"
                )


def as_sequence(seq: Any, *, generator_hint: str) -> useq.MDASequence:
    """`seq` as a `useq.MDASequence` (a dict is validated); `PlanError` otherwise.

    An event generator's `GeneratorMDASequence` has no fixed list of events:
    it is refused with `generator_hint`.
    """
    if isinstance(seq, useq.MDASequence):
        return _independent_copy(seq)
    if type(seq).__name__ == "GeneratorMDASequence":
        raise PlanError(
            f"plan: a GeneratorMDASequence has no fixed shape; {generator_hint}"
        )
    try:
        return useq.MDASequence.model_validate(seq)
    except Exception as e:
        raise PlanError(f"plan: useq rejected it: {e}") from e


def settings_from_useq(
    seq: useq.MDASequence | Mapping[str, Any],
    *,
    image_shape: tuple[int, int] | None = None,
    dtype: Any = None,
    pixel_size_um: float | None = None,
    core: Any = None,
    unbounded_t: bool = False,
    compression: Compression = "none",
    chunks: Mapping[str, int] | None = None,
    shards: Mapping[str, int] | None = None,
    **options: Any,
) -> AcquisitionSettings:
    """Build `AcquisitionSettings` for a useq plan.

    Parameters
    ----------
    seq
        A `useq.MDASequence` (or a dict useq accepts).
    image_shape, dtype, pixel_size_um
        Frame (height, width), pixel type and pixel size in µm. Taken from `core`
        when not given.
    core
        A `CMMCorePlus` (or anything with `getImageHeight`, `getImageWidth`,
        `getBytesPerPixel`, `getPixelSizeUm`, `getROI`). When it knows the pixel
        size, grid plans use the camera's field of view (ROI x pixel size), as
        pymmcore-plus' engine does before it runs the plan; without a core the
        plan's own `fov_width`/`fov_height` are kept.
    unbounded_t
        Treat time as unbounded: one period of the plan describes a time point and
        `t` grows as frames arrive.
    compression, chunks, shards
        Storage options; `chunks`/`shards` map axis names to element counts.
    **options
        Other `AcquisitionSettings` fields (`max_buffer_bytes`, `on_full`,
        `flush_interval_s`).

    Raises
    ------
    PlanError
        (a `ValueError`) naming the bad field and value; also for a plan useq
        cannot iterate and one that acquires one storage slot twice (a
        position's own time plan nested in the sequence's time plan).
    """
    seq = as_sequence(
        seq,
        generator_hint="pass a template MDASequence for one time point with "
        "unbounded_t=True",
    )

    core_shape, core_dtype, core_px = (None, None, None)
    fov = None
    if core is not None:
        core_shape, core_dtype, core_px = _from_core(core)
        fov = _engine_fov(core)
    shape = _check_shape(image_shape if image_shape is not None else core_shape)
    dtype_name = _check_dtype(dtype if dtype is not None else core_dtype or "uint16")
    pixel_size = _check_pixel_size(
        pixel_size_um if pixel_size_um is not None else core_px
    )
    if fov is not None:
        seq = _with_fov(seq, fov)

    period = _skip_period(seq)
    iter_seq = seq
    if unbounded_t:
        iter_seq = seq.model_copy(
            update={"time_plan": useq.TIntervalLoops(interval=0, loops=period)}
        )
    positions = _positions(iter_seq)
    infos = list(_collect(_frame_events(iter_seq), positions).values())
    if not infos:
        raise PlanError(
            f"plan: the MDASequence is empty (it yields no events): {seq!r}"
        )

    per_image = [_from_plan(seq, info, unbounded_t=unbounded_t) for info in infos]
    # pop from every image (a generator inside any() would stop at the first)
    unknown = [p.pop("t_unknown") for p in per_image]
    if any(unknown):
        warnings.warn(
            "time interval is unknown or 0: writing a t scale of 1 second",
            MMZarrWarning,
            stacklevel=3,
        )

    common = {
        "shape": shape,
        "pixel_size": pixel_size,
        "unbounded_t": unbounded_t,
        "period": period,
        "preferred_order": "".join(seq.axis_order),
        "chunks": _check_axis_sizes("chunks", chunks),
        "shards": _check_axis_sizes("shards", shards),
    }
    try:
        return _assemble(
            seq, infos, per_image, dtype_name, compression, common, options
        )
    except PlanError:
        raise
    except ValidationError as e:
        raise PlanError(_describe_errors(e)) from e
    except ValueError as e:
        raise PlanError(str(e)) from e


def _describe_errors(error: ValidationError) -> str:
    """Pydantic's errors as `field: problem, got value`."""
    parts = []
    for err in error.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in err["loc"])
        if loc and err["type"] == "value_error":
            msg = f"{loc}: {msg}"  # our validators name the value already
        elif loc:
            msg = f"{loc}: {msg}, got {err['input']!r}"
        parts.append(msg)
    return "; ".join(parts)


def _assemble(
    seq: useq.MDASequence,
    infos: Sequence[_ImageEvents],
    per_image: Sequence[Mapping[str, Any]],
    dtype_name: str,
    compression: Compression,
    common: Mapping[str, Any],
    options: Mapping[str, Any],
) -> AcquisitionSettings:
    """Layout, image keys and the settings model for the collected events."""
    is_plate = any(
        i.position is not None and i.position.plate_row is not None for i in infos
    )
    plate: PlateSettings | None = None
    if is_plate:
        layout = "plate"
        plate, placements = _plate_layout(seq, infos)
        images = [
            _image_settings(
                info,
                key=f"{r}/{c}/{f}",
                row=r,
                column=c,
                field_index=f,
                **sc,
                **common,
            )
            for info, sc, (r, c, f) in zip(infos, per_image, placements, strict=True)
        ]
    elif len(infos) == 1:
        layout = "image"
        images = [_image_settings(infos[0], key="", **per_image[0], **common)]
    else:
        layout = "collection"
        images = [
            _image_settings(info, key=str(i), **sc, **common)
            for i, (info, sc) in enumerate(zip(infos, per_image, strict=True))
        ]
    images = _unique_image_names(images)
    order = "".join(seq.axis_order)
    inside = "t" not in order or "p" not in order or order.index("t") < order.index("p")
    return AcquisitionSettings(
        layout=layout,
        images=tuple(images),
        dtype=dtype_name,
        plate=plate,
        compression=compression,
        positions_inside_time=inside,
        **options,
    )
