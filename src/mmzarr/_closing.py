"""What the writers share around closing.

`with` support (close on exit, after an error too), closing when dropped
unclosed (`ClosesWhenDropped`) and Ctrl-C deferred until a write or a close
has ended (`DeferredInterrupt`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = ["ClosesOnExit", "ClosesWhenDropped", "DeferredInterrupt"]

logger = logging.getLogger("mmzarr")


class DeferredInterrupt:
    """Let the block run to its end through a first Ctrl-C; then raise it.

    A write or a close cut short leaves a dataset half done (a frame half
    handed to the backend, which a retry then writes twice; a status left
    `acquiring`, frames accepted but never written) that cannot be finished.
    On the main thread a first SIGINT meanwhile is only noted (and said, with
    `what`); a second one interrupts at once. The first is raised as
    KeyboardInterrupt once the block has ended, unless the block raised.
    Elsewhere (SIGINT interrupts only the main thread) it does nothing; nor
    inside another's block (a dataset's close among its siblings'), which
    counts the presses for both: a second one there stops at once too.
    """

    __slots__ = ("_caught", "_previous", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        self._caught = 0
        self._previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if isinstance(
            getattr(signal.getsignal(signal.SIGINT), "__self__", None),
            DeferredInterrupt,
        ):
            return  # the enclosing block defers (and raises) the first Ctrl-C
        self._previous = signal.signal(signal.SIGINT, self._defer)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        previous, self._previous = self._previous, None
        if previous is None:
            return
        signal.signal(signal.SIGINT, previous)
        if not self._caught or exc_type is not None:
            return
        if previous is signal.default_int_handler:
            raise KeyboardInterrupt
        if callable(previous):
            previous(signal.SIGINT, None)

    def _defer(self, signum: int, frame: Any) -> None:
        self._caught += 1
        if self._caught > 1:
            raise KeyboardInterrupt
        logger.warning(
            "mmzarr: Ctrl-C: %s first; press it again to stop now", self._what
        )


class ClosesOnExit:
    """`with writer:` calls `close()`; after an error, `_close_after_error(exc)`.

    The error on its way is never replaced by one from closing (subclasses log
    those instead).
    """

    def close(self) -> None:
        """Close (subclasses)."""
        raise NotImplementedError

    def _close_after_error(self, exc: BaseException | None) -> None:
        """Close while `exc` propagates; never raises."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._close_after_error(exc)


class ClosesWhenDropped:
    """Closed, with a `ResourceWarning`, when collected while still open.

    A writer dropped without `close` (an app that lost it, a front end whose
    run never finished) is closed as a file would be, rather than keep its
    lock, its files and its threads until the process ends; its status says
    what was acquired. Not while the interpreter shuts down: the threads a
    close waits for may be stopped by then. Subclasses set `_closed` (False
    once open) and `path`.

    Python's cyclic garbage collector runs on whichever thread happens to
    allocate: for a writer in a reference cycle that may be one of its own
    threads (its flush thread holding its frame log's lock, zarr-python's
    writer thread that its last writes wait for, zarr's event loop), and a
    close there would wait for that thread itself. Off the main thread it is
    closed on a thread of its own.
    """

    def close(self) -> None:
        """Close (subclasses)."""
        raise NotImplementedError

    def __del__(self) -> None:
        if getattr(self, "_closed", True) or sys.is_finalizing():
            return
        path = str(getattr(self, "path", "?"))
        try:
            warnings.warn(
                f"mmzarr: stream {path!r} was never closed; closing it now",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        finally:  # closed also when warnings are errors
            if threading.current_thread() is threading.main_thread():
                self._close_dropped(path)
            else:  # not a daemon: the close ends before the program does
                closer = threading.Thread(
                    target=self._close_dropped,
                    args=(path,),
                    name="mmzarr-close-dropped",
                )
                try:
                    closer.start()
                except RuntimeError:  # Python 3.12+, the main thread returned
                    self._close_dropped(path)

    def _close_dropped(self, path: str) -> None:
        try:
            self.close()
        except Exception:
            logger.exception("mmzarr: closing the unclosed stream %s failed", path)
