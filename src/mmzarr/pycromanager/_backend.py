"""`unicore_backend`: pycromanager's Python engine on any pymmcore-plus core.

It relies on private internals of pycromanager and mmpycorex and checks their
versions (`TESTED_VERSIONS`).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import types
from typing import TYPE_CHECKING, Any

from mmzarr.errors import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The versions `unicore_backend` was tested with: it relies on their private
#: internals, so it refuses others unless ``check_versions=False``.
TESTED_VERSIONS: dict[str, str] = {"pycromanager": "1.0.2", "mmpycorex": "0.3.16"}


# ---- pycromanager's Python engine on any core -------------------------------------
def _camel_to_snake(name: str) -> str:  # as mmpycorex.launcher does
    s1 = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


class _SnakeCaseCore:
    """A core with mmpycorex's snake_case + TaggedImage API (what the engine calls).

    Unknown names (also camelCase ones) fall through to the wrapped core, so a
    `UniMMCore`'s Python devices are used.
    """

    def __init__(self, core: Any, launcher: Any) -> None:
        self._core = core
        self._snake = {
            _camel_to_snake(n): n for n in dir(type(core)) if not n.startswith("_")
        }
        self.TaggedImage = launcher.TaggedImage
        # bound to the proxy: it calls self.pop_next_image_md
        self.pop_next_tagged_image = types.MethodType(
            launcher.pop_next_tagged_image, self
        )

    def get_tagged_image(
        self,
        cam_index: int,
        camera: str,
        height: int,
        width: int,
        binning: Any = None,
        pixel_type: Any = None,
        roi_x_start: Any = None,
        roi_y_start: Any = None,
    ) -> Any:
        """A tagged image of camera channel `cam_index` (as mmpycorex's, fixed).

        The engine calls it once per camera channel of a snap
        (``engine.py:310-346``); mmpycorex's own takes ``get_image()``, camera
        channel 0's, for each, so with several cameras (Multi Camera) every
        image would be the first camera's. The tags are mmpycorex's
        (``launcher.py:34-52``), except with several cameras: the engine gives
        every channel the Multi Camera's name and camera channel 0's size
        (``engine.py:260-262, 345-346``), so ``Height``/``Width`` are the
        image's own and ``Camera`` its physical camera (as pymmcore-plus'
        ``getTaggedImage``).
        """
        several = self._core.getNumberOfCameraChannels() > 1
        pix = self._core.getImage(cam_index) if several else self._core.getImage()
        if several:
            height, width = (int(n) for n in pix.shape[:2])
            with contextlib.suppress(Exception):
                camera = self._core.getPhysicalCameraDevice(cam_index) or camera
        tags: dict[str, Any] = {
            "Camera": camera,
            "Height": height,
            "Width": width,
            "PixelType": pixel_type,
            "CameraChannelIndex": cam_index,
        }
        optional = {
            "Binning": binning,
            "ROI-X-start": roi_x_start,
            "ROI-Y-start": roi_y_start,
        }
        tags.update({k: v for k, v in optional.items() if v is not None})
        return self.TaggedImage(tags, pix)

    def prepare_sequence_acquisition(self, camera_label: str) -> None:
        """No-op (the engine calls it before a hardware sequence).

        MMCore ignores it since 11.13 and `UniMMCore` deprecates it; its
        DeprecationWarning, raised in the engine thread under
        ``-W error``, silently ends an acquisition with 0 images.
        """

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, self._snake.get(name, name))


def _check_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in TESTED_VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            raise MissingDependencyError(
                f'{name} is not installed: pip install "mmzarr[pycromanager]"'
            ) from None
    if found != TESTED_VERSIONS:
        want = ", ".join(f"{k}=={v}" for k, v in TESTED_VERSIONS.items())
        got = ", ".join(f"{k}=={v}" for k, v in found.items())
        raise RuntimeError(
            f"unicore_backend relies on private internals of {want} and found "
            f"{got}; install those versions, or pass check_versions=False at your "
            "own risk"
        )


@contextlib.contextmanager
def unicore_backend(core: Any, *, check_versions: bool = True) -> Iterator[Any]:
    """Run ``pycromanager.Acquisition`` on `core` with pycromanager's Python engine.

    Why it is needed: ``pycromanager.start_headless(..., python_backend=True)``
    always creates its own bare ``pymmcore.CMMCore`` (mmpycorex's
    ``create_core_instance``), so an acquisition on it has no camera, and
    mmpycorex's snake_case core class binds the C++ ``CMMCore`` methods, which
    would bypass a `UniMMCore`'s Python devices. This context manager instead
    registers a snake_case proxy of `core` (a pymmcore-plus `CMMCorePlus` or
    `UniMMCore`, e.g. `mmzarr.demo.demo_core`), so that ``Acquisition(...)``
    inside it runs pycromanager's Python engine on it. No Java and no
    Micro-Manager installation are needed. Do not pass ``directory=`` to
    ``Acquisition`` under ``-W error``: ndstorage's NDTiff writer leaks a file
    handle (ResourceWarning).

    It relies on private internals of pycromanager 1.0.2 and mmpycorex 0.3.16
    (`TESTED_VERSIONS`; tested with pymmcore-plus 0.18.1):
    ``mmpycorex.launcher._PYMMCORES`` (read by ``is_pymmcore_active``, which
    makes ``Acquisition`` pick the Python backend), the ``Engine.singleton`` of
    ``pycromanager.acquisition.acq_eng_py.internal.engine`` and
    ``mmpycorex.launcher.{TaggedImage, pop_next_tagged_image}`` (and the tags
    of its ``get_tagged_image``, which takes camera channel 0's image for
    every camera: the proxy's own gives each camera channel its image).

    Parameters
    ----------
    core
        The core to run acquisitions on.
    check_versions
        Refuse other versions of pycromanager/mmpycorex than the tested ones.

    Yields
    ------
    Any
        The snake_case proxy of `core` that the engine uses.

    Raises
    ------
    RuntimeError
        For untested versions, or when another Python backend is active.
    MissingDependencyError
        If pycromanager is not installed.
    """
    if check_versions:
        _check_versions()
    try:  # untyped packages: import_module gives `Any` attributes
        launcher = importlib.import_module("mmpycorex.launcher")
        engine_module = "pycromanager.acquisition.acq_eng_py.internal.engine"
        Engine = importlib.import_module(engine_module).Engine
    except ImportError as e:  # pragma: no cover - covered by _check_versions
        raise MissingDependencyError(
            f'pycromanager is not installed: pip install "mmzarr[pycromanager]" ({e})'
        ) from e
    pymmcores = launcher._PYMMCORES  # noqa: SLF001 - mmpycorex's core registry
    if Engine.get_instance() is not None or pymmcores:
        raise RuntimeError(
            "another pycromanager Python backend is active (start_headless or "
            "unicore_backend); stop it first"
        )
    proxy = _SnakeCaseCore(core, launcher)
    pymmcores.append(proxy)  # -> is_pymmcore_active(): Acquisition is Python
    try:
        engine = Engine(proxy)  # sets Engine.singleton
        try:
            yield proxy
        finally:
            engine.shutdown()
            del Engine.singleton
    finally:
        pymmcores.remove(proxy)  # also keeps mmpycorex's atexit off the devices
