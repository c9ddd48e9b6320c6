"""Frame slots -> settings: layout, keys, shapes, names, channels, in small steps.

`settings_from_slots` turns the typed description of an acquisition
(`_slots.py`: one `FrameSlot` per frame, `PlanFacts`, `FrameFormat`) into
settings:

1. `group_slots`: what the slots of each image say (`ImageSlots`: axes,
   acquired slots, channels, z positions); a slot acquired twice is refused;
2. `place_images` (`_placement.py`): layout, image keys and the plate;
3. `image_settings`: each image's dimensions, channels and acquisition order;
4. the settings class it is given (`AcquisitionSettings`) validates the whole.

Where an image and its planes are on the stage (and the warning when its
frames are elsewhere) is `_stage_rules`'s. It does not import `_settings`: the
settings class is passed in, so `_settings.py` (through `_from_useq.py`) uses
this module without an import cycle. It knows no plan library.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from mmzarr._fields import pixel_axis, printable
from mmzarr._models import (
    NON_SPATIAL,
    Channel,
    Dimension,
    ImageSettings,
    default_color,
)
from mmzarr._placement import Placement, place_images
from mmzarr._routing import default_order
from mmzarr._slots import (
    ChannelUse,
    axis_sizes,
    describe_image,
)
from mmzarr._stage_rules import (
    frames_elsewhere,
    stage_position,
    warn_frames_elsewhere,
    z_scale,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from mmzarr._settings import AcquisitionSettings
    from mmzarr._slots import (
        FrameFormat,
        FrameSlot,
        ImageFacts,
        ImageId,
        PlanFacts,
    )

__all__ = [
    "ImageSlots",
    "group_slots",
    "image_settings",
    "settings_from_slots",
    "unique_names",
]

S = TypeVar("S", bound="AcquisitionSettings")
_UNITS = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}


# ---- names -----------------------------------------------------------------------
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


# ---- step 1: the slots of each image ---------------------------------------------
@dataclass(frozen=True, slots=True)
class ImageSlots:
    """What the slots of one image say about it.

    `acquired` holds each slot's `(t, c, z)` in acquisition order; `channels`
    the first `ChannelUse` per `c` index; `z_um` the first z position per `z`
    index.
    """

    image: ImageId
    facts: ImageFacts
    axes: tuple[str, ...]
    acquired: tuple[tuple[int, int, int], ...]
    channels: Mapping[int, ChannelUse]
    z_um: Mapping[int, float]
    first: FrameSlot

    def check_no_repeats(self) -> None:
        """Refuse an image one of whose slots the plan acquires twice."""
        if len(set(self.acquired)) == len(self.acquired):
            return
        seen: set[tuple[int, ...]] = set()
        for idx in self.acquired:
            if idx in seen:
                slot = {
                    a: v
                    for a, v in zip(NON_SPATIAL, idx, strict=True)
                    if a in self.axes
                }
                where = describe_image(self.image, self.facts)
                raise PlanError(
                    f"{where}: the plan acquires {slot} "
                    "more than once (e.g. a position sub-sequence time plan inside "
                    "the main time plan), so frames would overwrite each other; give "
                    "the time plan either to the sequence or to its positions"
                )
            seen.add(idx)


def group_slots(slots: Iterable[FrameSlot]) -> tuple[ImageSlots, ...]:
    """The images of `slots`, in order of first appearance (`PlanError` on repeats)."""
    members: dict[frozenset[tuple[str, int]], list[FrameSlot]] = {}
    for slot in slots:
        members.setdefault(frozenset(slot.image), []).append(slot)
    out = []
    elsewhere: list[str] = []
    for group in members.values():
        channels: dict[int, ChannelUse] = {}
        z_um: dict[int, float] = {}
        for s in group:
            if s.c is not None and s.channel is not None:
                channels.setdefault(s.c, s.channel)
            if s.z_um is not None:
                z_um.setdefault(s.z or 0, s.z_um)
        first = group[0]
        if (where := frames_elsewhere(group, z_um)) is not None:
            elsewhere.append(where)
        image = ImageSlots(
            image=first.image,
            facts=first.facts,
            axes=tuple(
                a for i, a in enumerate(NON_SPATIAL) if any(_has(s, i) for s in group)
            ),
            acquired=tuple(s.index for s in group),
            channels=channels,
            z_um=z_um,
            first=first,
        )
        image.check_no_repeats()
        out.append(image)
    warn_frames_elsewhere(elsewhere)
    return tuple(out)


def _has(slot: FrameSlot, axis: int) -> bool:
    return (slot.t, slot.c, slot.z)[axis] is not None


# ---- step 3: one image -----------------------------------------------------------
def image_settings(
    image: ImageSlots,
    placement: Placement,
    *,
    frame: FrameFormat,
    plan: PlanFacts,
    chunks: Mapping[str, int],
    shards: Mapping[str, int],
) -> ImageSettings:
    """The settings of one image: dimensions, channels, order, skipped slots."""
    axes = list(image.axes)
    if plan.unbounded_t and "t" not in axes:
        axes.insert(0, "t")
    pos = [NON_SPATIAL.index(a) for a in axes]
    acquired = [tuple(idx[i] for i in pos) for idx in image.acquired]
    sizes = {a: max(idx[i] for idx in acquired) + 1 for i, a in enumerate(axes)}
    if plan.unbounded_t:
        sizes["t"] = plan.period
    repeated = plan.time_points is not None and axes[0] == "t"
    if repeated:  # the slots are the first periods (the last t may be skipped)
        sizes["t"] = max(sizes["t"], plan.period)
    full = set(itertools.product(*(range(sizes[a]) for a in axes)))
    skipped = sorted(full - set(acquired))
    if repeated and plan.time_points is not None:
        # every period of the plan repeats the first one; t ends with the last
        # time point that acquires a frame of this image
        n, period = plan.time_points, plan.period
        acquired_t = {idx[0] for idx in acquired if idx[0] < period}
        n = 1 + max(t for t in range(max(0, n - period), n) if t % period in acquired_t)
        pattern = [idx for idx in skipped if idx[0] < period]
        skipped = [
            (t, *idx[1:])
            for start in range(0, n, period)
            for idx in pattern
            if (t := start + idx[0]) < n
        ]
        sizes["t"] = n
    in_order = acquired
    if repeated:
        # where t goes shows only from one period to the next (the slots may
        # be a single time point): the next one repeats the first
        first = [idx for idx in acquired if idx[0] < plan.period]
        in_order = first + [(idx[0] + plan.period, *idx[1:]) for idx in first]
    scales = {"t": image.facts.t_scale or 1.0, "c": 1.0, "z": z_scale(image, sizes)}
    dims = [
        Dimension(
            name=a,
            size=None if (a == "t" and plan.unbounded_t) else sizes[a],
            chunk=chunks.get(a, 1),
            shard=shards.get(a),
            unit=_UNITS.get(a),
            scale=scales[a],
        ).within_size()
        for a in axes
    ]
    for a, n in zip(("y", "x"), frame.shape, strict=True):
        dims.append(
            Dimension(
                name=a,
                size=n,
                chunk=chunks.get(a, n),
                shard=shards.get(a),
                **pixel_axis(frame.pixel_size_um),
            ).within_size()  # as asked for (checked), then cut to the frame
        )
    return ImageSettings(
        key=placement.key,
        name=printable(image.facts.name),
        dimensions=tuple(dims),
        acquisition_order=_acquisition_order(axes, in_order, plan.axis_order),
        channels=_channels(image, sizes["c"]) if "c" in axes else (),
        stage_position=stage_position(image, scales["z"]),
        coords=dict(image.image),
        row=placement.row,
        column=placement.column,
        field=placement.field,
        skipped=tuple(skipped),
        skip_period=plan.period if plan.unbounded_t else None,
    )


def _acquisition_order(
    axes: Sequence[str], acquired: Sequence[tuple[int, ...]], preferred: str
) -> tuple[str, ...]:
    """The axis order (outermost first) in which `acquired` strictly increases."""
    pos = {a: i for i, a in enumerate(axes)}
    pref = tuple(a for a in preferred if a in axes)
    # a sub-sequence may add an axis the main axis_order leaves out
    pref += tuple(a for a in axes if a not in pref)
    for order in [pref, *itertools.permutations(axes)]:
        keys = [tuple(idx[pos[a]] for a in order) for idx in acquired]
        if all(a < b for a, b in itertools.pairwise(keys)):
            return tuple(order)
    # not appendable in any order (e.g. a repeated index): storage order
    return tuple(a for a in NON_SPATIAL if a in axes)


def _channels(image: ImageSlots, size: int) -> tuple[Channel, ...]:
    """Channels with unique labels; each keeps its config and exposure.

    A config used once is its own label. A config of several config groups
    (DAPI of group `Channel` and of group `Other`) says its group in each of
    them (`DAPI (Channel)`, `DAPI (Other)`). A config used at several `c`
    indices of one group (e.g. DAPI at 10 ms and at 30 ms) is labelled by its
    exposure when that tells them apart (`DAPI`, `DAPI (30 ms)`), else
    numbered (`DAPI`, `DAPI (2)`).
    """
    plan = image.facts.channels
    found = [
        image.channels.get(i) or (plan[i] if i < len(plan) else None)
        for i in range(size)
    ]
    found = [
        ch
        if ch is None
        else ChannelUse(printable(ch.config) or "", ch.exposure, printable(ch.group))
        for ch in found
    ]
    groups: dict[str, set[str | None]] = {}
    for ch in found:
        if ch is not None:
            groups.setdefault(ch.config, set()).add(ch.group)
    uses = [(ch.config, ch.group) if ch is not None else None for ch in found]
    labels: list[str] = []
    for i, ch in enumerate(found):
        if ch is None:
            labels.append(f"Channel {i}")
            continue
        # the group, when the config is also one of another group's
        said = [ch.group] if ch.group and len(groups[ch.config]) > 1 else []
        same = [j for j, u in enumerate(uses) if u == (ch.config, ch.group)]
        # as printed: 10 and 10.0000001 ms both read "10 ms", which tells
        # them apart no better than a number
        shown = [
            f"{u.exposure:g}"
            for j in same
            if (u := found[j]) is not None and u.exposure is not None
        ]
        if same[0] != i:  # the first use of a config (in its group) is plain
            if ch.exposure is not None and shown.count(f"{ch.exposure:g}") == 1:
                said.append(f"{ch.exposure:g} ms")
            else:
                said.append(str(same.index(i) + 1))
        labels.append(f"{ch.config} ({', '.join(said)})" if said else ch.config)
    return tuple(
        Channel(
            name=label,
            color=default_color(ch.config if ch else label, i),
            config=ch.config if ch is not None else None,
            exposure_ms=ch.exposure if ch is not None else None,
        )
        for i, (label, ch) in enumerate(zip(unique_names(labels), found, strict=True))
    )


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


# ---- all steps -------------------------------------------------------------------
def settings_from_slots(
    make: Callable[..., S],
    slots: Iterable[FrameSlot],
    *,
    plan: PlanFacts,
    frame: FrameFormat,
    chunks: Mapping[str, int] | None = None,
    shards: Mapping[str, int] | None = None,
    **options: Any,
) -> S:
    """Settings for the frames `slots` describe, built by `make`.

    Parameters
    ----------
    make
        The settings class (`AcquisitionSettings`), called with `layout`,
        `images`, `dtype`, `plate`, `positions_inside_time` and `options`.
    slots
        One `FrameSlot` per frame, in acquisition order.
    plan, frame
        What the plan says as a whole, and the camera's frames.
    chunks, shards
        Element counts per axis name (`{"t": 4}`).
    **options
        Other settings fields (`compression`, `max_buffer_bytes`, ...).

    Raises
    ------
    PlanError
        For no slots, a slot acquired twice, wells outside the plate or two
        positions claiming one field, and any invalid settings value (named).
    """
    slots = tuple(slots)
    images = group_slots(slots)
    if not images:
        raise PlanError("plan: it acquires no frames")
    chunk_sizes = axis_sizes("chunks", chunks)
    shard_sizes = axis_sizes("shards", shards)
    try:
        layout, placements, plate = place_images(images, plan.plate)
        built = [
            image_settings(
                im, p, frame=frame, plan=plan, chunks=chunk_sizes, shards=shard_sizes
            )
            for im, p in zip(images, placements, strict=True)
        ]
        settings = make(
            layout=layout,
            images=tuple(_unique_image_names(built)),
            dtype=frame.dtype,
            plate=plate,
            positions_inside_time=plan.positions_inside_time,
            **options,
        )
        if not _follows_default_order(settings, images, slots):
            settings = settings.model_copy(update={"ordered_appends": False})
        return settings
    except PlanError:
        raise
    except ValidationError as e:
        raise PlanError(_describe_errors(e)) from e
    except ValueError as e:
        raise PlanError(str(e)) from e


def _follows_default_order(
    settings: AcquisitionSettings,
    images: Sequence[ImageSlots],
    slots: Sequence[FrameSlot],
) -> bool:
    """Whether frames without an index, in the default order, are `slots`."""
    number = {frozenset(im.image): i for i, im in enumerate(images)}
    axes = [
        [NON_SPATIAL.index(a) for a in im.axes] for im in images
    ]  # the storage axes of each image, as positions in `FrameSlot.index`
    order = default_order(settings)
    for slot in slots:
        i = number[frozenset(slot.image)]
        index = slot.index
        if next(order, None) != (i, tuple(index[k] for k in axes[i])):
            return False
    return True


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
