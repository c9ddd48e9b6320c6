"""A writer problem never costs the acquisition: the fallback layout (issue #16).

A plan mmzarr cannot map is written frame by frame in arrival order; a frame
that does not fit a mapped dataset goes beside it. Expectations come from what
the camera produced (an independent `frameReady` listener) and from literals.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq
from rich.console import Console

import mmzarr
from mmzarr._info import dataset_tree
from tests import test_s3
from tests._readback import check_metadata, group_json, read_tensorstore, read_zarr
from tests.test_mda import Capture

if TYPE_CHECKING:
    from pymmcore_plus.experimental.unicore import UniMMCore

#: a position's own time plan inside the sequence's: useq emits (p=1, t=0) and
#: (p=1, t=1) once per outer time point, so two frames want one slot
REPEATS = useq.MDASequence(
    stage_positions=[
        useq.Position(x=0, y=0),
        useq.Position(
            x=1,
            y=1,
            sequence=useq.MDASequence(time_plan={"interval": 0, "loops": 2}),
        ),
    ],
    time_plan={"interval": 0, "loops": 2},
)

# the S3 server and a fresh prefix (fixtures of tests/test_s3.py)
s3_endpoint = test_s3.s3_endpoint
s3_url = test_s3.s3_url


def _log(path: Path) -> list[dict[str, Any]]:
    lines = (path / "mmzarr" / "frames.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_repeating_plan_is_a_plan_error_on_the_stream_path() -> None:
    with pytest.raises(mmzarr.PlanError, match=r"more than once"):
        mmzarr.AcquisitionSettings.from_useq(
            REPEATS, image_shape=(8, 10), dtype="uint16", pixel_size_um=1
        )


def test_unmappable_plan_keeps_every_frame_in_arrival_order(
    core: UniMMCore, tmp_path: Path
) -> None:
    out = tmp_path / "fallback.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(REPEATS, output=writer)
    writer.close()  # no error: the MDA was not cancelled

    events = list(REPEATS)
    assert len(cap.frames) == len(events) == 6
    assert writer.fallback_reason is not None
    assert "more than once" in writer.fallback_reason
    attrs = group_json(out)["attributes"]
    assert "more than once" in attrs["mmzarr"]["fallback"]
    # t is arrival order, not time: no unit (it said 1 s per frame)
    t_axis = attrs["ome"]["multiscales"][0]["axes"][0]
    assert t_axis["name"] == "t"
    assert "unit" not in t_axis
    assert attrs["mmzarr"]["status"] == "complete"
    check_metadata(out)
    for data in (read_zarr(out, "0"), read_tensorstore(out, "0")):
        assert data.shape == (6, 512, 512)
        for k, (_, img) in enumerate(cap.frames):
            np.testing.assert_array_equal(data[k], img, err_msg=f"frame {k}")
    log = _log(out)
    assert [r["event_index"] for r in log] == [dict(e.index) for e, _ in cap.frames]
    assert [r["index"] for r in log] == [[k] for k in range(6)]


def test_a_plan_without_frames_says_nothing_is_written(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "empty.ome.zarr"
    seq = useq.MDASequence()
    assert not list(seq)  # the oracle: useq yields no event
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.error is None
    assert "acquires no frames, so nothing is written" in caplog.text
    assert "writing every frame" not in caplog.text
    assert not out.exists()
    assert writer.frames_written == 0


def test_cli_acquire_falls_back_instead_of_refusing(tmp_path: Path) -> None:
    from mmzarr._cli import main

    plan = tmp_path / "plan.json"
    plan.write_text(REPEATS.model_dump_json())
    out = tmp_path / "cli.ome.zarr"
    assert main(["acquire", str(plan), str(out)]) == 0
    attrs = group_json(out)["attributes"]["mmzarr"]
    assert "more than once" in attrs["fallback"]
    assert attrs["frames_written"] == 6
    assert read_zarr(out, "0").shape == (6, 512, 512)
    # `mmzarr info` says why the frames are in arrival order
    from mmzarr._info import dataset_tree

    console = Console(width=300, record=True)
    console.print(dataset_tree(out))
    text = console.export_text()
    assert "fallback layout:" in text
    assert "more than once" in text
    # so does `mmzarr validate`: valid, but not the plan's layout
    report = mmzarr.validate(out)
    assert report.ok
    assert any(
        n.startswith("fallback layout:") and "more than once" in n for n in report.notes
    )
    assert "note: fallback layout:" in report.format()


def test_frames_that_do_not_fit_the_settings_are_kept_beside(
    core: UniMMCore, tmp_path: Path
) -> None:
    # settings for two time points; the MDA acquires three
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    out = tmp_path / "run.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()

    assert len(cap.frames) == 3
    assert writer.frames_written == 3
    main = read_zarr(out, "0")
    np.testing.assert_array_equal(main[0], cap.frames[0][1])
    np.testing.assert_array_equal(main[1], cap.frames[1][1])
    beside = tmp_path / "run.unplaced.ome.zarr"
    assert writer.unplaced_path == str(beside)
    check_metadata(beside)
    assert (
        "t=2 is out of range" in group_json(beside)["attributes"]["mmzarr"]["fallback"]
    )
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[2][1])
    assert _log(beside)[0]["event_index"] == {"t": 2}


def test_a_frame_far_past_a_growing_t_is_kept_beside(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An event generator whose `t` jumps far ahead (a timestamp as the index):
    that frame goes beside, the dataset keeps the time points it has."""
    template = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})

    def events() -> Any:
        for t in (0, 1, 10**9, 2):
            yield useq.MDAEvent(index={"t": t})

    out = tmp_path / "jump.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, template=template)
    core.mda.run(events(), output=writer)
    writer.close()
    assert len(cap.frames) == writer.frames_written == 4
    main = read_zarr(out, "0")
    assert main.shape == (3, 512, 512)
    for t, n in ((0, 0), (1, 1), (2, 3)):
        np.testing.assert_array_equal(main[t], cap.frames[n][1])
    beside = Path(writer.unplaced_path)
    check_metadata(beside)
    assert "t=1000000000" in group_json(beside)["attributes"]["mmzarr"]["fallback"]
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[2][1])
    assert _log(beside)[0]["event_index"] == {"t": 10**9}


def _run_beyond_settings(
    core: UniMMCore, tmp_path: Path, **options: Any
) -> mmzarr.MDAWriter:
    """A 3-time-point run into settings of 2 time points made with `options`:
    t=2 goes to `run.unplaced.ome.zarr`."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core, **options)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    writer = mmzarr.MDAWriter(tmp_path / "run.ome.zarr", core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.unplaced is not None
    return writer


def test_the_unplaced_sibling_takes_the_storage_choices_of_the_settings_given(
    core: UniMMCore, tmp_path: Path
) -> None:
    """With `settings=` (which takes no options), the sibling of the frames
    that do not fit is written with the settings' compression, `on_full`,
    buffer and flush interval, as the dataset is (it took the defaults:
    uncompressed, and blocking a run whose settings say drop)."""
    _run_beyond_settings(
        core,
        tmp_path,
        compression="blosc-zstd",
        on_full="drop",
        max_buffer_bytes=64 * 1024**2,
        flush_interval_s=0.5,
    )
    kept = mmzarr.AcquisitionSettings.model_validate_json(
        (tmp_path / "run.unplaced.ome.zarr/mmzarr/settings.json").read_text()
    )
    assert (
        kept.compression,
        kept.on_full,
        kept.max_buffer_bytes,
        kept.flush_interval_s,
    ) == ("blosc-zstd", "drop", 64 * 1024**2, 0.5)


def test_the_unplaced_sibling_takes_the_pixel_size_of_the_settings_given(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Settings at 0.65 µm on a core that says 1 µm: the frames that do not
    fit (t=2 of a 2-time-point dataset) go beside at the settings' 0.65 µm,
    the dataset's (the sibling said the core's 1 µm)."""
    core.setPixelSizeUm(core.getCurrentPixelSizeConfig(), 1.0)
    _run_beyond_settings(core, tmp_path, pixel_size_um=0.65)
    assert _yx_scale(tmp_path / "run.ome.zarr") == [0.65, 0.65]
    assert _yx_scale(tmp_path / "run.unplaced.ome.zarr") == [0.65, 0.65]


class _CountingSequence(useq.MDASequence):
    """Counts iterations of this very object (copies count on their own)."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        object.__setattr__(self, "_iterations", 0)

    def __iter__(self) -> Any:  # type: ignore[override]
        object.__setattr__(self, "_iterations", self._iterations + 1)
        return super().__iter__()


def test_writer_never_iterates_the_runners_sequence(tmp_path: Path) -> None:
    # pymmcore-plus' runner iterates the user's object on its own thread while
    # the handler describes the plan; useq autofocus plans keep state between
    # iterations, so a second iteration of the same object corrupts the first
    seq = _CountingSequence(
        stage_positions=[
            useq.Position(x=0, y=0),
            useq.Position(
                x=1, y=1, sequence=useq.MDASequence(z_plan={"range": 2, "step": 1})
            ),
        ],
        channels=["DAPI"],
        autofocus_plan=useq.AxesBasedAF(autofocus_device_name="Z", axes=("p",)),
    )
    writer = mmzarr.MDAWriter(
        tmp_path / "af.ome.zarr", image_shape=(8, 10), dtype="uint16", pixel_size_um=1
    )
    writer.sequenceStarted(seq, {})
    assert writer.stream is not None
    assert seq._iterations == 0  # type: ignore[attr-defined]
    writer.close()


def test_taken_unplaced_sibling_is_left_alone_and_the_run_completes(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An earlier run's `x.unplaced.ome.zarr` (not to be overwritten) neither
    cancels the MDA nor loses a frame: the next numbered sibling takes them,
    and the dataset records the finished run as complete."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    out = tmp_path / "run.ome.zarr"
    taken = tmp_path / "run.unplaced.ome.zarr"
    taken.mkdir()
    (taken / "notes.txt").write_text("an earlier run's")
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()

    assert writer.error is None
    assert len(cap.frames) == writer.frames_written == 3
    assert (taken / "notes.txt").read_text() == "an earlier run's"
    beside = tmp_path / "run.unplaced-2.ome.zarr"
    assert writer.unplaced_path == str(beside)
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[2][1])
    check_metadata(beside)
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    # validate names the sibling that keeps the frame, not the one it left alone
    notes = [n for n in mmzarr.validate(out).notes if "did not fit" in n]
    assert notes == [
        f"frames that did not fit this dataset are kept beside it in {[str(beside)]}"
    ]
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(dataset_tree(out))
    assert f"frames that did not fit it are in {beside}" in console.export_text()


def _random_plate(*, allow_overlap: bool) -> useq.MDASequence:
    """Wells A1 and B2 of a 96-well plate, 3 unseeded random points in each."""
    points = useq.RandomPoints(
        num_points=3,
        max_width=150,
        max_height=150,
        fov_width=64,
        fov_height=64,
        allow_overlap=allow_overlap,
    )
    plan = useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [0, 1]),
        well_points_plan=points,
    )
    return useq.MDASequence(stage_positions=plan, channels=["DAPI"])


def test_unseeded_random_points_without_overlap_fall_back(
    core: UniMMCore, tmp_path: Path
) -> None:
    """useq draws them again on each iteration, maybe fewer: the frames' wells
    are not known in advance, so every frame is kept in arrival order."""
    seq = _random_plate(allow_overlap=False)
    with pytest.raises(mmzarr.PlanError, match="random_seed"):
        mmzarr.AcquisitionSettings.from_useq(
            seq, image_shape=(8, 10), dtype="uint16", pixel_size_um=1
        )
    out = tmp_path / "random.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.fallback_reason is not None
    assert "random_seed" in writer.fallback_reason
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    data = read_zarr(out, "0")
    assert data.shape[0] == len(cap.frames) > 0
    for k, (_, img) in enumerate(cap.frames):
        np.testing.assert_array_equal(data[k], img, err_msg=f"frame {k}")


def test_unseeded_random_points_land_in_the_wells_the_runner_visits(
    core: UniMMCore, tmp_path: Path
) -> None:
    """With overlap allowed there are num_points each time: every frame is in
    the well the runner's event names, and no drawn position is written as a
    field's place (the frame log has the visited ones)."""
    seq = _random_plate(allow_overlap=True)
    out = tmp_path / "random.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.fallback_reason is None
    assert len(cap.frames) == 6
    check_metadata(out)
    fields: dict[str, int] = {}
    for event, img in cap.frames:
        well = {"A1": "A/1", "B2": "B/2"}[str(event.pos_name).split("_")[0]]
        field = fields[well] = fields.get(well, -1) + 1  # in the order visited
        np.testing.assert_array_equal(
            read_zarr(out, f"{well}/{field}/0")[0], img, err_msg=str(event.pos_name)
        )
        ms = group_json(out, f"{well}/{field}")["attributes"]["ome"]["multiscales"]
        for transform in ms[0]["datasets"][0]["coordinateTransformations"]:
            assert transform["type"] == "scale"
    visited = [
        (r["metadata"]["stage"]["x"], r["metadata"]["stage"]["y"]) for r in _log(out)
    ]
    assert visited == [
        pytest.approx((e.x_pos, e.y_pos), abs=0.01) for e, _ in cap.frames
    ]


# ---- frames no plan maps: RGB cameras, bool frames ------------------------------
def _rgb(k: int, shape: tuple[int, int] = (16, 20)) -> np.ndarray:
    """An RGB frame as pymmcore-plus and pycromanager give one: (y, x, 3) uint8."""
    rng = np.random.default_rng(k)
    return rng.integers(0, 255, (*shape, 3), dtype=np.uint8)


def _assert_rgb_kept(root: Path, frames: list[np.ndarray]) -> None:
    """Frame k is time point k, its samples channels 0-2, in both readers, in
    the camera's own dtype."""
    for read in (read_zarr, read_tensorstore):
        data = read(root, "0")
        assert data.shape == (len(frames), 3, *frames[0].shape[:2])
        assert data.dtype == frames[0].dtype
        for k, frame in enumerate(frames):
            for s in range(3):
                np.testing.assert_array_equal(data[k, s], frame[..., s])
    check_metadata(root)
    assert mmzarr.validate(root).ok


def test_frames_no_dataset_can_keep_never_stop_the_mda(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A complex or empty frame: no dataset can keep it, not even the sibling.
    It is counted and said (its dtype and shape); the run goes on and every
    other frame is written (the sibling's error cancelled the MDA)."""
    out = tmp_path / "odd.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 4})
    writer = mmzarr.MDAWriter(out, core=core)
    writer.sequenceStarted(seq, {})
    shape = (core.getImageHeight(), core.getImageWidth())
    events = list(seq)
    good = {0: np.full(shape, 7, "uint16"), 3: np.full(shape, 9, "uint16")}
    odd = {1: np.ones(shape, "complex64"), 2: np.zeros((0, shape[1]), "uint16")}
    for k, event in enumerate(events):
        writer.frameReady(good.get(k, odd.get(k)), event, {})
    writer.sequenceFinished(seq)
    writer.close()  # raises the run's error, if any
    assert writer.error is None
    assert writer.frames_ignored == 2
    assert "dtype complex64" in caplog.text
    assert f"shape (0, {shape[1]})" in caplog.text
    data = read_zarr(out, "0")
    for k, frame in good.items():
        np.testing.assert_array_equal(data[k], frame)


def test_a_second_run_of_a_writer_counts_and_says_its_own_ignored_frames(
    core: UniMMCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`frames_ignored` and the once-per-kind warning are the run's: a writer
    used again starts at 0 and says a kind refused in the last run again."""
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    shape = (core.getImageHeight(), core.getImageWidth())
    writer = mmzarr.MDAWriter(tmp_path / "again.ome.zarr", core=core, overwrite=True)
    for run in range(2):
        caplog.clear()
        writer.sequenceStarted(seq, {})
        event0, event1 = list(seq)
        writer.frameReady(np.full(shape, run, "uint16"), event0, {})
        writer.frameReady(np.ones(shape, "complex64"), event1, {})
        writer.sequenceFinished(seq)
        writer.close()
        assert writer.frames_ignored == 1, run
        assert "dtype complex64" in caplog.text, run
    assert not Path(writer.unplaced_path).exists()


def test_rgb_frames_in_an_mda_are_kept_beside_the_dataset(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An RGB camera's (y, x, 3) frames fit no plan of 2D frames: they are kept
    in the unplaced sibling, one channel per sample; the MDA is not cancelled
    (it was: the sibling took (x, 3) as the frame's shape and refused it)."""
    out = tmp_path / "rgb.ome.zarr"
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    writer = mmzarr.MDAWriter(out, core=core)
    writer.sequenceStarted(seq, {})
    shape = (core.getImageHeight(), core.getImageWidth())
    frames = [_rgb(k, shape) for k in range(2)]
    for event, frame in zip(seq, frames, strict=True):
        writer.frameReady(frame, event, {})
    writer.sequenceFinished(seq)
    writer.close()  # raises the run's error, if any
    assert writer.error is None
    assert writer.frames_written == 2  # frames, not their 6 planes
    _assert_rgb_kept(Path(writer.unplaced_path), frames)


def test_frames_of_more_axes_are_kept_as_their_planes(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A frame of (2, y, x) fits no plan of 2D frames: it is kept beside the
    dataset as its 2 planes, channels of its time point; `frames_written`
    counts it once."""
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 3})
    writer = mmzarr.MDAWriter(tmp_path / "stacks.ome.zarr", core=core)
    writer.sequenceStarted(seq, {})
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 4000, (2, 16, 20), dtype=np.uint16) for _ in range(3)]
    for event, frame in zip(seq, frames, strict=True):
        writer.frameReady(frame, event, {})
    writer.sequenceFinished(seq)
    writer.close()  # raises the run's error, if any
    assert writer.frames_written == 3
    for read in (read_zarr, read_tensorstore):
        data = read(Path(writer.unplaced_path), "0")
        assert data.shape == (3, 2, 16, 20)
        np.testing.assert_array_equal(data, np.stack(frames))


def test_an_rgb_camera_s_run_is_kept_in_the_fallback_layout(
    core: UniMMCore, tmp_path: Path
) -> None:
    """pymmcore-plus' summary says an RGB camera's frames are (y, x, 3) uint8:
    the run is kept in the fallback layout, one channel per sample, and says
    why (the dataset was mapped for 2D frames, recorded `complete`, and held
    only zeros: every frame went to the sibling)."""
    out = tmp_path / "rgb.ome.zarr"
    seq = useq.MDASequence(
        stage_positions=[(0, 0, 0), (100, 0, 0)],
        time_plan={"interval": 0.001, "loops": 2},
    )
    shape = (core.getImageHeight(), core.getImageWidth())
    info = {"camera_label": "RGB", "plane_shape": (*shape, 3), "dtype": "uint8"}
    writer = mmzarr.MDAWriter(out, core=core)
    writer.sequenceStarted(seq, {"image_infos": [info]})
    with pytest.raises(RuntimeError, match="opens at the first frame"):
        writer.view()
    frames = [_rgb(k, shape) for k in range(4)]
    for event, frame in zip(seq, frames, strict=True):
        writer.frameReady(frame, event, {})
    writer.sequenceFinished(seq)
    writer.close()  # raises the run's error, if any
    assert writer.fallback_reason is not None
    assert "(color)" in writer.fallback_reason
    assert writer.frames_written == 4  # frames, not their 12 planes
    assert not Path(writer.unplaced_path).exists()
    _assert_rgb_kept(out, frames)


def test_rgb_images_of_the_hook_are_kept_in_the_fallback(tmp_path: Path) -> None:
    """pycromanager's Java backend hands an RGB32 camera's images as (y, x, 3)
    uint8: the hook keeps them (the fallback layout, one channel per sample)
    and never raises, which would abort the acquisition."""
    pytest.importorskip("pycromanager")
    from pycromanager import multi_d_acquisition_events

    from mmzarr.pycromanager import ZarrHook

    out = tmp_path / "rgb.ome.zarr"
    events = multi_d_acquisition_events(num_time_points=3, time_interval_s=1)
    hook = ZarrHook(out, events=events, keep_images=False)
    frames = [_rgb(k) for k in range(3)]
    for event, frame in zip(events, frames, strict=True):
        hook(frame, {"Axes": event["axes"], "PixelSize_um": 0.5})
    hook.close()
    assert hook.fallback_reason is not None
    assert hook.frames_written == 3  # frames, not their 9 planes
    _assert_rgb_kept(out, frames)


@pytest.mark.filterwarnings("ignore::mmzarr.MMZarrWarning")
def test_hook_fallback_keeps_an_image_of_another_format_beside(
    tmp_path: Path,
) -> None:
    """In the fallback layout an image of another dtype goes to the unplaced
    sibling (it was refused, and the hook raised); bool images are kept as
    uint8."""
    pytest.importorskip("pycromanager")
    from mmzarr.pycromanager import ZarrHook

    out = tmp_path / "mixed.ome.zarr"
    hook = ZarrHook(out, keep_images=False)
    first = np.ones((2, 3, 8, 10), np.uint16)  # 6 planes: no plan maps it
    other = np.zeros((8, 10), bool)
    other[2, 3] = True
    hook(first, {"Axes": {"time": 0}})
    hook(other, {"Axes": {"time": 1}})
    hook.close()
    data = read_zarr(out, "0")
    assert data.shape == (1, 6, 8, 10)
    assert (data == 1).all()
    kept = read_zarr(Path(hook.unplaced_path), "0")
    assert kept.dtype == np.uint8
    np.testing.assert_array_equal(kept[0], other.astype(np.uint8))


def test_hook_images_without_axes_fall_back_in_pycromanagers_words(
    tmp_path: Path,
) -> None:
    """Learn-mode images that carry no ``Axes`` (or the same ones twice) cannot
    be told apart: every image is kept in arrival order, and the reason says
    so in Pycro-Manager's terms (it spoke of useq's position sub-sequences)."""
    pytest.importorskip("pycromanager")
    from mmzarr.pycromanager import ZarrHook

    out = tmp_path / "noaxes.ome.zarr"
    hook = ZarrHook(out, keep_images=False)
    frames = [np.full((8, 10), k, np.uint16) for k in range(3)]
    for frame in frames:
        hook(frame, {"PixelSize_um": 0.5})
    hook.close()
    assert hook.fallback_reason is not None
    assert "images 0 and 1 of the first time point have the same Axes {}" in (
        hook.fallback_reason
    )
    assert "sub-sequence" not in hook.fallback_reason
    data = read_zarr(out, "0")
    assert data.shape[0] == 3
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(data[k].reshape(frame.shape), frame)


def test_frames_of_three_formats_in_one_mda_are_all_kept(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Channel presets that also set the camera's binning (1, 2, 4): frames of
    three shapes. Those of the dataset's shape are in it, each other shape in
    a sibling of its own; the MDA runs to its end (a third shape was refused
    by the first sibling, and the MDA was cancelled)."""
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    for name, label, binning in (
        ("B1", "DAPI", "1"),
        ("B2", "FITC", "2"),
        ("B4", "Cy5", "4"),
    ):
        core.defineConfig("Chan", name, "Wheel", "Label", label)
        core.defineConfig("Chan", name, "Camera", "Binning", binning)
    seq = useq.MDASequence(
        channels=[{"config": c, "group": "Chan"} for c in ("B1", "B2", "B4")],
        time_plan={"interval": 0.001, "loops": 2},
    )
    out = tmp_path / "run.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()  # raises the run's error, if any
    assert len(cap.frames) == 6
    assert writer.frames_written == 6
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    by_side: dict[int, list[np.ndarray]] = {}
    for _, img in cap.frames:
        by_side.setdefault(img.shape[0], []).append(img)
    assert sorted(by_side) == [16, 32, 64]
    main = read_zarr(out, "0")
    for t, img in enumerate(by_side[64]):
        np.testing.assert_array_equal(main[t, 0], img)  # (t, c, y, x)
    for name, side in (("run.unplaced.ome.zarr", 32), ("run.unplaced-2.ome.zarr", 16)):
        beside = tmp_path / name
        check_metadata(beside)
        kept = read_tensorstore(beside, "0")
        assert kept.shape[0] == 2
        for k, img in enumerate(by_side[side]):
            np.testing.assert_array_equal(kept[k].reshape(img.shape), img)


def test_an_unplaced_sibling_of_another_dataset_is_never_replaced(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`exp.ome.zarr` and `exp.zarr` have one sibling name for frames that do
    not fit: a run to `exp.zarr` with `overwrite=True` uses the next one and
    leaves `exp.ome.zarr`'s frames alone (it replaced them)."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    beside: dict[str, np.ndarray] = {}
    for name in ("exp.ome.zarr", "exp.zarr", "exp.zarr"):
        cap = Capture(core)
        writer = mmzarr.MDAWriter(
            tmp_path / name, core=core, settings=settings, overwrite=True
        )
        core.mda.run(seq, output=writer)
        writer.close()
        beside[writer.unplaced_path] = cap.frames[1][1]  # t=1 does not fit
    assert sorted(Path(p).name for p in beside) == [
        "exp.unplaced-2.ome.zarr",  # exp.zarr's, replaced by its second run
        "exp.unplaced.ome.zarr",
    ]
    for path, frame in beside.items():
        np.testing.assert_array_equal(read_zarr(Path(path), "0")[0], frame)
    # each dataset names its own sibling only
    for name, sibling in (
        ("exp.ome.zarr", "exp.unplaced"),
        ("exp.zarr", "exp.unplaced-2"),
    ):
        notes = [
            n for n in mmzarr.validate(tmp_path / name).notes if "did not fit" in n
        ]
        assert notes == [
            "frames that did not fit this dataset are kept beside it in "
            f"{[str(tmp_path / sibling) + '.ome.zarr']}"
        ]


def test_an_earlier_runs_sibling_is_not_named_by_the_dataset_that_replaced_it(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A run with frames that did not fit, then one to the same path with
    `overwrite=True` whose frames all fit: the first run's sibling stays (it is
    not the second's to delete) and validate of the new dataset does not call
    it its own."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    out = tmp_path / "run.ome.zarr"
    beside = tmp_path / "run.unplaced.ome.zarr"
    for plan in (small, seq):
        settings = mmzarr.AcquisitionSettings.from_useq(plan, core=core)
        writer = mmzarr.MDAWriter(out, core=core, settings=settings, overwrite=True)
        core.mda.run(seq, output=writer)
        writer.close()
        notes = [n for n in mmzarr.validate(out).notes if "did not fit" in n]
        if plan is small:  # t=1 went beside
            assert notes == [
                "frames that did not fit this dataset are kept beside it in "
                f"{[str(beside)]}"
            ]
    assert notes == []
    assert beside.is_dir()
    assert read_zarr(beside, "0").shape[0] == 1


def test_a_writer_reused_after_a_run_that_never_finished(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Another output handler's error ends pymmcore-plus' relay thread: the
    writer never gets `sequenceFinished`. Run again, it closes the first run's
    dataset and writes the second (its own lock refused the second run, which
    was cancelled)."""
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    out = tmp_path / "run.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core, overwrite=True)
    shape = (core.getImageHeight(), core.getImageWidth())
    frames = [np.full(shape, 10 + k, np.uint16) for k in range(2)]
    events = list(seq)
    writer.sequenceStarted(seq, {})
    writer.frameReady(frames[0], events[0], {})  # then nothing more
    writer.sequenceStarted(seq, {})
    for event, frame in zip(events, frames, strict=True):
        writer.frameReady(frame, event, {})
    writer.sequenceFinished(seq)
    writer.close()  # raises the run's error, if any
    assert writer.error is None
    assert group_json(out)["attributes"]["mmzarr"]["status"] == "complete"
    data = read_zarr(out, "0")
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(data[t], frame)


def test_front_ends_refuse_on_full_raise(tmp_path: Path) -> None:
    """A front end cannot retry a frame `on_full="raise"` hands back: it
    counted it a storage failure and cancelled the MDA the first time storage
    fell behind. Both refuse the option when made, with the ones that work."""
    pytest.importorskip("pycromanager")
    from mmzarr.pycromanager import ZarrHook

    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 2}),
        image_shape=(8, 8),
        dtype="uint16",
        pixel_size_um=1.0,
        on_full="raise",
    )
    out = tmp_path / "run.ome.zarr"
    for make in (
        lambda: mmzarr.MDAWriter(out, on_full="raise"),
        lambda: mmzarr.MDAWriter(out, settings=settings),
        lambda: ZarrHook(out, on_full="raise"),
        lambda: ZarrHook(out, settings=settings),
        lambda: mmzarr.MDAWriter(
            out, settings=settings.replace(on_full="block"), on_full="raise"
        ),
    ):
        with pytest.raises(ValueError, match=r"on_full='raise'.*'block'.*'drop'"):
            make()
    assert not out.exists()
    mmzarr.MDAWriter(out, on_full="drop")  # the others are taken


def test_frames_of_a_narrower_dtype_are_written_exactly(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`dtype="uint16"` given for an 8-bit camera: its frames are written into
    the dataset as uint16, every value kept (they all went to the sibling)."""
    core.setProperty("Camera", "BitDepth", 8)
    seq = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    out = tmp_path / "run.ome.zarr"
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, dtype="uint16")
    core.mda.run(seq, output=writer)
    writer.close()
    assert [img.dtype for _, img in cap.frames] == [np.uint8, np.uint8]
    assert not Path(writer.unplaced_path).exists()
    data = read_zarr(out, "0")
    assert data.dtype == np.uint16
    for t, (_, img) in enumerate(cap.frames):
        np.testing.assert_array_equal(data[t], img.astype(np.uint16))


def test_big_endian_frames_are_kept_exactly_in_the_fallback_layout(
    tmp_path: Path,
) -> None:
    """Frames in big-endian order (``>u2``) of a plan that falls back: kept in
    the fallback dataset with every value (the dataset took their dtype, then
    refused them, and so did the sibling: the MDA was cancelled)."""
    out = tmp_path / "be.ome.zarr"
    writer = mmzarr.MDAWriter(out)
    writer.sequenceStarted(REPEATS, {})
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 65536, (8, 10)).astype(">u2") for _ in range(6)]
    for event, frame in zip(REPEATS, frames, strict=True):
        writer.frameReady(frame, event, {})
    writer.sequenceFinished(REPEATS)
    writer.close()  # raises the run's error, if any
    assert writer.fallback_reason is not None
    assert not Path(writer.unplaced_path).exists()
    data = read_zarr(out, "0")
    assert data.dtype == np.dtype("uint16")
    assert data.shape == (6, 8, 10)
    for k, frame in enumerate(frames):
        assert data[k].tolist() == frame.tolist(), f"frame {k}"


def test_a_failing_writer_cancels_no_other_cores_mda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `core=`, a writer that fails on a second core's run leaves the
    global core's MDA alone (it cancelled that one, and the failing run went on
    writing nothing)."""
    from pymmcore_plus import CMMCorePlus

    from mmzarr.demo import demo_core, release_core

    glob = CMMCorePlus.instance()  # the global core (made now if there is none)
    try:
        other = demo_core()
        assert other is not glob
        cancelled: list[str] = []
        monkeypatch.setattr(glob.mda, "cancel", lambda: cancelled.append("global"))
        out = tmp_path / "b.ome.zarr"
        writer = mmzarr.MDAWriter(out)
        (out / "not-a-dataset").mkdir(parents=True)  # the writer cannot start
        other.mda.run(
            useq.MDASequence(time_plan={"interval": 0, "loops": 2}), output=writer
        )
        assert isinstance(writer.error, FileExistsError)
        assert cancelled == []
        assert (out / "not-a-dataset").is_dir()
    finally:  # a global core is held by a weak reference only
        release_core(glob)


def test_overwrite_never_replaces_a_foreign_dataset_at_the_sibling_name(
    core: UniMMCore, tmp_path: Path
) -> None:
    """An OME-Zarr mmzarr did not write sits where the frames that do not fit
    would go: it is left alone (it was replaced), the next name is used."""
    foreign = tmp_path / "exp.unplaced.ome.zarr"
    foreign.mkdir()
    (foreign / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {}}})
    )
    (foreign / "precious.txt").write_text("theirs")
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    writer = mmzarr.MDAWriter(
        tmp_path / "exp.ome.zarr", core=core, settings=settings, overwrite=True
    )
    core.mda.run(
        useq.MDASequence(time_plan={"interval": 0.001, "loops": 2}), output=writer
    )
    writer.close()
    assert Path(writer.unplaced_path).name == "exp.unplaced-2.ome.zarr"
    assert (foreign / "precious.txt").read_text() == "theirs"


def test_overwrite_on_s3_keeps_another_dataset_s_unplaced_frames(
    core: UniMMCore, s3_endpoint: str, s3_url: str
) -> None:
    """`x.zarr` and `x.ome.zarr` share the sibling name `x.unplaced.ome.zarr`:
    on S3 a run of one with `overwrite` replaced the other's (no "made for"
    check there), and the sibling said it was made for `s3:/...` made a local
    path (`/cwd/s3:/bucket/...`)."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    two = useq.MDASequence(time_plan={"interval": 0.001, "loops": 2})
    top = s3_url.rsplit("/", 1)[0]
    made = []
    for name, overwrite in (("x.zarr", False), ("x.ome.zarr", True)):
        writer = mmzarr.MDAWriter(
            f"{top}/{name}", core=core, settings=settings, overwrite=overwrite
        )
        core.mda.run(two, output=writer)
        writer.close()
        made.append(writer.unplaced_path)
    assert made == [f"{top}/x.unplaced.ome.zarr", f"{top}/x.unplaced-2.ome.zarr"]
    for where, name in zip(made, ("x.zarr", "x.ome.zarr"), strict=True):
        reason = test_s3.s3_json(s3_endpoint, where, "mmzarr/settings.json")[
            "fallback_reason"
        ]
        assert reason.startswith(f"frames that did not fit {top}/{name}: ")


def test_info_finds_the_unplaced_frames_of_a_dataset_in_a_folder_named_s3(
    core: UniMMCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s3:/run.ome.zarr`, relative, is a local folder `s3:` for `validate` and
    `info`: the sibling was looked for on S3 (100 requests to AWS) and not
    found."""
    from mmzarr._unplaced import unplaced_siblings

    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    out = tmp_path / "s3:" / "run.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(
        useq.MDASequence(time_plan={"interval": 0.001, "loops": 2}), output=writer
    )
    writer.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nobody there
    assert unplaced_siblings(Path("s3:/run.ome.zarr")) == ["s3:/run.unplaced.ome.zarr"]


def test_a_dataset_with_a_long_name_keeps_frames_beside_it(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A 249-byte dataset name: the sibling's name would pass NAME_MAX (the
    MDA was cancelled); it is cut and given a digest, as hidden names are."""
    small = useq.MDASequence(time_plan={"interval": 0.001, "loops": 1})
    settings = mmzarr.AcquisitionSettings.from_useq(small, core=core)
    out = tmp_path / f"{'é' * 120}.ome.zarr"  # 240 + 9 bytes
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(
        useq.MDASequence(time_plan={"interval": 0.001, "loops": 2}), output=writer
    )
    writer.close()
    beside = Path(writer.unplaced_path)
    assert len(beside.name.encode()) < 255
    assert beside.name.endswith(".unplaced.ome.zarr")
    np.testing.assert_array_equal(read_zarr(beside, "0")[0], cap.frames[1][1])


def _yx_scale(root: Path) -> list[float]:
    """The y/x scale of level 0 of the image at `root`."""
    ms = group_json(root)["attributes"]["ome"]["multiscales"][0]
    return list(ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:])


def _run_switching_pixel_size(
    core: UniMMCore,
    out: Path,
    start: float,
    then: float,
    at_t: int,
    settings_px: float | None = None,
) -> tuple[mmzarr.MDAWriter, Capture]:
    """A 2-channel, 2-time-point run of 64x64 frames whose pixel size goes from
    `start` to `then` as event (t=`at_t`, c=0) starts (a hook: the objective).

    With `settings_px`, the writer is given settings of that pixel size."""
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)
    preset = core.getCurrentPixelSizeConfig()
    core.setPixelSizeUm(preset, start)

    def switch(event: useq.MDAEvent) -> None:
        if event.index.get("t") == at_t and event.index.get("c") == 0:
            core.setPixelSizeUm(preset, then)

    core.mda.events.eventStarted.connect(switch)
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.001, "loops": 2}
    )
    settings = (
        None
        if settings_px is None
        else mmzarr.AcquisitionSettings.from_useq(
            seq, core=core, pixel_size_um=settings_px
        )
    )
    cap = Capture(core)
    writer = mmzarr.MDAWriter(out, core=core, settings=settings)
    core.mda.run(seq, output=writer)
    writer.close()
    assert writer.error is None
    assert len(cap.frames) == writer.frames_written == 4
    return writer, cap


def test_frames_acquired_at_another_pixel_size_are_kept_beside(
    core: UniMMCore, tmp_path: Path
) -> None:
    """The objective changes during the run (the pixel-size preset's value,
    from a hook at t=1): frames of the same shape but half the pixel size go
    to a sibling whose scale is theirs, not into the dataset at its scale."""
    out = tmp_path / "run.ome.zarr"
    _, cap = _run_switching_pixel_size(core, out, 0.65, 0.325, at_t=1)
    assert _yx_scale(out) == [0.65, 0.65]
    main = read_zarr(out, "0")
    for event, img in cap.frames[:2]:
        np.testing.assert_array_equal(main[0, event.index["c"]], img)
    beside = tmp_path / "run.unplaced.ome.zarr"
    check_metadata(beside)
    assert _yx_scale(beside) == [0.325, 0.325]
    kept = read_tensorstore(beside, "0")
    assert kept.shape == (2, 64, 64)
    for k, (_, img) in enumerate(cap.frames[2:]):
        np.testing.assert_array_equal(kept[k], img)
    assert [r["event_index"] for r in _log(beside)] == [
        {"t": 1, "c": 0},
        {"t": 1, "c": 1},
    ]


def test_a_cancelled_run_s_sibling_says_cancelled(
    core: UniMMCore, tmp_path: Path
) -> None:
    """A run cancelled after frames went beside (the objective changed at
    t=1): the sibling, which holds part of that run, says `cancelled` as the
    dataset does (it said `complete`)."""
    preset = core.getCurrentPixelSizeConfig()
    core.setPixelSizeUm(preset, 0.65)

    def switch_then_cancel(event: useq.MDAEvent) -> None:
        if event.index.get("t") == 1 and event.index.get("c") == 0:
            core.setPixelSizeUm(preset, 0.325)
        if event.index.get("t") == 2:
            core.mda.cancel()

    core.mda.events.eventStarted.connect(switch_then_cancel)
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"], time_plan={"interval": 0.001, "loops": 4}
    )
    out = tmp_path / "run.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core)
    core.mda.run(seq, output=writer)
    writer.close()
    beside = tmp_path / "run.unplaced.ome.zarr"
    assert [r["event_index"]["t"] for r in _log(beside)][:2] == [1, 1]
    for path in (out, beside):
        assert group_json(path)["attributes"]["mmzarr"]["status"] == "cancelled"


def test_the_fallback_layout_takes_the_pixel_size_given_to_the_writer(
    core: UniMMCore, tmp_path: Path
) -> None:
    """`pixel_size_um=` corrects the core's calibration in a plan that falls
    back too (it did in a mapped plan, and in `ZarrHook`'s fallback)."""
    out = tmp_path / "fallback.ome.zarr"
    writer = mmzarr.MDAWriter(out, core=core, pixel_size_um=0.5)
    core.mda.run(REPEATS, output=writer)
    writer.close()
    attrs = group_json(out)["attributes"]
    assert "more than once" in attrs["mmzarr"]["fallback"]
    ms = attrs["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    assert writer.frames_written == 6


def test_a_pixel_size_changed_before_the_first_frame_is_the_dataset_s(
    core: UniMMCore, tmp_path: Path
) -> None:
    """The plan's first channel preset switches the objective after the run's
    start (here: a hook at the first event): every frame is in the dataset,
    at the first frame's pixel size (they all went to the sibling)."""
    out = tmp_path / "run.ome.zarr"
    writer, cap = _run_switching_pixel_size(core, out, 1.0, 0.5, at_t=0)
    assert not Path(writer.unplaced_path).exists()
    assert _yx_scale(out) == [0.5, 0.5]
    for read in (read_zarr, read_tensorstore):
        data = read(out, "0")
        for event, img in cap.frames:
            np.testing.assert_array_equal(data[event.index["t"], event.index["c"]], img)
    saved = json.loads((out / "mmzarr" / "settings.json").read_text())
    yx = [d for d in saved["images"][0]["dimensions"] if d["name"] in ("y", "x")]
    assert [d["scale"] for d in yx] == [0.5, 0.5]
    assert mmzarr.validate(out).ok


def test_a_pixel_size_changed_before_the_first_frame_keeps_given_settings(
    core: UniMMCore, tmp_path: Path
) -> None:
    """Settings given to the writer at their own pixel size (a calibration of
    the user's, not the core's) are not rewritten with the core's new one:
    the frames acquired at another pixel size go beside, as with
    `pixel_size_um=` (their 0.3 µm was replaced by the core's 0.5 µm)."""
    out = tmp_path / "given.ome.zarr"
    writer, cap = _run_switching_pixel_size(core, out, 1.0, 0.5, 0, settings_px=0.3)
    assert _yx_scale(out) == [0.3, 0.3]
    beside = Path(writer.unplaced_path)
    assert _yx_scale(beside) == [0.5, 0.5]
    kept = read_tensorstore(beside, "0")
    for k, (_, img) in enumerate(cap.frames):
        np.testing.assert_array_equal(kept[k], img)
