"""The fallback layout: where front ends keep frames they cannot place.

A writer problem must never cost the user the acquisition. When a plan cannot
be mapped to images (or a frame does not fit the dataset that was), front ends
open a dataset in the fallback layout (`AcquisitionSettings.fallback`: one
image, `t` in arrival order, each frame's own index in the frame log) at the
first such frame, whose shape and dtype it takes. `FrontEndBase` holds what
both front ends share: the dataset, its unplaced siblings (named by
`_unplaced`), and closing them. The planes it keeps of each frame are
`_kept_planes`'.
"""

from __future__ import annotations

import abc
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mmzarr._closing import DeferredInterrupt
from mmzarr._kept_planes import append_kept, fallback_for, frames_kept, kept_misfit
from mmzarr._locations import parse_location
from mmzarr._open import create_stream
from mmzarr._settings import AcquisitionSettings
from mmzarr._unplaced import (
    MAX_UNPLACED,
    made_for,
    replaceable_sibling,
    unplaced_path,
)
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

    import numpy as np

    from mmzarr._stream import Status, Stream

__all__ = [
    "FrontEnd",
    "FrontEndBase",
    "check_on_full",
    "check_options",
    "open_fallback",
    "open_unplaced",
    "unplaced_path",
]

logger = logging.getLogger("mmzarr")

#: settings options that apply to a fallback dataset too
STORAGE_OPTIONS = ("compression", "max_buffer_bytes", "on_full", "flush_interval_s")


class FrontEnd(Protocol):
    """What the fallback datasets take from a front end (`MDAWriter`, `ZarrHook`)."""

    @property
    def path(self) -> Path:
        """The dataset's path."""

    @property
    def backend(self) -> str:
        """The array backend's name."""

    @property
    def overwrite(self) -> bool:
        """Whether an existing dataset may be replaced."""

    @property
    def settings(self) -> AcquisitionSettings | None:
        """The settings the front end was given (or made), if any."""

    @property
    def settings_options(self) -> Mapping[str, Any]:
        """The settings options the front end was given."""


class FrontEndBase(abc.ABC):
    """The datasets of a front end (`MDAWriter`, `ZarrHook`) and their closing.

    A subclass sets these attributes in `__init__` and defines `_finish`, which
    closes its datasets (with `_close_streams`) once, under `_lock`.
    """

    path: Path
    #: what `FrontEnd` says (the siblings are opened with them)
    backend: str
    overwrite: bool
    settings: AcquisitionSettings | None
    settings_options: Mapping[str, Any]
    #: the dataset (a fallback-layout one when the plan could not be mapped)
    stream: Stream | None
    #: frames that did not fit `stream` (see `unplaced_path`)
    unplaced: Stream | None
    #: siblings for frames of further formats, that did not fit `unplaced`
    #: either (`x.unplaced-2.ome.zarr`, ...)
    more_unplaced: list[Stream]
    #: the run's first error, raised again by `close`
    error: BaseException | None
    #: why the plan could not be mapped (then `stream` is a fallback)
    fallback_reason: str | None
    #: frames that were not written: they came after an error (or before the
    #: dataset opened, or after close), or no dataset can store them
    #: (`unkeepable`)
    frames_ignored: int
    _lock: AbstractContextManager[Any]

    def _set_path(self, path: str | os.PathLike[str]) -> None:
        """Keep `path`, refusing now an empty one or an unknown scheme."""
        parse_location(path)
        self.path = Path(path)

    def _no_streams(self) -> None:
        """Set the attributes above for a front end that has opened nothing yet."""
        self.stream = None
        self.unplaced = None
        self.more_unplaced = []
        self.fallback_reason = None
        self.error = None
        self.frames_ignored = 0
        self._refused: set[str] = set()  # why frames were not kept, each said once

    def _refuse(self, why: str, which: str, after: str = "") -> None:
        """Count a frame no dataset can keep (`unkeepable`); warn once per `why`."""
        self.frames_ignored += 1
        if why not in self._refused:
            self._refused.add(why)
            logger.warning(
                "mmzarr: %s is not written to %s: %s%s", which, self.path, why, after
            )

    def close(self) -> None:
        """Close the dataset if still open, then raise any error of the run.

        What is still buffered is written first.
        """
        with self._lock:
            self._finish()
        if self.error is not None:
            raise self.error

    @property
    def frames_written(self) -> int:
        """Frames written so far (into the dataset and beside it, unplaced).

        The camera's frames: an RGB frame, kept as 3 planes, is one.
        """
        return sum(frames_kept(s) for s in self._streams())

    def _streams(self) -> list[Stream]:
        """The dataset and its unplaced siblings that were opened."""
        found = [self.stream, self.unplaced, *self.more_unplaced]
        return [s for s in found if s is not None]

    def _keep_beside(
        self,
        frame: np.ndarray,
        *,
        what: str,
        noun: str,
        why: str,
        pixel_size_um: Any = None,
        summary: Mapping[str, Any] | None = None,
        **append: Any,
    ) -> None:
        """Keep `frame`, which does not fit the dataset, in an unplaced sibling.

        `unplaced`, or another of `more_unplaced`, else a new one
        (`open_unplaced`, with `what`, `noun`, `why`, `summary`): a run whose
        frames come in three formats (e.g. channels that set other binnings)
        keeps each, and is never stopped for it. A known `pixel_size_um` must
        be the sibling's too (`kept_misfit`). `append` goes to `append_kept`.
        """
        for stream in (self.unplaced, *self.more_unplaced):
            if (
                stream is not None
                and kept_misfit(stream, frame, pixel_size_um=pixel_size_um) is None
            ):
                break
        else:
            stream = open_unplaced(
                self,
                frame,
                what=what,
                noun=noun,
                why=why,
                pixel_size_um=pixel_size_um,
                summary=summary,
            )
            if self.unplaced is None:
                self.unplaced = stream
            else:
                self.more_unplaced.append(stream)
        append_kept(stream, frame, **append)

    @property
    def unplaced_path(self) -> str:
        """Where frames that do not fit the dataset go (created on need).

        `x.unplaced.ome.zarr`, or a numbered one when that was taken.
        """
        if self.unplaced is not None:
            return str(self.unplaced.path)
        return unplaced_path(self.path)

    @abc.abstractmethod
    def _finish(self) -> None:
        """Close the datasets if still open; called with `_lock` held."""

    def _close_streams(self, status: Status | None) -> None:
        """Close `stream` (with `status`) and its siblings; keep the first error.

        A sibling holds part of the same run: a run cancelled or failed says so
        in each; else a sibling's status is its own (all its frames written).
        """
        ended = status if status in ("cancelled", "failed") else None
        # a first Ctrl-C waits for the siblings too: one left open keeps its
        # lock and its status `acquiring`
        streams = self._streams()
        siblings = " and its unplaced siblings" if len(streams) > 1 else ""
        with DeferredInterrupt(
            f"closing {self.path}{siblings} (or run `mmzarr finalize` on it)"
        ):
            for stream in streams:
                if stream.closed:
                    continue
                try:
                    stream.close(status if stream is self.stream else ended)
                except Exception as e:
                    if self.error is None:
                        self.error = e
                    logger.error("mmzarr: closing %s failed: %s", stream.path, e)


def check_on_full(
    front: str, settings: AcquisitionSettings | None, options: Mapping[str, Any]
) -> None:
    """Refuse ``on_full="raise"`` for a front end: it cannot retry a frame.

    With "raise", a frame storage has no room for is handed back to the caller
    to retry; a front end would have to count it as a storage failure and stop
    the acquisition.

    Raises
    ------
    ValueError
        Naming the front end and the choices that work.
    """
    given = (settings.on_full if settings is not None else None, options.get("on_full"))
    if "raise" in given:
        raise ValueError(
            f"{front}: on_full='raise' hands a frame back for the caller to "
            f"retry, which {front} cannot; use 'block' (the default: wait for "
            "storage) or 'drop' (skip the frame, counted in frames_dropped)"
        )


#: The plan `check_options` tries the options on: one frame, with every
#: storage axis (`t`, `c`, `z`, each of size 1), so that `chunks`/`shards` of
#: each axis are checked (a shard not a multiple of its chunk), not only `t`'s.
_PROBE_PLAN = {
    "time_plan": {"interval": 1, "loops": 1},
    "channels": ["probe"],
    "z_plan": {"range": 0, "step": 1},
}


def check_options(
    front: str, settings: AcquisitionSettings | None, options: Mapping[str, Any]
) -> None:
    """Refuse now the settings options a front end's run would refuse later.

    A front end builds its settings (`AcquisitionSettings.from_useq`) at the
    run's start or first frame, on the acquisition's thread, and its fallback
    layout takes the same storage options: a bad or misspelled option found
    there would stop the acquisition, or write it in the fallback layout. They
    are tried on a plan of one frame. Also `check_on_full`. With `settings`,
    options have nothing to apply to: they are refused, not ignored.

    Raises
    ------
    PlanError
        (a `ValueError`) naming the front end, the option and its value.
    """
    check_on_full(front, settings, options)
    if settings is not None and options:
        raise PlanError(
            f"{front}: options {sorted(options)} apply only without settings=; "
            "put them in the settings"
        )
    if not options:
        return
    probe = {"image_shape": (1, 1), "dtype": "uint8", "pixel_size_um": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said again, if true, when the run starts
        try:
            AcquisitionSettings.from_useq(_PROBE_PLAN, **{**probe, **options})
        except PlanError as e:
            raise PlanError(f"{front}: {e}") from e


def open_fallback(
    front: FrontEnd,
    path: str | Path,
    reason: str,
    frame: np.ndarray,
    *,
    pixel_size_um: Any = None,
    summary: Mapping[str, Any] | None = None,
) -> Stream:
    """Open a fallback-layout dataset at `path` for frames like `frame`.

    It is written with `front`'s backend and overwrite policy, and the storage
    choices that apply to the fallback (`STORAGE_OPTIONS`): its settings' (a
    front end given `settings` takes no options), else its settings options;
    `summary` is the front end's summary metadata (`create_stream`).
    """
    if front.settings is not None:
        storage = {k: getattr(front.settings, k) for k in STORAGE_OPTIONS}
    else:
        storage = {
            k: v for k, v in front.settings_options.items() if k in STORAGE_OPTIONS
        }
    try:
        px = float(pixel_size_um) if pixel_size_um is not None else None
    except (TypeError, ValueError):
        px = None
    settings = fallback_for(
        reason, frame.shape, frame.dtype, pixel_size_um=px, **storage
    )
    return create_stream(
        path,
        settings,
        backend=front.backend,
        overwrite=front.overwrite,
        summary=summary,
    )


def open_unplaced(
    front: FrontEnd,
    frame: np.ndarray,
    *,
    what: str,
    noun: str,
    why: str,
    pixel_size_um: Any = None,
    summary: Mapping[str, Any] | None = None,
) -> Stream:
    """Open `unplaced_path` beside `front.path` for `frame`, which does not fit it.

    A sibling that exists and may not be replaced (an earlier run's without
    `overwrite`, or not mmzarr's) is left alone: the next numbered one is
    used (`x.unplaced-2.ome.zarr`, ...). Logs a warning once: `what` (e.g.
    ``"frame {'t': 3}"``) does not fit, and it and any other such `noun`
    (``"frame"``, ``"image"``) are kept there; `why` is the error.
    """
    reason_head = made_for(front.path, noun)
    reason = reason_head + why
    taken: FileExistsError | None = None
    for number in range(1, MAX_UNPLACED + 1):
        where = unplaced_path(front.path, number)
        if front.overwrite and not replaceable_sibling(where, reason_head):
            taken = taken or FileExistsError(
                f"{where!r} keeps frames of another dataset; not replaced"
            )
            continue
        try:
            stream = open_fallback(
                front,
                where,
                reason,
                frame,
                pixel_size_um=pixel_size_um,
                summary=summary,
            )
        except FileExistsError as e:
            taken = taken or e
            continue
        logger.warning(
            "mmzarr: %s does not fit %s (%s); keeping it and any other such %s in %s",
            what,
            front.path,
            why,
            noun,
            where,
        )
        return stream
    assert taken is not None
    raise taken
