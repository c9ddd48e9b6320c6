"""Every script in `examples/` runs (small) and writes what it says (issue #6).

Each example runs in a subprocess with `sys.executable`, as a reader would run
it; the data is then read back independently (zarr-python, tensorstore,
yaozarrs/ome-zarr-models via `tests._readback`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr

if TYPE_CHECKING:
    from collections.abc import Callable

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    script = EXAMPLES / name
    if not script.is_file():
        pytest.skip(f"{script} does not exist")
    return subprocess.run(
        [sys.executable, str(script), str(out), *args],
        cwd=out.parent,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def mm_attrs(root: Path) -> dict[str, Any]:
    return group_json(root)["attributes"]["mmzarr"]


def stamps(data: np.ndarray) -> np.ndarray:
    """The demo camera's frame counter of every plane (4 bytes in row 0)."""
    b = data[..., 0, :4].astype(np.int64)
    return b[..., 0] | b[..., 1] << 8 | b[..., 2] << 16 | b[..., 3] << 24


def check_plate(out: Path) -> None:
    plate = group_json(out)["attributes"]["ome"]["plate"]
    wells = [w["path"] for w in plate["wells"]]
    assert wells == ["A/1", "B/2"]
    seen: list[np.ndarray] = []
    for well in wells:
        fields = group_json(out, well)["attributes"]["ome"]["well"]["images"]
        assert [f["path"] for f in fields] == ["0", "1", "2", "3"]  # 2x2 grid
        for f in fields:
            data = read_zarr(out, f"{well}/{f['path']}/0")
            assert data.shape == (3, 2, 3, 64, 64)  # t, c, z, y, x
            seen.append(stamps(data).ravel())
    # 144 planes, each a distinct camera frame
    assert len(np.unique(np.concatenate(seen))) == 144
    assert mm_attrs(out)["frames_written"] == 144


def check_positions(out: Path) -> None:
    assert group_json(out, "OME")["attributes"]["ome"]["series"] == ["0", "1", "2", "3"]
    names, shapes = [], []
    for key in "0123":
        ms = group_json(out, key)["attributes"]["ome"]["multiscales"][0]
        names.append(ms["name"])
        shapes.append(read_zarr(out, f"{key}/0").shape)
    assert names[:2] == ["left", "right"]
    assert all(n.startswith("tiles") for n in names[2:])
    # the "tiles" position has its own deeper z stack
    assert shapes == [(2, 2, 3, 64, 64)] * 2 + [(2, 2, 5, 64, 64)] * 2
    assert mm_attrs(out)["frames_written"] == 2 * 12 + 2 * 20


def check_numpy(out: Path) -> None:
    data = read_zarr(out, "0")
    np.testing.assert_array_equal(data, read_tensorstore(out, "0"))
    t, c, z, h, w = data.shape
    assert (t, c, z, h, w) == (2, 2, 5, 32, 32)
    ramp = np.add.outer(np.arange(h), np.arange(w))
    for ti, ci, zi in np.ndindex(t, c, z):
        expected = ramp + 1000 * ti + 100 * ci + 10 * zi
        np.testing.assert_array_equal(data[ti, ci, zi], expected)
    assert "zstd" in (out / "0" / "zarr.json").read_text()  # compressed
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] == [
        0.65,
        0.65,
    ]
    assert mm_attrs(out)["frames_written"] == 20


def check_pycromanager(out: Path) -> None:
    assert group_json(out, "OME")["attributes"]["ome"]["series"] == ["0", "1"]
    for key, name in (("0", "A"), ("1", "B")):
        ms = group_json(out, key)["attributes"]["ome"]["multiscales"][0]
        assert ms["name"] == name
        data = read_zarr(out, f"{key}/0")
        assert data.shape == (2, 2, 3, 512, 512)
        assert len(np.unique(stamps(data))) == 12  # every plane a distinct frame
    assert mm_attrs(out)["frames_written"] == 24


@dataclass(frozen=True)
class Example:
    name: str
    args: tuple[str, ...]  # after the output path: make it small and self-contained
    check: Callable[[Path], None]
    says: str = ""  # in what it prints, besides where the data is


EXAMPLE_CASES = [
    Example("mda_plate.py", ("--small",), check_plate),
    Example("mda_multi_position.py", ("--small",), check_positions),
    Example("stream_numpy.py", ("--small",), check_numpy),
    # the Python engine on the demo rig, never a Micro-Manager that may be running
    Example(
        "pycromanager_hook.py",
        ("--backend", "python", "--timepoints", "2"),
        check_pycromanager,
        says="24 images",
    ),
]


@pytest.mark.parametrize("case", EXAMPLE_CASES, ids=lambda c: c.name)
def test_example(tmp_path: Path, case: Example) -> None:
    out = tmp_path / "out.ome.zarr"
    r = run_example(case.name, out, *case.args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert out.name in r.stdout  # says where the data is
    assert case.says in r.stdout
    check_metadata(out)
    assert mm_attrs(out)["status"] == "complete"
    case.check(out)


def test_every_example_is_tested() -> None:
    tested = {c.name for c in EXAMPLE_CASES}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested
