"""`with` support shared by the writers: close on exit, after an error too."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = ["ClosesOnExit"]


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
