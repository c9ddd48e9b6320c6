"""Bad inputs: the exact exception, a message naming the bad value, no damage.

Every row of `CASES` builds one failing call. Before it runs, the `ctx` fixture
has written a finished dataset and opened a second one holding a few frames;
after it, both must read back unchanged (with zarr-python and tensorstore) and
the open one must still accept frames. One row (unicode names) must succeed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pydantic
import pytest
import useq

import mmzarr
from mmzarr.backends import BACKENDS
from mmzarr.pycromanager import ZarrHook
from tests._readback import assert_frames, check_metadata, group_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SHAPE = (8, 10)
PLAN = useq.MDASequence(
    time_plan={"interval": 1, "loops": 2},
    channels=["DAPI", "FITC"],
    z_plan={"range": 2, "step": 1},
)
EVENTS = list(PLAN)
N_BEFORE = 4  # frames in the open stream before the bad call
#: Backend of the datasets written before each bad call (the fastest one; every
#: backend keeps its data on bad frames: test_stream.py::test_bad_frames_*).
CTX_BACKEND = "tensorstore" if BACKENDS["tensorstore"].is_available() else None

Frames = dict[tuple[str, tuple[int, ...]], np.ndarray]


def frame_for(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 4000, SHAPE).astype("uint16")


def settings_for(seq: useq.MDASequence = PLAN, **kw: Any) -> mmzarr.AcquisitionSettings:
    options: dict[str, Any] = {
        "image_shape": SHAPE,
        "dtype": "uint16",
        "pixel_size_um": 0.5,
    }
    options.update(kw)
    return mmzarr.AcquisitionSettings.from_useq(seq, **options)


@dataclass
class Ctx:
    """What exists when a bad call is made."""

    tmp: Path
    done: Path  # a finished dataset
    done_frames: Frames
    stream: mmzarr.Stream  # an open dataset holding N_BEFORE frames
    frames: Frames
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    done = tmp_path / "done.ome.zarr"
    done_frames: Frames = {}
    kw = {"backend": CTX_BACKEND} if CTX_BACKEND else {}
    with mmzarr.create_stream(done, settings_for(), **kw) as s:
        for n, e in enumerate(EVENTS):
            done_frames[s.append(frame_for(n), index=e.index)] = frame_for(n)
    stream = mmzarr.create_stream(tmp_path / "open.ome.zarr", settings_for(), **kw)
    frames: Frames = {}
    for n, e in enumerate(EVENTS[:N_BEFORE]):
        frames[stream.append(frame_for(n), index=e.index)] = frame_for(n)
    c = Ctx(tmp_path, done, done_frames, stream, frames)
    with c.cleanup, contextlib.closing(stream):
        yield c


def assert_undamaged(c: Ctx) -> None:
    """Both datasets read back as written; the open one still takes frames."""
    assert mmzarr.validate(c.done).ok
    assert_frames(c.done, c.done_frames)
    e = EVENTS[N_BEFORE]
    c.frames[c.stream.append(frame_for(99), index=e.index)] = frame_for(99)
    c.stream.close()
    assert c.stream.status == "cancelled"
    assert mmzarr.validate(c.stream.path).ok
    assert_frames(c.stream.path, c.frames)


# ---- the calls ------------------------------------------------------------------
def append(frame: Any, index: Any = None) -> Callable[[Ctx], object]:
    def call(c: Ctx) -> object:
        return c.stream.append(frame, index=index)

    return call


def abandon(image: Any, index: Any) -> Callable[[Ctx], object]:
    return lambda c: c.stream.abandon(image, index)


def plan(seq: Any = PLAN, **kw: Any) -> Callable[[Ctx], object]:
    return lambda c: settings_for(seq, **kw)


def create(where: Callable[[Ctx], Path], **kw: Any) -> Callable[[Ctx], object]:
    def call(c: Ctx) -> object:
        with mmzarr.create_stream(where(c), settings_for(), **kw) as s:
            return s

    return call


def one_too_many(c: Ctx) -> object:
    seq = useq.MDASequence(time_plan={"interval": 1, "loops": 2})
    with mmzarr.create_stream(c.tmp / "two.ome.zarr", settings_for(seq)) as s:
        s.append(frame_for(0))
        s.append(frame_for(1))
        return s.append(frame_for(2))


def after_close(c: Ctx) -> object:
    s = mmzarr.create_stream(c.tmp / "closed.ome.zarr", settings_for())
    s.close()
    return s.append(frame_for(0))


def a_file(c: Ctx) -> Path:
    f = c.tmp / "a_file"
    f.write_text("keep me")
    c.cleanup.callback(lambda: f.read_text() == "keep me" or pytest.fail("changed"))
    return f


def read_only(c: Ctx) -> Path:
    """A folder on a read-only mount (chmod does not stop root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs")
    ro = c.tmp / "ro"
    ro.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs: {mount.stderr.strip()}")
    c.cleanup.callback(subprocess.run, ["umount", str(ro)], check=True)
    return ro / "out.ome.zarr"


def _pos(name: str | None = None, **kw: Any) -> useq.Position:
    return useq.Position(x=0, y=0, name=name, **kw)


OUTSIDE_PLATE = useq.MDASequence(
    stage_positions=[_pos(plate_row=0, plate_col=0), _pos(plate_row=-1, plate_col=3)]
)


# ---- the table --------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Ctx], object]
    exc: type[BaseException]
    match: str  # literal text of the message: the bad value

    @property
    def id(self) -> str:
        return self.name


FE, PE = mmzarr.FrameError, mmzarr.PlanError
Z = np.zeros
CASES: list[Any] = [
    # frames
    Case("frame-shape", append(Z((8, 11), "uint16")), FE, "(8, 11)"),
    Case("frame-3d", append(Z((2, *SHAPE), "uint16")), FE, "(2, 8, 10)"),
    Case("frame-dtype-u8", append(Z(SHAPE, "uint8")), FE, "uint8"),
    Case("frame-dtype-f32", append(Z(SHAPE, "float32")), FE, "float32"),
    Case("frame-not-an-array", append("abc"), FE, "<U3"),
    Case("frame-none", append(None), FE, "object"),
    # indices
    Case("index-t-too-big", append(frame_for(0), {"t": 2, "c": 0, "z": 0}), FE, "t=2"),
    Case("index-c-too-big", append(frame_for(0), {"t": 0, "c": 2, "z": 0}), FE, "c=2"),
    Case("index-negative", append(frame_for(0), {"t": 0, "c": 0, "z": -1}), FE, "z=-1"),
    Case("index-float", append(frame_for(0), {"t": 1.5, "c": 0, "z": 0}), FE, "t=1.5"),
    Case("index-bool", append(frame_for(0), {"t": True, "c": 0, "z": 0}), FE, "t=True"),
    # abandon: an image number and a storage index (t, c, z), checked alike
    Case("abandon-negative", abandon(0, (0, 1, -2)), FE, "z=-2"),
    Case("abandon-too-big", abandon(0, (0, 5, 0)), FE, "c=5"),
    Case("abandon-short", abandon(0, (0, 1)), FE, "(0, 1)"),
    Case("abandon-not-ints", abandon(0, (0, 1.0, 2)), FE, "(0, 1.0, 2)"),
    Case("abandon-a-dict", abandon(0, {"t": 0}), FE, "{'t': 0}"),
    Case("abandon-image", abandon(3, (0, 0, 0)), FE, "image 3"),
    Case("abandon-image-str", abandon("0", (0, 0, 0)), FE, "'0'"),
    Case(
        "index-no-such-position", append(frame_for(0), {"p": 3, "t": 0}), FE, "'p': 3"
    ),
    Case(
        "index-no-such-grid",
        append(frame_for(0), {"t": 0, "c": 0, "z": 0, "g": 1}),
        FE,
        "'g': 1",
    ),
    Case(
        "index-duplicate",
        append(frame_for(7), dict(EVENTS[1].index)),
        FE,
        f"index {tuple(EVENTS[1].index[a] for a in 'tcz')}",
    ),
    Case("index-not-a-mapping", append(frame_for(0), [1, 1, 1]), FE, "[1, 1, 1]"),
    Case("one-frame-too-many", one_too_many, FE, "frame 3"),
    Case("append-after-close", after_close, FE, "closed.ome.zarr"),
    # plans and settings
    Case("pixel-size-nan", plan(pixel_size_um=math.nan), PE, "nan"),
    Case("pixel-size-negative", plan(pixel_size_um=-0.5), PE, "-0.5"),
    Case("pixel-size-text", plan(pixel_size_um="big"), PE, "'big'"),
    Case("image-shape-zero", plan(image_shape=(0, 10)), PE, "(0, 10)"),
    Case("image-shape-3d", plan(image_shape=(8, 10, 3)), PE, "(8, 10, 3)"),
    Case("dtype-unknown", plan(dtype="bogus"), PE, "'bogus'"),
    Case("dtype-complex", plan(dtype="complex64"), PE, "'complex64'"),
    Case(
        "empty-plan", plan(useq.MDASequence()), mmzarr.EmptyPlanError, "MDASequence()"
    ),
    Case("well-outside-plate", plan(OUTSIDE_PLATE), PE, "plate_row=-1"),
    # a plan given as a dict: useq dropped the plate plan's error
    Case(
        "plate-wells-outside-plate",
        plan(
            {
                "stage_positions": {
                    "plate": "96-well",
                    "a1_center_xy": (0, 0),
                    "selected_wells": ([0, 1], [0, 13]),
                }
            }
        ),
        PE,
        "plan: useq rejected it: stage_positions.selected_wells: well (1, 13) is "
        "not on the '96-well' plate of 8 rows x 12 columns",
    ),
    Case(
        "slot-acquired-twice",
        plan(
            PLAN.replace(
                stage_positions=[
                    useq.Position(x=0, sequence={"time_plan": PLAN.time_plan})
                ]
            )
        ),
        PE,
        "the plan acquires {'t': 0, 'c': 0, 'z': 0} more than once",
    ),
    Case("shard-not-multiple", plan(chunks={"t": 2}, shards={"t": 3}), PE, "shard 3"),
    Case("chunk-bool", plan(chunks={"t": True}), PE, "chunks['t']: expected a "),
    Case("flush-interval-nan", plan(flush_interval_s=math.nan), PE, "nan"),
    Case("setting-typo", plan(flush_intervall_s=1.0), PE, "flush_intervall_s"),
    Case("compression-unknown", plan(compression="gzip"), PE, "'gzip'"),
    Case("buffer-negative", plan(max_buffer_bytes=-1), PE, "-1"),
    Case(
        "dimension-y-negative-scale",  # only z may go down
        lambda c: mmzarr.Dimension(name="y", size=4, scale=-0.5),
        pydantic.ValidationError,
        "scale must be a finite number > 0",
    ),
    Case(
        "dimension-z-unbounded",
        lambda c: mmzarr.Dimension(name="z", size=None),
        pydantic.ValidationError,
        "'z'",
    ),
    Case(
        "plate-well-outside",
        lambda c: mmzarr.PlateSettings(rows=("A",), columns=("1",), wells=("B/1",)),
        pydantic.ValidationError,
        "'B/1'",
    ),
    # output paths and backends
    Case("output-exists", create(lambda c: c.done), FileExistsError, "done.ome.zarr"),
    Case("output-is-a-file", create(a_file), FileExistsError, "a_file"),
    Case(
        "output-under-a-file",
        create(lambda c: a_file(c) / "out.ome.zarr"),
        mmzarr.StorageError,
        "a_file/out.ome.zarr",
    ),
    Case("output-read-only", create(read_only), mmzarr.StorageError, "ro/out.ome.zarr"),
    # an empty path is the current folder to pathlib: the writers took it
    Case("output-empty", create(lambda c: ""), ValueError, "the path is empty ('')"),
    Case(
        "output-empty-mdawriter",
        lambda c: mmzarr.MDAWriter(""),
        ValueError,
        "the path is empty ('')",
    ),
    Case(
        "output-empty-hook",
        lambda c: ZarrHook(" "),
        ValueError,
        "the path is empty (' ')",
    ),
    Case(
        "backend-unknown",
        create(lambda c: c.tmp / "x.ome.zarr", backend="nope"),
        ValueError,
        "'nope'",
    ),
    Case(
        "backend-option-typo",
        create(lambda c: c.tmp / "x.ome.zarr", max_thread=2),
        TypeError,
        "'max_thread'",
    ),
    # an MDAWriter's options: checked when it is made, not at the run's start
    # (where a bad one wrote the run in the fallback layout, or nothing)
    *(
        Case(
            f"mdawriter-{name}",
            lambda c, kw=kw: mmzarr.MDAWriter(c.tmp / "w.ome.zarr", **kw),
            PE,
            match,
        )
        for name, kw, match in [
            ("misspelled-option", {"compresion": "blosc-lz4"}, "compresion"),
            ("compression", {"compression": "bogus"}, "'bogus'"),
            ("chunks", {"chunks": {"t": 0}}, "chunks['t']"),
            ("max-buffer", {"max_buffer_bytes": "x"}, "max_buffer_bytes"),
            ("downsample", {"downsample": "x"}, "downsample"),
            # axes a plan of one frame lacks: the run wrote the fallback layout
            ("shards-c", {"chunks": {"c": 2}, "shards": {"c": 3}}, "'c': shard 3"),
            ("shards-z", {"chunks": {"z": 2}, "shards": {"z": 5}}, "'z': shard 5"),
            # an AttributeError ('str' object has no attribute 'get') before
            ("stage-position", {"stage_position": "x"}, "stage_position"),
        ]
    ),
    Case(
        "settings-not-settings",
        lambda c: mmzarr.create_stream(c.tmp / "x.ome.zarr", "tczyx"),  # type: ignore[arg-type]
        TypeError,
        "'tczyx'",
    ),
]
assert len(CASES) >= 20


def _id(case: Any) -> str:
    return case.name if isinstance(case, Case) else str(case)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bad_input(ctx: Ctx, case: Case) -> None:
    listing = sorted(p.name for p in ctx.tmp.iterdir())
    with pytest.raises(case.exc, match=re.escape(case.match)) as info:
        case.call(ctx)
    assert type(info.value) is case.exc, repr(info.value)
    # nothing new is left half-made, except what the call wrote on purpose
    new = {p.name for p in ctx.tmp.iterdir()} - set(listing)
    assert new <= {"a_file", "ro", "two.ome.zarr", "closed.ome.zarr"}, new
    assert_undamaged(ctx)


# ---- the row that must succeed --------------------------------------------------
UNICODE = useq.MDASequence(
    stage_positions=[
        useq.Position(x=0, y=0, name="Zelle ü"),
        useq.Position(x=5, y=0, name="細胞 2 ✓"),
    ],
    channels=["DAPI", "GFP-λ"],
    time_plan={"interval": 1, "loops": 2},
)


def test_unicode_names_round_trip(ctx: Ctx, backend: str) -> None:
    out = ctx.tmp / "ünïcödé ✓.ome.zarr"
    frames: Frames = {}
    with mmzarr.create_stream(out, settings_for(UNICODE), backend=backend) as s:
        for n, e in enumerate(UNICODE):
            meta = {"position_name": e.pos_name, "note": "μm ✓"}
            frames[s.append(frame_for(n), index=e.index, metadata=meta)] = frame_for(n)
    assert s.status == "complete"
    assert mmzarr.validate(out).ok
    check_metadata(out)
    assert_frames(out, frames)
    for key, name in (("0", "Zelle ü"), ("1", "細胞 2 ✓")):
        ome = group_json(out, key)["attributes"]["ome"]
        assert ome["multiscales"][0]["name"] == name
        assert [c["label"] for c in ome["omero"]["channels"]] == ["DAPI", "GFP-λ"]
    raw = (out / "zarr.json").read_bytes().decode("utf-8")
    assert "\\u" not in raw  # stored as UTF-8, not escaped
    log = (out / "mmzarr/frames.jsonl").read_text(encoding="utf-8").splitlines()
    names = {json.loads(x)["metadata"]["position_name"] for x in log}
    assert names == {"Zelle ü", "細胞 2 ✓"}
    assert json.loads(log[0])["metadata"]["note"] == "μm ✓"
    assert_undamaged(ctx)


def test_a_stage_coordinate_that_is_no_number_is_unknown(
    ctx: Ctx, backend: str
) -> None:
    """useq takes NaN and infinite positions: that axis of the image's position
    is unknown (no translation there), every other fact kept; a NaN x wrote
    a null translation, which made the dataset invalid."""
    seq = useq.MDASequence(
        stage_positions=[
            useq.Position(x=math.nan, y=3.0),
            useq.Position(x=5.0, y=math.inf),
        ]
    )
    settings = settings_for(seq)
    assert [(im.stage_position.x, im.stage_position.y) for im in settings.images] == [
        (None, 3.0),
        (5.0, None),
    ]
    out = ctx.tmp / "nan.ome.zarr"
    frames: Frames = {}
    with mmzarr.create_stream(out, settings, backend=backend) as s:
        for n, e in enumerate(seq):
            frames[s.append(frame_for(n), index=e.index)] = frame_for(n)
    assert mmzarr.validate(out).ok
    check_metadata(out)
    assert_frames(out, frames)
    for key, yx in (("0", [3.0, 0.0]), ("1", [0.0, 5.0])):
        ms = group_json(out, key)["attributes"]["ome"]["multiscales"][0]
        moves = ms["datasets"][0]["coordinateTransformations"]
        assert {"type": "translation", "translation": yx} in moves, moves
    with pytest.raises(pydantic.ValidationError, match="finite number"):
        mmzarr.StagePosition(x=math.nan)


def test_a_name_too_long_for_the_file_system_is_refused_at_once(
    tmp_path: Path,
) -> None:
    """A 265-byte dataset name can never be created: each front end says so
    when it is made (`MDAWriter` accepted it and the MDA was cancelled at
    `sequenceStarted`, with `File name too long`)."""
    long = tmp_path / ("x" * 256 + ".ome.zarr")
    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(channels=["DAPI"]),
        image_shape=(4, 4),
        dtype="uint8",
        pixel_size_um=1,
    )
    makers: list[Callable[[], Any]] = [
        lambda: mmzarr.MDAWriter(long),
        lambda: ZarrHook(long),
        lambda: mmzarr.create_stream(long, settings),
    ]
    for make in makers:
        with pytest.raises(ValueError, match="is 265 bytes, and the file system"):
            make()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_name_too_long_for_the_file_system_is_refused_at_once(
    tmp_path: Path,
) -> None:
    """A name too long in a folder of the path, not only the dataset's own,
    is said as such (it was `OSError: [Errno 36] File name too long`)."""
    long = tmp_path / ("x" * 300) / "run.ome.zarr"
    with pytest.raises(ValueError, match="is 300 bytes, and the file system"):
        mmzarr.MDAWriter(long)
    assert list(tmp_path.iterdir()) == []
