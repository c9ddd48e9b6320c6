"""Demo microscope rig of pure-Python devices for pymmcore-plus' `UniMMCore`.

`demo_core` returns a ready core (camera, XY stage, Z stage, filter wheel,
shutter) loaded from the bundled `DEMO_CONFIG` (``demo.cfg``); the channel
group ``"Channel"`` has the presets named by `CHANNELS`
(``"DAPI"``, ``"FITC"``, ``"TRITC"``, ``"Cy5"``).  The camera renders a cheap
synthetic image that depends on the stage position, the channel and a frame
counter (see `mmzarr.demo._render`), so every frame of an acquisition is
unique.

Examples
--------
>>> import useq
>>> from mmzarr.demo import demo_core
>>> core = demo_core()
>>> seq = useq.MDASequence(channels=["DAPI", "FITC"], z_plan={"range": 2, "step": 1})
>>> core.mda.run(seq)
"""

from __future__ import annotations

from mmzarr.demo._devices import (
    CHANNELS,
    PIXEL_SIZE_UM,
    DemoCamera,
    DemoFilterWheel,
    DemoShutter,
    DemoXYStage,
    DemoZStage,
)
from mmzarr.demo._render import CLOCK_ROWS
from mmzarr.demo._rig import (
    CHANNEL_GROUP,
    DEMO_CONFIG,
    PIXEL_SIZE_PRESET,
    demo_core,
    release_core,
)

__all__ = [
    "CHANNELS",
    "CHANNEL_GROUP",
    "CLOCK_ROWS",
    "DEMO_CONFIG",
    "PIXEL_SIZE_PRESET",
    "PIXEL_SIZE_UM",
    "DemoCamera",
    "DemoFilterWheel",
    "DemoShutter",
    "DemoXYStage",
    "DemoZStage",
    "demo_core",
    "release_core",
]
