"""Fault injection for tests: a backend failing at a chosen write, a folder
made read-only, and `mmzarr` run as a user whom file modes stop."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


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


@functools.cache
def bound_by_file_modes() -> tuple[str, ...] | None:
    """A command prefix under which `chmod a-w` stops writes; None if none is.

    Root ignores file modes (CAP_DAC_OVERRIDE): as root, `setpriv` runs the
    command without the capabilities that override them. Checked by writing a
    read-only file.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    drop = "--bounding-set=-dac_override,-dac_read_search"
    prefix = (setpriv, drop, "--inh-caps=-all")
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_text("")
        probe.chmod(0o444)
        tried = subprocess.run(
            [*prefix, sys.executable, "-c", f"open({str(probe)!r}, 'a')"],
            capture_output=True,
            text=True,
            check=False,
        )
    return prefix if "PermissionError" in tried.stderr else None


def mmzarr_bound(
    *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`mmzarr *args`, as a user whom `chmod a-w` stops (skips where none is)."""
    prefix = bound_by_file_modes()
    if prefix is None:
        pytest.skip("root ignores file modes, and setpriv cannot drop that here")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mmzarr", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=120,
        cwd=cwd,
    )


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`chmod a-w folder` meanwhile."""
    mode = folder.stat().st_mode
    folder.chmod(mode & ~0o222)
    try:
        yield
    finally:
        folder.chmod(mode)
