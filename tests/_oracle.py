"""What a dataset written from a useq plan must look like, from useq's iteration only.

The expectations here follow the layout rules of the issue "Every plan, every
path", applied to the events useq yields (or an MDA runner emitted). Nothing is
imported from mmzarr: the oracle must not share a bug with the code under test.

Rules (the spec):

1. Frame events are the events without an action or with ``acquire_image``.
2. An image is identified by the event index without ``t``, ``c``, ``z`` and
   without zero-valued entries (``{"p": 0, "g": 0}`` is ``{}``); images are
   ordered by first appearance.
3. Layout: ``"plate"`` if every image's stage position (rule 9) has a ``plate_row``
   and a ``plate_col``, else ``"image"`` for exactly one image, else
   ``"collection"``.
4. Keys: ``""`` (image), ``"0"``, ``"1"``... (collection) or
   ``"<row letters>/<col + 1>/<field>"`` (plate; field = order of first
   appearance in the well).
5. Axes of an image: those of ``t, c, z`` in any of its events' index; size =
   max + 1; then ``y, x``. Storage index = ``index.get(axis, 0)`` per axis.
6. Unfilled slots read back as 0.
7. Two events of one image at one storage index: the plan cannot be mapped.
8. Channel ``i`` is the config of the first event with ``c == i``.
9. Image name base: the first event's ``pos_name``, else the position's name
   (``stage_positions[p]``, only for events with a ``p``: an ``axis_order``
   without ``p`` visits no stage position);
   with a ``g`` index the name is ``f"{base or 'Pos' + str(p)}_g{g:04d}"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import useq

Layout = Literal["image", "collection", "plate"]
FRAME_AXES = ("t", "c", "z")
#: What useq 0.9.2 raises while iterating some plans it accepts: a duration over
#: a zero interval (ZeroDivisionError), ``do_stack=False`` with a z plan whose
#: axis is not iterated (KeyError), autofocus with a relative z plan whose
#: index comes from a position sub-sequence's z plan (IndexError).
USEQ_ITERATION_ERRORS: tuple[type[Exception], ...] = (
    ZeroDivisionError,
    KeyError,
    IndexError,
)


@dataclass(frozen=True)
class ImageOracle:
    """One image (multiscales group) of the dataset.

    Parameters
    ----------
    key
        Path of the image group in the dataset (``""`` for the root).
    ident
        The image's identity: its index entries other than t/c/z, zeros dropped.
    p
        Stage position index of its first event.
    g
        Grid index of its first event (None: the event has no ``g``).
    base
        Name base: first event's ``pos_name``, else the stage position's name.
    name
        Expected name before de-duplication (None: no base and no ``g``).
    axes
        The subset of ``t, c, z`` its events use, in that order.
    shape
        Sizes of `axes`, then the frame shape (y, x).
    channels
        Config per ``c`` index (None when no event has that ``c``).
    """

    key: str
    ident: tuple[tuple[str, int], ...]
    p: int
    g: int | None
    base: str | None
    name: str | None
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    channels: tuple[str | None, ...]

    @property
    def dim_names(self) -> tuple[str, ...]:
        return (*self.axes, "y", "x")


@dataclass(frozen=True)
class Placement:
    """Where one frame event goes: image key and storage index."""

    key: str
    index: tuple[int, ...]


@dataclass(frozen=True)
class Oracle:
    """The dataset a list of frame events must produce.

    Parameters
    ----------
    layout
        ``"image"``, ``"collection"`` or ``"plate"``.
    images
        Images in order of first appearance.
    events
        The frame events, in acquisition order.
    placements
        One `Placement` per frame event, same order as `events`.
    repeats
        Whether two events of one image share a storage index (the plan
        cannot be mapped to arrays).
    """

    layout: Layout
    images: tuple[ImageOracle, ...]
    events: tuple[useq.MDAEvent, ...]
    placements: tuple[Placement, ...]
    repeats: bool

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.images)

    def image(self, key: str) -> ImageOracle:
        return next(i for i in self.images if i.key == key)


def is_frame(event: useq.MDAEvent) -> bool:
    """Rule 1: an event produces a frame (no action, or ``acquire_image``)."""
    return event.action is None or event.action.type == "acquire_image"


def frame_events(events: Iterable[useq.MDAEvent]) -> list[useq.MDAEvent]:
    return [e for e in events if is_frame(e)]


def plain_index(event: useq.MDAEvent) -> dict[str, int]:
    """The event index with plain ``str`` keys."""
    return {str(k): int(v) for k, v in event.index.items()}


def row_letters(row: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, ..."""
    out = ""
    n = row + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("A") + r) + out
    return out


def _identity(index: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((k, v) for k, v in index.items() if k not in FRAME_AXES and v))


def _position(stage_positions: Sequence[Any], index: dict[str, int]) -> Any:
    """``stage_positions[p]``; None when the event has no ``p``.

    (An ``axis_order`` without ``p`` visits no stage position: useq yields
    events without ``p`` and without ``pos_name``.)
    """
    if "p" not in index:
        return None
    p = index["p"]
    return stage_positions[p] if 0 <= p < len(stage_positions) else None


def _visited(stage_positions: Sequence[Any]) -> list[Any]:
    """The stage positions as iterating them yields them.

    Not ``len()`` and indexing: a ``WellPlatePlan`` without ``selected_wells``
    has length 0 but iterates every well, and one whose points plan has no
    field of view iterates but cannot say its length.
    """
    return list(iter(stage_positions))


def build_oracle(
    events: Iterable[useq.MDAEvent],
    stage_positions: Sequence[Any],
    frame_shape: tuple[int, int],
) -> Oracle:
    """The oracle for `events` (all events; non-frame ones are dropped).

    Parameters
    ----------
    events
        Events of the plan (``list(seq)``) or those an MDA runner emitted.
    stage_positions
        ``seq.stage_positions`` (a tuple of positions or a ``WellPlatePlan``).
    frame_shape
        ``(y, x)`` of every frame.
    """
    frames = frame_events(events)
    indexes = [plain_index(e) for e in frames]
    members: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for k, index in enumerate(indexes):
        members.setdefault(_identity(index), []).append(k)

    visited = _visited(stage_positions)
    positions = {
        ident: _position(visited, indexes[ks[0]]) for ident, ks in members.items()
    }
    layout: Layout
    if all(
        getattr(pos, "plate_row", None) is not None
        and getattr(pos, "plate_col", None) is not None
        for pos in positions.values()
    ):
        layout = "plate"
    elif len(members) == 1:
        layout = "image"
    else:
        layout = "collection"

    keys = _keys(layout, members, positions)
    images: list[ImageOracle] = []
    placements: dict[int, Placement] = {}
    repeats = False
    for ident, ks in members.items():
        first = indexes[ks[0]]
        axes = tuple(a for a in FRAME_AXES if any(a in indexes[k] for k in ks))
        sizes = tuple(max(indexes[k].get(a, 0) for k in ks) + 1 for a in axes)
        seen: set[tuple[int, ...]] = set()
        for k in ks:
            idx = tuple(indexes[k].get(a, 0) for a in axes)
            repeats = repeats or idx in seen
            seen.add(idx)
            placements[k] = Placement(keys[ident], idx)
        channels: tuple[str | None, ...] = ()
        if "c" in axes:
            configs: dict[int, str | None] = {}
            for k in ks:
                c = indexes[k].get("c", 0)
                if c not in configs:
                    ch = frames[k].channel
                    configs[c] = ch.config if ch is not None else None
            channels = tuple(configs.get(i) for i in range(sizes[axes.index("c")]))
        p = first.get("p", 0)
        g = first.get("g")
        pos = positions[ident]
        base = frames[ks[0]].pos_name or getattr(pos, "name", None) or None
        name = base if g is None else f"{base or f'Pos{p}'}_g{g:04d}"
        images.append(
            ImageOracle(
                key=keys[ident],
                ident=ident,
                p=p,
                g=g,
                base=base,
                name=name,
                axes=axes,
                shape=(*sizes, *frame_shape),
                channels=channels,
            )
        )
    return Oracle(
        layout=layout,
        images=tuple(images),
        events=tuple(frames),
        placements=tuple(placements[k] for k in range(len(frames))),
        repeats=repeats,
    )


def _keys(
    layout: Layout,
    members: dict[tuple[tuple[str, int], ...], list[int]],
    positions: dict[tuple[tuple[str, int], ...], Any],
) -> dict[tuple[tuple[str, int], ...], str]:
    if layout == "image":
        return dict.fromkeys(members, "")
    if layout == "collection":
        return {ident: str(i) for i, ident in enumerate(members)}
    fields: dict[tuple[int, int], int] = {}
    keys = {}
    for ident in members:
        pos = positions[ident]
        row, col = getattr(pos, "plate_row", None), getattr(pos, "plate_col", None)
        if row is None or col is None:
            raise NotImplementedError(
                f"image {ident} of a plate has no plate_row/plate_col: the layout "
                "rules do not say where it goes"
            )
        field = fields.get((row, col), 0)
        fields[(row, col)] = field + 1
        keys[ident] = f"{row_letters(row)}/{col + 1}/{field}"
    return keys


def oracle_for(seq: useq.MDASequence, frame_shape: tuple[int, int]) -> Oracle:
    """The oracle for iterating `seq` with useq (may raise what useq raises)."""
    return build_oracle(list(seq), seq.stage_positions, frame_shape)
