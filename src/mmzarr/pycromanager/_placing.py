"""An image's place in a dataset, found from its pycromanager ``Axes`` alone.

`ZarrHook` places an image by its event when it made the dataset from the
events (`_plan.EventPlan.places`); otherwise (`settings` given, or the shape
learned from the first time point) by its ``Axes``: a ``position`` value
looked up among the dataset's positions, a ``channel`` name among the image's
channel names, ``time`` and ``z`` as indices (`place_by_axes`); `image_place`
chooses between the two. `check_events_fit` refuses events that given
settings cannot place, before anything runs. Reading events and metadata
into a plan is `_plan`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmzarr.errors import FrameError, PlanError
from mmzarr.pycromanager._plan import AXES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mmzarr._settings import AcquisitionSettings
    from mmzarr.pycromanager._plan import EventPlan, Place, PositionValue

__all__ = ["check_events_fit", "image_place", "place_by_axes", "settings_positions"]


def settings_positions(settings: AcquisitionSettings) -> dict[PositionValue, int]:
    """The ``position`` values that name each image of `settings`.

    Its number (``settings.images`` order) and its name; None names the only
    image of a single-image dataset.
    """
    positions: dict[PositionValue, int] = {i: i for i in range(len(settings.images))}
    positions.update({im.name: i for i, im in enumerate(settings.images) if im.name})
    if len(settings.images) == 1:
        positions[None] = 0
    return positions


def image_place(
    settings: AcquisitionSettings,
    positions: Mapping[PositionValue, int],
    axes: Mapping[str, int | str],
    place: Place | None,
    *,
    made_from_events: bool,
    hint: str = "",
) -> tuple[dict[str, int], str | None]:
    """Where the image of `axes` goes: its useq-style index, its channel name.

    `place` is that of the event with these axes, if one was given. In a
    dataset made from the events (`made_from_events`) the event's place is
    the image's, and axes of no event are refused; otherwise the axes are
    looked up (`place_by_axes`; `hint` ends its messages). The channel name
    is the event's config, else the axes' channel name, or the name of the
    channel an int index picks.

    Raises
    ------
    FrameError
        As `place_by_axes`, and for axes of no event in a dataset made from
        the events.
    """
    if place is not None and made_from_events:
        image, index = place.image, dict(place.index)
    else:
        image, index = place_by_axes(settings, positions, axes, hint)
        if made_from_events:
            raise FrameError(
                f"Axes {dict(axes)} are those of no event given to "
                "ZarrHook(events=...); not written to the dataset made from them"
            )
    value = axes.get("channel")
    channel = value if isinstance(value, str) else None
    if place is not None:
        channel = place.channel  # the config the event acquires
    elif isinstance(value, int):
        chans = settings.images[image].channels
        if index.get("c", len(chans)) < len(chans):
            channel = chans[index["c"]].name
    return index, channel


def place_by_axes(
    settings: AcquisitionSettings,
    positions: Mapping[PositionValue, int],
    axes: Mapping[str, int | str],
    hint: str = "",
) -> tuple[int, dict[str, int]]:
    """The image number and useq-style index that `axes` name in `settings`.

    ``position`` values are looked up in `positions`, a ``channel`` name among
    the image's channel names. `hint` ends the messages.

    Axes that lack an axis of the image with more than one index (``time``
    for a `t` that grows) are refused, never put at index 0: that index may be
    another image's. One of a single index (a lone channel or z plane) needs
    no naming.

    Raises
    ------
    FrameError
        For a position or channel the dataset does not have, or Axes without
        an axis the image has more than one index of.
    """
    value = axes.get("position")
    if value not in positions:
        known = [k for k in positions if k is not None]
        if value is None:
            raise FrameError(
                f"Axes {dict(axes)} have no 'position' but the dataset has "
                f"positions {known}"
            )
        raise FrameError(
            f"position {value!r} is not one of the dataset's positions {known}{hint}"
        )
    image = positions[value]
    im = settings.images[image]
    lacking = [
        name
        for name in ("time", "channel", "z")
        if AXES[name] in im.dim_names
        and name not in axes
        and im.dim(AXES[name]).size != 1
    ]
    if lacking:
        sizes = {AXES[n]: im.dim(AXES[n]).size or "growing" for n in lacking}
        raise FrameError(
            f"Axes {dict(axes)} have no {lacking}, but image {im.key!r} has "
            f"several indices there ({sizes}): which one is not known, so the "
            f"image is not put at index 0{hint}"
        )
    index = dict(im.coords)
    for name in ("time", "z"):
        if name in axes:
            index[AXES[name]] = int(axes[name])
    channel = axes.get("channel")
    if isinstance(channel, str) and "c" in im.dim_names:
        names = [c.name for c in im.channels]
        if channel not in names:
            raise FrameError(
                f"channel {channel!r} is not a channel of image {im.key!r} "
                f"{names}{hint}"
            )
        index["c"] = names.index(channel)
    elif isinstance(channel, int):
        index["c"] = channel
    return image, index


def check_events_fit(
    settings: AcquisitionSettings,
    plan: EventPlan,
    positions: Mapping[PositionValue, int],
) -> None:
    """Refuse events that `settings` cannot place, before anything runs.

    `positions` maps a ``position`` value to its image in `settings`.
    """
    n_pos = len(set(plan.positions.values()))
    if n_pos != len(settings.images):
        raise PlanError(
            f"events have {n_pos} positions but settings have "
            f"{len(settings.images)} images {settings.keys}"
        )
    for n, key in enumerate(plan.places):
        try:
            _, index = place_by_axes(settings, positions, dict(key))
            settings.locate(index)
        except FrameError as e:
            raise PlanError(f"event {n} does not fit the settings: {e}") from e
