"""create_stream / Stream: the three layouts, placement, errors (issue #4)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import (
    array_of,
    assert_frames,
    check_metadata,
    group_json,
    read_tensorstore,
    read_zarr,
)

if TYPE_CHECKING:
    from pathlib import Path

SHAPE = (8, 10)


def frame_for(n: int, dtype: str = "uint16") -> np.ndarray:
    """A frame unique to event number n (random texture seeded by n)."""
    rng = np.random.default_rng(n)
    return rng.integers(0, 4000, SHAPE).astype(dtype)


def settings_for(seq: useq.MDASequence, **kw: object) -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5, **kw
    )


def write_plan(
    path: Path, seq: useq.MDASequence, backend: str, *, use_index: bool = True
) -> dict[tuple[str, tuple[int, ...]], np.ndarray]:
    settings = settings_for(seq)
    frames = {}
    with mmzarr.create_stream(path, settings, backend=backend) as stream:
        for n, event in enumerate(seq):
            f = frame_for(n)
            key, idx = stream.append(f, index=event.index if use_index else None)
            # independent placement: useq's own index, storage order t,c,z
            expect = tuple(event.index[a] for a in "tcz" if a in event.index)
            assert idx == expect
            frames[(key, idx)] = f
    assert stream.frames_written == len(frames) == len(list(seq))
    return frames


TCZYX = useq.MDASequence(
    time_plan=useq.TIntervalLoops(interval=1, loops=2),
    channels=["DAPI", "FITC"],
    z_plan=useq.ZRangeAround(range=2, step=1),
)
COLLECTION = useq.MDASequence(
    stage_positions=[
        useq.Position(x=0, y=0, name="first"),
        useq.Position(
            x=100,
            y=50,
            name="deeper",
            sequence=useq.MDASequence(z_plan=useq.ZRangeAround(range=4, step=1)),
        ),
        useq.Position(x=-20, y=30, z=2, name="third"),
    ],
    time_plan=useq.TIntervalLoops(interval=1, loops=2),
    channels=["DAPI", "FITC"],
    z_plan=useq.ZRangeAround(range=2, step=1),
)
PLATE = useq.MDASequence(
    stage_positions=useq.WellPlatePlan(
        plate="96-well",
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [0, 2]),
        well_points_plan=useq.GridRowsColumns(
            rows=2, columns=2, fov_width=5, fov_height=4
        ),
    ),
    channels=["DAPI", "FITC"],
)


@pytest.mark.parametrize(
    ("seq", "layout", "n_images"),
    [(TCZYX, "image", 1), (COLLECTION, "collection", 3), (PLATE, "plate", 8)],
    ids=["image", "collection", "plate"],
)
def test_layouts_roundtrip(
    tmp_path: Path, backend: str, seq: useq.MDASequence, layout: str, n_images: int
) -> None:
    out = tmp_path / "out.ome.zarr"
    frames = write_plan(out, seq, backend)
    check_metadata(out)
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    assert report.layout == layout
    assert len(report.arrays) == n_images
    assert_frames(out, frames)


def test_collection_layout_metadata(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "c.ome.zarr"
    write_plan(out, COLLECTION, backend)
    root = group_json(out)["attributes"]["ome"]
    assert root["bioformats2raw.layout"] == 3
    assert group_json(out, "OME")["attributes"]["ome"]["series"] == ["0", "1", "2"]
    # position 1 has its own z-stack (5 planes), the others 3
    assert read_zarr(out, "1/0").shape == (2, 2, 5, *SHAPE)
    assert read_zarr(out, "0/0").shape == (2, 2, 3, *SHAPE)
    positions = list(COLLECTION.stage_positions)
    for i, pos in enumerate(positions):
        ms = group_json(out, str(i))["attributes"]["ome"]["multiscales"][0]
        assert [a["name"] for a in ms["axes"]] == ["t", "c", "z", "y", "x"]
        units = {a["name"]: a.get("unit") for a in ms["axes"]}
        assert units == {
            "t": "second",
            "c": None,
            "z": "micrometer",
            "y": "micrometer",
            "x": "micrometer",
        }
        scale, translation = ms["datasets"][0]["coordinateTransformations"]
        assert scale["scale"] == [1.0, 1.0, 1.0, 0.5, 0.5]
        assert translation["translation"][-2:] == [pos.y, pos.x]
        assert ms["name"] == pos.name
        omero = group_json(out, str(i))["attributes"]["ome"]["omero"]
        assert [c["label"] for c in omero["channels"]] == ["DAPI", "FITC"]
        assert omero["channels"][0]["window"]["max"] == 65535


def test_plate_layout_metadata(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "p.ome.zarr"
    write_plan(out, PLATE, backend)
    plate = group_json(out)["attributes"]["ome"]["plate"]
    assert [w["path"] for w in plate["wells"]] == ["A/1", "B/3"]
    assert [r["name"] for r in plate["rows"]] == list("ABCDEFGH")
    assert [c["name"] for c in plate["columns"]] == [str(i) for i in range(1, 13)]
    assert plate["field_count"] == 4
    for well in ("A/1", "B/3"):
        images = group_json(out, well)["attributes"]["ome"]["well"]["images"]
        assert [i["path"] for i in images] == ["0", "1", "2", "3"]
    # each field's translation is the stage position useq planned for it
    for n, pos in enumerate(PLATE.stage_positions):
        well = f"{'AB'[pos.plate_row]}/{pos.plate_col + 1}"
        ms = group_json(out, f"{well}/{n % 4}")["attributes"]["ome"]["multiscales"][0]
        translation = ms["datasets"][0]["coordinateTransformations"][1]["translation"]
        assert translation[-2:] == pytest.approx([pos.y, pos.x])


def test_default_order_equals_indexed(tmp_path: Path, backend: str) -> None:
    """Without an index, frames go in acquisition order: same data as indexed."""
    a = write_plan(tmp_path / "a.ome.zarr", COLLECTION, backend, use_index=True)
    b = write_plan(tmp_path / "b.ome.zarr", COLLECTION, backend, use_index=False)
    assert a.keys() == b.keys()
    assert_frames(tmp_path / "b.ome.zarr", a)


@pytest.mark.parametrize("order", ["tpzc", "tpcz", "tpgcz", "tpgzc"])
def test_axis_order_gives_same_storage(
    tmp_path: Path, backend: str, order: str
) -> None:
    base = useq.MDASequence(**{**TCZYX.model_dump(), "axis_order": "tpcz"})
    seq = useq.MDASequence(**{**TCZYX.model_dump(), "axis_order": order})
    by_coord = {}
    out = tmp_path / f"{order}.ome.zarr"
    settings = settings_for(seq)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for event in seq:
            coord = tuple(event.index[a] for a in "tcz")
            f = frame_for(hash(coord) % 10_000)
            stream.append(f, index=event.index)
            by_coord[coord] = f
    ref = np.zeros((2, 2, 3, *SHAPE), "uint16")
    for event in base:
        coord = tuple(event.index[a] for a in "tcz")
        ref[coord] = by_coord[coord]
    np.testing.assert_array_equal(read_zarr(out, "0"), ref)
    np.testing.assert_array_equal(read_tensorstore(out, "0"), ref)


def test_no_time_zc_order(tmp_path: Path, backend: str) -> None:
    """acquire-zarr cannot move a leading z: the reorder buffer must place it."""
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"],
        z_plan=useq.ZRangeAround(range=3, step=1),
        axis_order="tpzc",
    )
    out = tmp_path / "zc.ome.zarr"
    frames = write_plan(out, seq, backend)
    assert read_zarr(out, "0").shape == (2, 4, *SHAPE)
    assert_frames(out, frames)


def test_skipped_slots_fill_value_and_recorded(tmp_path: Path, backend: str) -> None:
    seq = useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=1, loops=4),
        channels=[
            useq.Channel(config="DAPI"),
            useq.Channel(config="FITC", do_stack=False),
            useq.Channel(config="Cy5", acquire_every=2),
        ],
        z_plan=useq.ZRangeAround(range=2, step=1),
    )
    out = tmp_path / "skip.ome.zarr"
    frames = write_plan(out, seq, backend)
    data = read_zarr(out, "0")
    acquired = {idx for _, idx in frames}
    for idx in np.ndindex(data.shape[:3]):
        if idx not in acquired:
            assert not data[idx].any(), f"slot {idx} should be fill value"
    assert_frames(out, frames)
    settings = json.loads((out / "mmzarr/settings.json").read_text())
    skipped = {tuple(s) for s in settings["images"][0]["skipped"]}
    assert skipped == set(np.ndindex(data.shape[:3])) - acquired
    log = [
        json.loads(x) for x in (out / "mmzarr/frames.jsonl").read_text().splitlines()
    ]
    assert {tuple(r["index"]) for r in log} == acquired
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "complete"
    assert attrs["images"][""]["frames_written"] == len(acquired)
    assert attrs["images"][""]["missing"] == []


def test_cancelled_stream_records_missing(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "cancel.ome.zarr"
    settings = settings_for(TCZYX)
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, event in enumerate(list(TCZYX)[:5]):
            frames[stream.append(frame_for(n), index=event.index)] = frame_for(n)
    assert stream.status == "cancelled"
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert attrs["status"] == "cancelled"
    assert attrs["frames_written"] == 5
    assert attrs["images"][""]["missing_count"] == len(list(TCZYX)) - 5
    assert mmzarr.validate(out).ok
    assert_frames(out, frames)


def test_cancelled_collection_keeps_its_planned_shape(
    tmp_path: Path, backend: str
) -> None:
    """A run stopped within its time plan keeps the planned `t` on every
    backend (acquire-zarr shapes an array by its complete time points), as
    the OME-XML's SizeT says: slots not acquired read as 0."""
    import ome_types

    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 20, 5)],
        channels=["DAPI"],
        time_plan={"interval": 0.01, "loops": 10},
    )
    out = tmp_path / "cancel.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings_for(seq), backend=backend) as stream:
        for n, event in enumerate(list(seq)[:5]):  # t=0, 1 and p=0 of t=2
            frames[stream.append(frame_for(n), index=event.index)] = frame_for(n)
    assert stream.status == "cancelled"
    for read in (read_zarr, read_tensorstore):
        for key in ("0", "1"):
            data = read(out, array_of(key))
            assert data.shape == (10, 1, *SHAPE)
            assert not data[3:].any()
    assert_frames(out, frames)
    ome = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    assert [im.pixels.size_t for im in ome.images] == [10, 10]
    assert mmzarr.validate(out).ok


@pytest.mark.filterwarnings("ignore:time interval is unknown")
def test_plate_stopped_within_a_time_point_has_one_t(
    tmp_path: Path, backend: str
) -> None:
    """An unbounded plate stopped after well A1 of the second time point: every
    field ends at that time point (B2's reads as 0), as plate readers
    (ome-zarr-py, napari-ome-zarr) require equal shapes; so does the OME-XML."""
    import ome_types

    plate = useq.WellPlatePlan(
        plate="24-well", a1_center_xy=(0, 0), selected_wells=([0, 1], [0, 1])
    )
    seq = useq.MDASequence(stage_positions=plate)
    settings = settings_for(seq, unbounded_t=True)
    out = tmp_path / "plate.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n, (t, p) in enumerate([(0, 0), (0, 1), (1, 0)]):
            frames[stream.append(frame_for(n), index={"t": t, "p": p})] = frame_for(n)
    for read in (read_zarr, read_tensorstore):
        for key in ("A/1/0", "B/2/0"):
            assert read(out, array_of(key)).shape == (2, *SHAPE)
        assert not read(out, array_of("B/2/0"))[1].any()
    assert_frames(out, frames)
    ome = ome_types.from_xml((out / "OME/METADATA.ome.xml").read_text())
    assert [im.pixels.size_t for im in ome.images] == [2, 2]
    assert mmzarr.validate(out).ok


def test_unbounded_time_grows(tmp_path: Path, backend: str) -> None:
    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 2, "loops": 1}
    )
    settings = settings_for(template, unbounded_t=True)
    assert settings.images[0].shape[0] is None
    assert settings.images[0].dimensions[0].scale == 2
    out = tmp_path / "unbounded.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n in range(7 * 2):
            index = {"t": n // 2, "c": n % 2}
            frames[stream.append(frame_for(n), index=index)] = frame_for(n)
    assert read_zarr(out, "0").shape == (7, 2, *SHAPE)
    assert_frames(out, frames)
    check_metadata(out)


def test_a_growing_t_refuses_a_frame_far_past_the_last_one(
    tmp_path: Path, backend: str
) -> None:
    """A `t` far past the last written (a timestamp given as the index) is
    refused at once, naming it, and the stream goes on; 1024 empty time points
    are the most a frame leaves before it (a t of 10**12 hung acquire-zarr,
    which appends every empty slot, and grew the ledger to all memory)."""
    template = useq.MDASequence(time_plan={"interval": 1, "loops": 1})
    out = tmp_path / "jump.ome.zarr"
    with mmzarr.create_stream(
        out, settings_for(template, unbounded_t=True), backend=backend
    ) as stream:
        for t in (1025, 10**12):  # before any frame: counted from t=0
            with pytest.raises(mmzarr.FrameError, match=f"t={t} .*none yet"):
                stream.check(frame_for(0), index={"t": t})
        stream.append(frame_for(0), index={"t": 0})
        for t in (1026, 10**12):
            expected = f"t={t} .*would leave {t - 1} empty time points .*t=0"
            with pytest.raises(mmzarr.FrameError, match=expected):
                stream.append(frame_for(t), index={"t": t})
        with pytest.raises(mmzarr.FrameError, match=r"t=1000000000000 "):
            stream.abandon(0, (10**12,))  # no slot that far: a frame goes there
        stream.append(frame_for(1), index={"t": 1025})  # 1024 empty: the most
    data = read_zarr(out, "0")
    assert data.shape == (1026, *SHAPE)
    np.testing.assert_array_equal(data[0], frame_for(0))
    np.testing.assert_array_equal(data[1025], frame_for(1))
    assert not data[1:1025].any()


@pytest.mark.parametrize("shard", [None, 4], ids=["chunks", "yx-shards"])
def test_a_chunk_of_zeros_inside_a_frame_is_stored(
    tmp_path: Path, backend: str, shard: int | None
) -> None:
    """A dark corner that fills a chunk (y/x chunks smaller than the frame):
    the chunk is stored, as a frame of zeros is; zarrs left it out, and the
    complete dataset was called invalid (a frame's chunk missing)."""
    yx = [mmzarr.Dimension(name=a, size=8, chunk=2, shard=shard) for a in ("y", "x")]
    settings = mmzarr.AcquisitionSettings(
        layout="image",
        dtype="uint16",
        images=(
            mmzarr.ImageSettings(
                key="", dimensions=(mmzarr.Dimension(name="t", size=2), *yx)
            ),
        ),
    )
    frames = [np.arange(1, 65, dtype="uint16").reshape(8, 8) for _ in range(2)]
    frames[0][2:4, 4:6] = 0  # one chunk
    frames[1][4:, 4:] = 0  # a whole 4x4 shard, or four chunks
    out = tmp_path / "dark.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for t, frame in enumerate(frames):
            stream.append(frame, index={"t": t})
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    for read in (read_zarr, read_tensorstore):
        np.testing.assert_array_equal(read(out, "0"), np.stack(frames))


def test_abandon_of_a_bad_index_gives_up_no_slot(tmp_path: Path, backend: str) -> None:
    """`abandon(0, (1, -1))` is refused; acquire-zarr took it as the slot
    before (t=0, c=1), filled it, and refused that slot's frame later."""
    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 3}
    )
    out = tmp_path / "abandon.ome.zarr"
    with mmzarr.create_stream(out, settings_for(template), backend=backend) as stream:
        stream.append(frame_for(0), index={"t": 0, "c": 0})
        with pytest.raises(mmzarr.FrameError, match="c=-1 is out of range"):
            stream.abandon(0, (1, -1))
        stream.append(frame_for(1), index={"t": 0, "c": 1})
    data = read_zarr(out, "0")
    np.testing.assert_array_equal(data[0, 0], frame_for(0))
    np.testing.assert_array_equal(data[0, 1], frame_for(1))


def test_an_unbounded_run_with_a_gap_lists_its_missing_slots(
    tmp_path: Path, backend: str
) -> None:
    """Slots before the last time point written that got no frame are missing."""
    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 1}
    )
    out = tmp_path / "gap.ome.zarr"
    with mmzarr.create_stream(
        out, settings_for(template, unbounded_t=True), backend=backend
    ) as stream:
        for t, c in [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]:  # no (1, 1)
            stream.append(frame_for(t), index={"t": t, "c": c})
    image = group_json(out)["attributes"]["mmzarr"]["images"][""]
    assert image["t_size"] == 3
    assert image["missing_count"] == 1
    assert image["missing"] == [[1, 1]]
    report = mmzarr.validate(out)
    assert report.ok, report.problems
    assert any(
        "1 planned frame never written" in n and "{t: 1, c: 1}" in n
        for n in report.notes
    ), report.notes


def test_validate_names_planned_frames_never_written(
    tmp_path: Path, backend: str
) -> None:
    """A run that closed as complete with frames missing is valid, and says so."""
    out = tmp_path / "holes.ome.zarr"
    events = list(TCZYX)
    with mmzarr.create_stream(out, settings_for(TCZYX), backend=backend) as stream:
        for n, event in enumerate(events):
            if n not in (2, 7):
                stream.append(frame_for(n), index=event.index)
        stream.close("complete")
    report = mmzarr.validate(out)
    assert report.ok, report.problems
    # TCZYX acquires t, c, z: its third event is {t: 0, c: 0, z: 2}, its
    # eighth {t: 1, c: 0, z: 1} (useq's own order, "tpgcz")
    assert [dict(events[n].index) for n in (2, 7)] == [
        {"t": 0, "c": 0, "z": 2},
        {"t": 1, "c": 0, "z": 1},
    ]
    assert any(
        "2 planned frames never written" in n
        and "{t: 0, c: 0, z: 2}, {t: 1, c: 0, z: 1}" in n
        for n in report.notes
    ), report.notes
    assert "never written" in report.format()


def _partial(tmp_path: Path, backend: str) -> tuple[mmzarr.Stream, dict]:
    settings = settings_for(TCZYX)
    stream = mmzarr.create_stream(tmp_path / "e.ome.zarr", settings, backend=backend)
    frames = {}
    for n, event in enumerate(list(TCZYX)[:4]):
        frames[stream.append(frame_for(n), index=event.index)] = frame_for(n)
    return stream, frames


@pytest.mark.parametrize(
    ("bad_frame", "index", "match"),
    [
        (np.zeros((8, 11), "uint16"), None, r"\(8, 11\)"),
        (np.zeros((8, 10), "uint8"), None, "uint8"),
        (np.zeros((8, 10), "float32"), None, "float32"),
        (np.zeros((2, 8, 10), "uint16"), None, r"\(2, 8, 10\)"),
        (np.zeros((8, 10), "uint16"), {"t": 5, "c": 0, "z": 0}, "t=5"),
        (np.zeros((8, 10), "uint16"), {"t": 0, "c": 2, "z": 0}, "c=2"),
        (np.zeros((8, 10), "uint16"), {"t": 0, "c": 0, "z": -1}, "z=-1"),
        (np.zeros((8, 10), "uint16"), {"t": 0, "c": 0, "z": 0}, "already written"),
        (np.zeros((8, 10), "uint16"), {"p": 3, "t": 0}, "'p': 3"),
    ],
    ids=["shape", "dtype-u8", "dtype-f32", "3d", "t", "c", "z-neg", "dup", "pos"],
)
def test_bad_frames_raise_and_keep_data(
    tmp_path: Path, backend: str, bad_frame: np.ndarray, index: dict | None, match: str
) -> None:
    stream, frames = _partial(tmp_path, backend)
    with pytest.raises(ValueError, match=match):
        stream.append(bad_frame, index=index)
    # the stream is still usable and nothing before was damaged
    event = list(TCZYX)[4]
    frames[stream.append(frame_for(4), index=event.index)] = frame_for(4)
    stream.close()
    assert_frames(stream.path, frames)


def test_one_frame_too_many(tmp_path: Path, backend: str) -> None:
    settings = settings_for(TCZYX)
    out = tmp_path / "full.ome.zarr"
    frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        for n in range(len(list(TCZYX))):
            frames[stream.append(frame_for(n))] = frame_for(n)
        with pytest.raises(ValueError, match="one more than the plan holds"):
            stream.append(frame_for(99))
    assert stream.status == "complete"
    assert_frames(out, frames)


def test_existing_output_needs_overwrite(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "exists.ome.zarr"
    frames = write_plan(out, TCZYX, backend)
    with pytest.raises(FileExistsError, match=r"exists.ome.zarr"):
        mmzarr.create_stream(out, settings_for(TCZYX), backend=backend)
    assert_frames(out, frames)  # untouched
    file_out = tmp_path / "a_file"
    file_out.write_text("keep me")
    with pytest.raises(FileExistsError, match="a_file"):
        mmzarr.create_stream(file_out, settings_for(TCZYX), backend=backend)
    assert file_out.read_text() == "keep me"
    with mmzarr.create_stream(
        out, settings_for(TCZYX), backend=backend, overwrite=True
    ):
        pass
    assert read_zarr(out, array_of("")).sum() == 0


def test_skip_advances_default_order(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "skip.ome.zarr"
    events = list(TCZYX)
    frames = {}
    with mmzarr.create_stream(out, settings_for(TCZYX), backend=backend) as stream:
        frames[stream.append(frame_for(0))] = frame_for(0)
        stream.skip(2)
        key, idx = stream.append(frame_for(3))
        frames[(key, idx)] = frame_for(3)
    assert idx == tuple(events[3].index[a] for a in "tcz")
    data = read_zarr(out, "0")
    for e in events[1:3]:
        assert not data[tuple(e.index[a] for a in "tcz")].any()
    assert_frames(out, frames)


def test_closed_stream_refuses(tmp_path: Path, backend: str) -> None:
    stream = mmzarr.create_stream(
        tmp_path / "x.ome.zarr", settings_for(TCZYX), backend=backend
    )
    stream.close()
    stream.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        stream.append(frame_for(0))


def test_unknown_backend_names_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'nope'.*acquire-zarr"):
        mmzarr.create_stream(tmp_path / "x", settings_for(TCZYX), backend="nope")
    assert not (tmp_path / "x").exists()


def test_a_refused_frame_leaves_no_gap_in_the_default_order(
    tmp_path: Path, backend: str
) -> None:
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 3})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 6), dtype="uint16", pixel_size_um=1
    )
    out = tmp_path / "gap.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        assert stream.append(np.full((4, 6), 1, "uint16")) == ("", (0,))
        with pytest.raises(mmzarr.FrameError, match=r"shape \(5, 6\)"):
            stream.append(np.full((5, 6), 9, "uint16"))
        assert stream.append(np.full((4, 6), 2, "uint16")) == ("", (1,))
        assert stream.append(np.full((4, 6), 3, "uint16")) == ("", (2,))
    data = read_zarr(out, "0")
    assert [int(data[t, 0, 0]) for t in range(3)] == [1, 2, 3]


def test_a_reused_buffer_is_copied_and_a_handed_over_frame_kept(
    tmp_path: Path, backend: str
) -> None:
    """`append` takes a copy, so the caller may refill its buffer at once;
    `owned=True` frames are kept as given (nobody changes them)."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 12})
    out = tmp_path / "reuse.ome.zarr"
    buf = np.empty(SHAPE, "uint16")
    with mmzarr.create_stream(out, settings_for(seq), backend=backend) as stream:
        for n in range(6):
            buf[:] = frame_for(n)
            stream.append(buf)
            buf[:] = 0  # refilled before the backend has written the frame
            assert np.array_equal(stream.latest(), frame_for(n))
        for n in range(6, 12):
            stream.append(frame_for(n), owned=True)
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for n in range(12):
            np.testing.assert_array_equal(data[n], frame_for(n), f"{read.__name__} {n}")


def test_close_refuses_a_status_it_cannot_record(tmp_path: Path) -> None:
    """`close("bogus")` wrote the text as the status, `close("acquiring")` a
    dataset validate calls unfinished: both are refused, and the stream stays
    open for a proper close."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    stream = mmzarr.create_stream(tmp_path / "s.ome.zarr", settings_for(seq))
    for status in ("bogus", "acquiring", "interrupted"):
        with pytest.raises(ValueError, match=f"status {status!r} is not one of"):
            stream.close(status)  # type: ignore[arg-type]
    assert not stream.closed
    stream.close("cancelled")
    assert stream.closed


def test_skip_and_the_default_order_say_what_is_wrong(tmp_path: Path) -> None:
    """skip(-1) was a silent no-op, skip(n) past the plan's end took the last
    slots and then raised; a frame without index after one with index= was
    refused as "index (0,) ({}) was already written"."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 3})
    with mmzarr.create_stream(tmp_path / "s.ome.zarr", settings_for(seq)) as stream:
        stream.append(frame_for(0), index={"t": 0})
        with pytest.raises(
            mmzarr.FrameError, match=r"next slot in acquisition order.*skip\(\)"
        ):
            stream.append(frame_for(1))
        with pytest.raises(ValueError, match=r"skip\(-1\)"):
            stream.skip(-1)
        with pytest.raises(mmzarr.FrameError, match=r"skip\(4\): only 3 slot"):
            stream.skip(4)
        stream.skip(1)  # nothing was taken by the refused ones: t=0 is skipped
        stream.append(frame_for(1))
        stream.append(frame_for(2))
    data = read_zarr(tmp_path / "s.ome.zarr", "0")
    for t in range(3):
        np.testing.assert_array_equal(data[t], frame_for(t))


def test_skip_on_a_growing_t_stays_within_reach_of_a_frame(
    tmp_path: Path, backend: str
) -> None:
    """skip(10**6) on an unbounded t walked a million slots, and every frame
    without an index after it was refused (too far past the last written):
    a skip whose next slot a frame could not take is refused, nothing skipped;
    so is an n that is no int."""
    template = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 1}
    )
    out = tmp_path / "skip.ome.zarr"
    settings = settings_for(template, unbounded_t=True)
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        stream.append(frame_for(0))  # t=0, c=0
        with pytest.raises(
            mmzarr.FrameError,
            match=r"skip\(1000000\): image .*: t=1026 would leave 1025 ",
        ):
            stream.skip(10**6)
        for bad in (1.5, "2", True):
            with pytest.raises(ValueError, match=re.escape(f"skip({bad!r})")):
                stream.skip(bad)  # type: ignore[arg-type]
        stream.skip(2049)  # c=1 of t=0, then 1024 time points: t=1025, c=0 next
        stream.append(frame_for(1))
        assert stream.append(frame_for(2)) == ("", (1025, 1))
    data = read_zarr(out, "0")
    assert data.shape == (1026, 2, *SHAPE)
    np.testing.assert_array_equal(data[0, 0], frame_for(0))
    np.testing.assert_array_equal(data[1025, 0], frame_for(1))
    np.testing.assert_array_equal(data[1025, 1], frame_for(2))


def test_validate_counts_missing_frames_too_many_to_list(tmp_path: Path) -> None:
    """Beyond MAX_LISTED_MISSING the root lists none: the note gives the count
    alone (it read "10002 ... never written (...):  and 10002 more")."""
    out = tmp_path / "many.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 10_005})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 4), dtype="uint8", pixel_size_um=0.5
    )
    with mmzarr.create_stream(out, settings, backend="tensorstore") as stream:
        for t in range(3):
            stream.append(np.full((4, 4), t + 1, "uint8"), index={"t": t})
        stream.close("cancelled")
    image = group_json(out)["attributes"]["mmzarr"]["images"][""]
    assert image["missing_count"] == 10_002
    assert "missing" not in image
    notes = [n for n in mmzarr.validate(out).notes if "never written" in n]
    assert notes == [
        "image '(root)': 10002 planned frames never written (read as the fill value)"
    ]


def test_check_raises_what_append_would_and_writes_nothing(
    tmp_path: Path, backend: str
) -> None:
    """`Stream.check` refuses a frame of another shape and a slot already
    written, and takes no slot: the next frames go where they would have."""
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=(4, 6), dtype="uint16", pixel_size_um=1
    )
    out = tmp_path / "check.ome.zarr"
    with mmzarr.create_stream(out, settings, backend=backend) as stream:
        with pytest.raises(mmzarr.FrameError, match=r"shape \(5, 6\)"):
            stream.check(np.full((5, 6), 9, "uint16"), index={"t": 0})
        stream.check(np.full((4, 6), 1, "uint16"))
        stream.check(np.full((4, 6), 1, "uint16"), index={"t": 1})
        assert stream.frames_written == 0
        assert stream.append(np.full((4, 6), 1, "uint16")) == ("", (0,))
        with pytest.raises(mmzarr.FrameError, match="already written"):
            stream.check(np.full((4, 6), 1, "uint16"), index={"t": 0})
        assert stream.append(np.full((4, 6), 2, "uint16")) == ("", (1,))
    data = read_zarr(out, "0")
    assert [int(data[t, 0, 0]) for t in range(2)] == [1, 2]
