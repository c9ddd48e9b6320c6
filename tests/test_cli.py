"""The `mmzarr` command, run as a subprocess (issue #6).

Exit codes and messages are checked as a user sees them; the written data is
checked independently (zarr-python, yaozarrs, the demo camera's frame stamp).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pydantic
import pytest
import useq
import zarr

from mmzarr.backends import BACKENDS
from mmzarr.demo import DEMO_CONFIG
from tests._faults import mmzarr_bound, read_only
from tests._readback import check_metadata, group_json, read_zarr
from tests._waiting import wait_for
from tests.test_stream import write_plan

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
PLAN_YAML = """\
channels: [DAPI, FITC]
z_plan: {range: 2, step: 1}
axis_order: tpcz
"""
PLAN_JSON = {
    "channels": ["DAPI", "Cy5"],
    "time_plan": {"interval": 0.05, "loops": 2},
    "axis_order": "tpcz",
}


def mmzarr(*args: Any, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mmzarr", *map(str, args)]
    return subprocess.run(
        cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def stamps(data: np.ndarray) -> np.ndarray:
    """The demo camera's frame counter of every plane (4 bytes in row 0)."""
    b = data[..., 0, :4].astype(np.int64)
    return b[..., 0] | b[..., 1] << 8 | b[..., 2] << 16 | b[..., 3] << 24


def mm_attrs(root: Path) -> dict[str, Any]:
    return group_json(root)["attributes"]["mmzarr"]


def small_config(tmp: Path) -> Path:
    """The bundled demo rig with a 64x64 camera, for `--config`."""
    text = DEMO_CONFIG.read_text()
    assert "SensorWidth,512" in text
    cfg = tmp / "small.cfg"
    cfg.write_text(
        text.replace("SensorWidth,512", "SensorWidth,64").replace(
            "SensorHeight,512", "SensorHeight,64"
        )
    )
    return cfg


# ---- fixtures: each dataset is acquired once per module --------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    cwd = tmp_path_factory.mktemp("demo")
    return cwd / "demo.ome.zarr", mmzarr("demo", cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def acquired(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    cwd = tmp_path_factory.mktemp("acquire")
    (cwd / "plan.yaml").write_text(PLAN_YAML)
    return cwd / "out.ome.zarr", mmzarr("acquire", "plan.yaml", "out.ome.zarr", cwd=cwd)


# ---- demo, info ------------------------------------------------------------------
def test_demo(demo: tuple[Path, Any]) -> None:
    out, r = demo
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    # says where the data is and how to open it
    assert str(out.resolve()) in r.stdout
    assert "napari" in r.stdout
    assert f"mmzarr info {out.name}" in r.stdout
    # a plain path reads plainly in the Python line (no nested shell quoting)
    plain = (
        f"""python -c 'import zarr; print(zarr.open_group("{out.resolve()}").tree())'"""
    )
    assert plain in r.stdout, r.stdout
    assert f"{out.name}: valid" in r.stdout  # validated
    assert "frames/s" in r.stderr  # progress
    assert "MB/s" in r.stderr
    check_metadata(out)
    plate = group_json(out)["attributes"]["ome"]["plate"]
    wells = [w["path"] for w in plate["wells"]]
    assert 2 <= len(wells) <= 3
    for well in wells:
        fields = group_json(out, well)["attributes"]["ome"]["well"]["images"]
        assert len(fields) == 4  # 2x2
    arr = zarr.open_array(str(out / wells[0] / "0" / "0"), mode="r")
    t, c, z = arr.shape[:3]
    assert arr.shape[3:] == (512, 512)
    assert c == 2
    assert z >= 2
    assert t >= 2
    ms = group_json(out, f"{wells[0]}/0")["attributes"]["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["t", "c", "z", "y", "x"]
    assert len(np.unique(stamps(arr[:, :, :, :1, :]))) == t * c * z  # all acquired
    attrs = mm_attrs(out)
    assert attrs["status"] == "complete"
    assert attrs["frames_written"] == len(wells) * 4 * t * c * z


def test_demo_says_commands_that_open_a_path_with_spaces(tmp_path: Path) -> None:
    # the "open it with" lines are shell commands: a path with a space or a
    # quote must come out as one argument
    import shlex

    out = tmp_path / "my run's.ome.zarr"
    r = mmzarr("demo", out.name, "--backend", "tensorstore", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("open it with:\n", 1)[1].splitlines()
    napari, python, info = (shlex.split(line) for line in lines[:3])
    assert napari == ["napari", "--plugin", "napari-ome-zarr", str(out.resolve())]
    assert python[:2] == ["python", "-c"]
    assert len(python) == 3
    tree = subprocess.run(
        [sys.executable, "-c", python[2]], capture_output=True, text=True
    )
    assert tree.returncode == 0, tree.stderr
    assert info == ["mmzarr", "info", out.name]


def test_info_of_a_well_says_it_is_one_and_whose(demo: tuple[Path, Any]) -> None:
    """A well of the plate was shown as "(image, ... status unknown)"."""
    out, _ = demo
    well = group_json(out)["attributes"]["ome"]["plate"]["wells"][0]["path"]
    r = mmzarr("info", out / well, cwd=out.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{out / well} (well, "), r.stdout
    assert "field 0:" in r.stdout
    assert out.name in r.stdout.split("part of the dataset", 1)[1]


def test_info_plate(demo: tuple[Path, Any]) -> None:
    out, _ = demo
    r = mmzarr("info", out, cwd=out.parent)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    wells = [w["path"] for w in group_json(out)["attributes"]["ome"]["plate"]["wells"]]
    for well in wells:
        assert any(f"well {well}" in line for line in lines), r.stdout
    fields = [line for line in lines if "field " in line]
    assert len(fields) == 4 * len(wells)
    shape = zarr.open_array(str(out / wells[0] / "0" / "0"), mode="r").shape
    assert all(str(shape) in f for f in fields)
    assert all("uint16" in f and "['DAPI', 'FITC']" in f for f in fields)
    n = mm_attrs(out)["frames_written"]
    assert f"{n}/{n} frames" in lines[0]
    assert "MB on disk" in lines[0]


def test_info_names_a_path_with_brackets_as_it_is(tmp_path: Path) -> None:
    # "[final]" is rich markup: info printed "run.ome.zarr (image, ..."
    import mmzarr as mz

    settings = mz.AcquisitionSettings.from_useq(
        useq.MDASequence(channels=["DAPI"]),
        image_shape=(8, 8),
        dtype="uint16",
        pixel_size_um=1,
    )
    out = tmp_path / "run[final].ome.zarr"
    with mz.create_stream(out, settings, backend="tensorstore") as stream:
        stream.append(np.ones((8, 8), "uint16"))
    r = mmzarr("info", out.name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("run[final].ome.zarr (image, "), r.stdout


def test_info_shows_image_and_channel_names_as_given(tmp_path: Path) -> None:
    """Position names were not shown (a collection read `0`, `1`), and channel
    labels went through rich markup: `[bold]x` showed as `x` and a `[/]` in a
    name made `info` fail with a MarkupError."""
    seq = useq.MDASequence(
        channels=["[bold]x", "a[/]"],
        stage_positions=[
            useq.Position(x=0, y=0, name="[/]"),
            useq.Position(x=1, y=1, name="日本"),
            useq.Position(x=2, y=2),
        ],
    )
    out = tmp_path / "names.ome.zarr"
    write_plan(out, seq, "tensorstore")
    r = mmzarr("info", out.name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith(("├", "└"))]
    assert len(lines) == 3, r.stdout
    assert lines[0].startswith("├── 0: name='[/]' cyx"), r.stdout
    assert lines[1].startswith("├── 1: name='日本' cyx"), r.stdout
    assert lines[2].startswith("└── 2: cyx"), r.stdout  # no name of its own
    assert all("channels=['[bold]x', 'a[/]']" in line for line in lines), r.stdout


def test_info_of_a_dataset_not_closed_counts_its_logged_frames(tmp_path: Path) -> None:
    """The frame counts in the root are set at close: for a run still going,
    or killed, info said "0/4 frames" and frames=0 for each image, of a
    dataset holding frames. It counts the frame log's records."""

    seq = useq.MDASequence(
        stage_positions=[(0, 0), (10, 0)], time_plan={"interval": 1, "loops": 2}
    )
    out = tmp_path / "killed.ome.zarr"
    write_plan(out, seq, "tensorstore")
    # as a writer killed after its third frame's record leaves it
    doc = json.loads((out / "zarr.json").read_text())
    mm = doc["attributes"]["mmzarr"]
    mm["status"] = "acquiring"
    mm["frames_written"] = 0
    mm["images"] = {}
    (out / "zarr.json").write_text(json.dumps(doc))
    log = out / "mmzarr" / "frames.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps(r) + "\n" for r in records[:3]))
    per_image = {}
    for r in records[:3]:
        per_image[r["image"]] = per_image.get(r["image"], 0) + 1
    assert per_image == {"0": 2, "1": 1}  # useq's order: t, then p

    r = mmzarr("info", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "status acquiring, 3 logged/4 frames" in lines[0], r.stdout
    assert "mmzarr finalize" in r.stdout
    images = [line for line in lines if "(2, 8, 10)" in line]  # write_plan's frames
    assert len(images) == 2, r.stdout
    assert "frames=2" in images[0], r.stdout
    assert "frames=1" in images[1], r.stdout


def test_info_and_validate_name_planned_frames_never_written(tmp_path: Path) -> None:
    """A run closed as complete (a camera failed to snap once): info and validate
    both say which planned frame is not there."""
    import mmzarr as mz

    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 3})
    settings = mz.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint16", pixel_size_um=0.5
    )
    out = tmp_path / "holes.ome.zarr"
    with mz.create_stream(out, settings, backend="tensorstore") as stream:
        for t in (0, 2):
            stream.append(np.full((8, 10), t, "uint16"), index={"t": t})
        stream.close("complete")
    r = mmzarr("info", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "status complete, 2/3 frames" in r.stdout, r.stdout
    assert "frames=2 (1 planned never written)" in r.stdout, r.stdout
    r = mmzarr("validate", out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in r.stdout.splitlines()[0], r.stdout
    assert "1 planned frame never written" in r.stdout, r.stdout
    assert "{t: 1}" in r.stdout, r.stdout


# ---- acquire ---------------------------------------------------------------------
def test_acquire_yaml(acquired: tuple[Path, Any]) -> None:
    out, r = acquired
    assert r.returncode == 0, r.stderr
    assert "wrote 6 frames" in r.stdout
    assert "frames/s" in r.stderr
    assert "6/6" in r.stderr
    check_metadata(out)
    data = read_zarr(out, "0")
    assert data.shape == (2, 3, 512, 512)
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    omero = group_json(out)["attributes"]["ome"]["omero"]
    assert [ch["label"] for ch in omero["channels"]] == ["DAPI", "FITC"]
    attrs = mm_attrs(out)
    assert attrs["status"] == "complete"
    assert attrs["frames_written"] == 6
    # every plane is a distinct frame, in acquisition order (c outer, z inner)
    s = stamps(data)
    np.testing.assert_array_equal(s - s[0, 0], np.arange(6).reshape(2, 3))


def test_acquire_json_overwrite(acquired: tuple[Path, Any], tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(json.dumps(PLAN_JSON))
    out = tmp_path / "out.ome.zarr"
    shutil.copytree(acquired[0], out)  # an earlier dataset, replaced
    backend = "zarr-python" if BACKENDS["zarr-python"].is_available() else None
    extra = ["--backend", backend] if backend else []
    r = mmzarr("acquire", "plan.json", out.name, "--overwrite", *extra, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    check_metadata(out)
    data = read_zarr(out, "0")
    assert data.shape == (2, 2, 512, 512)
    s = stamps(data)
    np.testing.assert_array_equal(s - s[0, 0], np.arange(4).reshape(2, 2))
    attrs = mm_attrs(out)
    assert (attrs["status"], attrs["frames_written"]) == ("complete", 4)
    if backend:
        assert "Acquire" not in attrs["backend"]


def test_dry_run(tmp_path: Path) -> None:
    plan = {
        "stage_positions": {
            "plate": "96-well",
            "a1_center_xy": [0, 0],
            "selected_wells": [[0, 1], [0, 2]],
        },
        "channels": ["DAPI"],
        "z_plan": {"range": 2, "step": 1},
    }
    (tmp_path / "plate.json").write_text(json.dumps(plan))
    r = mmzarr("acquire", "plate.json", "out.ome.zarr", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "layout: plate" in r.stdout
    assert "A/1" in r.stdout
    assert "B/3" in r.stdout
    assert "1x3x512x512" in r.stdout  # shape
    assert "1x1x512x512" in r.stdout  # chunks
    assert f"expected {2 * 3 * 512 * 512 * 2 / 1e6:.1f} MB" in r.stdout
    assert "nothing acquired" in r.stdout
    assert not (tmp_path / "out.ome.zarr").exists()
    assert "acquiring" not in r.stderr
    assert "free" not in r.stderr  # 3 MB fit


def test_dry_run_of_a_plan_larger_than_the_disk_warns(tmp_path: Path) -> None:
    """A plan of more bytes than the disk holds: the run would fail part way.

    It said "expected 5242880.0 MB uncompressed" and nothing about the disk.
    """
    side = 4096  # 32 MiB frames: few time points fill any disk
    text = DEMO_CONFIG.read_text()
    (tmp_path / "big.cfg").write_text(
        text.replace("SensorWidth,512", f"SensorWidth,{side}").replace(
            "SensorHeight,512", f"SensorHeight,{side}"
        )
    )
    frame = side * side * 2
    # twice the free space: other processes may free some meanwhile
    loops = 2 * (shutil.disk_usage(tmp_path).free // frame + 1)
    (tmp_path / "p.yaml").write_text(f"time_plan: {{interval: 1, loops: {loops}}}\n")
    r = mmzarr(
        "acquire", "p.yaml", "o.zarr", "--dry-run", "--config", "big.cfg", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "free" in line]
    assert len(warning) == 1, r.stderr
    assert warning[0].startswith("mmzarr: warning: the plan writes up to ")
    assert str(tmp_path) in warning[0]
    assert "the run stops when the disk is full" in warning[0]
    assert not (tmp_path / "o.zarr").exists()


def test_dry_run_of_a_refused_run_exits_as_the_run(tmp_path: Path) -> None:
    """A script checking a plan with --dry-run sees the refusal in the exit code."""
    (tmp_path / "plan.json").write_text(json.dumps({"channels": ["DAPI"]}))
    (tmp_path / "out").write_text("a user's file")
    args = ("acquire", "plan.json", "out", "--overwrite")
    dry = mmzarr(*args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 1, dry.stdout
    assert "(acquiring would fail: refusing to replace" in dry.stdout
    run = mmzarr(*args, cwd=tmp_path)
    assert run.returncode == 1
    assert (tmp_path / "out").read_text() == "a user's file"


@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_acquire_into_a_read_only_folder_is_refused_before_the_rig_loads(
    tmp_path: Path, existing: bool
) -> None:
    """A folder the dataset cannot be made in (a read-only mount, file modes)
    is one line naming it, before the rig loads; the MDA started, acquired a
    frame and was cancelled, with several lines of output."""
    (tmp_path / "plan.json").write_text(json.dumps({"channels": ["DAPI"]}))
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "out.ome.zarr"
    if existing:
        out.mkdir()
        (out / "zarr.json").write_text(OME_GROUP)
    with read_only(ro):
        r = mmzarr_bound("acquire", "plan.json", str(out), "--overwrite", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"mmzarr: error: cannot write {str(out)!r}: {str(ro)!r} is not writable"
    ]
    assert sorted(p.name for p in ro.iterdir()) == (["out.ome.zarr"] * existing)


#: a position's time plan inside the sequence's: mmzarr cannot map it
FALLBACK_PLAN = {
    "stage_positions": [
        {"x": 0, "y": 0},
        {"x": 1, "y": 1, "sequence": {"time_plan": {"interval": 0, "loops": 2}}},
    ],
    "time_plan": {"interval": 0, "loops": 2},
}


def test_dry_run_of_a_plan_in_the_fallback_layout(tmp_path: Path) -> None:
    """It printed no shape and no size; the run then writes what it said."""
    (tmp_path / "plan.json").write_text(json.dumps(FALLBACK_PLAN))
    frames = len(list(useq.MDASequence(**FALLBACK_PLAN)))  # useq's events
    assert frames == 6
    r = mmzarr("acquire", "plan.json", "out.ome.zarr", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cannot be mapped" in r.stderr
    assert "more than once" in r.stderr  # why
    assert "layout: fallback  dtype: uint16" in r.stdout
    assert f"{frames}x512x512" in r.stdout  # the demo camera's frames
    assert f"1 image, {frames} frames in arrival order" in r.stdout
    assert f"expected {frames * 512 * 512 * 2 / 1e6:.1f} MB uncompressed" in r.stdout
    assert (
        "dry run: nothing acquired; would write out.ome.zarr in the fallback "
        "layout with backend acquire-zarr"
    ) in r.stdout
    assert not (tmp_path / "out.ome.zarr").exists()

    r = mmzarr("acquire", "plan.json", "out.ome.zarr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = read_zarr(tmp_path / "out.ome.zarr", "0")
    assert (data.shape, str(data.dtype)) == ((frames, 512, 512), "uint16")
    assert mm_attrs(tmp_path / "out.ome.zarr")["backend"] == "AcquireZarrBackend"


#: a Python camera of RGB frames, (y, x, 3) uint8 (the demo rig has no RGB mode)
RGB_CAMERA = """\
import numpy as np
from mmzarr.demo._devices import DemoCamera


class RGBCamera(DemoCamera):
    def sensor_shape(self):
        return (*super().sensor_shape(), 3)

    def dtype(self):
        return np.uint8

    def snap(self, buffer):
        buffer[...] = (10, 20, 30)
        return {}
"""


@pytest.mark.parametrize(
    "plan",
    [{"channels": ["DAPI", "FITC"]}, FALLBACK_PLAN],
    ids=["mappable-plan", "fallback-plan"],
)
def test_dry_run_on_an_rgb_camera_shows_what_the_run_writes(
    tmp_path: Path, plan: dict[str, Any]
) -> None:
    """It showed 2D frames of the plan's layout (a mappable plan) or of the
    fallback layout, without the samples a run keeps as channels."""
    (tmp_path / "rgb_camera.py").write_text(RGB_CAMERA)  # cwd: importable
    old = "mmzarr.demo._devices,DemoCamera"
    assert old in DEMO_CONFIG.read_text()
    (tmp_path / "rgb.cfg").write_text(
        DEMO_CONFIG.read_text().replace(old, "rgb_camera,RGBCamera")
    )
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    frames = len(list(useq.MDASequence(**plan)))  # useq's events
    args = ("acquire", "plan.json", "out.ome.zarr", "--config", "rgb.cfg")
    dry = mmzarr(*args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr

    r = mmzarr(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = read_zarr(tmp_path / "out.ome.zarr", "0")
    assert (data.shape, str(data.dtype)) == ((frames, 3, 512, 512), "uint8")
    assert "layout: fallback  dtype: uint8" in dry.stdout
    assert "x".join(map(str, data.shape)) in dry.stdout
    assert f"1 image, {frames} frames in arrival order" in dry.stdout
    assert f"expected {data.nbytes / 1e6:.1f} MB uncompressed" in dry.stdout
    assert "in the fallback layout" in dry.stdout
    assert "(color)" in dry.stderr  # why it cannot be mapped
    # the camera's frames, as acquired: not the planes that keep them
    assert f"acquired {frames}/{frames} frames" in r.stderr
    assert f"wrote {frames} frames to out.ome.zarr" in r.stdout


# ---- validate --------------------------------------------------------------------
def test_validate_good(acquired: tuple[Path, Any]) -> None:
    out, _ = acquired
    r = mmzarr("validate", out, cwd=out.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{out}: valid" in r.stdout


def _chunks(out: Path) -> list[Path]:
    return sorted(p for p in (out / "0" / "c").rglob("*") if p.is_file())


def _delete_chunk(out: Path) -> str:
    chunk = _chunks(out)[3]
    chunk.unlink()
    return chunk.relative_to(out / "0").as_posix()


def _truncate_chunk(out: Path) -> str:
    chunk = _chunks(out)[4]
    chunk.write_bytes(chunk.read_bytes()[:1000])
    return chunk.relative_to(out / "0").as_posix()


def _corrupt_root_json(out: Path) -> str:
    (out / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr')
    return "zarr.json"


def _corrupt_array_json(out: Path) -> str:
    (out / "0" / "zarr.json").write_text("not json at all")
    return "0/zarr.json"


@dataclass(frozen=True)
class Corruption:
    name: str
    apply: Callable[[Path], str]  # returns what the problem line must name
    problems: tuple[str, ...]  # the line says one of these


CORRUPTIONS = [
    Corruption("deleted-chunk", _delete_chunk, ("missing",)),
    # a sharded chunk's size is not known in advance: reading it fails instead
    Corruption("truncated-chunk", _truncate_chunk, ("truncated", "cannot be read")),
    Corruption("corrupt-root-zarr-json", _corrupt_root_json, ("unreadable JSON",)),
    Corruption("corrupt-array-zarr-json", _corrupt_array_json, ("unreadable JSON",)),
]


@pytest.mark.parametrize("case", CORRUPTIONS, ids=lambda c: c.name)
def test_validate_corrupt(
    acquired: tuple[Path, Any], tmp_path: Path, case: Corruption
) -> None:
    out = tmp_path / "copy.ome.zarr"
    shutil.copytree(acquired[0], out)
    what = case.apply(out)
    r = mmzarr("validate", out, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "INVALID" in r.stderr
    problems = [line for line in r.stderr.splitlines() if "problem:" in line]
    named = [p for p in problems if what in p]
    assert any(w in p for p in named for w in case.problems), r.stderr
    assert "Traceback" not in r.stderr


# ---- bad input -------------------------------------------------------------------
def _useq_reason(plan: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as e:
        useq.MDASequence.model_validate(plan)
    return str(e.value.errors()[0]["msg"]).removeprefix("Value error, ")


@dataclass(frozen=True)
class BadInput:
    name: str
    files: dict[str, str]
    args: tuple[str, ...]
    message: str


REJECTED = {"channels": ["DAPI"], "axis_order": "tpqz"}
#: the root document of a dataset `--overwrite` may replace (mmzarr's)
OME_GROUP = json.dumps(
    {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5"}, "mmzarr": {"status": "complete"}},
    }
)
BAD_INPUTS = [
    BadInput("missing-plan", {}, ("acquire", "nope.yaml", "o"), "plan file not found"),
    BadInput(
        "plan-is-a-directory",
        {"plans/p.yaml": PLAN_YAML},
        ("acquire", "plans", "o"),
        "plan file 'plans' is a directory",
    ),
    BadInput(
        "bad-yaml",
        {"p.yaml": "channels: [DAPI\n  z: :\n"},
        ("acquire", "p.yaml", "o"),
        "is not valid YAML",
    ),
    BadInput(
        "bad-json",
        {"p.json": '{"channels": ["DAPI"],'},
        ("acquire", "p.json", "o"),
        "is not valid YAML/JSON",
    ),
    BadInput(
        "useq-rejects",
        {"p.json": json.dumps(REJECTED)},
        ("acquire", "p.json", "o"),
        f"useq rejected plan 'p.json': axis_order: {_useq_reason(REJECTED)}",
    ),
    BadInput(
        "output-exists",
        {"p.yaml": PLAN_YAML, "o/zarr.json": OME_GROUP},
        ("acquire", "p.yaml", "o"),
        "output 'o' already exists; use --overwrite",
    ),
    BadInput(
        "plan-without-frames",
        {"p.json": "{}"},  # MDASequence(): useq yields no event
        ("acquire", "p.json", "o"),
        "nothing to acquire: plan: the MDASequence acquires no frames",
    ),
    BadInput(
        "unknown-backend",
        {"p.yaml": PLAN_YAML},
        ("acquire", "p.yaml", "o", "--backend", "nope"),
        "unknown backend 'nope'",
    ),
    BadInput(
        "unknown-channel",
        {"p.yaml": "channels: [GFP]\n"},
        ("acquire", "p.yaml", "o"),
        "channel 'GFP'",
    ),
    BadInput(
        "config-missing",  # named where the user is, not in mmzarr's own folder
        {"p.yaml": PLAN_YAML},
        ("acquire", "p.yaml", "o", "--config", "nothere.cfg"),
        "config file not found: ",
    ),
    BadInput(
        "output-under-a-file",  # refused before the rig loads, nothing acquired
        {"p.yaml": PLAN_YAML, "f": "not a folder"},
        ("acquire", "p.yaml", "f/o.ome.zarr"),
        "cannot create 'f/o.ome.zarr': ",
    ),
    BadInput("demo-exists", {"o/zarr.json": "{}"}, ("demo", "o"), "already exists"),
    BadInput(  # it said "use --overwrite", which then refused the folder
        "output-exists-not-replaceable",
        {"p.yaml": PLAN_YAML, "thesis/chapter1.tex": "years of work"},
        ("acquire", "p.yaml", "thesis"),
        "output 'thesis' already exists and --overwrite would not replace it "
        "(refusing to replace ",
    ),
    BadInput(
        "demo-exists-not-replaceable",
        {"notes.txt": "not a dataset"},
        ("demo", "notes.txt"),
        "it is a file, not a dataset directory; --overwrite replaces only an "
        "mmzarr dataset or an empty directory); choose another path",
    ),
    BadInput(  # a zarr group, but no image: info called it "(image, ...)"
        "info-plain-zarr-group",
        {"g/zarr.json": '{"zarr_format": 3, "node_type": "group", "attributes": {}}'},
        ("info", "g"),
        "'g' is not an OME-Zarr dataset (its zarr.json has no 'ome' attributes)",
    ),
    BadInput(
        "demo-unknown-backend",
        {},
        ("demo", "o", "--backend", "foo"),
        "unknown backend 'foo'; choose one of",
    ),
    *(
        BadInput(  # these read local files only: refused, not looked for on disk
            f"{command}-s3",
            {},
            (command, "s3://bucket/runs/run.ome.zarr"),
            f"S3 URLs are not supported by mmzarr {command} "
            "('s3://bucket/runs/run.ome.zarr'); copy the dataset to a local disk "
            "first (e.g. `aws s3 sync s3://bucket/runs/run.ome.zarr run.ome.zarr`, "
            f"then `mmzarr {command} run.ome.zarr`)",
        )
        for command in ("info", "validate", "finalize")
    ),
    *(
        BadInput(  # a mistyped path: it said "INVALID", "no zarr.json" or named a
            # settings file inside it, as if a dataset were there and broken
            f"{command}-missing-path",
            {},
            (command, "nope.ome.zarr"),
            "'nope.ome.zarr' does not exist; check the path",
        )
        for command in ("info", "validate", "finalize")
    ),
    *(
        BadInput(
            f"{command}-a-file",
            {"notes.txt": "not a dataset"},
            (command, "notes.txt"),
            "'notes.txt' is a file, not a dataset folder; give the dataset's "
            "folder (the one holding zarr.json)",
        )
        for command in ("info", "validate", "finalize")
    ),
    BadInput(
        "validate-the-root-document",
        {"run.ome.zarr/zarr.json": "{}"},
        ("validate", "run.ome.zarr/zarr.json"),
        "is a file, not a dataset folder; give its folder: "
        "`mmzarr validate run.ome.zarr`",
    ),
    BadInput(
        "demo-s3",
        {},
        ("demo", "s3://bucket/run.ome.zarr"),
        "S3 URLs are not supported by mmzarr demo ('s3://bucket/run.ome.zarr'); "
        "write it to a local path, or acquire a plan to S3 with `mmzarr acquire "
        "PLAN s3://bucket/run.ome.zarr`",
    ),
    BadInput(
        "info-other-url",
        {},
        ("info", "gs://bucket/run.ome.zarr"),
        "mmzarr info works on local datasets only; 'gs://bucket/run.ome.zarr' is "
        "not a local path",
    ),
    *(
        BadInput(  # it said "works on local datasets only; ... not a local path"
            f"{command}-name-too-long",
            {},
            (command, "x" * 300 + ".ome.zarr"),
            "is 309 bytes, and the file system takes at most",
        )
        for command in ("demo", "info", "validate", "finalize")
    ),
    BadInput(
        "misspelled-key",
        {"p.yaml": "chanels: [DAPI]\n"},
        ("acquire", "p.yaml", "o"),
        "plan 'p.yaml': unknown key 'chanels' (did you mean 'channels'?)",
    ),
    BadInput(
        "misspelled-key-dry-run",
        {"p.yaml": "channels: [DAPI]\nz_plan: {rnage: 2}\n"},
        ("acquire", "p.yaml", "o", "--dry-run"),
        "plan 'p.yaml': unknown key 'z_plan.rnage' (did you mean 'range'?)",
    ),
    *(  # the system resolves `afile/..` through afile: the check read the path
        # as `o.zarr`, and the run failed once the MDA had begun
        BadInput(
            f"{command}-out-through-a-file",
            {"p.yaml": "channels: [DAPI]\n", "afile": "notes\n"},
            (command, *(["p.yaml"] if command == "acquire" else []), "afile/../o.zarr"),
            "cannot create 'afile/../o.zarr': ",
        )
        for command in ("acquire", "demo")
    ),
    # acquired in the fallback layout (useq and pymmcore-plus take it)
    BadInput(
        "interval-negative",
        {"p.yaml": "channels: [DAPI]\ntime_plan: {interval: -1, loops: 3}\n"},
        ("acquire", "p.yaml", "o"),
        "plan 'p.yaml': time_plan: interval -1 s is negative; give 0 (as fast as "
        "possible) or more",
    ),
    # useq said "stage_positions must be a WellPlatePlan or Sequence[Position]"
    BadInput(
        "wells-not-on-plate",
        {
            "p.yaml": "stage_positions:\n  plate: 96-well\n  a1_center_xy: [0, 0]\n"
            "  selected_wells: [[0, 8], [0, 13]]\n"
        },
        ("acquire", "p.yaml", "o"),
        "stage_positions.selected_wells: well (8, 13) is not on the '96-well' "
        "plate of 8 rows x 12 columns",
    ),
    *(  # the dry run printed the table of a run it then refused
        BadInput(
            f"unknown-channel{'-dry-run' * dry}",
            {"p.yaml": "channels: [DAPI, GFP]\nz_plan: {range: 2, step: 1}\n"},
            ("acquire", "p.yaml", "o", *["--dry-run"] * dry),
            "channel 'GFP' (group 'Channel') is not defined on this rig; "
            "defined: ['Cy5', 'DAPI', 'FITC', 'TRITC']",
        )
        for dry in (False, True)
    ),
]


@pytest.mark.parametrize(
    ("command", "local_only"),
    [
        ("demo", True),
        ("info", True),
        ("validate", True),
        ("finalize", True),
        ("acquire", False),
    ],
)
def test_help_offers_s3_only_where_it_is_taken(
    tmp_path: Path, command: str, local_only: bool
) -> None:
    """`--help` names S3 for OUT only where the command takes an S3 URL."""
    r = mmzarr(command, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert ("s3://" in r.stdout) is not local_only, r.stdout


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.name)
def test_bad_input(tmp_path: Path, case: BadInput) -> None:
    for name, text in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    before = sorted(tmp_path.rglob("*"))
    r = mmzarr(*case.args, cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mmzarr: error:")
    assert case.message in lines[0]
    if "--config" in case.args:
        assert str(tmp_path / "nothere.cfg") in lines[0]
    assert r.stdout == ""  # no banner, table or summary before the error
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("command", ["info", "validate", "finalize"])
def test_a_broken_link_or_a_zarr_v2_dataset_is_named_as_such(
    tmp_path: Path, command: str
) -> None:
    """A link in a loop was said not to exist; a zarr v2 (OME-Zarr 0.4)
    dataset only "not a zarr v3 dataset"."""
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "dangling").symlink_to("nowhere")
    for link, said in [("loop1", "in a loop ('loop2')"), ("dangling", "missing")]:
        r = mmzarr(command, link, cwd=tmp_path)
        assert r.returncode == 1
        assert f"mmzarr: error: {link!r} is a symbolic link " in r.stderr
        assert said in r.stderr
    v2 = tmp_path / "old.zarr"
    zarr.open_group(str(v2), mode="w", zarr_format=2).create_array(
        "0", shape=(2, 2), dtype="uint16"
    )
    r = mmzarr(command, "old.zarr", cwd=tmp_path)
    assert r.returncode == 1
    if command != "finalize":  # finalize: "only datasets written by mmzarr"
        assert "it is a zarr v2 dataset" in r.stdout + r.stderr


def test_progress_off_a_terminal_is_one_unwrapped_line(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN_YAML)
    cfg = small_config(tmp_path)
    cmd = [sys.executable, "-m", "mmzarr", "acquire", "plan.yaml", "o.ome.zarr"]
    r = subprocess.run(
        [*cmd, "--config", str(cfg)],
        cwd=tmp_path,
        env={**ENV, "COLUMNS": "80"},  # rich's width for a pipe
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    progress = [line for line in r.stderr.splitlines() if "frames/s" in line]
    assert len(progress) == 1, r.stderr
    assert progress[0].startswith("acquired 6/6 frames in ")
    assert progress[0].endswith(" MB/s")
    assert "━" not in r.stderr  # no bar drawn into a log


def _progress_line(tmp_path: Path, plan: dict[str, Any]) -> str:
    """The progress line of `mmzarr acquire` of `plan` off a terminal."""
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    cfg = small_config(tmp_path)
    r = mmzarr("acquire", "plan.json", "o.ome.zarr", "--config", cfg, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    progress = [line for line in r.stderr.splitlines() if "frames/s" in line]
    assert len(progress) == 1, r.stderr
    return progress[0]


def test_progress_of_a_fallback_run_has_its_total(tmp_path: Path) -> None:
    """A run in the fallback layout said only how many frames came, not of how many."""
    frames = len(list(useq.MDASequence(**FALLBACK_PLAN)))  # useq's events
    line = _progress_line(tmp_path, FALLBACK_PLAN)
    assert line.startswith(f"acquired {frames}/{frames} frames in "), line
    data = read_zarr(tmp_path / "o.ome.zarr", "0")
    assert data.shape == (frames, 64, 64)
    # info of the finished run: its frames, no total (it said "6/∞ frames")
    r = mmzarr("info", "o.ome.zarr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"status complete, {frames} frames)" in r.stdout.splitlines()[0], r.stdout


def test_progress_of_one_frame_says_frame(tmp_path: Path) -> None:
    """It said "acquired 1/1 frames"."""
    plan = {"channels": ["DAPI"]}
    assert len(list(useq.MDASequence(**plan))) == 1
    assert _progress_line(tmp_path, plan).startswith("acquired 1/1 frame in ")


@pytest.mark.parametrize(("n", "said"), [(1, "1 frame "), (2, "2 frames ")])
def test_live_progress_without_a_total_says_frame_or_frames(n: int, said: str) -> None:
    """The bar a terminal shows for a run of unknown length read "1 frames"."""
    from rich.console import Console

    from mmzarr._terminal import _progress

    progress = _progress(None, frame_bytes=8)
    task = progress.add_task("frames", total=None)
    progress.advance(task, n)
    screen = Console(record=True, width=200, force_terminal=True)
    screen.print(progress.make_tasks_table(progress.tasks))
    text = screen.export_text()
    assert f"acquiring {said}" in text, text


# ---- Ctrl-C ----------------------------------------------------------------------
def _wait_for_frames(log: Path, n: int, proc: subprocess.Popen, timeout: float) -> None:
    def logged() -> bool:
        assert proc.poll() is None, "acquisition ended before Ctrl-C"
        return log.is_file() and len(log.read_text().splitlines()) >= n

    wait_for(f"{n} frames logged", logged, seconds=timeout, every=0.05)


def _long_acquire(tmp_path: Path, loops: int) -> tuple[list[str], Path]:
    """`mmzarr acquire` of `loops` frames 20 ms apart (64x64): command, OUT."""
    (tmp_path / "long.yaml").write_text(
        f"channels: [DAPI]\ntime_plan: {{interval: 0.02, loops: {loops}}}\n"
    )
    cfg = small_config(tmp_path)
    out = tmp_path / "long.ome.zarr"
    cmd = [sys.executable, "-m", "mmzarr", "acquire", "long.yaml", out.name]
    return [*cmd, "--config", str(cfg)], out


@pytest.mark.parametrize(
    ("signum", "code", "label"),
    [
        (signal.SIGINT, 130, "Ctrl-C"),
        # SIGTERM, SIGHUP (kill, timeout, a scheduler, a closed ssh session)
        # ended the run at once: no message, the dataset left `acquiring`
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_a_stop_signal_cancels_cleanly(
    tmp_path: Path, signum: int, code: int, label: str
) -> None:
    loops = 500
    cmd, out = _long_acquire(tmp_path, loops)
    with (tmp_path / "stdout").open("w") as so, (tmp_path / "stderr").open("w") as se:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=so, stderr=se)
        try:
            _wait_for_frames(out / "mmzarr" / "frames.jsonl", 5, proc, timeout=60)
            proc.send_signal(signum)
            returncode = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    stderr = (tmp_path / "stderr").read_text()
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"{label}: cancelling and closing the dataset" in stderr
    assert f"mmzarr: cancelled ({label})" in stderr
    attrs = mm_attrs(out)
    assert attrs["status"] == "cancelled"
    n = attrs["frames_written"]
    assert 5 <= n < loops
    assert f"wrote {n} frames" in (tmp_path / "stdout").read_text()
    log = (out / "mmzarr" / "frames.jsonl").read_text().splitlines()
    assert len(log) == n
    # exactly the first n time points hold data, each a distinct frame in order
    arr = zarr.open_array(str(out / "0"), mode="r")
    assert arr.shape[1:] == (1, 64, 64)
    assert n <= arr.shape[0] <= loops  # t may be trimmed to what was acquired
    s = stamps(arr[:, 0, :1, :])
    np.testing.assert_array_equal(s[:n] - s[0], np.arange(n))
    assert not arr[n:].any()
    r = mmzarr("validate", out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status: cancelled" in r.stdout


def test_a_closed_terminal_cancels_cleanly(tmp_path: Path) -> None:
    """An ssh session dropped (the terminal gone, then SIGHUP): every write
    to it failed (EIO), the run ended with exit 1 and the dataset was left
    `acquiring`."""
    import pty
    import select

    cmd, out = _long_acquire(tmp_path, 500)
    log = out / "mmzarr" / "frames.jsonl"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=ENV,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # the terminal is its own, as a login's
    )
    os.close(slave)
    shown = bytearray()

    def logged() -> bool:  # reading what it shows, so its writes never block
        assert proc.poll() is None, "acquisition ended before the hangup"
        while select.select([master], [], [], 0)[0]:
            shown.extend(os.read(master, 65536))
        return log.is_file() and len(log.read_text().splitlines()) >= 5

    try:
        wait_for("5 frames logged", logged, seconds=60, every=0.05)
        assert b"acquiring" in shown  # it drew its progress on the terminal
        os.close(master)  # the terminal is gone
        proc.send_signal(signal.SIGHUP)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert returncode == 129
    attrs = mm_attrs(out)
    assert attrs["status"] == "cancelled"
    n = attrs["frames_written"]
    assert 5 <= n < 500
    assert len(log.read_text().splitlines()) == n
    s = stamps(zarr.open_array(str(out / "0"), mode="r")[:n, 0, :1, :])
    np.testing.assert_array_equal(s - s[0], np.arange(n))


def _ignore_sighup() -> None:  # what `nohup` does before it runs a command
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_an_ignored_sighup_stays_ignored(tmp_path: Path) -> None:
    """Under `nohup` a closed terminal must not end the run."""
    loops = 40
    cmd, out = _long_acquire(tmp_path, loops)
    with (tmp_path / "stderr").open("w") as se:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=se,
            preexec_fn=_ignore_sighup,
        )
        try:
            _wait_for_frames(out / "mmzarr" / "frames.jsonl", 5, proc, timeout=60)
            proc.send_signal(signal.SIGHUP)
            returncode = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    stderr = (tmp_path / "stderr").read_text()
    assert returncode == 0, stderr
    assert "SIGHUP" not in stderr
    attrs = mm_attrs(out)
    assert attrs["status"] == "complete"
    assert attrs["frames_written"] == loops


def test_info_lists_the_channels_of_sub_sequences_too(tmp_path: Path) -> None:
    """A position's own channels (here Cy5 at 33 ms) were left out of the
    "channels:" line: it listed the top-level plan's channels only."""

    sub = useq.MDASequence(channels=[useq.Channel(config="Cy5", exposure=33)])
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0),
            useq.Position(x=10, y=0, sequence=sub),
        ],
        channels=[useq.Channel(config="DAPI", exposure=10)],
    )
    out = tmp_path / "run.ome.zarr"
    write_plan(out, seq, "tensorstore")
    # the summary pymmcore-plus gives at sequenceStarted holds the plan
    (out / "mmzarr" / "summary.json").write_text(
        json.dumps({"mda_sequence": seq.model_dump(mode="json")})
    )
    r = mmzarr("info", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "channels: DAPI 10 ms, Cy5 33 ms" in r.stdout.splitlines(), r.stdout


def test_channel_of_an_unknown_group_names_the_group(tmp_path: Path) -> None:
    """A channel whose config group the rig lacks: the group is what is wrong."""
    (tmp_path / "p.yaml").write_text(
        "channels:\n  - {config: DAPI, group: Nope}\n", encoding="utf-8"
    )
    cfg = small_config(tmp_path)
    r = mmzarr("acquire", "p.yaml", "o.ome.zarr", "--config", cfg, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "mmzarr: error: channel 'DAPI': config group 'Nope' is not defined on "
        "this rig; groups: ['Channel']"
    )
    assert not (tmp_path / "o.ome.zarr").exists()


def test_validate_says_where_the_metadata_fails(tmp_path: Path) -> None:
    """pydantic's text spans lines, with a link after each failure: validate
    names where and what failed instead."""
    root = tmp_path / "g"
    root.mkdir()
    ome = {"version": "0.5", "multiscales": "not a list"}
    doc = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": ome}}
    (root / "zarr.json").write_text(json.dumps(doc))
    r = mmzarr("validate", "g", cwd=tmp_path)
    assert r.returncode == 1
    said = " ".join(r.stderr.split())
    assert "ome.image.multiscales: Input should be a valid list" in said
    assert "errors.pydantic.dev" not in said
