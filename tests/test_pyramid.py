"""Resolution levels written during acquisition (issue #11, part 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr

if TYPE_CHECKING:
    from pathlib import Path


def reference_halve(a: np.ndarray, method: str) -> np.ndarray:
    """Independent 2x reference over the last two axes of a whole array."""
    if method == "decimate":
        return a[..., ::2, ::2]
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    p = np.pad(a, pad, mode="edge").astype(np.float64)
    s = (
        p[..., 0::2, 0::2]
        + p[..., 1::2, 0::2]
        + p[..., 0::2, 1::2]
        + p[..., 1::2, 1::2]
    )
    return np.floor(s / 4 + 0.5).astype(a.dtype)


@pytest.mark.parametrize(
    ("method", "levels", "shape", "n_levels"),
    [
        ("mean", 2, (40, 34), 3),
        ("decimate", 2, (40, 34), 3),
        ("mean", "auto", (600, 520), 3),  # 600x520 -> 300x260 -> 150x130 (<= 256)
    ],
    ids=["mean-2", "decimate-2", "mean-auto"],
)
def test_levels_match_reference(
    tmp_path: Path,
    backend: str,
    method: str,
    levels: object,
    shape: tuple,
    n_levels: int,
) -> None:
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"],
        z_plan={"range": 1, "step": 1},
        time_plan={"interval": 1, "loops": 2},
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=shape,
        dtype="uint16",
        pixel_size_um=0.5,
        downsample={"method": method, "levels": levels},
    )
    out = tmp_path / "pyr.ome.zarr"
    rng = np.random.default_rng(0)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for event in seq:
            stream.append(
                rng.integers(0, 60000, shape).astype("uint16"), index=event.index
            )
    check_metadata(out)
    assert mmzarr.validate(out).ok
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert [d["path"] for d in ms["datasets"]] == [str(k) for k in range(n_levels)]
    expect = read_zarr(out, "0")
    for k in range(1, n_levels):
        expect = reference_halve(expect, method)
        got = read_zarr(out, str(k))
        np.testing.assert_array_equal(got, expect, err_msg=f"level {k}")
        np.testing.assert_array_equal(read_tensorstore(out, str(k)), expect)
        scale = ms["datasets"][k]["coordinateTransformations"][0]["scale"]
        assert scale[-2:] == [0.5 * 2**k, 0.5 * 2**k]


def test_levels_stop_at_one_pixel_with_a_warning(tmp_path: Path) -> None:
    """levels=8 on 64x96 frames: 96 reaches 1 after 7 halvings, so an 8th
    level would be a second 1x1 copy. 7 extra levels are written and the
    user is told (it wrote two identical 1x1 levels silently)."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    with pytest.warns(mmzarr.MMZarrWarning, match=r"levels=8.*64x96: 7"):
        settings = mmzarr.AcquisitionSettings.from_useq(
            seq,
            image_shape=(64, 96),
            dtype="uint16",
            pixel_size_um=1,
            downsample={"levels": 8},
        )
    out = tmp_path / "tiny.ome.zarr"
    with mmzarr.create_stream(out, settings) as stream:
        for t in range(2):
            stream.append(np.full((64, 96), 100 * (t + 1), "uint16"))
    ms = group_json(out)["attributes"]["ome"]["multiscales"][0]
    assert [d["path"] for d in ms["datasets"]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
    ]
    assert read_zarr(out, "6").shape == (2, 1, 2)
    np.testing.assert_array_equal(read_tensorstore(out, "7"), [[[100]], [[200]]])
    assert not (out / "8").exists()
    check_metadata(out)


def test_levels_grow_with_unbounded_t(tmp_path: Path, backend: str) -> None:
    template = useq.MDASequence(
        channels=["DAPI"], time_plan={"interval": 1, "loops": 1}
    )
    settings = mmzarr.AcquisitionSettings.from_useq(
        template,
        image_shape=(32, 32),
        dtype="uint8",
        pixel_size_um=1,
        unbounded_t=True,
        downsample={"levels": 1},
    )
    out = tmp_path / "u.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for t in range(5):
            stream.append(np.full((32, 32), t * 10, "uint8"), index={"t": t, "c": 0})
    assert read_zarr(out, "1").shape == (5, 1, 16, 16)
    assert read_zarr(out, "1")[4, 0, 0, 0] == 40
    check_metadata(out)


def test_levels_of_frames_sharded_in_y_and_x(tmp_path: Path, backend: str) -> None:
    """y/x shards whose levels cover fewer chunks than a shard: each level's
    shard holds whole chunks (create_stream raised: "shard 50 is not a
    multiple of chunk 30")."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=(100, 100),
        dtype="uint16",
        pixel_size_um=0.5,
        chunks={"y": 30, "x": 30},
        shards={"y": 60, "x": 60},
        downsample={"levels": 2},
    )
    out = tmp_path / "pyr.ome.zarr"
    rng = np.random.default_rng(1)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for _ in range(2):
            stream.append(rng.integers(0, 60000, (100, 100)).astype("uint16"))
    assert mmzarr.validate(out).ok
    expect = read_zarr(out, "0")
    for k in (1, 2):
        expect = reference_halve(expect, "mean")
        np.testing.assert_array_equal(read_tensorstore(out, str(k)), expect)


@pytest.mark.parametrize(
    ("chunks", "shards"),
    [
        ({"y": 512, "x": 512}, {"y": 1024, "x": 1024}),  # a preset for a bigger ROI
        ({"y": 20, "x": 20}, {"y": 1000, "x": 1000}),
        (None, {"t": 10**8}),  # shard past a bounded t
    ],
    ids=["chunk-past-frame", "shard-past-frame", "shard-past-t"],
)
def test_shards_past_the_array_are_cut_to_it(
    tmp_path: Path,
    backend: str,
    chunks: dict[str, int] | None,
    shards: dict[str, int],
) -> None:
    """Chunks and shards larger than a 57x63 frame (or than t) are cut to the
    chunks that cover it, as each level's are. Chunks of 512 in shards of 1024
    raised "shard 1024 is not a multiple of chunk 57" (the chunk had been cut
    to the frame, the shard not); a t shard of 10**8 frames for 3 time points
    failed the first append with a false "No space left on device"
    (tensorstore, zarr-python) or hung in acquire-zarr's open."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 3})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=(57, 63),
        dtype="uint16",
        pixel_size_um=0.5,
        chunks=chunks,
        shards=shards,
        downsample={"levels": 1},
    )
    dims = {d.name: d for d in settings.images[0].dimensions}
    for d in dims.values():
        if d.shard is not None:
            covering = -(-(d.size or 0) // d.chunk_size) * d.chunk_size
            assert d.shard <= covering, (d.name, d.chunk, d.shard)
    out = tmp_path / "cut.ome.zarr"
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 60000, (57, 63)).astype("uint16") for _ in range(3)]
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for frame in frames:
            stream.append(frame)
    assert mmzarr.validate(out).ok
    for read in (read_zarr, read_tensorstore):
        np.testing.assert_array_equal(read(out, "0"), np.stack(frames))
        np.testing.assert_array_equal(
            read(out, "1"), reference_halve(np.stack(frames), "mean")
        )


def test_a_shard_not_a_multiple_of_the_chunk_asked_for_is_refused() -> None:
    """Checked against the chunk given, before it is cut to the frame."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    with pytest.raises(
        mmzarr.PlanError, match="shard 1500 is not a multiple of chunk 1000"
    ):
        mmzarr.AcquisitionSettings.from_useq(
            seq,
            image_shape=(57, 63),
            dtype="uint16",
            pixel_size_um=0.5,
            chunks={"y": 1000},
            shards={"y": 1500},
        )


@pytest.mark.parametrize("dtype", ["int64", "uint64", "float64"])
def test_level_means_of_extreme_values_do_not_overflow(
    tmp_path: Path, dtype: str
) -> None:
    """The sum of four int64/uint64/float64 values can pass the dtype's range:
    a frame of the largest value had a level of -1 (int64), 2**62 - 1
    (uint64) or inf (float64). The mean of a constant frame is the constant."""
    info = np.finfo(dtype) if dtype.startswith("float") else np.iinfo(dtype)
    values = [info.max, info.min, info.max - 5]
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": len(values)})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq,
        image_shape=(4, 6),
        dtype=dtype,
        pixel_size_um=0.5,
        downsample={"levels": 1},
    )
    out = tmp_path / "big.ome.zarr"
    with mmzarr.create_stream(out, settings, backend="zarr-python") as stream:
        for value in values:
            stream.append(np.full((4, 6), value, dtype))
    level = read_zarr(out, "1")
    for t, value in enumerate(values):
        assert (level[t] == np.asarray(value, dtype)).all(), (t, level[t])
