"""How a pycromanager acquisition ended, read from the acquisition itself.

Pycro-Manager tells an ``image_process_fn`` and a ``notification_callback_fn``
the same things whether an acquisition ran to its end or was aborted
(``acq.abort()``, or an exception in a hook or in the engine, which abort it
too): ``acq_events_finished`` then ``data_sink_finished``, with no payload,
either way. Only the acquisition knows: its engine (``acq._acq``, private, in
pycromanager 1.0.2's Python and Java backends alike) answers
``is_abort_requested()``, keeps the engine's exception, and has the data sink
that is finished once the last image has been through the image processors;
the front end keeps any other exception (``acq._exception``: the reason given
to ``abort``, an image processor's error). `Watched` holds the engine (the
acquisition drops it once ``await_completion`` returns) and reads them;
`ZarrHook.watch` takes the acquisition, and `close_status` decides the
dataset's status at close.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._stream import Status

__all__ = ["Outcome", "Watched", "close_status"]

logger = logging.getLogger("mmzarr")

#: How a watched acquisition ended: ran to its end, aborted, aborted by an
#: exception, still running (images may still come: the hook was closed
#: first), or not known (the engine did not answer).
Outcome = Literal["ended", "aborted", "failed", "running", "unknown"]


@dataclass(frozen=True, slots=True)
class Watched:
    """A pycromanager acquisition and its engine, to read how it ended."""

    acquisition: Any
    engine: Any

    @classmethod
    def of(cls, acquisition: Any) -> Watched:
        """Watch `acquisition` (a running ``pycromanager.Acquisition``).

        Raises
        ------
        TypeError
            When `acquisition` is no pycromanager acquisition (it has no
            engine that says whether it was aborted).
        RuntimeError
            When it has ended: pycromanager has dropped its engine.
        """
        if not callable(getattr(acquisition, "abort", None)) or not hasattr(
            acquisition, "_acq"
        ):
            raise TypeError(
                "watch: expected the pycromanager Acquisition that runs with this "
                f"hook; got {type(acquisition).__name__}"
            )
        engine = getattr(acquisition, "_acq", None)
        if engine is None:
            raise RuntimeError(
                "watch: the acquisition has ended (pycromanager dropped its engine); "
                "call hook.watch(acq) inside the `with Acquisition(...) as acq:` "
                "block, before acq.acquire"
            )
        if not callable(getattr(engine, "is_abort_requested", None)):
            raise TypeError(
                f"watch: {type(acquisition).__name__}'s engine "
                f"({type(engine).__name__}) does not say whether it was aborted "
                "(no is_abort_requested)"
            )
        return cls(acquisition, engine)

    def outcome(self) -> Outcome:
        """How the acquisition ended (`Outcome`), as far as it says now."""
        try:
            aborted = bool(self.engine.is_abort_requested())
            ended = self._delivered()
        except Exception:  # a Java engine whose bridge has closed
            logger.warning(
                "mmzarr: cannot read whether the pycromanager acquisition was aborted",
                exc_info=True,
            )
            return "unknown"
        if aborted:
            return "failed" if self._exception() is not None else "aborted"
        return "ended" if ended else "running"

    def _delivered(self) -> bool:
        """Whether every image has been through the image processors.

        The data sink is finished after the last one (pycromanager's own
        ``await_completion`` waits for it); an engine without one says only
        that its events have run.
        """
        sink = self.engine.get_data_sink()
        if sink is None:
            return bool(self.engine.are_events_finished())
        return bool(sink.is_finished())

    def _exception(self) -> BaseException | None:
        """The exception that aborted the acquisition, if one did."""
        given = getattr(self.acquisition, "_exception", None)
        if isinstance(given, BaseException):
            return given
        try:
            self.engine.check_for_exceptions()  # raises the engine's own
        except Exception as e:
            return e
        return None


def close_status(
    path: Path,
    *,
    failed: bool,
    watched: Watched | None,
    planned: bool | None,
    learned: bool,
    fallback: bool,
) -> Status | None:
    """The status of `ZarrHook`'s dataset at `path` at close.

    None lets the stream count the frames (`complete` only when every planned
    one was written). An aborted acquisition is never recorded `complete`:
    `watched`, it says whether it was aborted, and one that ran to its end is
    `complete` (as `MDAWriter` records an MDA that did; slots no image came
    for are listed missing); without, only a plan of a bounded size
    (`planned`: the dataset's settings plan every frame; None: no dataset was
    opened) can say whether images are missing. `failed`: the
    hook's writing failed; `learned`: the dataset's shape was learned from
    the images; `fallback`: it is in the fallback layout.
    """
    if failed:
        return "failed"
    outcome = "unknown" if watched is None else watched.outcome()
    if outcome == "failed":
        return "failed"
    if outcome in ("aborted", "running"):
        return "cancelled"
    if outcome == "ended":
        return "complete"
    if planned is None:
        return None
    if planned and not learned and not fallback:
        return None
    why = (
        "the fallback layout has no plan"
        if fallback
        else "its shape was learned from the images"
        if learned
        else "its t is unbounded"
    )
    logger.warning(
        "mmzarr: %s is recorded as cancelled: ZarrHook cannot tell whether "
        "the acquisition was aborted (%s); %s",
        path,
        why,
        "call hook.watch(acq) inside the `with Acquisition(...) as acq:` block"
        if watched is None
        else "the acquisition did not say",
    )
    return "cancelled"
