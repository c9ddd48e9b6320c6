"""Pure-Python demo devices for pymmcore-plus' `UniMMCore`.

The devices simulate a small widefield microscope: a camera, an XY stage, a Z
(focus) stage, a four-position filter wheel and a shutter.  They are loaded by
the bundled ``demo.cfg`` (``#py pyDevice,...`` lines) or directly with
`UniMMCore.loadPyDevice`.  The camera's image is drawn by
`mmzarr.demo._render.render` from the rig state (see that module for how the
image depends on it).

Shared state
------------
Python devices only get a restricted core proxy (it exposes nothing but the
core's signals), so a device cannot query another device through the core.  The
devices of one core therefore share a small `_RigState` object (stage
positions, filter-wheel position, shutter state) that is looked up per core: it
is keyed on the core's signal group, which every device of that core can reach
through ``device.core.events``.  Devices that are not loaded in a core (or a
core whose signals cannot be used as a key) share one process-wide fallback
state.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pymmcore_plus import Keyword
from pymmcore_plus.experimental.unicore import (
    Device,
    ShutterDevice,
    SimpleCameraDevice,
    StageDevice,
    StateDevice,
    XYStageDevice,
)

from mmzarr.demo._render import REFERENCE_EXPOSURE_MS, render

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import DTypeLike

#: Filter-wheel labels (state 0..3); also the "Channel" preset names.
CHANNELS: tuple[str, ...] = ("DAPI", "FITC", "TRITC", "Cy5")
#: Sample-plane size of one unbinned camera pixel, in µm.
PIXEL_SIZE_UM = 1.0
_BINNINGS = (1, 2, 4)
_SENSOR_LIMITS = (64, 8192)


# ---------------------------------------------------------------------------
# shared rig state
# ---------------------------------------------------------------------------


@dataclass
class _RigState:
    """Physical state of one simulated rig (shared by the devices of one core)."""

    x_um: float = 0.0
    y_um: float = 0.0
    z_um: float = 0.0
    channel: int = 0
    shutter_open: bool = False


_RIG_STATES: weakref.WeakKeyDictionary[Any, _RigState] = weakref.WeakKeyDictionary()
_RIG_LOCK = threading.Lock()
_FALLBACK_RIG = _RigState()


def _rig_state(device: Device) -> _RigState:
    """Return the rig state shared by all demo devices loaded in `device`'s core.

    The core proxy handed to Python devices exposes only the core's signals; all
    devices of one core see the same signal group, which is used as the key.
    """
    try:
        # psygnal SignalInstance.instance is the core's signal group
        key = cast("Any", device.core.events.propertyChanged).instance
        if (state := _RIG_STATES.get(key)) is not None:
            return state
        with _RIG_LOCK:
            return _RIG_STATES.setdefault(key, _RigState())
    except (AttributeError, TypeError):  # not loaded, or key not weak-referenceable
        return _FALLBACK_RIG


# ---------------------------------------------------------------------------
# value coercion (.cfg values and many callers pass strings)
# ---------------------------------------------------------------------------


def _as_int(value: object) -> int:
    """Convert `value` (int, integral float or numeric string) to `int`."""
    number = float(cast("Any", value))
    if not number.is_integer():
        raise ValueError(f"Expected an integer value, got {value!r}.")
    return int(number)


class _IntChoices(tuple[int, ...]):
    """Allowed integer values that also accept their string spelling ("2")."""

    __slots__ = ()

    def __contains__(self, value: object) -> bool:
        try:
            return tuple.__contains__(self, _as_int(value))
        except (TypeError, ValueError):
            return False


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------


class DemoCamera(SimpleCameraDevice):
    """Simulated camera rendering a sample that depends on the rig state.

    Properties: ``Exposure`` (ms), ``Binning`` (1, 2, 4), ``BitDepth`` (8..16;
    uint8 for 8 bits, else uint16), ``SensorWidth`` / ``SensorHeight`` (unbinned
    pixels, default 512) and ``FrameCount`` (frames snapped so far; set it to
    reset the counter).  Changing binning or sensor size clears the ROI.
    Software ROI is supported through `SimpleCameraDevice` (the ROI crops the
    full frame, so a ROI below the top `CLOCK_ROWS` rows loses the frame
    stamp).  ``Timing``: ``instant`` (default) returns each frame as soon as
    it is rendered; ``exposure`` takes the exposure time per frame, as a real
    camera (and Micro-Manager's C++ DemoCamera) does, so ``Exposure`` sets the
    frame rate. See `mmzarr.demo._render` for how the image depends on the
    rig state.
    """

    #: values of the ``Timing`` property
    TIMINGS = ("instant", "exposure")

    def __init__(self) -> None:
        self._exposure_ms = REFERENCE_EXPOSURE_MS
        self._binning = 1
        self._bit_depth = 12
        self._width = 512
        self._height = 512
        self._frame = 0
        self._timing = "instant"
        super().__init__()
        self.set_property_limits(Keyword.Exposure, (0.0, 10_000.0))
        self.set_property_allowed_values(Keyword.Binning, _IntChoices(_BINNINGS))
        self._register_extra_properties()

    # -- standard camera API --------------------------------------------

    def get_exposure(self) -> float:
        """Return the exposure time in ms."""
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        """Set the exposure time in ms."""
        value = float(exposure)
        if value < 0:
            raise ValueError(f"Exposure must be >= 0 ms, got {exposure!r}.")
        self._exposure_ms = value

    def get_binning(self) -> int:
        """Return the binning factor."""
        return self._binning

    def set_binning(self, value: int) -> None:
        """Set the binning factor (1, 2 or 4); clears the ROI."""
        binning = _as_int(value)
        if binning not in _BINNINGS:
            raise ValueError(f"Binning must be one of {_BINNINGS}, got {value!r}.")
        self._binning = binning
        self.clear_roi()

    def sensor_shape(self) -> tuple[int, int]:
        """Return the binned sensor shape ``(height, width)``."""
        return self._height // self._binning, self._width // self._binning

    def dtype(self) -> DTypeLike:
        """Return uint8 for 8-bit images and uint16 otherwise."""
        return np.uint8 if self._bit_depth == 8 else np.uint16

    # -- extra properties (registered in `_register_extra_properties`) --

    def _register_extra_properties(self) -> None:
        cls = DemoCamera
        for name, getter, setter, limits in (
            ("BitDepth", cls._get_bit_depth, cls._set_bit_depth, (8, 16)),
            ("SensorWidth", cls._get_width, cls._set_width, _SENSOR_LIMITS),
            ("SensorHeight", cls._get_height, cls._set_height, _SENSOR_LIMITS),
            ("FrameCount", cls._get_frame, cls._set_frame, (0, 2**31 - 1)),
        ):
            self.register_property(
                name, getter=getter, setter=setter, limits=limits, property_type=int
            )
        self.register_property(
            "Timing",
            getter=cls._get_timing,
            setter=cls._set_timing,
            allowed_values=cls.TIMINGS,
            property_type=str,
        )

    def _get_timing(self) -> str:
        return self._timing

    def _set_timing(self, value: str) -> None:
        if value not in self.TIMINGS:
            raise ValueError(f"Timing must be one of {self.TIMINGS}, got {value!r}.")
        self._timing = value

    def _get_bit_depth(self) -> int:
        return self._bit_depth

    def _set_bit_depth(self, value: int) -> None:
        self._bit_depth = _as_int(value)

    def _get_width(self) -> int:
        return self._width

    def _set_width(self, value: int) -> None:
        self._width = _as_int(value)
        self.clear_roi()

    def _get_height(self) -> int:
        return self._height

    def _set_height(self, value: int) -> None:
        self._height = _as_int(value)
        self.clear_roi()

    def _get_frame(self) -> int:
        return self._frame

    def _set_frame(self, value: int) -> None:
        self._frame = _as_int(value)

    # -- acquisition ----------------------------------------------------

    def snap(self, buffer: np.ndarray) -> Mapping[str, str]:
        """Render the next frame into `buffer` (full binned sensor shape)."""
        t0 = time.perf_counter()
        frame, self._frame = self._frame, self._frame + 1
        rig = _rig_state(self)
        step = PIXEL_SIZE_UM * self._binning  # µm per binned pixel
        render(
            buffer,
            frame,
            channel=rig.channel,
            z_um=rig.z_um,
            origin=(round(rig.y_um / step), round(rig.x_um / step)),
            sensor=(self._height, self._width),
            binning=self._binning,
            exposure_ms=self._exposure_ms,
            bit_depth=self._bit_depth,
        )
        if self._timing == "exposure":  # the sensor integrates for the exposure
            rest = t0 + self._exposure_ms / 1000 - time.perf_counter()
            if rest > 0:
                time.sleep(rest)
        return {"DemoFrameIndex": str(frame)}


class DemoXYStage(XYStageDevice):
    """Simulated XY stage: instant moves, positions in µm, never busy."""

    def __init__(self) -> None:
        super().__init__()
        self._origin = (0.0, 0.0)  # physical position reported as (0, 0)

    def get_position_um(self) -> tuple[float, float]:
        """Return the (origin-corrected) position in µm."""
        rig = _rig_state(self)
        return rig.x_um - self._origin[0], rig.y_um - self._origin[1]

    def set_position_um(self, x: float, y: float) -> None:
        """Move to ``(x, y)`` µm (origin-corrected)."""
        rig = _rig_state(self)
        rig.x_um = float(x) + self._origin[0]
        rig.y_um = float(y) + self._origin[1]

    def set_origin_x(self) -> None:
        """Make the current X position read as 0."""
        self._origin = (_rig_state(self).x_um, self._origin[1])

    def set_origin_y(self) -> None:
        """Make the current Y position read as 0."""
        self._origin = (self._origin[0], _rig_state(self).y_um)

    def set_adapter_origin_um(self, x: float, y: float) -> None:
        """Make the current position read as ``(x, y)`` µm."""
        rig = _rig_state(self)
        self._origin = (rig.x_um - float(x), rig.y_um - float(y))

    def home(self) -> None:
        """Move to the physical home position (0, 0)."""
        rig = _rig_state(self)
        rig.x_um = rig.y_um = 0.0

    def stop(self) -> None:
        """Stop moving (moves are instantaneous: nothing to do)."""


class DemoZStage(StageDevice):
    """Simulated focus (Z) stage: instant moves, position in µm, never busy."""

    def __init__(self) -> None:
        super().__init__()
        self._origin = 0.0  # physical position reported as 0

    def get_position_um(self) -> float:
        """Return the (origin-corrected) position in µm."""
        return _rig_state(self).z_um - self._origin

    def set_position_um(self, val: float) -> None:
        """Move to `val` µm (origin-corrected)."""
        _rig_state(self).z_um = float(val) + self._origin

    def set_origin(self) -> None:
        """Make the current position read as 0."""
        self._origin = _rig_state(self).z_um

    def set_adapter_origin_um(self, newZUm: float) -> None:
        """Make the current position read as `newZUm` µm."""
        self._origin = _rig_state(self).z_um - float(newZUm)

    def home(self) -> None:
        """Move to the physical home position 0."""
        _rig_state(self).z_um = 0.0

    def stop(self) -> None:
        """Stop moving (moves are instantaneous: nothing to do)."""


class DemoFilterWheel(StateDevice):
    """Simulated filter wheel with the positions labelled by `CHANNELS`.

    Select a filter with the ``Label`` property (e.g. ``"FITC"``) or the integer
    ``State`` property; the camera renders a different sample per position.
    """

    def __init__(self) -> None:
        super().__init__(dict(enumerate(CHANNELS)))

    def get_state(self) -> int:
        """Return the current position index."""
        return _rig_state(self).channel

    def set_state(self, position: int) -> None:
        """Move to position index `position`."""
        state = _as_int(position)
        if not 0 <= state < len(CHANNELS):
            raise ValueError(f"Position must be in 0..{len(CHANNELS) - 1}.")
        _rig_state(self).channel = state


class DemoShutter(ShutterDevice):
    """Simulated shutter (open/closed); the demo camera ignores it.

    Also exposes the state as the ``State`` property (0 = closed, 1 = open).
    """

    def get_open(self) -> bool:
        """Return True if the shutter is open."""
        return _rig_state(self).shutter_open

    def set_open(self, open: bool) -> None:
        """Open (True) or close (False) the shutter."""
        _rig_state(self).shutter_open = bool(open)

    def __init__(self) -> None:
        super().__init__()
        self.register_property(
            "State",
            getter=DemoShutter._get_state,
            setter=DemoShutter._set_state,
            limits=(0, 1),
            property_type=int,
        )

    def _get_state(self) -> int:
        return int(self.get_open())

    def _set_state(self, value: int) -> None:
        self.set_open(bool(_as_int(value)))
