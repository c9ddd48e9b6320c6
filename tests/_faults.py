"""Fault injection for tests: make a backend fail at a chosen write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest


def fail_on_write(
    monkeypatch: pytest.MonkeyPatch, backend_cls: type, n: int, message: str
) -> None:
    """Make `backend_cls.write` raise `OSError(message)` on its `n`-th call."""
    original = backend_cls.write
    calls = {"n": 0}

    def failing_write(
        self: Any, image: int, index: Any, frame: Any, levels: Any = ()
    ) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(message)
        original(self, image, index, frame, levels)

    monkeypatch.setattr(backend_cls, "write", failing_write)
