"""`with` support shared by the writers: close on exit, after an error too."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

__all__ = ["ClosesOnExit", "run_to_end"]

logger = logging.getLogger("mmzarr")


def run_to_end(fn: Callable[..., None], *args: Any) -> None:
    """Run `fn(*args)` to its end through a first Ctrl-C; then raise it.

    A close cut short leaves the dataset half closed (its status `acquiring`,
    frames accepted but never written) and cannot be done again. On the main
    thread a first SIGINT meanwhile is only noted (and said); a second one
    interrupts (the dataset then needs `mmzarr finalize`). The first is raised
    as KeyboardInterrupt once `fn` has ended, after `fn`'s own error if any.
    """
    if threading.current_thread() is not threading.main_thread():
        fn(*args)
        return
    caught: list[int] = []

    def defer(signum: int, frame: Any) -> None:
        caught.append(signum)
        if len(caught) > 1:
            raise KeyboardInterrupt
        logger.warning(
            "mmzarr: Ctrl-C: the dataset is closed first; press it again to stop "
            "now (then run `mmzarr finalize` on it)"
        )

    previous = signal.signal(signal.SIGINT, defer)
    try:
        fn(*args)
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is signal.default_int_handler:
        raise KeyboardInterrupt
    if caught and callable(previous):
        previous(signal.SIGINT, None)


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
