"""Shared fixtures: backends from the registry, the demo core."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mmzarr.backends import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymmcore_plus import CMMCorePlus
    from pymmcore_plus.experimental.unicore import UniMMCore


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend (CI installs all extras, so none is skipped there)."""
    name = str(request.param)
    if not BACKENDS[name].is_available():
        pytest.skip(f"backend {name!r} not installed (extra {BACKENDS[name].extra})")
    return name


REPO = Path(__file__).resolve().parent.parent
DEMO_CFG = REPO / "configs" / "demo.cfg"


@pytest.fixture(autouse=True)
def _cores_released_on_the_main_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Keep every core a test makes alive until it ends, then release it here.

    A core dropped mid-test is freed by whichever thread next runs Python's
    garbage collector; when that is the core's own notification thread, MMCore
    aborts the process (seen once in CI: `Fatal Python error: Aborted` while
    `test_demo.py` loaded the next core; `mmzarr.demo.release_core`).
    """
    from pymmcore_plus.experimental.unicore import UniMMCore

    from mmzarr.demo import _rig, release_core

    made: list[CMMCorePlus] = []

    def tracked(*args: Any, **kwargs: Any) -> UniMMCore:
        made.append(mmc := UniMMCore(*args, **kwargs))
        return mmc

    # every core the tests make comes from `demo_core` (the two others are
    # released by their tests)
    monkeypatch.setattr(_rig, "UniMMCore", tracked)
    yield
    for mmc in made:  # then Python may free it on any thread
        release_core(mmc)


@pytest.fixture
def core() -> Iterator[UniMMCore]:
    """A demo-rig core loaded from the repository's `configs/demo.cfg`."""
    from mmzarr.demo import demo_core

    mmc = demo_core(DEMO_CFG)
    yield mmc
    mmc.unloadAllDevices()


#: the test modules README's test command runs inside tests/test_readme.py
README_INNER_MODULES = ("test_settings.py", "test_readme.py")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Inside README's test command run by tests/test_readme.py, run a quick subset.

    (The outer run already runs everything; running it all again would recurse.)
    The other test modules are not even imported there: collecting them all
    took ~10 s of that test.
    """
    if (
        os.environ.get("MMZARR_README_INNER")
        and collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
        and collection_path.name not in README_INNER_MODULES
    ):
        return True
    return None


# ---- hypothesis profiles (tests/test_plan_space.py, tests/_strategies.py) -------
# "ci" (default): derandomized, the example counts set per test, no example
# database. "sweep": `pytest --hypothesis-profile=sweep tests/test_plan_space.py`
# draws 1000 random plans per test (per-test counts defer to it, see
# `tests._strategies.examples`).
from hypothesis import HealthCheck, settings  # noqa: E402

# writing plans to disk is slow for hypothesis' taste; tests that reuse a
# fixture across examples say so themselves (function_scoped_fixture)
_SLOW_OK = [HealthCheck.too_slow]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile(
    "sweep",
    max_examples=1000,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
