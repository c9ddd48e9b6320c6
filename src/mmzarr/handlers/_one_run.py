"""One run at a time: `MDAWriter` refuses a run that starts while its run goes on.

One writer given to two cores that run at once would take the second core's
frames into the first run's dataset, or replace it. The thread that said the
first run started (pymmcore-plus' relay thread of that core's run) tells them
apart: a run said to start on another thread while that one is alive, its
dataset open, is refused before it acquires anything (pymmcore-plus raises
what an output's `sequenceStarted` raises), and the core running it is asked
to cancel; its `sequenceFinished` is then not the writer's run's.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from mmzarr.handlers._runner import cores_listing

if TYPE_CHECKING:
    import useq

__all__ = ["OneRun"]

logger = logging.getLogger("mmzarr")


class OneRun:
    """The run a writer takes, and the runs it refused meanwhile."""

    def __init__(self) -> None:
        #: the thread that said the run started
        self._thread: threading.Thread | None = None
        #: the plans of runs refused: their sequenceFinished is not the run's
        self._refused: list[useq.MDASequence] = []

    def start(
        self,
        sequence: useq.MDASequence,
        *,
        writer: object,
        what: str,
        running: Any,
        open_run: bool,
    ) -> None:
        """Take the run of `sequence`, said to start on this thread.

        `open_run`: the writer's datasets of the run before are open;
        `running`: the core of that run (never cancelled here); `what`: the
        writer, for the message.

        Raises
        ------
        RuntimeError
            When that run's thread still runs and `open_run`: the run that
            starts now is refused (and its core asked to cancel it).
        """
        earlier = self._thread
        if (
            earlier is None
            or earlier is threading.current_thread()
            or not earlier.is_alive()
            or not open_run
        ):
            self._thread = threading.current_thread()
            return
        self._refused.append(sequence)
        why = (
            f"{what} is writing a run that has not ended (started on "
            f"{earlier.name}); a writer takes one run at a time: give each "
            "core's run its own MDAWriter"
        )
        logger.error("mmzarr: %s; cancelling the MDA that started now", why)
        others = () if running is None else cores_listing(writer, but=running)
        for other in others:
            try:  # what would acquire for nobody: the run that started now
                other.mda.cancel()
            except Exception:  # pragma: no cover - best effort
                logger.exception("mmzarr: could not cancel the MDA")
        raise RuntimeError(why)

    def refused(self, sequence: useq.MDASequence) -> bool:
        """Whether `sequence` is a run `start` refused (forgotten once asked)."""
        if any(sequence is r for r in self._refused):
            self._refused = [r for r in self._refused if r is not sequence]
            return True
        return False
