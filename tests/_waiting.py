"""Waiting in tests for what must happen, with a deadline that only bounds it.

No test waits for a clock to pass: `wait_for` returns as soon as its condition
holds, and the deadline only turns a hang into a failure naming what never came.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def wait_for(
    what: str, ready: Callable[[], object], seconds: float = 30, every: float = 0.005
) -> None:
    """Wait until `ready()` is true; fail after `seconds`, naming `what`."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(every)
