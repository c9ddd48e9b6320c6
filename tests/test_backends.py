"""What differs between backends, and their upstream workarounds.

What every backend does is `tests/test_backend_contract.py`'s. Here: group
metadata that must not depend on the backend, sharded arrays equal to
acquire-zarr's, how tensorstore and zarr-python gather shards, the zarrs codec
pipeline, zarr-python's fsyncs, and acquire-zarr's batching, OpenMP setting and
hidden sibling (acquire-zarr issue #186). Frames are read back with zarr-python
and tensorstore.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
import zarr

from mmzarr import AcquisitionSettings, FrameError, create_stream
from mmzarr._layout import array_path
from mmzarr._storage import Location
from mmzarr.backends import BACKENDS, Arrays, Limits, get_backend
from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr
from tests._waiting import wait_for
from tests.test_backend_contract import (
    CASES,
    SHAPE,
    Case,
    assert_frames_equal,
    stamp,
    write_case,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

GATHERING = ("tensorstore", "zarr-python")  # backends that gather shards themselves


@pytest.fixture(params=GATHERING)
def gathering_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if not BACKENDS[name].is_available():
        pytest.skip(f"backend {name!r} is not installed")
    return name


Written = tuple["Path", dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[Case, str], Written]:
    """Write each (case, backend) once per module."""
    cache: dict[tuple[str, str], Written] = {}

    def get(case: Case, backend: str) -> Written:
        if (case.name, backend) not in cache:
            path = tmp_path_factory.mktemp(case.name) / f"{backend}.ome.zarr"
            cache[(case.name, backend)] = (path, write_case(case, backend, path))
        return cache[(case.name, backend)]

    return get


def open_backend(name: str, root: Path, settings: AcquisitionSettings) -> Any:
    backend = get_backend(name)
    backend.open(Location(path=root), Arrays.of(settings), Limits())
    return backend


def group_documents(root: Path) -> dict[str, Any]:
    """Every group `zarr.json` under `root`, without the backend's name."""
    docs = {}
    for dirpath, _, files in os.walk(root):
        if "zarr.json" not in files:
            continue
        with open(os.path.join(dirpath, "zarr.json"), encoding="utf-8") as f:
            doc = json.load(f)
        if doc["node_type"] == "group":
            doc["attributes"].get("mmzarr", {}).pop("backend", None)
            docs[os.path.relpath(dirpath, root)] = doc
    return docs


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_group_metadata_same_for_every_backend(
    case: Case, written: Callable[[Case, str], Written]
) -> None:
    names = [n for n, info in BACKENDS.items() if info.is_available()]
    if len(names) < 2:
        pytest.skip("needs two backends")
    docs = {n: group_documents(written(case, n)[0]) for n in names}
    for name in names[1:]:
        assert docs[name] == docs[names[0]], f"{name} vs {names[0]}"


@pytest.mark.parametrize(
    "case", [c for c in CASES if "shards" in c.options], ids=lambda c: c.name
)
def test_sharded_array_metadata_matches_acquire_zarr(
    case: Case, gathering_backend: str, written: Callable[[Case, str], Written]
) -> None:
    # acquire-zarr always shards, so only sharded arrays can match it
    ref, _ = written(case, "acquire-zarr")
    path, _ = written(case, gathering_backend)
    for im in case.settings().images:
        want = zarr.open_array(str(ref / array_path(im)), mode="r").metadata
        got = zarr.open_array(str(path / array_path(im)), mode="r").metadata
        assert got.to_dict() == want.to_dict()


def shard_stats(array: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every chunk/shard file of an array."""
    out = {}
    for dirpath, _, files in os.walk(array / "c"):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), array)] = (
                st.st_ino,
                st.st_mtime_ns,
            )
    return out


def shards_whole(root: Path, complete: set[str]) -> bool:
    """Whether every shard in `complete` (z shards of 4) is on disk with its
    frames (frame n is `stamp(n)` at z = n), read back with zarr-python."""
    if not set(shard_stats(root / "0")) >= complete:
        return False
    try:
        data = read_zarr(root, "0")
    except Exception:  # a shard being written
        return False
    return all(
        (data[0, z] == stamp(z)).all()
        for k in range(len(complete))
        for z in range(4 * k, 4 * k + 4)
    )


def test_shards_written_once(gathering_backend: str, tmp_path: Path) -> None:
    """A shard file appears with the shard's last frame, then never changes."""
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 7, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 4}
    )
    root = tmp_path / "s.ome.zarr"
    array = root / "0"
    backend = open_backend(gathering_backend, root, settings)
    seen: dict[str, tuple[int, int]] = {}
    for n, event in enumerate(seq):
        backend.write(0, (0, event.index["z"]), stamp(n))
        z = event.index["z"]
        complete = {f"c/0/{k}/0/0" for k in range(z // 4 + (z % 4 == 3))}
        # written in the background: wait until each complete shard reads back
        # whole (zarrs creates the file, then writes it: it appears first)
        # (nothing else writes, as nothing flushes: no other file can appear)
        wait_for(f"shards after z={z}", lambda c=complete: shards_whole(root, c))
        stats = shard_stats(array)
        assert set(stats) == complete, f"after z={z}"
        for key, st in seen.items():
            assert stats[key] == st, f"{key} rewritten after z={z}"
        seen = stats
    backend.flush(final=True)
    assert shard_stats(array) == seen
    assert_frames_equal(
        read_zarr(root, "0"),
        np.stack([stamp(n) for n in range(8)])[None],
        "read",
    )


def test_incomplete_shard_written_at_close_and_flush(
    gathering_backend: str, tmp_path: Path
) -> None:
    """A shard still gathering is written as it is by a flush, in full at close."""
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 3, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 4}
    )
    path = tmp_path / "s.ome.zarr"
    want = np.zeros((1, 4, *SHAPE), "uint16")
    backend = open_backend(gathering_backend, path, settings)
    backend.write(0, (0, 0), stamp(0))
    want[0, 0] = stamp(0)
    assert not shard_stats(path / "0")  # gathered: nothing written before a flush
    assert backend.flush().readable <= 1
    wait_for("the flushed shard", lambda: backend.flush().readable == 1)
    assert_frames_equal(read_zarr(path, "0"), want, "after flush")
    backend.write(0, (0, 2), stamp(2))
    want[0, 2] = stamp(2)
    assert backend.flush(final=True).readable == 2
    assert_frames_equal(read_zarr(path, "0"), want, "after close")
    assert_frames_equal(read_tensorstore(path, "0"), want, "after close")
    with create_stream(
        tmp_path / "c.ome.zarr", settings, backend=gathering_backend
    ) as s:
        s.append(stamp(0), index={"c": 0, "z": 0})
    assert s.status == "cancelled"
    assert_frames_equal(
        read_zarr(tmp_path / "c.ome.zarr", "0")[:, :1], want[:, :1], "c"
    )


def test_frame_for_a_skipped_slot_is_refused(backend: str, tmp_path: Path) -> None:
    """FITC is acquired at one z only: a frame sent to one of its skipped
    slots is refused on every backend alike (tensorstore and zarr-python
    rewrote its written shard with it, acquire-zarr refused it as passed) and
    the shard keeps what was acquired."""
    seq = useq.MDASequence(
        channels=["DAPI", useq.Channel(config="FITC", do_stack=False)],
        z_plan={"range": 3, "step": 1},
    )
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 4}
    )
    path = tmp_path / "s.ome.zarr"
    want = np.zeros((2, 4, *SHAPE), "uint16")
    indices = [dict(e.index) for e in seq]
    assert {"c": 1, "z": 0} not in indices
    with create_stream(path, settings, backend=backend) as stream:
        for n, index in enumerate(indices):
            stream.append(stamp(n), index=index)
            want[index["c"], index["z"]] = stamp(n)
        with pytest.raises(FrameError, match=r"never acquires \(1, 0\)"):
            stream.append(stamp(99), index={"c": 1, "z": 0})
    assert_frames_equal(read_zarr(path, "0"), want, "zarr-python")
    assert_frames_equal(read_tensorstore(path, "0"), want, "tensorstore")


@pytest.mark.parametrize("use_zarrs", [True, False], ids=["zarrs", "python"])
def test_zarr_python_codec_pipeline_is_scoped(
    use_zarrs: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zarrs writes the frames when asked; zarr's global config stays the user's."""
    if not BACKENDS["zarr-python"].is_available():
        pytest.skip("zarr-python is not installed")
    if importlib.util.find_spec("zarrs") is None:
        pytest.skip("zarrs is not installed")
    import zarrs

    calls: list[int] = []
    real = zarrs.ZarrsCodecPipeline.write

    async def write(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        await real(self, *args, **kwargs)

    monkeypatch.setattr(zarrs.ZarrsCodecPipeline, "write", write)
    before = zarr.config.get("codec_pipeline.path")
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 3, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 2}
    )
    path = tmp_path / "z.ome.zarr"
    with create_stream(
        path, settings, backend="zarr-python", use_zarrs=use_zarrs
    ) as stream:
        for n, event in enumerate(seq):
            stream.append(stamp(n), index=event.index)
            assert zarr.config.get("codec_pipeline.path") == before
    assert bool(calls) is use_zarrs
    want = np.stack([stamp(n) for n in range(4)])[None]
    assert_frames_equal(read_zarr(path, "0"), want, "read")


def test_unbounded_image_without_frames(gathering_backend: str, tmp_path: Path) -> None:
    seq = useq.MDASequence(
        stage_positions=[(0, 0), (10, 10)],
        channels=["DAPI"],
        time_plan={"interval": 1, "loops": 1},
    )
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, unbounded_t=True
    )
    path = tmp_path / "u.ome.zarr"
    with create_stream(path, settings, backend=gathering_backend) as stream:
        for t in range(3):
            stream.append(stamp(t), index={"t": t, "p": 0, "c": 0})
    want = np.stack([stamp(t) for t in range(3)])[:, None]
    assert_frames_equal(read_zarr(path, "0/0"), want, "position 0")
    # no time point of position 1 was acquired: it ends at the dataset's last
    # time point all the same, as the fill value
    position_1 = read_zarr(path, "1/0")
    assert position_1.shape == (3, 1, *SHAPE)
    assert not position_1.any()
    check_metadata(path)


def test_acquire_zarr_batches_reach_disk_within_flush_interval(tmp_path: Path) -> None:
    """acquire-zarr gets frames in batches; a partial batch is handed over by the
    flush thread, so frames are on disk while the stream is still open."""
    from mmzarr.backends import _acquire_batch

    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 40}),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=0.2,
    )
    assert _acquire_batch.BATCH_BYTES // stamp(0).nbytes > 4  # these frames batch
    out = tmp_path / "batched.ome.zarr"
    stream = create_stream(out, settings, backend="acquire-zarr")
    try:
        buf = np.empty(SHAPE, "uint16")
        for n in range(4):
            buf[:] = stamp(n)
            stream.append(buf)
            buf[:] = 0  # reused at once: the batch holds a copy

        def on_disk() -> bool:
            data = zarr.open_array(str(out / "0"), mode="r")[:4]
            # acquire-zarr rewrites zarr.json with the complete time points so
            # far: fewer rows may be readable yet
            return len(data) == 4 and all((data[n] == stamp(n)).all() for n in range(4))

        wait_for("batched frames on disk", on_disk, seconds=15, every=0.1)
        assert stream.status == "acquiring"
    finally:
        stream.close()
    np.testing.assert_array_equal(
        read_tensorstore(out, "0")[:4], np.stack([stamp(n) for n in range(4)])
    )


@pytest.mark.parametrize(
    ("options", "files"),
    [
        ({}, 8),  # one frame per chunk: 8 frames
        ({"chunks": {"y": 4, "x": 5}}, 32),  # tiles: 2 x 2 per 8 x 10 frame
        ({"shards": {"t": 4}}, 2),  # multi-frame shards: 4 frames each
    ],
    ids=["frame", "tiles", "shards"],
)
def test_zarr_python_fsyncs_chunk_files_while_acquiring(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    files: int,
) -> None:
    """Every chunk file zarr-python wrote is fsynced after a flush, before close."""
    if not BACKENDS["zarr-python"].is_available():
        pytest.skip("zarr-python is not installed")
    from mmzarr.backends import _zarr

    synced: list[str] = []
    real = _zarr.fsync_files

    def record(paths: Any, *, missing_ok: bool = False) -> None:
        real(paths, missing_ok=missing_ok)
        synced.extend(paths)

    monkeypatch.setattr(_zarr, "fsync_files", record)
    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 8}, channels=["DAPI"]),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        **options,
    )
    out = tmp_path / "synced.ome.zarr"
    backend = open_backend("zarr-python", out, settings)
    for n in range(8):
        backend.write(0, (n, 0), stamp(n))

    def all_synced() -> bool:
        backend.flush()  # what the flush thread does
        on_disk = {str(p) for p in (out / "0" / "c").rglob("*") if p.is_file()}
        # the writes land on the backend's thread: wait for all of them
        return len(on_disk) == files and set(synced) >= on_disk

    wait_for("fsyncs", all_synced)
    on_disk = {str(p) for p in (out / "0" / "c").rglob("*") if p.is_file()}
    backend.flush(final=True)
    assert len(on_disk) == files
    assert set(synced) == on_disk


@pytest.mark.parametrize(
    ("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")]
)
def test_openmp_waits_passively_unless_the_user_says(
    given: str | None, expected: str
) -> None:
    """acquire-zarr's libgomp must not spin idle threads (a user's choice wins):
    its backend sets the variable before it first imports acquire_zarr."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os, sys; from mmzarr.backends import get_backend; "
        "assert 'acquire_zarr' not in sys.modules; get_backend('acquire-zarr'); "
        "import acquire_zarr; print(os.environ['OMP_WAIT_POLICY'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected


def test_importing_mmzarr_leaves_the_environment_alone() -> None:
    """Importing mmzarr sets no variable (acquire-zarr's backend sets its own)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, mmzarr; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "None"


# ---- acquire-zarr's close and the group documents (issue #186) ------------------
PLATE_CASE = next(c for c in CASES if c.name == "plate")


def _group_docs(root: Path, *, windows: bool = True) -> dict[str, dict[str, Any]]:
    """Every group document under `root`; without `omero` unless `windows`."""
    docs = {}
    for zj in root.rglob("zarr.json"):
        text = zj.read_text()
        if '"node_type": "array"' in text:
            # acquire-zarr may be rewriting it now, in place (not atomically):
            # seen once as the head of one document and the tail of another
            continue
        doc = json.loads(text)
        if doc["node_type"] == "group":
            if not windows:
                doc["attributes"].get("ome", {}).pop("omero", None)
            docs[zj.parent.relative_to(root).as_posix()] = doc
    return docs


def test_acquire_zarr_close_leaves_group_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after acquire-zarr's close, before mmzarr writes the root's
    document, every group document still has its `ome` metadata: acquire-zarr
    wrote its bare groups to the hidden sibling, which is gone afterwards. (The
    images' display windows, `omero`, are written meanwhile.)"""
    import acquire_zarr as aqz

    out = tmp_path / "plate.ome.zarr"
    hidden = tmp_path / ".plate.ome.zarr.mmzarr-acquire-zarr"
    before: dict[str, dict[str, Any]] = {}
    seen: dict[str, dict[str, Any]] = {}
    real_close = aqz.ZarrStream.close

    def close(self: Any) -> None:
        assert hidden.is_dir()  # acquire-zarr writes there
        before.update(_group_docs(out, windows=False))
        real_close(self)
        seen.update(_group_docs(out, windows=False))
        # one link per array, at the sibling's top: one group document there
        entries = list(hidden.iterdir())
        assert all(e.is_symlink() or e.name == "zarr.json" for e in entries)
        linked = {os.path.realpath(e) for e in entries if e.is_symlink()}
        images = {
            os.path.realpath(out / key / "0")
            for key, doc in _group_docs(out).items()
            if "multiscales" in doc["attributes"].get("ome", {})
        }
        assert linked == images

    monkeypatch.setattr(aqz.ZarrStream, "close", close)
    write_case(PLATE_CASE, "acquire-zarr", out)
    assert seen == before
    assert set(seen) == set(_group_docs(out))
    assert "plate" in seen["."]["attributes"]["ome"]
    assert "well" in seen["A/1"]["attributes"]["ome"]
    assert "multiscales" in seen["A/1/0"]["attributes"]["ome"]
    assert not hidden.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.ome.zarr"]
    check_metadata(out)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"


def test_acquire_zarr_failed_open_leaves_no_sibling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import acquire_zarr as aqz

    def refuse(self: Any, settings: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(aqz.ZarrStream, "__init__", refuse)
    settings = PLATE_CASE.settings()
    with pytest.raises(ValueError, match="injected"):
        create_stream(tmp_path / "p.ome.zarr", settings, backend="acquire-zarr")
    assert list(tmp_path.iterdir()) == []


def test_acquire_zarr_leaves_a_foreign_sibling_alone(tmp_path: Path) -> None:
    """A directory where the hidden sibling would go that holds anything but
    links and group documents is not acquire-zarr's: it is left alone (the
    stream then writes the dataset itself, and rewrites its groups at close)."""
    hidden = tmp_path / ".run.ome.zarr.mmzarr-acquire-zarr"
    (hidden / "mine").mkdir(parents=True)
    (hidden / "mine" / "notes.txt").write_text("keep me")
    out = tmp_path / "run.ome.zarr"
    expected = write_case(PLATE_CASE, "acquire-zarr", out)
    assert (hidden / "mine" / "notes.txt").read_text() == "keep me"
    check_metadata(out)
    for key, want in expected.items():
        assert_frames_equal(read_zarr(out, f"{key}/0"), want, key)


def test_unbounded_shape_grows_while_acquiring(tmp_path: Path, backend: str) -> None:
    """While acquiring, an unbounded array's `zarr.json` grows with `t`, not only
    at close: tensorstore and zarr-python resize it to every time point
    accepted, the incomplete last one included; acquire-zarr rewrites it with
    the time points it completed on disk (after mmzarr's own, per flush)."""
    seq = useq.MDASequence(
        time_plan={"interval": 1, "loops": 3}, channels=["DAPI", "FITC"]
    )
    settings = AcquisitionSettings.from_useq(
        seq,
        image_shape=(8, 10),
        dtype="uint16",
        pixel_size_um=1,
        unbounded_t=True,
        flush_interval_s=0.1,
    )
    out = tmp_path / "grow.ome.zarr"
    want = 3 if backend == "acquire-zarr" else 4
    with create_stream(out, settings, backend=backend) as stream:
        for t in range(4):
            stream.append(np.full((8, 10), t, "uint16"), index={"t": t, "c": 0})
            if t < 3:  # t 3 has one channel of two: incomplete
                stream.append(np.full((8, 10), t, "uint16"), index={"t": t, "c": 1})

        def grown() -> bool:
            try:  # acquire-zarr rewrites the document in place: may be torn
                doc = json.loads((out / "0" / "zarr.json").read_text())
            except ValueError:
                return False
            return doc["shape"][0] >= want

        wait_for(f"the shape covering t {want - 1}", grown, seconds=60)
        assert stream.status == "acquiring"
    # grown ahead while acquiring (tensorstore, zarr-python): exact after close
    assert json.loads((out / "0" / "zarr.json").read_text())["shape"][0] == 4
    assert np.array_equal(read_zarr(out, "0")[3, 0], np.full((8, 10), 3, "uint16"))


def test_a_folder_without_write_bits_is_a_storage_error_naming_it(
    tmp_path: Path, backend: str
) -> None:
    """acquire-zarr refuses a folder without write permission bits even to root
    (who may write there): it said only "rejected the settings: Failed to
    create Zarr stream". Every backend now names the folder, as a storage
    error, and leaves nothing in it."""
    from mmzarr.errors import StorageError

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 2}),
        image_shape=(8, 8),
        dtype="uint16",
        pixel_size_um=1,
    )
    root = folder / "a.ome.zarr"

    def write() -> None:
        with create_stream(root, settings, backend=backend) as stream:
            for t in range(2):
                stream.append(np.full((8, 8), t, "uint16"), index={"t": t})

    try:
        if backend == "acquire-zarr" or os.geteuid() != 0:
            with pytest.raises(StorageError, match=re.escape(str(folder))):
                write()
            assert list(folder.iterdir()) == []
        else:  # root writes through the mode bits: then the data is all there
            write()
            assert read_zarr(root, "0")[1, 0, 0] == 1
    finally:
        folder.chmod(0o755)
