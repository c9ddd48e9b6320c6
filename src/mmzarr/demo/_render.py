"""The demo camera's synthetic image: a sample seen through a focus, and a clock.

This module only renders pixels (numpy); the devices that hold the rig's state
and turn stage positions into pixel offsets are in `mmzarr.demo._devices`.

`render` draws a deterministic, cheap image (well under 1 ms for 512x512; the
texture of a channel is synthesized once per process, ~50 ms):

* the *sample* is a periodic (tileable) set of Gaussian blobs, one texture per
  filter-wheel position (channel) and three texture layers at different
  depths (``z = -3, 0, +3`` µm);
* the Z position weights the layers by a Gaussian focus profile
  (sigma 2 µm), so the image changes with Z (and differently above and below
  the focal plane);
* the camera sees a window of the sample that starts at the XY position
  (`PIXEL_SIZE_UM` µm per unbinned pixel, rounded to whole binned pixels):
  after moving the stage by ``+k * PIXEL_SIZE_UM * binning`` µm in X,
  ``after[:, :-k] == before[:, k:]`` (likewise Y and rows).  The sample is
  periodic with a period of about 1.3x the sensor size (720 px for 512), so
  adjacent fields of view (grid tiles) differ;
* intensity scales linearly with exposure (10 ms reference) and is clipped to
  ``2**BitDepth - 1``;
* the first `CLOCK_ROWS` rows are a *clock band* that depends only on the
  frame counter: zeros, plus a marker square that moves with every frame, plus
  the frame counter as 4 little-endian bytes in ``image[0, 0:4]``.  Every frame
  is therefore unique, and rows ``CLOCK_ROWS:`` depend only on the stage,
  channel, exposure, bit depth and binning (not on time).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Number of top image rows holding the frame-counter "clock band".
CLOCK_ROWS = 8
#: The exposure (ms) at which a layer in focus reaches its peak signal.
REFERENCE_EXPOSURE_MS = 10.0

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


def render(
    buffer: np.ndarray,
    frame: int,
    *,
    channel: int,
    z_um: float,
    origin: tuple[int, int],
    sensor: tuple[int, int],
    binning: int,
    exposure_ms: float,
    bit_depth: int,
) -> None:
    """Render frame number `frame` into `buffer` (the full binned sensor shape).

    Parameters
    ----------
    buffer
        The image to fill, ``(height, width)`` binned pixels.
    frame
        The frame counter, stamped into the clock band.
    channel, z_um
        Filter-wheel position (which sample texture) and focus position.
    origin
        ``(y, x)`` of the window's first pixel in the sample, in binned pixels.
    sensor
        Unbinned sensor ``(height, width)``, which sets the sample's period.
    binning, exposure_ms, bit_depth
        The camera settings the intensities depend on.
    """
    full_scale = float(2**bit_depth - 1)
    gain = _SIGNAL * full_scale * exposure_ms / REFERENCE_EXPOSURE_MS
    b = binning
    period_y, period_x = _sample_period(sensor[0]), _sample_period(sensor[1])
    layers = _binned_layers(channel, period_y, period_x, b)
    sample = _weighted_sum(_focus_weights(z_um) * np.float32(gain), layers)
    sample += np.float32(_BACKGROUND * full_scale)
    np.minimum(sample, full_scale, out=sample)
    _copy_window(buffer, sample.reshape(period_y // b, period_x // b), *origin)
    _stamp_clock(buffer, frame, marker=int(full_scale) // 2)


def _is_fft_friendly(n: int) -> bool:
    """Return True if `n` has no prime factors other than 2, 3 and 5."""
    for factor in (2, 3, 5):
        while n % factor == 0:
            n //= factor
    return n == 1


def _sample_period(sensor_pixels: int) -> int:
    """Return the sample period (unbinned px) for a sensor side of that size.

    The period is at least 1.3x the sensor side, so that neighbouring fields of
    view (e.g. grid tiles) show different parts of the sample, a multiple of 4
    (so every binning divides it) and FFT-friendly (fast texture synthesis).
    """
    period = 4 * -(-(13 * sensor_pixels) // 40)
    while not _is_fft_friendly(period):
        period += 4
    return period


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
    """Return the layers binned by block mean and flattened, read-only.

    `height` and `width` (the sample period) must be divisible by `binning`; the
    result has shape ``(L, (height // binning) * (width // binning))``.
    """
    full = _full_layers(channel, height, width)
    h, w = height // binning, width // binning
    if binning == 1:
        out = full.reshape(len(full), h * w)  # a view: no extra memory
    else:
        binned = full.reshape(len(full), h, binning, w, binning).mean(axis=(2, 4))
        out = np.ascontiguousarray(binned.reshape(len(full), h * w), np.float32)
    out.flags.writeable = False
    return out


def _focus_weights(z_um: float) -> np.ndarray:
    """Return the weight of each sample layer at focus position `z_um`."""
    weights = np.exp(-0.5 * ((z_um - _LAYER_Z_UM) / _FOCUS_SIGMA_UM) ** 2)
    return weights.astype(np.float32)


def _weighted_sum(weights: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """``weights @ layers`` on the calling thread only.

    A matmul goes through multithreaded BLAS, whose threads spin on every other
    core: the simulated camera then took ~1.5 cores and starved the writer it
    is meant to test.
    """
    out: np.ndarray = layers[0] * weights[0]
    tmp = np.empty_like(out)
    for weight, layer in zip(weights[1:], layers[1:], strict=True):
        np.multiply(layer, weight, out=tmp)
        out += tmp
    return out


def _copy_window(dst: np.ndarray, src: np.ndarray, y0: int, x0: int) -> None:
    """Copy the periodic window ``src[y0 + i, x0 + j]`` (wrapping) into `dst`.

    `src` must be at least as large as `dst` along both axes; values are cast
    to the dtype of `dst`.
    """
    h, w = dst.shape
    period_y, period_x = src.shape
    y0, x0 = y0 % period_y, x0 % period_x
    hy, wx = min(h, period_y - y0), min(w, period_x - x0)
    dst[:hy, :wx] = src[y0 : y0 + hy, x0 : x0 + wx]
    dst[:hy, wx:] = src[y0 : y0 + hy, : w - wx]
    dst[hy:, :wx] = src[: h - hy, x0 : x0 + wx]
    dst[hy:, wx:] = src[: h - hy, : w - wx]


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
