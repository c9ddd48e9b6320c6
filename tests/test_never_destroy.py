"""Never destroy what is not ours; never lose what we accepted (issue #22).

One section per item of the issue; each test reproduces the problem and fails
without the fix:

1. `overwrite=True` replaces only a dataset or an empty directory (never the
   working directory, a parent of it, a file, a symlink, a thesis folder), in
   `create_stream`, `MDAWriter`, the Pycro-Manager hook and the CLI alike.
2. An old dataset is kept until the new one has opened: a failing open leaves
   it byte-identical; an absurd frame size is a `PlanError` before anything.
3. A dataset being written is locked: a second writer (this process or
   another) and `finalize` are refused, naming the holder.
10. Caller metadata lives under `metadata` in the frame log; the writer's own
    fields cannot be overwritten; old logs still validate, finalize and render.
11. Control characters in names are refused when the settings are built.
12. Plan files: size limit, no YAML aliases, short errors.
13. `flush_interval_s` minimum, read-only targets, NaN in the frame log.
14. S3 credentials never stay in `os.environ` nor appear in a repr.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr import _open
from mmzarr._cli import CLIError, load_plan, main
from mmzarr._lock import lock_path
from mmzarr._metadata import write_groups
from mmzarr.backends import BACKENDS, get_backend
from mmzarr.errors import DatasetLockedError
from tests import test_s3
from tests._readback import assert_frames, check_metadata, group_json, read_zarr
from tests.test_stream import (
    COLLECTION,
    PLATE,
    SHAPE,
    TCZYX,
    frame_for,
    settings_for,
    write_plan,
)

if TYPE_CHECKING:
    from pathlib import Path

TWO_T = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
TC = useq.MDASequence(time_plan={"interval": 1, "loops": 2}, channels=["DAPI", "FITC"])
#: The backend of tests whose behaviour does not depend on it.
ANY_BACKEND = next(
    b
    for b in ("tensorstore", "zarr-python", "acquire-zarr")
    if BACKENDS[b].is_available()
)


# the S3 server and a fresh prefix (fixtures of tests/test_s3.py)
s3_endpoint = test_s3.s3_endpoint
s3_url = test_s3.s3_url


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes); symlinks as their target."""
    out: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}".encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---- 1. what overwrite may replace ---------------------------------------------------
@pytest.mark.parametrize(
    ("path", "error", "said"),
    [
        ("", ValueError, "the path is empty"),  # pathlib reads it as "."
        (".", FileExistsError, "current working directory"),
    ],
)
def test_overwrite_refuses_the_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    error: type[Exception],
    said: str,
) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=said) as info:
        mmzarr.create_stream(path, settings_for(TWO_T), overwrite=True)
    if path:
        assert str(tmp_path) in str(info.value)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert listing(tmp_path) == {"thesis.tex"}


def test_overwrite_refuses_a_parent_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("keep")
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(FileExistsError, match="contains the current working"):
        mmzarr.create_stream("..", settings_for(TWO_T), overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "keep"


def _thesis(tmp_path: Path) -> Path:
    thesis = tmp_path / "thesis"
    (thesis / "chapters").mkdir(parents=True)
    (thesis / "chapters" / "1.tex").write_text("introduction")
    return thesis


NOT_DATASETS = {
    "folder": lambda p: _thesis(p),
    "file": lambda p: (p / "notes.txt", (p / "notes.txt").write_text("x"))[0],
    "zarr-group-not-ome": lambda p: (
        p / "plain.zarr",
        (p / "plain.zarr").mkdir(),
        (p / "plain.zarr" / "zarr.json").write_text(
            '{"zarr_format": 3, "node_type": "group", "attributes": {"mine": 1}}'
        ),
        (p / "plain.zarr" / "data.bin").write_bytes(b"123"),
    )[0],
    "zarr-v2": lambda p: (
        p / "v2.zarr",
        (p / "v2.zarr").mkdir(),
        (p / "v2.zarr" / ".zgroup").write_text('{"zarr_format": 2}'),
    )[0],
}


@pytest.mark.parametrize("kind", sorted(NOT_DATASETS))
def test_overwrite_refuses_what_is_not_a_dataset(tmp_path: Path, kind: str) -> None:
    target = NOT_DATASETS[kind](tmp_path)
    before, names = snapshot(tmp_path), listing(tmp_path)
    with pytest.raises(FileExistsError, match="refusing to replace") as info:
        mmzarr.create_stream(target, settings_for(TWO_T), overwrite=True)
    assert str(target) in str(info.value)
    assert snapshot(tmp_path) == before
    assert listing(tmp_path) == names  # no lock file or temp dir left


def test_overwrite_refuses_a_symlink_and_keeps_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real.ome.zarr"
    frames = write_plan(real, TWO_T, ANY_BACKEND)
    link = tmp_path / "link.ome.zarr"
    link.symlink_to(real)
    with pytest.raises(FileExistsError, match="symbolic link"):
        mmzarr.create_stream(link, settings_for(TWO_T), overwrite=True)
    assert link.is_symlink()
    assert_frames(real, frames)


@pytest.fixture
def mounted(tmp_path: Path) -> Any:
    """`mount(target, *mount_args)`: a real mount at `target`, undone after the test.

    Skips where this process may not mount (not root, or no mount rights in
    its container).
    """
    done: list[Path] = []

    def mount(target: Path, *args: str) -> None:
        target.mkdir(parents=True, exist_ok=True)
        try:
            run = subprocess.run(
                ["mount", *args, str(target)],
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            pytest.skip("no mount command here")
        if run.returncode:
            pytest.skip(f"cannot mount here ({run.stderr.strip() or 'not root'})")
        done.append(target)

    yield mount
    if done:  # wherever they went: a rename of a folder takes its mounts along
        below = str(tmp_path) + os.sep
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            points = [line.split(" ")[4] for line in f]
        for point in reversed(points):
            path = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), point)
            if path.startswith(below):
                subprocess.run(["umount", "-l", path], check=False)


@pytest.mark.parametrize("how", ["bind", "tmpfs", "tmpfs-walked"])
def test_overwrite_refuses_a_dataset_with_a_mount_inside(
    tmp_path: Path, mounted: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Deleting the old dataset went through a file system mounted inside it
    and emptied it (a bind mount of the thesis folder: the thesis was gone).
    `tmpfs-walked`: a system without /proc/self/mountinfo (macOS) finds the
    mount point by asking the folders."""
    thesis = _thesis(tmp_path)
    out = tmp_path / "run with space.ome.zarr"  # mountinfo escapes the space
    frames = write_plan(out, TWO_T, ANY_BACKEND)
    inside = out / "scratch" / "mnt"
    if how == "bind":
        mounted(inside, "--bind", str(thesis))
    else:
        mounted(inside, "-t", "tmpfs", "none")
        (inside / "results.csv").write_text("1,2,3")
    if how == "tmpfs-walked":
        monkeypatch.setattr("mmzarr._replaceable.MOUNTINFO", str(tmp_path / "absent"))
    before = snapshot(inside)
    assert before  # the test sees what is mounted there
    with pytest.raises(FileExistsError, match=r"mounted inside it at .*mnt"):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    assert snapshot(inside) == before
    assert_frames(out, frames)
    assert listing(tmp_path) == {"run with space.ome.zarr", "thesis"}


def test_overwrite_replaces_datasets_and_empty_dirs_only_inside(
    tmp_path: Path,
) -> None:
    """A dataset is replaced; a symlink inside an array's folder (not looked
    at: it holds the chunks) is removed, not followed."""
    outside = _thesis(tmp_path)
    before = snapshot(outside)
    out = tmp_path / "run.ome.zarr"
    write_plan(out, TWO_T, ANY_BACKEND)
    array = out / "0"
    assert json.loads((array / "zarr.json").read_text())["node_type"] == "array"
    (array / "escape").symlink_to(outside, target_is_directory=True)
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(7))
    assert not (array / "escape").exists()
    assert snapshot(outside) == before
    assert listing(tmp_path) == {"run.ome.zarr", "thesis"}  # no .mmzarr-old-*
    empty = tmp_path / "empty"
    empty.mkdir()
    with mmzarr.create_stream(empty, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(8))
    assert_frames(empty, {("", (0,)): frame_for(8)})


def test_mdawriter_hook_and_cli_use_the_same_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmzarr.pycromanager import ZarrHook

    thesis = _thesis(tmp_path)
    before = snapshot(thesis)
    # each front end creates its dataset later (run start, first image): it
    # refuses when it is made, before an MDA can start
    with pytest.raises(FileExistsError, match="refusing to replace"):
        mmzarr.MDAWriter(thesis, overwrite=True, settings=settings_for(TWO_T))
    with pytest.raises(FileExistsError, match="refusing to replace"):
        ZarrHook(thesis, overwrite=True)
    # and a writer made before the folder was there refuses at the run's start
    later = tmp_path / "later"
    writer = mmzarr.MDAWriter(later, overwrite=True, settings=settings_for(TWO_T))
    later.mkdir()
    (later / "notes.txt").write_text("a user's")
    writer.sequenceStarted(TWO_T)
    assert isinstance(writer.error, FileExistsError)
    with pytest.raises(FileExistsError, match="refusing to replace"):
        writer.close()
    assert (later / "notes.txt").read_text() == "a user's"
    plan = tmp_path / "plan.yaml"
    plan.write_text("time_plan: {interval: 0, loops: 2}\n")
    assert main(["acquire", str(plan), str(thesis), "--overwrite"]) == 1
    assert "refusing to replace" in capsys.readouterr().err
    assert snapshot(thesis) == before


def test_a_folder_with_an_empty_settings_file_is_not_a_dataset(
    tmp_path: Path,
) -> None:
    """Only mmzarr's own settings make a folder without zarr.json a dataset (a
    writer killed while opening it); `mmzarr/settings.json` holding `{}` beside
    a user's files does not, and overwrite leaves it alone."""
    folder = tmp_path / "thesis"
    (folder / "mmzarr").mkdir(parents=True)
    (folder / "mmzarr" / "settings.json").write_text("{}")
    (folder / "thesis.tex").write_text("chapter 1")
    before = snapshot(folder)
    with pytest.raises(FileExistsError, match="not a zarr dataset"):
        mmzarr.create_stream(folder, settings_for(TWO_T), overwrite=True)
    assert snapshot(folder) == before


def test_overwrite_refuses_a_zarr_v2_dataset_naming_it(tmp_path: Path) -> None:
    """A zarr v2 dataset is not mmzarr's to replace, and is said to be one (it
    was "not a zarr dataset")."""
    folder = tmp_path / "old.zarr"
    folder.mkdir()
    (folder / ".zgroup").write_text('{"zarr_format": 2}')
    (folder / ".zattrs").write_text("{}")
    before = snapshot(folder)
    with pytest.raises(FileExistsError, match=r"it is a zarr v2 dataset \(\.zgroup"):
        mmzarr.create_stream(folder, settings_for(TWO_T), overwrite=True)
    assert snapshot(folder) == before


def test_a_writer_killed_while_replacing_a_dataset_says_where_the_old_one_is(
    tmp_path: Path,
) -> None:
    """What a kill during `create_stream(overwrite=True)` leaves: the old
    dataset moved aside, the new one without its documents. finalize and
    validate name the old copy (nothing is moved: the user decides)."""
    out = tmp_path / "run.ome.zarr"
    frames = write_plan(out, TWO_T, ANY_BACKEND)
    aside = tmp_path / ".run.ome.zarr.mmzarr-old-0badc0de"
    out.rename(aside)
    (out / "mmzarr").mkdir(parents=True)
    (out / "mmzarr" / "settings.json").write_bytes(
        (aside / "mmzarr" / "settings.json").read_bytes()
    )
    with pytest.raises(FileNotFoundError, match="0badc0de"):
        mmzarr.finalize(out)
    report = mmzarr.validate(out)
    assert not report.ok
    assert any("0badc0de" in p for p in report.problems)
    info = subprocess.run(
        [sys.executable, "-m", "mmzarr", "info", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert info.returncode == 1
    assert "0badc0de" in info.stderr, info.stderr  # `mmzarr info` names it too
    assert_frames(aside, frames)


def test_the_old_dataset_is_named_also_when_the_new_one_got_further(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed a little later (the new dataset's documents written, the old one
    not yet deleted) or before its settings: finalize, validate and the next
    writer all say where the old experiment is (they said nothing, or "valid")."""
    out = tmp_path / "run.ome.zarr"
    frames = write_plan(out, TWO_T, ANY_BACKEND)
    aside = tmp_path / ".run.ome.zarr.mmzarr-old-0badc0de"
    out.rename(aside)
    out.mkdir()
    with pytest.raises(FileNotFoundError, match="0badc0de"):
        mmzarr.finalize(out)  # not even its settings
    out.rmdir()
    with caplog.at_level("WARNING", logger="mmzarr"):
        write_plan(out, TWO_T, ANY_BACKEND)
    assert "0badc0de" in caplog.text
    report = mmzarr.validate(out)
    assert report.ok
    assert any("0badc0de" in n for n in report.notes)
    assert_frames(aside, frames)


@pytest.mark.parametrize("leftover", [None, ".settings.json.4242.139900.tmp"])
def test_a_writer_killed_before_its_settings_leaves_a_replaceable_folder(
    tmp_path: Path, leftover: str | None
) -> None:
    """Killed after creating the dataset's `mmzarr/` folder, before its
    settings were in place: overwrite=True refused the folder ("not a zarr
    dataset") and finalize called it not written by mmzarr."""
    out = tmp_path / "run.ome.zarr"
    (out / "mmzarr").mkdir(parents=True)
    if leftover is not None:
        (out / "mmzarr" / leftover).write_text('{"layout": "ima')
    with pytest.raises(FileNotFoundError, match="died while opening"):
        mmzarr.finalize(out)
    frames = write_plan_over(out)
    assert_frames(out, frames)
    assert sorted(os.listdir(out / "mmzarr")) == sorted(
        ["frames.jsonl", "settings.json", "zarr.json"]
    )


def test_a_folder_with_more_than_a_writers_leftovers_is_not_replaced(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run.ome.zarr"
    (out / "mmzarr").mkdir(parents=True)
    (out / "mmzarr" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a zarr dataset"):
        write_plan_over(out)
    assert (out / "mmzarr" / "notes.txt").read_text() == "mine"


def write_plan_over(out: Path) -> dict[Any, np.ndarray]:
    """`TWO_T` written to `out` with overwrite=True; the frames by (key, index)."""
    frames = {}
    with mmzarr.create_stream(
        out, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
    ) as stream:
        for n, event in enumerate(TWO_T):
            frames[stream.append(frame_for(n), index=event.index)] = frame_for(n)
    return frames


def test_a_replaced_dataset_partly_deleted_is_not_offered_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer killed while deleting the dataset it replaced left a part of
    it under the name of a kept old dataset: finalize, validate and the next
    writer said "move it back or delete it", of a dataset missing files. It
    is renamed before its deletion starts, and the next writer deletes the
    rest."""
    from mmzarr import _claim

    out = tmp_path / "run.ome.zarr"
    write_plan(out, TWO_T, ANY_BACKEND)
    seen: list[tuple[str, list[str]]] = []

    def stopped_rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        # what a kill midway leaves: some of its files gone
        folder, _, files = next(os.walk(os.path.join(path, "mmzarr")))
        os.unlink(os.path.join(folder, files[0]))
        seen.append((os.path.basename(path), sorted(os.listdir(tmp_path))))

    def replace() -> None:
        with mmzarr.create_stream(
            out, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
        ) as stream:
            for n, event in enumerate(TWO_T):
                stream.append(frame_for(n), index=event.index)

    monkeypatch.setattr(_claim.shutil, "rmtree", stopped_rmtree)
    replace()
    monkeypatch.undo()
    assert len(seen) == 1
    name, listing = seen[0]
    assert not any("mmzarr-old-" in n for n in listing), listing
    assert name.startswith(".run.ome.zarr.mmzarr-deleting-"), name
    report = mmzarr.validate(out)
    assert report.ok
    assert not report.notes, report.notes
    with caplog.at_level("WARNING", logger="mmzarr"):
        replace()
    assert "move it back" not in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["run.ome.zarr"]


# ---- 2. the old dataset is kept until the new one has opened -------------------------
def test_absurd_frame_size_is_a_plan_error() -> None:
    with pytest.raises(mmzarr.PlanError, match="200000 px"):
        mmzarr.AcquisitionSettings.from_useq(
            TWO_T, image_shape=(200000, 200000), dtype="uint16", pixel_size_um=1
        )
    with pytest.raises(mmzarr.PlanError, match="7200000000 bytes"):
        mmzarr.AcquisitionSettings.from_useq(
            TWO_T, image_shape=(60000, 60000), dtype="uint16", pixel_size_um=1
        )
    with pytest.raises(ValueError, match="65536"):
        mmzarr.Dimension(name="x", size=65537)


@pytest.mark.parametrize("when", ["before-open", "after-open", "documents"])
def test_failing_open_keeps_the_old_dataset(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    out = tmp_path / "run.ome.zarr"
    frames = write_plan(out, TC, backend)
    before, names = snapshot(out), listing(tmp_path)
    cls = type(get_backend(backend))
    real_open = cls.open

    def failing_open(self: Any, location: Any, arrays: Any, limits: Any) -> None:
        if when == "after-open":  # files of the new dataset exist by now
            real_open(self, location, arrays, limits)
            self.flush(final=True)
            raise OSError("the disk caught fire")
        raise MemoryError("cannot allocate the frame buffers")

    def failing_documents(*args: Any, **kwargs: Any) -> None:
        raise OSError("the disk caught fire")

    if when == "documents":  # the group documents fail; the backend opens
        monkeypatch.setattr(_open, "write_group_metadata", failing_documents)
    else:
        monkeypatch.setattr(cls, "open", failing_open)
    exc = MemoryError if when == "before-open" else mmzarr.StorageError
    with pytest.raises(exc) as info:
        mmzarr.create_stream(out, settings_for(TC), backend=backend, overwrite=True)
    if when == "after-open":
        assert str(out) in str(info.value)
    assert snapshot(out) == before  # byte-identical
    assert listing(tmp_path) == names  # no lock file, no moved-aside copy
    monkeypatch.undo()
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)


def test_failing_open_of_a_new_output_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = type(get_backend(ANY_BACKEND))

    def failing_open(self: Any, location: Any, arrays: Any, limits: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(cls, "open", failing_open)
    out = tmp_path / "new" / "deeper" / "run.ome.zarr"
    with pytest.raises(RuntimeError, match="injected"):
        mmzarr.create_stream(out, settings_for(TWO_T), backend=ANY_BACKEND)
    assert listing(tmp_path) == set()  # the parents it made are gone too
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="injected"):
        mmzarr.create_stream(
            empty, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
        )
    assert listing(tmp_path) == {"empty"}
    assert listing(empty) == set()  # emptied of what it wrote, kept


def test_a_failing_group_document_stops_the_shallower_ones(tmp_path: Path) -> None:
    """The group documents of a plate are written deepest first, many at once:
    when one fails, its error is raised, every document written is whole, and
    no shallower one (the wells, rows, the root) is written after it."""
    docs: dict[str, dict[str, Any]] = {"": {"node": "root"}}
    for row in "ABCD":
        docs[row] = {"node": row}
        for col in range(1, 7):
            docs[f"{row}/{col}"] = {"node": f"{row}/{col}"}
            for field in range(3):
                docs[f"{row}/{col}/{field}"] = {"node": f"{row}/{col}/{field}"}
    blocked = tmp_path / "B" / "3" / "1"
    blocked.mkdir(parents=True)
    (blocked / "zarr.json").mkdir()  # a directory where the document goes
    with pytest.raises(IsADirectoryError):
        write_groups(tmp_path, docs, fsync_all=False)

    def written() -> dict[str, Any]:
        return {
            str(zj.parent.relative_to(tmp_path)).replace(".", ""): json.loads(
                zj.read_text()
            )
            for zj in tmp_path.rglob("zarr.json")
            if zj.is_file()
        }

    fields = {k: d for k, d in docs.items() if k.count("/") == 2}
    assert written().items() <= fields.items()
    assert "B/3/1" not in written()
    assert not list(tmp_path.rglob(".*.tmp"))  # no temporary file left
    (blocked / "zarr.json").rmdir()
    write_groups(tmp_path, docs, fsync_all=False)
    assert written() == docs


def test_ctrl_c_during_close_closes_the_dataset_first(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the backend writes its last frames: the close goes on to
    its end, then KeyboardInterrupt is raised (a close cut short had left the
    status `acquiring` and frames unwritten, and could not be done again)."""
    cls = type(get_backend(backend))
    real_flush = cls.flush

    def flush(self: Any, *, final: bool = False) -> Any:
        if final:
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C
        return real_flush(self, final=final)

    monkeypatch.setattr(cls, "flush", flush)
    out = tmp_path / "run.ome.zarr"
    stream = mmzarr.create_stream(out, settings_for(TC), backend=backend)
    frames = {stream.append(frame_for(k)): frame_for(k) for k in range(4)}
    with pytest.raises(KeyboardInterrupt):
        stream.close()
    assert stream.status == "complete"
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    assert_frames(out, frames)
    assert mmzarr.validate(out).ok


def test_ctrl_c_while_a_frame_is_written_accepts_it_whole(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the backend takes a frame: the frame is accepted whole,
    then KeyboardInterrupt is raised; sending it again is refused as written
    (acquire-zarr had taken it twice, shifting every later frame: the run was
    lost)."""
    cls = type(get_backend(backend))
    real_write = cls.write
    calls: list[int] = []

    def write(self: Any, array: int, index: Any, frame: Any, levels: Any = ()) -> None:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C
        real_write(self, array, index, frame, levels)

    monkeypatch.setattr(cls, "write", write)
    out = tmp_path / "run.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=1
    )
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for event in seq:
            frame = frame_for(event.index["t"])
            frames[("", (event.index["t"],))] = frame
            try:
                stream.append(frame, index=event.index)
            except KeyboardInterrupt:  # the user retries the frame
                with pytest.raises(mmzarr.FrameError, match="already written"):
                    stream.append(frame, index=event.index)
    assert stream.status == "complete"
    assert_frames(out, frames)


# ---- 3. one writer per dataset -------------------------------------------------------
def test_a_link_to_a_dataset_shares_its_lock(tmp_path: Path) -> None:
    """A writer on the dataset, then `finalize` through a link to it: refused,
    naming the holder (the lock was named after the link, and finalize moved a
    live writer's shards aside)."""
    out = tmp_path / "real.ome.zarr"
    link = tmp_path / "link.ome.zarr"
    with mmzarr.create_stream(out, settings_for(TC), backend=ANY_BACKEND) as stream:
        stream.append(frame_for(0))
        link.symlink_to(out.name)
        with pytest.raises(DatasetLockedError, match=f"pid {os.getpid()}"):
            mmzarr.finalize(link)
        with pytest.raises(FileExistsError):  # a link is never replaced
            mmzarr.create_stream(link, settings_for(TC), overwrite=True)
        stream.append(frame_for(1))
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "cancelled"


def test_finalize_through_dot_dot_keeps_every_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """`mmzarr finalize ../run.ome.zarr`: tensorstore refuses such a path; every
    chunk of an intact dataset had been moved aside as damaged."""
    out = tmp_path / "run.ome.zarr"
    frames = write_plan(out, TC, backend)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    before = snapshot(out)
    report = mmzarr.finalize("../run.ome.zarr")
    assert report.ok
    assert not (out / "mmzarr" / "damaged").exists()
    assert group_json(out)["attributes"]["mmzarr"]["frames_written"] == len(frames)
    assert_frames(out, frames)
    assert mmzarr.validate("../run.ome.zarr").ok
    assert {k: v for k, v in snapshot(out).items() if "chunk" in k or "/c/" in k} == {
        k: v for k, v in before.items() if "chunk" in k or "/c/" in k
    }


def test_tensorstore_paths_with_dot_dot_or_a_backslash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tensorstore refuses ".." and reads a backslash as a separator: a path
    with ".." is written where it leads; one with a backslash is refused before
    anything is written (the arrays went to a directory mmzarr did not own)."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    frames = write_plan(tmp_path / "sub" / ".." / "run.ome.zarr", TWO_T, "tensorstore")
    assert_frames(tmp_path / "run.ome.zarr", frames)
    with pytest.raises(mmzarr.PlanError, match="backslash"):
        mmzarr.create_stream(
            "a\\b.ome.zarr", settings_for(TWO_T), backend="tensorstore"
        )
    assert listing(tmp_path) == {"sub", "run.ome.zarr"}


def test_tensorstore_full_disk_at_open_is_a_storage_error() -> None:
    from mmzarr.backends._tensorstore import _open_error

    full = _open_error("/d/0", ValueError("RESOURCE_EXHAUSTED: No space left"))
    assert isinstance(full, mmzarr.StorageError)
    assert full.errno == errno.ENOSPC
    assert "/d/0" in str(full)
    bad = _open_error("/d/0", ValueError("INVALID_ARGUMENT: chunk shape"))
    assert isinstance(bad, mmzarr.PlanError)


def test_second_writer_is_refused_naming_the_holder(
    tmp_path: Path, backend: str
) -> None:
    out = tmp_path / "run.ome.zarr"
    first = mmzarr.create_stream(out, settings_for(TC), backend=backend)
    frames = {first.append(frame_for(0)): frame_for(0)}
    for overwrite in (True, False):
        with pytest.raises(DatasetLockedError, match=f"pid {os.getpid()}") as info:
            mmzarr.create_stream(
                out, settings_for(TC), backend=backend, overwrite=overwrite
            )
        assert str(out) in str(info.value)
        assert isinstance(info.value, FileExistsError)
    with pytest.raises(DatasetLockedError, match=f"pid {os.getpid()}"):
        mmzarr.finalize(out)
    frames[first.append(frame_for(1))] = frame_for(1)
    first.close()
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)
    assert not lock_path(out).exists()  # removed at close
    with mmzarr.create_stream(out, settings_for(TC), backend=backend, overwrite=True):
        pass  # free again


HOLDER = textwrap.dedent(
    """
    import sys
    import numpy as np, useq, mmzarr
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    s = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(8, 10), dtype="uint16", pixel_size_um=0.5
    )
    stream = mmzarr.create_stream(sys.argv[1], s, backend=sys.argv[2])
    stream.append(np.full((8, 10), 7, "uint16"))
    print("ready", flush=True)
    sys.stdin.readline()
    stream.append(np.full((8, 10), 8, "uint16"))
    stream.close()
    print("closed", flush=True)
    """
)


def _holder(out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), ANY_BACKEND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_writer_in_another_process_holds_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.ome.zarr"
    proc = _holder(out)
    try:
        with pytest.raises(DatasetLockedError, match=f"pid {proc.pid}"):
            mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
        with pytest.raises(DatasetLockedError, match=f"pid {proc.pid}"):
            mmzarr.finalize(out)
        assert main(["finalize", str(out)]) == 1
        assert f"pid {proc.pid}" in capsys.readouterr().err
        report = mmzarr.validate(out)
        assert any("still being written" in p for p in report.problems)
    finally:
        out_text, _ = proc.communicate("\n", timeout=60)
    assert "closed" in out_text
    expected = {("", (0,)): np.full(SHAPE, 7, "uint16")}
    expected[("", (1,))] = np.full(SHAPE, 8, "uint16")
    assert mmzarr.validate(out).ok
    assert_frames(out, expected)


def test_a_lock_that_cannot_be_written_is_not_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while the lock file takes its holder's record: the error is
    raised and no lock file stays behind to refuse the next writer."""
    from mmzarr import _lock

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run.ome.zarr"
    with monkeypatch.context() as m:
        m.setattr(_lock.os, "pwrite", full)
        with pytest.raises(OSError, match="No space left"):
            mmzarr.create_stream(out, settings_for(TWO_T), backend=ANY_BACKEND)
    assert listing(tmp_path) == set()
    frames = write_plan(out, TWO_T, ANY_BACKEND)  # the next writer is not refused
    assert_frames(out, frames)


@pytest.mark.parametrize("folder", ["analysis", "c"])
def test_overwrite_never_replaces_a_dataset_holding_one_being_written(
    tmp_path: Path, folder: str
) -> None:
    """A dataset another process writes inside the one to replace (e.g. an
    analysis written into the raw dataset's folder): `overwrite=True` refuses,
    naming it, and changes nothing; it deleted the live dataset."""
    outer = tmp_path / "outer.ome.zarr"
    write_plan(outer, TWO_T, ANY_BACKEND)
    before = listing(tmp_path)
    inner = outer / folder / "live.ome.zarr"  # "c": not an array's chunks
    inner.parent.mkdir()
    proc = _holder(inner)
    try:
        with pytest.raises(
            FileExistsError, match="a dataset inside it is being written"
        ):
            mmzarr.create_stream(outer, settings_for(TWO_T), overwrite=True)
        assert listing(tmp_path) >= before
        assert (inner / "zarr.json").is_file()
    finally:
        out_text, _ = proc.communicate("\n", timeout=60)
    assert "closed" in out_text
    frames = {("", (t,)): np.full(SHAPE, 7 + t, "uint16") for t in (0, 1)}
    assert_frames(inner, frames)
    # once closed it is still not the outer writer's: it was deleted with it
    with pytest.raises(FileExistsError, match=f"did not write \\('{folder}'\\)"):
        mmzarr.create_stream(outer, settings_for(TWO_T), overwrite=True)
    assert_frames(inner, frames)


def test_a_killed_writer_leaves_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "run.ome.zarr"
    proc = _holder(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)  # waits, closes the pipes
    assert lock_path(out).exists()  # stale file, but the kernel dropped the flock
    report = mmzarr.finalize(out)
    assert report.ok, report.format()
    assert not lock_path(out).exists()


def test_datasets_whose_long_names_begin_alike_share_no_hidden_file(
    tmp_path: Path, backend: str
) -> None:
    """Two datasets whose names share their first 200 characters, written at
    once: each keeps its own frames. acquire-zarr's hidden sibling of links
    was named by those 200 characters: B took it over and A's later frames
    landed in B, A's lock, and the copy `overwrite` moves aside, alike."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 4})
    a_path, b_path = (tmp_path / f"{'x' * 200}_{n}.ome.zarr" for n in "AB")
    a = mmzarr.create_stream(a_path, settings_for(seq), backend=backend)
    for t in range(2):
        a.append(frame_for(t), index={"t": t})
    b = mmzarr.create_stream(b_path, settings_for(seq), backend=backend)
    for t in range(2, 4):
        a.append(frame_for(t), index={"t": t})
    a.close()
    b.close()
    assert_frames(a_path, {("", (t,)): frame_for(t) for t in range(4)})
    assert group_json(b_path)["attributes"]["mmzarr"]["frames_written"] == 0
    assert not read_zarr(b_path, "0").any()  # B got no frame
    assert lock_path(a_path) != lock_path(b_path)


# ---- 10. caller metadata cannot overwrite the frame log's fields ---------------------
CLOBBER = {
    "index": "oops",
    "frame": -1,
    "image": ["not", "a", "key"],
    "elapsed_ms": "later",
    "dropped": True,
    "event_index": 5,
}


def test_metadata_keeps_its_own_namespace(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "run.ome.zarr"
    with mmzarr.create_stream(out, settings_for(TWO_T), backend=backend) as s:
        s.append(frame_for(0), index={"t": 0}, metadata=CLOBBER)
        s.append(frame_for(1), index={"t": 1}, metadata={"note": "fine"})
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    first, second = (json.loads(x) for x in lines)
    assert (first["frame"], first["image"], first["index"]) == (0, "", [0])
    assert first["event_index"] == {"t": 0}
    assert "dropped" not in first
    assert first["metadata"] == CLOBBER
    assert second["metadata"] == {"note": "fine"}
    assert second["event_index"] == {"t": 1}
    assert mmzarr.validate(out).ok
    report = mmzarr.finalize(out)
    assert report.ok, report.format()
    lost = json.loads((out / "mmzarr/finalize.json").read_text())
    assert lost["frames_kept"] == 2


#: line breaks other than "\n" that JSON leaves as they are in a string
OTHER_BREAKS = {"note": "a\u2028b\u2029c\x85d\x1ce"}


def test_metadata_with_other_line_breaks_keeps_its_log_record(tmp_path: Path) -> None:
    """A frame's metadata holding U+2028 or NEL (a user's text) is written as is
    on its line: reading the log split that line there, and the frame lost its
    record (finalize took it for one written but never logged)."""
    out = tmp_path / "run.ome.zarr"
    with mmzarr.create_stream(out, settings_for(TWO_T), backend=ANY_BACKEND) as s:
        s.append(frame_for(0), index={"t": 0}, metadata=OTHER_BREAKS)
        s.append(frame_for(1), index={"t": 1}, metadata={"note": "fine"})
    lines = (out / "mmzarr/frames.jsonl").read_bytes().split(b"\n")
    assert lines[2:] == [b""]  # two records, one per line
    assert json.loads(lines[0])["metadata"] == OTHER_BREAKS
    logged = mmzarr._metadata.read_frame_log(out)
    assert [r["metadata"] for r in logged] == [OTHER_BREAKS, {"note": "fine"}]
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    assert (report.frames_logged, report.frames_complete) == (2, 2)
    assert not any("frame-log" in n for n in report.notes), report.notes
    assert mmzarr.finalize(out).ok
    record = json.loads((out / "mmzarr/finalize.json").read_text())
    assert (record["frames_logged"], record["frames_not_logged"]) == (2, [])


def test_old_clobbered_logs_do_not_crash_validate_or_finalize(tmp_path: Path) -> None:
    out = tmp_path / "run.ome.zarr"
    write_plan(out, TWO_T, ANY_BACKEND)
    log = out / "mmzarr/frames.jsonl"
    records = [json.loads(x) for x in log.read_text().splitlines()]
    # what an old writer logged for metadata=CLOBBER (without "dropped")
    records[1].update({k: v for k, v in CLOBBER.items() if k != "dropped"})
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    # its pixels are there: a note, not a problem (it was one even after finalize)
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    assert any("frames.jsonl line 2: not a frame record" in n for n in report.notes)
    assert mmzarr.finalize(out).ok
    lost = json.loads((out / "mmzarr/finalize.json").read_text())
    assert lost["frames_logged"] == 1
    assert [x["line"] for x in lost["skipped_log_lines"]] == [2]
    assert lost["frames_kept"] == 2  # its frame too, found on disk


def test_ome_xml_reads_metadata_and_old_top_level_keys() -> None:
    from mmzarr._omexml import render_ome_xml

    settings = settings_for(
        useq.MDASequence(stage_positions=[(0, 0, 0), (1, 1, 0)], channels=["DAPI"])
    )
    new = {"frame": 0, "image": "0", "index": [0], "elapsed_ms": 1.0}
    new["metadata"] = {"exposure_ms": 12.5, "stage": {"x": 3.0}, "index": "oops"}
    old = {"frame": 1, "image": "1", "index": [0], "exposure_ms": 20.0}
    xml = render_ome_xml(settings, [new, old])
    assert 'ExposureTime="12.5"' in xml
    assert 'ExposureTime="20.0"' in xml
    assert 'PositionX="3.0"' in xml


# ---- 11. control characters in names -------------------------------------------------
BAD_NAMES = ["pos\x1b[31m", "\x00", "bell\x07", "c1\x9b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_control_characters_in_names_are_refused(name: str) -> None:
    pos = useq.MDASequence(stage_positions=[useq.Position(x=0, y=0, name=name)])
    with pytest.raises(mmzarr.PlanError, match="image name") as info:
        settings_for(pos)
    assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="channel name") as err:
        mmzarr.Channel(name=name)
    assert repr(name) in str(err.value)
    with pytest.raises(ValueError, match="plate name"):
        mmzarr.PlateSettings(name=name, rows=("A",), columns=("1",), wells=("A/1",))


def test_tabs_and_line_breaks_in_plan_names_become_spaces() -> None:
    """A position list imported from a spreadsheet can hold tabs or line
    breaks: the plan maps, its names shown with spaces (it fell back to
    arrival order); a name given in the settings is still checked."""
    names = ["A1\tfield 1", "A1\nfield 2", "B1\r\n"]
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=k, y=0, name=n) for k, n in enumerate(names)],
        channels=["DAPI\t"],
    )
    settings = settings_for(seq)
    assert settings.fallback_reason is None
    assert [im.name for im in settings.images] == ["A1 field 1", "A1 field 2", "B1  "]
    assert settings.images[0].channels[0].name == "DAPI "
    two = settings_for(useq.MDASequence(channels=["DAPI\t", "DAPI "]))
    assert [c.name for c in two.images[0].channels] == ["DAPI ", "DAPI  (2)"]
    with pytest.raises(ValueError, match="channel name"):
        mmzarr.Channel(name="tab\there")


# ---- 12. plan files ------------------------------------------------------------------
def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"channels: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    plan = tmp_path / "small-bomb.yaml"
    plan.write_text(_bomb(5))  # 59049 strings; printed a 4.3 MB error
    t0 = time.monotonic()
    with pytest.raises(CLIError, match="aliases") as info:
        load_plan(plan)
    assert time.monotonic() - t0 < 5
    assert len(str(info.value)) <= 600


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    plan = tmp_path / "bomb.yaml"
    plan.write_text(_bomb(9))
    assert plan.stat().st_size < 1000
    code = "import sys; from mmzarr._cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run(
        [sys.executable, "-c", code, "acquire", str(plan), "o", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,  # took 88 s and 5.6 GB before
        check=False,
    )
    assert r.returncode == 1
    assert "aliases" in r.stderr
    assert len(r.stderr) < 1000


def test_plan_size_and_error_length_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(CLIError, match="more than the 1048576 bytes"):
        load_plan(big)
    long_value = tmp_path / "long.json"
    long_value.write_text(json.dumps({"stage_positions": [[1, 2, "x" * 200_000]]}))
    with pytest.raises(CLIError, match="useq rejected") as info:
        load_plan(long_value)
    assert len(str(info.value)) <= 600


# ---- 13. flush interval, read-only targets, NaN --------------------------------------
def test_flush_interval_has_a_minimum() -> None:
    with pytest.raises(mmzarr.PlanError, match=r"flush_interval_s.*1e-09"):
        settings_for(TWO_T, flush_interval_s=1e-9)
    assert settings_for(TWO_T, flush_interval_s=0.01).flush_interval_s == 0.01


def test_read_only_target_names_the_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs")
    ro = tmp_path / "ro"
    ro.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ro)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        frames = write_plan(ro / "run.ome.zarr", TWO_T, ANY_BACKEND)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        before = snapshot(ro)
        monkeypatch.chdir(tmp_path)  # a relative path: the message has it in full
        with pytest.raises(mmzarr.StorageError) as info:
            mmzarr.create_stream("ro/run.ome.zarr", settings_for(TWO_T), overwrite=True)
        assert str(ro / "run.ome.zarr") in str(info.value)
        assert type(info.value) is mmzarr.StorageError
        assert snapshot(ro) == before
        assert_frames(ro / "run.ome.zarr", frames)
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_frame_log_is_standard_json(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "run.ome.zarr"
    meta = {
        "x": math.nan,
        "stage": {"z": np.float32("nan"), "y": [math.inf, -math.inf, 1.5]},
        "name": "ok",
    }
    with mmzarr.create_stream(out, settings_for(TWO_T), backend=backend) as s:
        s.append(frame_for(0), metadata=meta)

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON constant {token}")

    line = (out / "mmzarr/frames.jsonl").read_text().splitlines()[0]
    record = json.loads(line, parse_constant=refuse)
    assert record["metadata"] == {
        "x": None,
        "stage": {"z": None, "y": [None, None, 1.5]},
        "name": "ok",
    }


def test_frame_metadata_json_cannot_hold_is_written_as_text(
    tmp_path: Path, backend: str
) -> None:
    """A tuple key, a circular reference or an object whose text fails do not
    stop the frame log (its thread had died, losing the records around them)."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

        __repr__ = __str__

    circular: dict[str, Any] = {"name": "loop"}
    circular["self"] = circular
    metas = [
        {"roi": {(0, 0): 5}},
        {"loop": circular},
        {"obj": Unprintable()},
        {"plain": 1},
    ]
    out = tmp_path / "run.ome.zarr"
    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": len(metas)}),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=1,
    )
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for k, meta in enumerate(metas):
            stream.append(frame_for(k), metadata=meta)
    assert stream.status == "complete"
    lines = (out / "mmzarr/frames.jsonl").read_text().splitlines()
    records = [json.loads(line)["metadata"] for line in lines]
    assert len(records) == len(metas)
    assert records[0] == {"roi": {"(0, 0)": 5}}
    assert records[1]["loop"]["self"]["name"] == "loop"
    assert records[2] == {"obj": "<Unprintable>"}
    assert records[3] == {"plain": 1}


# ---- 14. S3 credentials --------------------------------------------------------------
def test_s3_config_repr_hides_credentials() -> None:
    loc = mmzarr._locations.parse_location(
        "s3://bucket/run.ome.zarr",
        {"key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value", "token": "t0ken-value"},
    )
    for text in (repr(loc), repr(loc.s3), str(loc)):
        for secret in ("AKIAEXAMPLEKEY", "s3cr3t-value", "t0ken-value"):
            assert secret not in text
    assert loc.s3 is not None
    assert loc.s3.redact("a s3cr3t-value b") == "a *** b"


def test_s3_credentials_do_not_stay_in_the_environment(
    s3_endpoint: str, s3_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    opts = {"key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value"}
    with mmzarr.create_stream(
        s3_url, settings_for(TWO_T), backend=backend, storage_options=opts
    ) as s:
        assert "AWS_SECRET_ACCESS_KEY" not in os.environ
        assert "AWS_ACCESS_KEY_ID" not in os.environ
        assert "s3cr3t-value" not in repr(s) + repr(s.location) + repr(s.location.s3)
        s.append(frame_for(0))
        s.append(frame_for(1))
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    data = test_s3.read_zarr_s3(s3_endpoint, s3_url, "0")
    np.testing.assert_array_equal(data[1], frame_for(1))


def test_s3_overwrite_refuses_a_prefix_that_is_not_a_dataset(
    s3_endpoint: str, s3_url: str
) -> None:
    key = f"{s3_url.removeprefix(f's3://{test_s3.BUCKET}/')}/notes.txt"
    test_s3._client(s3_endpoint).put_object(
        Bucket=test_s3.BUCKET, Key=key, Body=b"keep me"
    )
    with pytest.raises(FileExistsError, match="not a zarr dataset"):
        mmzarr.create_stream(
            s3_url, settings_for(TWO_T), backend="zarr-python", overwrite=True
        )
    assert test_s3.s3_keys(s3_endpoint, s3_url) == ["notes.txt"]


# ---- paths through links, look-alike names ---------------------------------------
def test_a_path_through_a_link_and_dot_dot_writes_where_the_kernel_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lnk/../run.ome.zarr` with `lnk` a link: the claim, lock and documents
    went to the link target's parent (as the kernel resolves it), but
    tensorstore's arrays to the lexical `./run.ome.zarr`, over a user's
    folder of that name, whose file was overwritten with frame pixels."""
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(tmp_path / "real" / "deep")
    user = tmp_path / "run.ome.zarr"
    (user / "0" / "c" / "0" / "0").mkdir(parents=True)
    (user / "0" / "c" / "0" / "0" / "0").write_bytes(b"USER DATA")
    before = snapshot(user)
    monkeypatch.chdir(tmp_path)
    frames = write_plan(tmp_path / "lnk" / ".." / "run.ome.zarr", TWO_T, "tensorstore")
    assert snapshot(user) == before
    assert_frames(tmp_path / "real" / "run.ome.zarr", frames)


@pytest.mark.parametrize("kind", ["link", "file"])
def test_the_lock_never_writes_into_a_file_that_is_not_a_lock(
    tmp_path: Path, kind: str
) -> None:
    """A link (or a user's own file) named `.NAME.mmzarr-lock`: the writer
    truncated the link's target and wrote its lock record into it."""
    precious = tmp_path / "precious.txt"
    precious.write_text("ten years of lab notes")
    lock = tmp_path / ".run.ome.zarr.mmzarr-lock"
    if kind == "link":
        lock.symlink_to(precious)
    else:
        lock.write_text("my own notes")
    before = snapshot(tmp_path)
    with pytest.raises(OSError, match="lock"):
        mmzarr.create_stream(tmp_path / "run.ome.zarr", settings_for(TWO_T))
    assert snapshot(tmp_path) == before


def test_only_mmzarrs_own_deleting_folders_are_deleted(tmp_path: Path) -> None:
    """The next writer of NAME deleted every `.NAME.mmzarr-deleting-*` folder,
    a user's `.NAME.mmzarr-deleting-mine` too."""
    mine = tmp_path / ".run.ome.zarr.mmzarr-deleting-mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    ours = tmp_path / ".run.ome.zarr.mmzarr-deleting-0badc0de"
    ours.mkdir()
    write_plan(tmp_path / "run.ome.zarr", TWO_T, ANY_BACKEND)
    assert (mine / "thesis.tex").read_text() == "mine"
    assert not ours.exists()


def test_finalize_follows_an_array_moved_and_linked_back(
    tmp_path: Path, backend: str
) -> None:
    """Level 0 moved to another disk and linked back: finalize called every
    frame lost ("array '0' is missing"), moved every intact chunk of the other
    levels to mmzarr/damaged and recorded 0 frames written."""
    out = tmp_path / "run.ome.zarr"
    settings = settings_for(TC, downsample=mmzarr.Downsample(levels=2))
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(TC):
            stream.append(frame_for(n), index=event.index)
    moved = tmp_path / "other-disk"
    (out / "0").rename(moved)
    (out / "0").symlink_to(moved, target_is_directory=True)
    chunks = {k: v for k, v in snapshot(out).items() if "/c/" in k}
    report = mmzarr.finalize(out)
    assert report.ok
    assert not (out / "mmzarr" / "damaged").exists()
    assert group_json(out)["attributes"]["mmzarr"]["frames_written"] == 4
    assert {k: v for k, v in snapshot(out).items() if "/c/" in k} == chunks


def test_finalize_keeps_the_attributes_a_user_added(tmp_path: Path) -> None:
    """`finalize` writes mmzarr's own metadata (`ome`, `mmzarr`) again; what
    a user added beside it (here in the root and in an image's group of a
    collection) is kept, where it was dropped."""
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (100, 0, 0)], time_plan={"interval": 1, "loops": 2}
    )
    out = tmp_path / "run.ome.zarr"
    write_plan(out, seq, ANY_BACKEND)
    for key, note in (("", "root note"), ("1", "position note")):
        doc = group_json(out, key)
        doc["attributes"]["my_notes"] = {"text": note}
        (out / key / "zarr.json").write_text(json.dumps(doc))
    ome_before = group_json(out)["attributes"]["ome"]
    assert mmzarr.finalize(out).ok
    assert group_json(out)["attributes"]["my_notes"] == {"text": "root note"}
    assert group_json(out, "1")["attributes"]["my_notes"] == {"text": "position note"}
    assert group_json(out)["attributes"]["ome"] == ome_before
    check_metadata(out)


# ---- what overwrite may replace -------------------------------------------------
@pytest.mark.parametrize("part", ["0", "A/1", "A/1/0"])
def test_overwrite_never_replaces_part_of_a_dataset(tmp_path: Path, part: str) -> None:
    """A position (`coll/0`), a well or a field of a plate is a group inside a
    dataset: `overwrite=True` there took that part out of the dataset (its
    frames deleted, the dataset then invalid), exit 0 on the command line."""
    if part == "0":
        seq = useq.MDASequence(stage_positions=[(0.0, 0.0), (5.0, 5.0)])
    else:
        seq = useq.MDASequence(
            stage_positions=useq.WellPlatePlan(
                plate="96-well", a1_center_xy=(0, 0), selected_wells=([0], [0])
            )
        )
    root = tmp_path / "whole.ome.zarr"
    frames = write_plan(root, seq, "acquire-zarr")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(
        FileExistsError, match=re.escape(f"part of the dataset {str(root)!r}")
    ):
        mmzarr.create_stream(root / part, settings_for(seq), overwrite=True)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert mmzarr.validate(root).ok
    for (key, idx), frame in frames.items():
        np.testing.assert_array_equal(
            read_zarr(root, f"{key}/0" if key else "0")[idx], frame
        )


def test_overwrite_never_replaces_an_ome_zarr_another_tool_wrote(
    tmp_path: Path,
) -> None:
    """An OME-Zarr mmzarr did not write (here with the user's own file in it)
    is refused: it was deleted, the user's file with it."""
    import zarr

    out = tmp_path / "theirs.ome.zarr"
    group = zarr.open_group(str(out), mode="w", zarr_format=3)
    group.attrs["ome"] = {"version": "0.5", "multiscales": []}
    (out / "analysis.csv").write_text("cell,area\n1,42\n")
    seq = useq.MDASequence(channels=["DAPI"])
    with pytest.raises(
        FileExistsError, match="an OME-Zarr dataset that mmzarr did not write"
    ):
        mmzarr.create_stream(out, settings_for(seq), overwrite=True)
    assert (out / "analysis.csv").read_text() == "cell,area\n1,42\n"
    assert (
        json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["version"]
        == "0.5"
    )


# ---- what a user added to a dataset ---------------------------------------------
def _with_levels(seq: useq.MDASequence) -> mmzarr.AcquisitionSettings:
    return settings_for(seq, downsample=mmzarr.Downsample(levels=1, min_size=1))


def _write(out: Path, seq: useq.MDASequence, backend: str) -> None:
    with mmzarr.create_stream(out, _with_levels(seq), backend=backend) as s:
        for n, event in enumerate(seq):
            s.append(frame_for(n), index=event.index)


@pytest.mark.parametrize(
    "seq", [TCZYX, COLLECTION, PLATE], ids=["image", "coll", "plate"]
)
def test_overwrite_replaces_what_every_backend_wrote(
    tmp_path: Path, backend: str, seq: useq.MDASequence
) -> None:
    """Every node a writer makes (levels, OME/, wells, fields) is its own."""
    out = tmp_path / "run.ome.zarr"
    _write(out, seq, backend)
    report = mmzarr.finalize(out)  # what a finalize adds is the writer's too
    assert report.ok, report.format()
    for folder in (out, *(p.parent for p in out.rglob("zarr.json"))):
        (folder / ".DS_Store").write_bytes(b"\0")  # a Mac's Finder looked
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(9))
    assert listing(out) == {"0", "mmzarr", "zarr.json"}
    assert_frames(out, {("", (0,)): frame_for(9)})


#: a user's addition to a plate dataset: (file written, what the refusal names)
USER_ADDITIONS = {
    # napari / ome-zarr-py labels drawn on a field
    "labels": ("A/1/0/labels/zarr.json", "A/1/0/labels"),
    "notes": ("notes.txt", "notes.txt"),
    "csv-in-a-well": ("A/1/analysis.csv", "A/1/analysis.csv"),
    "folder": ("B/3/0/figures/fig1.png", "B/3/0/figures"),
    # a folder named by a number, in an image group of 2 levels
    "numbered-folder": ("A/1/0/7/fig1.png", "A/1/0/7"),
}


@pytest.mark.parametrize("what", USER_ADDITIONS)
def test_overwrite_refuses_a_dataset_holding_a_users_files(
    tmp_path: Path, what: str
) -> None:
    """A user's file or group added to a dataset was deleted with it by
    `overwrite=True` (and `--overwrite`)."""
    from mmzarr.pycromanager import ZarrHook

    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    rel, named = USER_ADDITIONS[what]
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_text('{"zarr_format": 3, "node_type": "group"}')
    before = snapshot(out)
    refused = re.escape(f"it holds what mmzarr did not write ({named!r})")
    with pytest.raises(FileExistsError, match=refused):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    with pytest.raises(FileExistsError, match=refused):
        ZarrHook(out, overwrite=True)
    assert snapshot(out) == before


def test_without_its_settings_a_dataset_s_zarr_nodes_are_taken_as_its_own(
    tmp_path: Path,
) -> None:
    """A dataset whose settings cannot be read: any zarr node is the writer's."""
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    (out / "mmzarr" / "settings.json").write_text("{torn")
    (out / "A" / "1" / "notes.txt").write_text("a user's")
    with pytest.raises(FileExistsError, match=re.escape("('A/1/notes.txt')")):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    (out / "A" / "1" / "notes.txt").unlink()
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(9))
    assert listing(out) == {"0", "mmzarr", "zarr.json"}


def test_every_array_of_an_image_group_is_its_writers(tmp_path: Path) -> None:
    """A dataset written by an mmzarr whose level rule differed (levels past
    1x1): its last level, not in today's rule, was named a user's and the
    dataset could not be overwritten."""
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    level = out / "A" / "1" / "0" / "1"
    older = out / "A" / "1" / "0" / "7"
    older.mkdir()
    (older / "zarr.json").write_bytes((level / "zarr.json").read_bytes())
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(9))
    assert listing(out) == {"0", "mmzarr", "zarr.json"}


def test_an_unreadable_array_document_does_not_stop_an_overwrite(
    tmp_path: Path,
) -> None:
    """A level's `zarr.json` that cannot be read (here a link in a loop): the
    search for a writer inside the dataset raised a bare OSError ("Too many
    levels of symbolic links") instead of replacing the writer's own array."""
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    doc = out / "A" / "1" / "0" / "1" / "zarr.json"
    doc.unlink()
    doc.symlink_to("zarr.json")
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(9))
    assert listing(out) == {"0", "mmzarr", "zarr.json"}


def test_a_folder_that_cannot_be_listed_stops_an_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well folder that cannot be listed (no permission; simulated, as the
    suite may run as root) may hold a user's files: it was skipped and the
    dataset deleted."""
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    before = snapshot(out)
    unlistable = str(out / "A" / "1")
    scandir = os.scandir

    def refusing(path: Any = ".") -> Any:
        if os.fspath(path) == unlistable:
            raise PermissionError(errno.EACCES, "Permission denied", unlistable)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    said = "what it holds cannot be looked through ([Errno 13] Permission denied"
    with pytest.raises(FileExistsError, match=re.escape(said)):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    monkeypatch.undo()
    assert snapshot(out) == before


def test_settings_of_another_version_still_name_the_images(tmp_path: Path) -> None:
    """Settings a newer mmzarr wrote (a field this one does not know): every
    zarr node was taken as the writer's, and a user's labels were deleted."""
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    settings = out / "mmzarr" / "settings.json"
    doc = json.loads(settings.read_text())
    settings.write_text(json.dumps({**doc, "a_field_of_mmzarr_9": 1}))
    labels = out / "A" / "1" / "0" / "labels"
    labels.mkdir()
    (labels / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    with pytest.raises(FileExistsError, match=re.escape("('A/1/0/labels')")):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    assert (labels / "zarr.json").is_file()


def test_overwrite_says_no_warning_of_the_old_dataset(tmp_path: Path) -> None:
    """Reading the old dataset's settings to see what it holds repeated their
    warnings (levels cut at 1x1), twice; under -W error the overwrite failed."""
    out = tmp_path / "run.ome.zarr"
    with pytest.warns(UserWarning, match="levels"):
        settings = settings_for(TWO_T, downsample=mmzarr.Downsample(levels=8))
    with mmzarr.create_stream(out, settings, backend=ANY_BACKEND) as s:
        s.append(frame_for(1))
    with mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True) as s:
        s.append(frame_for(9))  # the suite turns any warning into an error


def test_a_refusal_says_when_it_names_only_some(tmp_path: Path) -> None:
    out = tmp_path / "run.ome.zarr"
    _write(out, TCZYX, ANY_BACKEND)
    for k in range(5):
        (out / f"note{k}.txt").write_text("a user's")
    with pytest.raises(FileExistsError) as info:
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
    said = str(info.value)
    assert "'note0.txt', 'note1.txt', 'note2.txt', and more)" in said
    assert "note3" not in said


@pytest.mark.parametrize(
    "seq", [TCZYX, COLLECTION, PLATE], ids=["image", "coll", "plate"]
)
def test_s3_overwrite_replaces_what_every_backend_wrote(
    s3_endpoint: str, s3_url: str, backend: str, seq: useq.MDASequence
) -> None:
    """Every object a writer puts on S3 (levels, OME/, wells, fields) is its own."""
    with mmzarr.create_stream(s3_url, _with_levels(seq), backend=backend) as s:
        for n, event in enumerate(seq):
            s.append(frame_for(n), index=event.index)
    with mmzarr.create_stream(
        s3_url, settings_for(TWO_T), backend=backend, overwrite=True
    ) as s:
        s.append(frame_for(9))
    assert {k.split("/")[0] for k in test_s3.s3_keys(s3_endpoint, s3_url)} == {
        "0",
        "mmzarr",
        "zarr.json",
    }
    np.testing.assert_array_equal(
        test_s3.read_zarr_s3(s3_endpoint, s3_url, "0")[0], frame_for(9)
    )


@pytest.mark.parametrize("what", USER_ADDITIONS)
def test_s3_overwrite_refuses_a_dataset_holding_a_users_objects(
    s3_endpoint: str, s3_url: str, what: str
) -> None:
    """A user's labels, notes or figures put under a dataset's prefix were
    deleted with it by `overwrite=True` (only local datasets were looked in)."""
    with mmzarr.create_stream(s3_url, _with_levels(PLATE), backend=ANY_BACKEND) as s:
        for n, event in enumerate(PLATE):
            s.append(frame_for(n), index=event.index)
    rel, named = USER_ADDITIONS[what]
    test_s3._put(s3_endpoint, s3_url, {rel: b'{"zarr_format": 3}'})
    before = test_s3.s3_keys(s3_endpoint, s3_url)
    refused = re.escape(f"it holds what mmzarr did not write ({named!r})")
    with pytest.raises(FileExistsError, match=refused):
        mmzarr.create_stream(s3_url, settings_for(TWO_T), overwrite=True)
    assert test_s3.s3_keys(s3_endpoint, s3_url) == before


def _s3_dataset(url: str) -> None:
    with mmzarr.create_stream(url, settings_for(TWO_T), backend=ANY_BACKEND) as s:
        s.append(frame_for(1))


@pytest.mark.parametrize("name", ["run[1].ome.zarr", "run?.ome.zarr", "run*.ome.zarr"])
def test_s3_overwrite_deletes_only_its_own_prefix(
    s3_endpoint: str, s3_url: str, name: str
) -> None:
    """fsspec read `[`, `?` and `*` in the dataset's URL as a pattern: an
    overwrite deleted the datasets and objects it matched beside it (and not
    its own). An object at the dataset's own key (no slash) was deleted too."""
    top = s3_url.rsplit("/", 1)[0]
    url = f"{top}/{name}"
    _s3_dataset(url)
    beside = {"run1.ome.zarr/zarr.json": b"{}", "runX.ome.zarr/notes.txt": b"keep"}
    test_s3._put(s3_endpoint, top, beside)
    test_s3._put(s3_endpoint, top, {name: b"a file named like the dataset"})
    before = test_s3.s3_keys(s3_endpoint, top)
    with mmzarr.create_stream(
        url, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
    ) as s:
        s.append(frame_for(9))
    after = test_s3.s3_keys(s3_endpoint, top)
    assert [k for k in before if not k.startswith(f"{name}/")] == [
        k for k in after if not k.startswith(f"{name}/")
    ]
    assert {*beside, name} <= set(after)
    np.testing.assert_array_equal(
        test_s3.read_zarr_s3(s3_endpoint, url, "0")[0], frame_for(9)
    )


def test_s3_a_leftover_write_probe_is_not_a_users_object(
    s3_endpoint: str, s3_url: str
) -> None:
    """A writer stopped between putting and deleting its write probe leaves
    `mmzarr/.write-probe` alone: the CLI's and the front ends' early check
    refused that prefix (`--overwrite` as "not a zarr dataset")."""
    from mmzarr._claim import check_output

    test_s3._put(s3_endpoint, s3_url, {"mmzarr/.write-probe": b""})
    check_output(s3_url, overwrite=False)
    check_output(s3_url, overwrite=True)
    _s3_dataset(s3_url)
    assert ".write-probe" not in " ".join(test_s3.s3_keys(s3_endpoint, s3_url))


def test_s3_keys_with_an_empty_folder_name_are_a_users(
    s3_endpoint: str, s3_url: str
) -> None:
    """`A/1/0//notes.txt` was listed as a folder named `0` (the field's level
    array) and deleted; an empty object marking a folder (the S3 console's)
    is nobody's work and does not stop an overwrite."""
    with mmzarr.create_stream(s3_url, _with_levels(PLATE), backend=ANY_BACKEND) as s:
        for n, event in enumerate(PLATE):
            s.append(frame_for(n), index=event.index)
    test_s3._put(s3_endpoint, s3_url, {"A/1/0/": b"", "": b""})
    test_s3._put(s3_endpoint, s3_url, {"A/1/0//notes.txt": b"a user's"})
    with pytest.raises(FileExistsError, match=re.escape("write ('A/1/0/')")):
        mmzarr.create_stream(s3_url, settings_for(TWO_T), overwrite=True)
    test_s3._client(s3_endpoint).delete_object(
        Bucket=test_s3.BUCKET, Key=f"{test_s3._prefix(s3_url)}/A/1/0//notes.txt"
    )
    with mmzarr.create_stream(
        s3_url, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
    ) as s:
        s.append(frame_for(9))
    keys = test_s3.s3_keys(s3_endpoint, s3_url)
    assert "0/zarr.json" in keys
    assert not [k for k in keys if k.startswith("A/") or k == ""]  # old: all gone


def test_s3_overwrite_aborts_the_uploads_a_killed_writer_left(
    s3_endpoint: str, s3_url: str
) -> None:
    """An unfinished multipart upload (acquire-zarr's, of a writer killed
    mid-shard) is no object, so it outlived the overwrite, its parts stored
    and billed; one beside the dataset's prefix is not its to abort."""
    _s3_dataset(s3_url)
    client = test_s3._client(s3_endpoint)
    prefix = test_s3._prefix(s3_url)
    for key in (f"{prefix}/0/c/7/0/0", f"{prefix}-other/0/c/0/0/0"):
        up = client.create_multipart_upload(Bucket=test_s3.BUCKET, Key=key)
        client.upload_part(
            Bucket=test_s3.BUCKET,
            Key=key,
            UploadId=up["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
        )
    with mmzarr.create_stream(
        s3_url, settings_for(TWO_T), backend=ANY_BACKEND, overwrite=True
    ) as s:
        s.append(frame_for(9))
    left = client.list_multipart_uploads(Bucket=test_s3.BUCKET, Prefix=prefix)
    assert [u["Key"] for u in left.get("Uploads", [])] == [f"{prefix}-other/0/c/0/0/0"]


def test_s3_an_object_at_the_dataset_s_folder_key_is_a_users(
    s3_endpoint: str, s3_url: str
) -> None:
    """An object at `prefix/` with content (not an empty folder marker) was
    skipped by the look and deleted by the overwrite."""
    _s3_dataset(s3_url)
    test_s3._put(s3_endpoint, s3_url, {"": b"a user's notes"})
    with pytest.raises(FileExistsError, match=re.escape("write ('/')")):
        mmzarr.create_stream(s3_url, settings_for(TWO_T), overwrite=True)
    assert "" in test_s3.s3_keys(s3_endpoint, s3_url)


def test_s3_unreachable_while_looking_for_an_unplaced_sibling(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server gone: each of the 100 sibling names was tried (seconds each)
    and the frame then refused as "keeps frames of another dataset"."""
    from mmzarr._unplaced import replaceable_sibling

    port = test_s3.unreachable_endpoint(monkeypatch)
    with pytest.raises(mmzarr.StorageError, match=str(port)):
        replaceable_sibling(s3_url.replace(".ome.zarr", ".unplaced.ome.zarr"), "x")


def test_a_link_in_a_loop_inside_a_dataset_is_named(tmp_path: Path) -> None:
    out = tmp_path / "run.ome.zarr"
    _write(out, PLATE, ANY_BACKEND)
    (out / "A" / "loop").symlink_to("loop")
    with pytest.raises(FileExistsError, match=re.escape("write ('A/loop')")):
        mmzarr.create_stream(out, settings_for(TWO_T), overwrite=True)
