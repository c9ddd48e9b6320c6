"""Shared fixtures: backends from the registry, the demo core."""

from __future__ import annotations

import pytest

from mmzarr.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend (CI installs all extras, so none is skipped there)."""
    name = str(request.param)
    if not BACKENDS[name].is_available():
        pytest.skip(f"backend {name!r} not installed (extra {BACKENDS[name].extra})")
    return name
