"""Build a ready-to-use `UniMMCore` for the demo rig."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from pymmcore_plus import CMMCorePlus, DeviceType, find_micromanager
from pymmcore_plus.experimental.unicore import UniMMCore

from mmzarr.demo._devices import PIXEL_SIZE_UM

__all__ = [
    "CHANNEL_GROUP",
    "DEMO_CONFIG",
    "PIXEL_SIZE_PRESET",
    "demo_core",
    "release_core",
]

#: The bundled configuration file for the pure-Python demo rig.
DEMO_CONFIG = Path(__file__).with_name("demo.cfg")
#: Name of the config group whose presets select the channel.
CHANNEL_GROUP = "Channel"
#: Name of the pixel-size preset defined by `demo_core` when the config has none.
PIXEL_SIZE_PRESET = "Res1x"

logger = logging.getLogger("mmzarr")


def demo_core(config: str | Path | None = None) -> UniMMCore:
    """Return a `UniMMCore` with the demo rig loaded and ready for an MDA.

    Loads `config` (default: the bundled `DEMO_CONFIG`) and then works around
    known `UniMMCore` quirks: missing core roles are assigned to the first
    loaded device of the matching type, auto-shutter is disabled when there is
    no shutter, a property-less pixel-size preset (`PIXEL_SIZE_PRESET`,
    `PIXEL_SIZE_UM` µm) is defined when no pixel-size preset matches, and the
    channel preset is applied and the system state cache refreshed so that
    cache-based queries work before the first acquisition.

    Parameters
    ----------
    config : str | Path | None
        Path to a ``.cfg`` file; ``None`` loads the bundled ``demo.cfg``.

    Returns
    -------
    UniMMCore
        The configured core.  Its channel group is ``"Channel"`` with presets
        ``"DAPI"``, ``"FITC"``, ``"TRITC"`` and ``"Cy5"`` (for the bundled
        config).

    Raises
    ------
    FileNotFoundError
        When `config` is not a file (a relative path is from the working
        directory).

    Examples
    --------
    >>> import useq
    >>> core = demo_core()
    >>> core.mda.run(useq.MDASequence(channels=["DAPI", "FITC"]))
    """
    # absolute: pymmcore-plus looks for a relative path in its adapter folders
    path = Path(config if config is not None else DEMO_CONFIG).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    core = UniMMCore(mm_path=_micromanager_or_none())
    core.loadSystemConfiguration(path)
    _assign_roles(core)
    if not core.getShutterDevice():
        core.setAutoShutter(False)
    _ensure_pixel_size(core)
    _prime_channel(core)
    core.updateSystemStateCache()
    return core


def release_core(core: CMMCorePlus) -> None:
    """Stop `core`'s notifications into Python, then unload its devices.

    Call it when a process is done with a core but goes on running (a script,
    a notebook, a test suite). MMCore delivers its notifications on a C++
    thread of its own; Python's garbage collector may run on that thread and
    free the core there, and MMCore's destructor then aborts the whole process
    ("Cannot call registerCallback from within an MMEventCallback handler",
    pymmcore-plus#570). A notification reaching Python while the interpreter
    shuts down can abort it too. After this call none reaches Python, so the
    core may be dropped on any thread. Errors are suppressed: this is cleanup.

    Parameters
    ----------
    core : CMMCorePlus
        The core to release (any `CMMCorePlus`, not only `demo_core`'s).
    """
    with contextlib.suppress(Exception):
        super(CMMCorePlus, core).registerCallback(None)
    with contextlib.suppress(Exception):
        core.unloadAllDevices()


def _drop_not_found(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Could not find a compatible Micro-Manager")


def _micromanager_or_none() -> str:
    """A Micro-Manager folder for C++ adapters, or the demo's own folder.

    The Python demo rig needs no Micro-Manager: pymmcore-plus' search for one
    would log a red "Could not find ... run 'mmcore install'" error, which is
    not a problem here; a folder without adapters keeps it from searching.
    """
    log = logging.getLogger("pymmcore-plus")
    log.addFilter(_drop_not_found)
    try:
        found = find_micromanager()
    finally:
        log.removeFilter(_drop_not_found)
    return found or str(DEMO_CONFIG.parent)


def _first_device(core: UniMMCore, device_type: DeviceType) -> str:
    """Return the label of the first loaded device of `device_type`, or ``""``."""
    return next(iter(core.getLoadedDevicesOfType(device_type)), "")


def _assign_roles(core: UniMMCore) -> None:
    """Assign empty Camera/XYStage/Focus/Shutter roles to a matching device."""
    roles = (
        (core.getCameraDevice, core.setCameraDevice, DeviceType.Camera),
        (core.getXYStageDevice, core.setXYStageDevice, DeviceType.XYStage),
        (core.getFocusDevice, core.setFocusDevice, DeviceType.Stage),
        (core.getShutterDevice, core.setShutterDevice, DeviceType.Shutter),
    )
    for get_role, set_role, device_type in roles:
        if not get_role() and (label := _first_device(core, device_type)):
            set_role(label)


def _ensure_pixel_size(core: UniMMCore) -> None:
    """Select a pixel-size preset when none matches the rig's state.

    UniMMCore never matches (nor selects) a preset keyed on a Python device's
    property: the config's first preset (a user's `Res40x` added to a copy of
    the config) is defined again without properties, with its pixel size and
    affine transform, and selected; a config without one gets `Res1x`, 1 µm.
    """
    if core.getCurrentPixelSizeConfig():
        return
    defined = list(core.getAvailablePixelSizeConfigs())
    name, px, affine = PIXEL_SIZE_PRESET, PIXEL_SIZE_UM, None
    if defined:
        name = defined[0]
        px = core.getPixelSizeUmByID(name)
        affine = tuple(core.getPixelSizeAffineByID(name))
        if len(defined) > 1:
            logger.warning(
                "mmzarr.demo: no pixel-size preset matches the rig's state; "
                "selected %r, the first of %s",
                name,
                defined,
            )
        core.deletePixelSizeConfig(name)
    core.definePixelSizeConfig(name)
    core.setPixelSizeUm(name, px)
    if affine is not None:
        core.setPixelSizeAffine(name, affine)
    core.setPixelSizeConfig(name)


def _prime_channel(core: UniMMCore) -> None:
    """Apply the current (or first) channel preset to populate the state cache."""
    if not core.getChannelGroup() and core.isGroupDefined(CHANNEL_GROUP):
        core.setChannelGroup(CHANNEL_GROUP)
    group = core.getChannelGroup()
    if not group or not (presets := core.getAvailableConfigs(group)):
        return
    core.setConfig(group, core.getCurrentConfig(group) or presets[0])
