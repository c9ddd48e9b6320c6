"""Tests for the pure-Python demo rig in `mmzarr.demo`."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pymmcore_plus
import pytest
import useq
from pymmcore_plus import CMMCorePlus

from mmzarr.demo import (
    CHANNELS,
    CLOCK_ROWS,
    DEMO_CONFIG,
    PIXEL_SIZE_UM,
    DemoCamera,
    demo_core,
    release_core,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pymmcore_plus.experimental.unicore import UniMMCore

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_DEMO_CFG = REPO_ROOT / "configs" / "demo.cfg"
MM_DEMO_CFG = REPO_ROOT / "configs" / "MMConfig_demo.cfg"


@pytest.fixture
def core() -> Iterator[UniMMCore]:
    mmc = demo_core()
    yield mmc
    mmc.unloadAllDevices()


def snap(core: CMMCorePlus) -> np.ndarray:
    core.snapImage()
    return np.array(core.getImage(), copy=True)


def run_and_collect(
    core: CMMCorePlus, seq: useq.MDASequence
) -> list[tuple[np.ndarray, useq.MDAEvent]]:
    """Run `seq` with an independent frameReady listener; return what it got."""
    frames: list[tuple[np.ndarray, useq.MDAEvent]] = []
    lock = threading.Lock()

    def on_frame(img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        with lock:
            frames.append((np.array(img, copy=True), event))

    core.mda.events.frameReady.connect(on_frame)
    try:
        core.mda.run(seq)
    finally:
        core.mda.events.frameReady.disconnect(on_frame)
    return frames


def digest(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


# ---------------------------------------------------------------- loading


def test_demo_core_is_ready(core: UniMMCore) -> None:
    assert core.getCameraDevice() == "Camera"
    assert core.getXYStageDevice() == "XY"
    assert core.getFocusDevice() == "Z"
    assert core.getShutterDevice() == "Shutter"
    assert core.getChannelGroup() == "Channel"
    assert set(core.getAvailableConfigs("Channel")) == set(CHANNELS)
    assert core.getCurrentConfig("Channel") == "DAPI"
    assert core.getPixelSizeUm() == PIXEL_SIZE_UM == 1.0


def test_snap_default_image(core: UniMMCore) -> None:
    img = snap(core)
    assert img.shape == (512, 512)
    assert img.dtype == np.uint16
    assert core.getImageWidth() == core.getImageHeight() == 512
    assert 0 < img.max() <= 4095


@pytest.mark.parametrize(
    ("bits", "dtype"), [(8, np.uint8), (12, np.uint16), (16, np.uint16)]
)
def test_bit_depth(core: UniMMCore, bits: int, dtype: type[np.integer]) -> None:
    core.setProperty("Camera", "BitDepth", str(bits))  # strings, as in a .cfg
    core.setExposure(100)  # bright enough to saturate somewhere
    img = snap(core)
    assert img.dtype == dtype
    assert img.max() == 2**bits - 1


@pytest.mark.parametrize("binning", [2, "2", 4])
def test_binning_shrinks_shape(core: UniMMCore, binning: int | str) -> None:
    core.setProperty("Camera", "Binning", binning)
    factor = int(binning)
    assert snap(core).shape == (512 // factor, 512 // factor)
    assert core.getImageWidth() == 512 // factor
    assert core.getPixelSizeUm() == PIXEL_SIZE_UM * factor


def test_invalid_binning_rejected(core: UniMMCore) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        core.setProperty("Camera", "Binning", 3)


def test_sensor_size_and_roi(core: UniMMCore) -> None:
    core.setProperty("Camera", "SensorWidth", "256")
    core.setProperty("Camera", "SensorHeight", "128")
    assert snap(core).shape == (128, 256)
    core.setROI(0, 0, 100, 50)
    assert snap(core).shape == (50, 100)
    assert core.getROI() == [0, 0, 100, 50]
    core.clearROI()
    assert snap(core).shape == (128, 256)


def test_string_property_values(core: UniMMCore) -> None:
    core.setProperty("Camera", "Exposure", "25.5")
    assert core.getExposure() == 25.5
    core.setProperty("Wheel", "Label", "TRITC")
    assert core.getCurrentConfig("Channel") == "TRITC"
    assert core.getState("Wheel") == 2


def test_shutter(core: UniMMCore) -> None:
    assert core.getAutoShutter()
    core.setShutterOpen(True)
    assert core.getShutterOpen()
    assert int(core.getProperty("Shutter", "State")) == 1
    core.setProperty("Shutter", "State", "0")
    assert not core.getShutterOpen()


# ---------------------------------------------------------------- image content


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.setXYPosition(25.0, 0.0), id="x"),
        pytest.param(lambda c: c.setXYPosition(0.0, 25.0), id="y"),
        pytest.param(lambda c: c.setPosition(1.0), id="z-up"),
        pytest.param(lambda c: c.setPosition(-1.0), id="z-down"),
        pytest.param(lambda c: c.setConfig("Channel", "FITC"), id="channel"),
        pytest.param(lambda c: c.setExposure(20.0), id="exposure"),
    ],
)
def test_image_changes_with_state(
    core: UniMMCore, change: Callable[[UniMMCore], None]
) -> None:
    before = snap(core)
    change(core)
    after = snap(core)
    assert not np.array_equal(before[CLOCK_ROWS:], after[CLOCK_ROWS:])


def test_image_changes_with_time_only_in_clock_band(core: UniMMCore) -> None:
    first, second = snap(core), snap(core)
    assert not np.array_equal(first[:CLOCK_ROWS], second[:CLOCK_ROWS])
    np.testing.assert_array_equal(first[CLOCK_ROWS:], second[CLOCK_ROWS:])


def test_z_above_and_below_focus_differ(core: UniMMCore) -> None:
    core.setPosition(1.0)
    above = snap(core)
    core.setPosition(-1.0)
    below = snap(core)
    assert not np.array_equal(above[CLOCK_ROWS:], below[CLOCK_ROWS:])


@pytest.mark.parametrize("binning", [1, 2])
def test_xy_shift_is_predictable(core: UniMMCore, binning: int) -> None:
    core.setProperty("Camera", "Binning", binning)
    before = snap(core)
    # the field of view moves by 10 (binned) pixels to the right and 4 down
    core.setXYPosition(10.0 * binning * PIXEL_SIZE_UM, 4.0 * binning * PIXEL_SIZE_UM)
    after = snap(core)
    rows = slice(CLOCK_ROWS + 4, None)
    np.testing.assert_array_equal(after[CLOCK_ROWS:-4, :-10], before[rows, 10:])


def test_frame_counter_stamp(core: UniMMCore) -> None:
    core.setProperty("Camera", "FrameCount", "258")
    img = snap(core)
    assert int.from_bytes(img[0, :4].astype(np.uint8).tobytes(), "little") == 258
    assert int(core.getProperty("Camera", "FrameCount")) == 259


def test_cores_do_not_share_stage_state(core: UniMMCore) -> None:
    other = demo_core()
    try:
        reference = snap(other)
        core.setXYPosition(40.0, 40.0)
        core.setPosition(3.0)
        core.setConfig("Channel", "Cy5")
        assert other.getXYPosition() == (0.0, 0.0)
        assert other.getCurrentConfig("Channel") == "DAPI"
        np.testing.assert_array_equal(snap(other)[CLOCK_ROWS:], reference[CLOCK_ROWS:])
    finally:
        other.unloadAllDevices()


def test_standalone_camera_snaps() -> None:
    cam = DemoCamera()
    buffer = np.empty(cam.sensor_shape(), dtype=cam.dtype())
    cam.snap(buffer)
    assert buffer.shape == (512, 512)
    assert buffer.max() <= 4095


# ---------------------------------------------------------------- MDA


def test_mda_delivers_unique_frames(core: UniMMCore) -> None:
    seq = useq.MDASequence(
        channels=["DAPI", "FITC"],
        z_plan=useq.ZRangeAround(range=2, step=1),
        time_plan=useq.TIntervalLoops(interval=0, loops=2),
        stage_positions=[(0, 0, 0), (100, 50, 0)],
    )
    n_events = len(list(seq))
    assert n_events == 2 * 3 * 2 * 2

    frames = run_and_collect(core, seq)

    assert len(frames) == n_events
    assert len({digest(img) for img, _ in frames}) == n_events
    # outside the clock band, frames differ for every (p, c, z) combination
    assert len({digest(img[CLOCK_ROWS:]) for img, _ in frames}) == n_events // 2
    assert {img.shape for img, _ in frames} == {(512, 512)}


def test_mda_grid_plan(core: UniMMCore) -> None:
    seq = useq.MDASequence(
        channels=["TRITC", "Cy5"],
        grid_plan=useq.GridRowsColumns(rows=2, columns=2),
    )
    frames = run_and_collect(core, seq)
    assert len(frames) == len(list(seq)) == 8
    assert len({digest(img[CLOCK_ROWS:]) for img, _ in frames}) == 8


def test_mda_time_burst(core: UniMMCore) -> None:
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0, loops=5))
    frames = run_and_collect(core, seq)
    assert len(frames) == 5
    assert len({digest(img) for img, _ in frames}) == 5


def test_timing_exposure_paces_frames(core: UniMMCore) -> None:
    """`Timing=exposure` takes the exposure time per frame; `instant` does not."""
    assert core.getProperty("Camera", "Timing") == "instant"
    core.setProperty("Camera", "SensorWidth", "64")
    core.setProperty("Camera", "SensorHeight", "64")
    # 5 x 400 ms paced: the instant run (~0.1 s) would have to stall ~2 s to
    # take as long (with 40 ms, a 0.25 s stall of a loaded machine did)
    core.setExposure(400)
    seq = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0, loops=5))
    t0 = time.perf_counter()
    run_and_collect(core, seq)
    instant = time.perf_counter() - t0
    core.setProperty("Camera", "Timing", "exposure")
    t0 = time.perf_counter()
    frames = run_and_collect(core, seq)
    paced = time.perf_counter() - t0
    assert len(frames) == 5
    assert paced >= 5 * 0.400  # a lower bound only: never flaky on a busy machine
    assert instant < paced
    with pytest.raises(ValueError, match="not allowed"):
        core.setProperty("Camera", "Timing", "slow")


# ---------------------------------------------------------------- config files


def test_repo_config_loads() -> None:
    assert REPO_DEMO_CFG.is_file()
    mmc = demo_core(REPO_DEMO_CFG)
    try:
        assert snap(mmc).shape == (512, 512)
        assert set(mmc.getAvailableConfigs("Channel")) == set(CHANNELS)
    finally:
        mmc.unloadAllDevices()


@pytest.mark.parametrize(("sizes", "expected"), [((0.65,), 0.65), ((0,), 0.0)])
def test_a_pixel_size_preset_added_to_a_copy_of_the_config_is_used(
    tmp_path: Path, sizes: tuple[float, ...], expected: float
) -> None:
    """A user adds `Res40x` (0.65 µm; or 0, uncalibrated) to a copy of the
    config: UniMMCore never matches a preset keyed on a Python device's
    property, and `demo_core` replaced it by its own 1 µm preset, so every run
    was written at 1 µm."""
    cfg = tmp_path / "edited.cfg"
    lines = [
        f"#py ConfigPixelSize,Res40x,Camera,Binning,1\n#py PixelSize_um,Res40x,{px}\n"
        for px in sizes
    ]
    cfg.write_text(REPO_DEMO_CFG.read_text() + "".join(lines))
    mmc = demo_core(cfg)
    try:
        assert mmc.getCurrentPixelSizeConfig() == "Res40x"
        assert mmc.getPixelSizeUm() == expected
    finally:
        mmc.unloadAllDevices()


def test_repo_config_is_the_packaged_one() -> None:
    # one file: configs/demo.cfg links to the one installed with the package
    assert DEMO_CONFIG.is_file()
    assert REPO_DEMO_CFG.is_symlink()
    assert REPO_DEMO_CFG.resolve() == DEMO_CONFIG.resolve()


def test_mmconfig_demo_with_cpp_adapters() -> None:
    if pymmcore_plus.find_micromanager() is None:
        pytest.skip(
            "Micro-Manager C++ DemoCamera adapters not installed "
            "(pymmcore_plus.find_micromanager() found none)"
        )
    mmc = CMMCorePlus()
    try:
        mmc.loadSystemConfiguration(MM_DEMO_CFG)
        assert mmc.getChannelGroup() == "Channel"
        assert set(mmc.getAvailableConfigs("Channel")) == set(CHANNELS)
        assert mmc.getPixelSizeUm() == 1.0
        img = snap(mmc)
        assert img.shape == (512, 512)
        assert img.dtype == np.uint16
        seq = useq.MDASequence(
            channels=["DAPI", "FITC"], z_plan=useq.ZRangeAround(range=2, step=1)
        )
        assert len(run_and_collect(mmc, seq)) == len(list(seq))
    finally:
        release_core(mmc)


def test_demo_core_prints_nothing_alarming(capfd: pytest.CaptureFixture[str]) -> None:
    # the Python rig needs no Micro-Manager: no red "run 'mmcore install'"
    from mmzarr.demo import demo_core

    if pymmcore_plus.find_micromanager() is not None:
        pytest.skip("a Micro-Manager installation exists: nothing to quiet")
    capfd.readouterr()
    core = demo_core()
    try:
        captured = capfd.readouterr()
        assert "Could not find a compatible Micro-Manager" not in captured.err
        assert "ERROR" not in captured.err
        assert core.getCameraDevice() == "Camera"
    finally:
        core.unloadAllDevices()


def test_release_core_stops_notifications_and_unloads() -> None:
    # a notification reaching Python on MMCore's own thread may run the garbage
    # collector there; freeing the core on that thread aborts the process
    mmc = demo_core()
    main = threading.get_ident()
    from_mmcore = threading.Event()

    def on_change(*_: object) -> None:
        if threading.get_ident() != main:
            from_mmcore.set()

    mmc.events.propertyChanged.connect(on_change)
    mmc.setAutoShutter(not mmc.getAutoShutter())  # MMCore notifies on its thread
    assert from_mmcore.wait(10), "control: no notification came on MMCore's thread"

    release_core(mmc)
    assert list(mmc.getLoadedDevices()) == ["Core"]
    from_mmcore.clear()
    mmc.setAutoShutter(not mmc.getAutoShutter())  # notifies, but not into Python
    assert not from_mmcore.wait(1.0)
    mmc.unloadAllDevices()
