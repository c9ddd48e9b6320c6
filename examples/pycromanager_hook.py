"""Stream a Pycro-Manager acquisition into OME-Zarr with `mmzarr.pycromanager`.

One useq plan drives the acquisition: `events_from_useq` turns it into
Pycro-Manager event dicts, and `ZarrHook` (the `image_process_fn`) writes every
image where its ``Axes`` say, as it arrives.

    python examples/pycromanager_hook.py OUT.ome.zarr [--backend auto|java|python]

``--backend auto`` (default) uses a running Micro-Manager (Java, with its ZMQ
server on port 4827) when there is one. Otherwise pycromanager's Python engine
runs on mmzarr's demo rig (`mmzarr.demo.demo_core`, no Java, no Micro-Manager
install) through `mmzarr.pycromanager.unicore_backend`.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from typing import Any

import useq
from pycromanager import Acquisition

from mmzarr.pycromanager import ZarrHook, events_from_useq, unicore_backend

JAVA_PORT = 4827  # pyjavaz.DEFAULT_BRIDGE_PORT: Micro-Manager's ZMQ server


def java_running(port: int = JAVA_PORT) -> bool:
    """Whether a Micro-Manager ZMQ server answers on `port`."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.2),
    ):
        return True
    return False


def make_plan(timepoints: int) -> useq.MDASequence:
    """Two named positions, two channels, three planes, `timepoints` time points."""
    return useq.MDASequence(
        stage_positions=[
            useq.Position(x=0, y=0, z=0, name="A"),
            useq.Position(x=200, y=100, z=1, name="B"),
        ],
        time_plan=useq.TIntervalLoops(interval=0.1, loops=timepoints),
        channels=["DAPI", "FITC"],  # presets of the "Channel" group
        z_plan=useq.ZRangeAround(range=2, step=1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output directory, e.g. run.ome.zarr")
    parser.add_argument("--backend", choices=("auto", "java", "python"), default="auto")
    parser.add_argument("--timepoints", type=int, default=3)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    seq = make_plan(args.timepoints)
    use_java = args.backend == "java" or (args.backend == "auto" and java_running())
    backend: contextlib.AbstractContextManager[Any]
    core = None
    if use_java:  # Micro-Manager runs the hardware; events need no core here
        backend = contextlib.nullcontext()
        events = events_from_useq(seq)
    else:
        from mmzarr.demo import demo_core

        core = demo_core()
        backend = unicore_backend(core)
        events = events_from_useq(seq, core=core)  # grid plans use the camera FOV

    # keep_images=False: mmzarr stores the images, pycromanager does not also
    # keep them in RAM. The notification callback closes the dataset when
    # pycromanager has delivered the last image; leaving the `with` closes it too.
    # hook.watch(acq): an aborted acquisition (acq.abort()) is recorded
    # `cancelled`, even if every image had come.
    with (
        backend,
        ZarrHook(
            args.out, events=events, keep_images=False, overwrite=args.overwrite
        ) as hook,
        Acquisition(
            image_process_fn=hook, notification_callback_fn=hook.notification_callback
        ) as acq,
    ):
        hook.watch(acq)
        acq.acquire(events)
    if core is not None:
        from mmzarr.demo import release_core

        release_core(core)  # done with the rig (README: Python API)
    assert hook.settings is not None
    shapes = {im.key or "/": im.shape for im in hook.settings.images}
    engine = "Java Micro-Manager" if use_java else "Python engine on the demo rig"
    print(f"{hook.frames_written} images ({engine}) -> {args.out}: {shapes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
