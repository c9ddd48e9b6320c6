"""README.md is true: its Python examples and its two set-up commands run."""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import mmzarr
from tests._readback import check_metadata

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
PY_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
BASH_BLOCKS = [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]
INNER = "MMZARR_README_INNER"


@pytest.mark.parametrize(
    "code", PY_BLOCKS, ids=[f"python-{i}" for i in range(len(PY_BLOCKS))]
)
def test_python_examples_run(code: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for out in tmp_path.glob("*.ome.zarr"):
        check_metadata(out)


DOCTESTS = [
    test
    for name in mmzarr.__all__
    if name != "__version__"
    for test in doctest.DocTestFinder(recurse=False).find(getattr(mmzarr, name), name)
    if test.examples
]


@pytest.mark.parametrize("test", DOCTESTS, ids=lambda t: t.name)
def test_public_docstring_examples_run(
    test: doctest.DocTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Examples block of each public name runs as written (its own imports)."""
    monkeypatch.chdir(tmp_path)
    test.globs = {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=lambda text: print(text, end=""))
    assert result.failed == 0, f"{test.name}: {result.failed} example(s) failed"
    for out in tmp_path.glob("*.ome.zarr"):
        check_metadata(out)


def test_readme_has_the_two_setup_commands() -> None:
    assert len(BASH_BLOCKS) == 2
    demo, tests = BASH_BLOCKS
    assert "pip install" in demo
    assert "mmzarr demo" in demo
    assert "pip install" in tests
    assert "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci, ".ci/run must run exactly README's test command"
    assert demo in ci, ".ci/run must run exactly README's demo command"
    assert "--upgrade pip" not in ci, "README's commands must work with venv's pip"


@pytest.fixture(scope="module")
def fresh_checkout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the tracked files and a new venv that sees our installed deps.

    The new venv inherits this environment's site-packages through a .pth file,
    so dependencies are already satisfied and `pip install -e` installs mmzarr
    itself from the copy (only the build backend comes from the index).
    """
    if os.environ.get(INNER):
        pytest.skip("already inside README's test command")
    root = tmp_path_factory.mktemp("readme")
    src = root / "mmzarr"
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    for f in files:
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env["COLUMNS"] = "200"
    return src, env


def test_demo_command(fresh_checkout: tuple[Path, dict]) -> None:
    src, env = fresh_checkout
    proc = subprocess.run(
        BASH_BLOCKS[0],
        shell=True,
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = src / "demo.ome.zarr"
    assert "valid" in proc.stdout
    check_metadata(out)


def test_test_command(fresh_checkout: tuple[Path, dict]) -> None:
    src, env = fresh_checkout
    proc = subprocess.run(
        BASH_BLOCKS[1],
        shell=True,
        cwd=src,
        env={**env, INNER: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\d+ passed", proc.stdout)
