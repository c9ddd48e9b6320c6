"""Pure-Python demo devices for pymmcore-plus' `UniMMCore`.

The devices simulate a small widefield microscope: a camera, an XY stage, a Z
(focus) stage, a four-position filter wheel and a shutter.  They are loaded by
the bundled ``demo.cfg`` (``#py pyDevice,...`` lines) or directly with
`UniMMCore.loadPyDevice`.

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

Synthetic image
---------------
`DemoCamera.snap` renders a deterministic, cheap image (about 1 ms for 512x512):

* the *sample* is a periodic (tileable) set of Gaussian blobs, one texture per
  filter-wheel position (channel) and three texture layers at different
  depths (``z = -3, 0, +3`` µm);
* the Z position weights the layers by a Gaussian focus profile
  (sigma 2 µm), so the image changes with Z (and differently above and below
  the focal plane);
* the XY position shifts the sample by whole pixels (`PIXEL_SIZE_UM` µm per
  unbinned pixel, wrapping around): moving the stage by ``+d`` µm in X moves
  the content by ``-d / binning`` pixels along the image columns (likewise Y
  and rows);
* intensity scales linearly with exposure (10 ms reference) and is clipped to
  ``2**BitDepth - 1``;
* the first `CLOCK_ROWS` rows are a *clock band* that depends only on the
  frame counter: zeros, plus a marker square that moves with every frame, plus
  the frame counter as 4 little-endian bytes in ``image[0, 0:4]``.  Every frame
  is therefore unique, and rows ``CLOCK_ROWS:`` depend only on the stage,
  channel, exposure, bit depth and binning (not on time).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
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
    pymm_property,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import DTypeLike

__all__ = [
    "CHANNELS",
    "CLOCK_ROWS",
    "PIXEL_SIZE_UM",
    "DemoCamera",
    "DemoFilterWheel",
    "DemoShutter",
    "DemoXYStage",
    "DemoZStage",
]

#: Filter-wheel labels (state 0..3); also the "Channel" preset names.
CHANNELS: tuple[str, ...] = ("DAPI", "FITC", "TRITC", "Cy5")
#: Sample-plane size of one unbinned camera pixel, in µm.
PIXEL_SIZE_UM = 1.0
#: Number of top image rows holding the frame-counter "clock band".
CLOCK_ROWS = 8

# (blob sigma in unbinned pixels, blobs per layer) for each channel
_CHANNEL_BLOBS: tuple[tuple[float, int], ...] = (
    (7.0, 40),  # DAPI: nuclei
    (2.0, 600),  # FITC: puncta
    (3.5, 200),  # TRITC: small vesicles
    (12.0, 15),  # Cy5: large diffuse objects
)
_LAYER_Z_UM = np.array([-3.0, 0.0, 3.0])  # depth of each sample layer
_FOCUS_SIGMA_UM = 2.0  # width of the Gaussian focus profile
_BACKGROUND = 0.05  # background level, fraction of full scale
_SIGNAL = 0.7  # peak layer signal at the reference exposure, fraction of full scale
_REFERENCE_EXPOSURE_MS = 10.0
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
# image synthesis helpers
# ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _full_layers(channel: int, height: int, width: int) -> np.ndarray:
    """Return the unbinned sample layers of `channel`, shape (L, height, width).

    Each layer is a periodic sum of Gaussian blobs, normalized to a maximum of 1,
    made by low-pass filtering random impulses in Fourier space.
    """
    sigma, n_blobs = _CHANNEL_BLOBS[channel % len(_CHANNEL_BLOBS)]
    rng = np.random.default_rng(1000 + channel)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    transfer = np.exp(-2.0 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    layers = np.empty((len(_LAYER_Z_UM), height, width), dtype=np.float32)
    for layer in layers:
        impulses = np.zeros(height * width)
        positions = rng.integers(0, height * width, size=n_blobs)
        np.add.at(impulses, positions, rng.uniform(0.4, 1.0, size=n_blobs))
        spectrum = np.fft.rfft2(impulses.reshape(height, width)) * transfer
        blobs = np.fft.irfft2(spectrum, s=(height, width))
        layer[:] = blobs / blobs.max()
    return layers


@lru_cache(maxsize=32)
def _binned_layers(channel: int, height: int, width: int, binning: int) -> np.ndarray:
    """Return the layers binned by block mean, flattened to (L, h * w), read-only."""
    full = _full_layers(channel, height, width)
    h, w = height // binning, width // binning
    cropped = full[:, : h * binning, : w * binning]
    binned = cropped.reshape(len(full), h, binning, w, binning).mean(axis=(2, 4))
    out = np.ascontiguousarray(binned.reshape(len(full), h * w), dtype=np.float32)
    out.flags.writeable = False
    return out


def _focus_weights(z_um: float) -> np.ndarray:
    """Return the weight of each sample layer at focus position `z_um`."""
    weights = np.exp(-0.5 * ((z_um - _LAYER_Z_UM) / _FOCUS_SIGMA_UM) ** 2)
    return weights.astype(np.float32)


def _copy_rolled(dst: np.ndarray, src: np.ndarray, dy: int, dx: int) -> None:
    """Write ``np.roll(src, (dy, dx), axis=(0, 1))`` into `dst` (casting)."""
    h, w = src.shape
    dy, dx = dy % h, dx % w
    dst[dy:, dx:] = src[: h - dy, : w - dx]
    dst[dy:, :dx] = src[: h - dy, w - dx :]
    dst[:dy, dx:] = src[h - dy :, : w - dx]
    dst[:dy, :dx] = src[h - dy :, w - dx :]


def _stamp_clock(image: np.ndarray, frame: int, marker: int) -> None:
    """Overwrite the clock band of `image` with the frame-counter pattern.

    The band is zeroed, a square of value `marker` is drawn at a column that
    advances with `frame`, and ``image[0, 0:4]`` gets the bytes of `frame`.
    """
    rows = min(CLOCK_ROWS, image.shape[0])
    width = image.shape[1]
    image[:rows] = 0
    start = (frame * rows) % max(width - rows, 1)
    image[:rows, start : start + rows] = marker
    stamp = np.frombuffer((frame % 2**32).to_bytes(4, "little"), dtype=np.uint8)
    image[0, : len(stamp)] = stamp[:width]


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------


class DemoCamera(SimpleCameraDevice):
    """Simulated camera rendering a sample that depends on the rig state.

    Properties: ``Exposure`` (ms), ``Binning`` (1, 2, 4), ``BitDepth`` (8..16;
    uint8 for 8 bits, else uint16), ``SensorWidth`` / ``SensorHeight`` (unbinned
    pixels, default 512) and ``FrameCount`` (frames snapped so far; set it to
    reset the counter).  Changing binning or sensor size clears the ROI.
    Software ROI is supported through `SimpleCameraDevice`.
    See the module docstring for how the image depends on the rig state.
    """

    def __init__(self) -> None:
        self._exposure_ms = _REFERENCE_EXPOSURE_MS
        self._binning = 1
        self._bit_depth = 12
        self._width = 512
        self._height = 512
        self._frame = 0
        super().__init__()
        self.set_property_limits(Keyword.Exposure, (0.0, 10_000.0))
        self.set_property_allowed_values(Keyword.Binning, _IntChoices(_BINNINGS))

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

    # -- extra properties -----------------------------------------------

    @pymm_property(limits=(8, 16), name="BitDepth")
    def bit_depth(self) -> int:
        """Bits per pixel (8..16)."""
        return self._bit_depth

    @bit_depth.setter
    def bit_depth(self, value: int) -> None:
        self._bit_depth = _as_int(value)

    @pymm_property(limits=_SENSOR_LIMITS, name="SensorWidth")
    def sensor_width(self) -> int:
        """Unbinned sensor width in pixels."""
        return self._width

    @sensor_width.setter
    def sensor_width(self, value: int) -> None:
        self._width = _as_int(value)
        self.clear_roi()

    @pymm_property(limits=_SENSOR_LIMITS, name="SensorHeight")
    def sensor_height(self) -> int:
        """Unbinned sensor height in pixels."""
        return self._height

    @sensor_height.setter
    def sensor_height(self, value: int) -> None:
        self._height = _as_int(value)
        self.clear_roi()

    @pymm_property(limits=(0, 2**31 - 1), name="FrameCount")
    def frame_count(self) -> int:
        """Number of frames snapped so far (the index of the next frame)."""
        return self._frame

    @frame_count.setter
    def frame_count(self, value: int) -> None:
        self._frame = _as_int(value)

    # -- acquisition ----------------------------------------------------

    def snap(self, buffer: np.ndarray) -> Mapping[str, str]:
        """Render the next frame into `buffer` (full binned sensor shape)."""
        frame, self._frame = self._frame, self._frame + 1
        rig = _rig_state(self)
        h, w = buffer.shape[:2]
        full_scale = float(2**self._bit_depth - 1)
        gain = _SIGNAL * full_scale * self._exposure_ms / _REFERENCE_EXPOSURE_MS
        layers = _binned_layers(rig.channel, self._height, self._width, self._binning)
        image = (_focus_weights(rig.z_um) * np.float32(gain)) @ layers
        image += np.float32(_BACKGROUND * full_scale)
        np.clip(image, 0, full_scale, out=image)
        step = PIXEL_SIZE_UM * self._binning
        dy, dx = -round(rig.y_um / step), -round(rig.x_um / step)
        _copy_rolled(buffer, image.reshape(h, w), dy, dx)
        _stamp_clock(buffer, frame, marker=int(full_scale) // 2)
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

    @pymm_property(limits=(0, 1), name="State")
    def state(self) -> int:
        """1 if the shutter is open, else 0."""
        return int(self.get_open())

    @state.setter
    def state(self, value: int) -> None:
        self.set_open(bool(_as_int(value)))
