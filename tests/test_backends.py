"""Backend contract: every registered backend writes the same datasets.

Each case is written through `create_stream` with every available backend and
read back with zarr-python and tensorstore (independent decoders), pixel for
pixel against the frames appended; group metadata must not depend on the backend.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
import zarr

from mmzarr import AcquisitionSettings, create_stream
from mmzarr._layout import array_path
from mmzarr.backends import BACKENDS, SupportsFlush
from tests._readback import check_metadata, read_tensorstore, read_zarr

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SHAPE = (8, 10)
GATHERING = ("tensorstore", "zarr-python")  # backends that gather shards themselves


def stamp(n: int) -> np.ndarray:
    """Frame `n`: unique per frame and not symmetric inside the frame."""
    return (n * 100 + np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE)).astype("uint16")


@dataclass(frozen=True)
class Case:
    name: str
    seq: useq.MDASequence
    options: dict[str, Any] = field(default_factory=dict)
    indices: tuple[dict[str, int], ...] | None = None  # default: the plan's events

    def settings(self) -> AcquisitionSettings:
        return AcquisitionSettings.from_useq(
            self.seq,
            image_shape=SHAPE,
            dtype="uint16",
            pixel_size_um=0.5,
            **self.options,
        )

    def frame_indices(self) -> list[dict[str, int]]:
        if self.indices is not None:
            return list(self.indices)
        return [dict(e.index) for e in self.seq]


TCZ = useq.MDASequence(
    channels=["DAPI", "FITC"],
    z_plan={"range": 2, "step": 1},
    time_plan={"interval": 1, "loops": 2},
)
Z5 = useq.MDASequence(
    channels=["DAPI", "FITC"],
    z_plan={"range": 4, "step": 1},
    time_plan={"interval": 1, "loops": 3},
)
COLLECTION = useq.MDASequence(
    axis_order="tpcz",
    channels=["DAPI", "FITC"],
    time_plan={"interval": 1, "loops": 2},
    stage_positions=[
        useq.Position(x=0, y=0),
        useq.Position(
            x=10, y=0, sequence=useq.MDASequence(z_plan={"range": 2, "step": 1})
        ),
        useq.Position(x=20, y=0),
    ],
)
PLATE = useq.MDASequence(
    channels=["DAPI"],
    stage_positions=useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=([0, 0], [0, 1]),
        well_points_plan=useq.GridRowsColumns(rows=2, columns=2),
    ),
)
TIMELAPSE = useq.MDASequence(
    channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 1}
)
UNBOUNDED_T = tuple({"t": t, "c": c} for t in range(5) for c in range(2))

CASES = [
    Case("tczyx", TCZ),
    Case("collection", COLLECTION),
    Case("plate", PLATE),
    Case("unbounded-t", TIMELAPSE, {"unbounded_t": True}, UNBOUNDED_T),
    Case("shard-z-zstd", Z5, {"shards": {"z": 4}, "compression": "blosc-zstd"}),
    Case("shard-t", Z5, {"shards": {"t": 2}}),
    Case(
        "shard-t-unbounded",
        TIMELAPSE,
        {"unbounded_t": True, "shards": {"t": 2}},
        UNBOUNDED_T,
    ),
    Case("chunk-z-lz4", Z5, {"chunks": {"z": 2}, "compression": "blosc-lz4"}),
]


@pytest.fixture(params=GATHERING)
def gathering_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if not BACKENDS[name].is_available():
        pytest.skip(f"backend {name!r} is not installed")
    return name


Written = tuple["Path", dict[str, np.ndarray]]


def write_case(case: Case, backend: str, path: Path) -> dict[str, np.ndarray]:
    """Write `case`; return the expected array of every image key."""
    settings = case.settings()
    appended: list[tuple[str, tuple[int, ...], np.ndarray]] = []
    with create_stream(path, settings, backend=backend) as stream:
        for n, index in enumerate(case.frame_indices()):
            frame = stamp(n)
            key, sidx = stream.append(frame, index=index)
            appended.append((key, sidx, frame))
            frame[:] = 0  # the backend must have copied or consumed it
    expected: dict[str, np.ndarray] = {}
    for im in settings.images:
        shape = list(im.shape)
        if im.unbounded:
            shape[0] = 1 + max(s[0] for k, s, _ in appended if k == im.key)
        expected[im.key] = np.zeros(shape, dtype=settings.dtype)
    for n, (key, sidx, _) in enumerate(appended):
        expected[key][sidx] = stamp(n)
    return expected


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


def assert_frames_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    for idx in np.ndindex(*want.shape[:-2]):
        np.testing.assert_array_equal(got[idx], want[idx], err_msg=f"{what} {idx}")


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
def test_read_back(
    case: Case, backend: str, written: Callable[[Case, str], Written]
) -> None:
    path, expected = written(case, backend)
    settings = case.settings()
    for im in settings.images:
        arr = path / array_path(im)
        meta = zarr.open_array(str(arr), mode="r").metadata
        assert meta.dimension_names == im.dim_names
        want = expected[im.key]
        got = read_zarr(path, array_path(im))
        assert_frames_equal(got, want, f"zarr-python {im.key!r}")
        got = read_tensorstore(path, array_path(im))
        assert_frames_equal(got, want, f"tensorstore {im.key!r}")
    check_metadata(path)


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


def test_shards_written_once(gathering_backend: str, tmp_path: Path) -> None:
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 7, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 4}
    )
    array = tmp_path / "s.ome.zarr" / "0"
    seen: dict[str, tuple[int, int]] = {}
    with create_stream(array.parent, settings, backend=gathering_backend) as stream:
        for n, event in enumerate(seq):
            stream.append(stamp(n), index=event.index)
            stream._backend.wait_for_writes()  # tensorstore commits in background
            z = event.index["z"]
            stats = shard_stats(array)
            # a shard file appears with the shard's last frame, then never changes
            complete = {f"c/0/{k}/0/0" for k in range(z // 4 + (z % 4 == 3))}
            assert set(stats) == complete, f"after z={z}"
            for key, st in seen.items():
                assert stats[key] == st, f"{key} rewritten after z={z}"
            seen = stats
    assert shard_stats(array) == seen
    assert_frames_equal(
        read_zarr(array.parent, "0"),
        np.stack([stamp(n) for n in range(8)])[None],
        "read",
    )


def test_incomplete_shard_written_at_close_and_flush(
    gathering_backend: str, tmp_path: Path
) -> None:
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 3, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 4}
    )
    path = tmp_path / "s.ome.zarr"
    want = np.zeros((1, 4, *SHAPE), "uint16")
    with create_stream(path, settings, backend=gathering_backend) as stream:
        stream.append(stamp(0), index={"c": 0, "z": 0})
        want[0, 0] = stamp(0)
        assert stream._backend.memory_bytes() == want.nbytes
        assert not shard_stats(path / "0")
        assert isinstance(stream._backend, SupportsFlush)
        stream._backend.flush()  # writes the shard as gathered so far
        assert_frames_equal(read_zarr(path, "0"), want, "after flush")
        stream.append(stamp(2), index={"c": 0, "z": 2})
        want[0, 2] = stamp(2)
    assert stream.status == "cancelled"
    assert_frames_equal(read_zarr(path, "0"), want, "after close")
    assert_frames_equal(read_tensorstore(path, "0"), want, "after close")


def test_frame_for_written_shard(gathering_backend: str, tmp_path: Path) -> None:
    # FITC is acquired at one z only: its shard is complete after one frame, so a
    # frame sent later to one of its skipped slots lands in a written shard.
    # (acquire-zarr only appends: it rejects a frame for a passed index.)
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
    with create_stream(path, settings, backend=gathering_backend) as stream:
        for n, index in enumerate([*indices, {"c": 1, "z": 0}]):
            stream.append(stamp(n), index=index)
            want[index["c"], index["z"]] = stamp(n)
    assert_frames_equal(read_zarr(path, "0"), want, "zarr-python")
    assert_frames_equal(read_tensorstore(path, "0"), want, "tensorstore")


@pytest.mark.parametrize("use_zarrs", [True, False], ids=["zarrs", "python"])
def test_zarr_python_codec_pipeline_is_scoped(use_zarrs: bool, tmp_path: Path) -> None:
    if not BACKENDS["zarr-python"].is_available():
        pytest.skip("zarr-python is not installed")
    if use_zarrs and importlib.util.find_spec("zarrs") is None:
        pytest.skip("zarrs is not installed")
    before = zarr.config.get("codec_pipeline.path")
    seq = useq.MDASequence(channels=["DAPI"], z_plan={"range": 3, "step": 1})
    settings = AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, shards={"z": 2}
    )
    path = tmp_path / "z.ome.zarr"
    with create_stream(
        path, settings, backend="zarr-python", use_zarrs=use_zarrs
    ) as stream:
        pipeline = stream._backend._arrays[0].store.async_array.codec_pipeline
        assert (type(pipeline).__name__ == "ZarrsCodecPipeline") is use_zarrs
        for n, event in enumerate(seq):
            stream.append(stamp(n), index=event.index)
            assert zarr.config.get("codec_pipeline.path") == before
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
    # no time point of position 1 was acquired (acquire-zarr writes no array)
    assert read_zarr(path, "1/0").shape == (0, 1, *SHAPE)
    check_metadata(path)


def test_acquire_zarr_batches_reach_disk_within_flush_interval(tmp_path: Path) -> None:
    """acquire-zarr gets frames in batches; a partial batch is handed over by the
    flush thread, so frames are on disk while the stream is still open."""
    from mmzarr.backends import _acquire

    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 40}),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=0.2,
    )
    assert _acquire.BATCH_BYTES // stamp(0).nbytes > 4  # these frames batch
    out = tmp_path / "batched.ome.zarr"
    stream = create_stream(out, settings, backend="acquire-zarr")
    try:
        buf = np.empty(SHAPE, "uint16")
        for n in range(4):
            buf[:] = stamp(n)
            stream.append(buf)
            buf[:] = 0  # reused at once: the batch holds a copy
        deadline = time.monotonic() + 15
        while True:
            data = zarr.open_array(str(out / "0"), mode="r")[:4]
            # acquire-zarr rewrites zarr.json with the complete time points so
            # far: fewer rows may be readable yet
            if len(data) == 4 and all((data[n] == stamp(n)).all() for n in range(4)):
                break
            assert time.monotonic() < deadline, "batched frames never reached disk"
            time.sleep(0.1)
        assert stream.status == "acquiring"
    finally:
        stream.close()
    np.testing.assert_array_equal(
        read_tensorstore(out, "0")[:4], np.stack([stamp(n) for n in range(4)])
    )


@pytest.mark.parametrize(
    "options",
    [
        {},  # one frame per chunk
        {"chunks": {"y": 4, "x": 5}},  # tiles
        {"shards": {"t": 4}},  # multi-frame shards
    ],
    ids=["frame", "tiles", "shards"],
)
def test_zarr_python_fsyncs_chunk_files_while_acquiring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    """Every chunk file zarr-python wrote is fsynced by `flush`, before close."""
    from mmzarr.backends import _zarr

    synced: list[str] = []
    real = _zarr.fsync_files

    def record(paths: Any, *, missing_ok: bool = False) -> None:
        synced.extend(paths)
        real(paths, missing_ok=missing_ok)

    monkeypatch.setattr(_zarr, "fsync_files", record)
    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 8}, channels=["DAPI"]),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=60,  # no flush thread interference: flush by hand
        **options,
    )
    out = tmp_path / "synced.ome.zarr"
    stream = create_stream(out, settings, backend="zarr-python")
    try:
        for n in range(8):
            stream.append(stamp(n))
        stream._backend.flush()  # what the flush thread does
        stream._backend._syncs[-1].result()
    finally:
        stream.close()
    on_disk = {str(p) for p in (out / "0" / "c").rglob("*") if p.is_file()}
    assert on_disk
    assert set(synced) == on_disk


@pytest.mark.parametrize(
    ("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")]
)
def test_openmp_waits_passively_unless_the_user_says(
    given: str | None, expected: str
) -> None:
    """acquire-zarr's libgomp must not spin idle threads (a user's choice wins)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, mmzarr, acquire_zarr; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected


def test_all_zero_frames_are_stored(backend: str, tmp_path: Path) -> None:
    """A frame equal to the fill value is a chunk file like any other (a missing
    chunk would look like a frame never written)."""
    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 3}),
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
    )
    out = tmp_path / "zeros.ome.zarr"
    with create_stream(out, settings, backend=backend) as stream:
        stream.append(np.zeros(SHAPE, "uint16"))
        stream.append(stamp(1))
        stream.append(np.zeros(SHAPE, "uint16"))
    chunks = {
        p.relative_to(out / "0" / "c").parts[0]
        for p in (out / "0" / "c").rglob("*")
        if p.is_file()
    }
    assert chunks == {"0", "1", "2"}
    data = read_tensorstore(out, "0")
    np.testing.assert_array_equal(data[1], stamp(1))
    assert not data[0].any()
    assert not data[2].any()
