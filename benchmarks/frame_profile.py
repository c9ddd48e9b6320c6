"""Per-frame cost of `MDAWriter.frameReady`, component by component, per backend.

Drives `MDAWriter.frameReady(img, event, meta)` directly, in a loop, as
pymmcore-plus' relay thread does during a hardware-sequenced burst: the events
of a time plan at interval 0, pymmcore-plus-shaped metadata (the summary from
`pymmcore_plus.metadata.summary_metadata`, each frame's from `frame_metadata`
plus the keys the engine adds to a sequenced frame: `hardware_triggered`,
`images_remaining_in_buffer` and the camera's own metadata, taken from a real
burst on the demo core) and camera-like 512x512 uint16 frames made in advance,
so no camera time is counted.

Three kinds of run per backend, interleaved over the rounds:

- **plain**: nothing attached; gives the true wall time per frame, frames/s,
  the driving thread's CPU time and the CPU time of every other thread (the
  backend's own, mmzarr's flush thread) during the frames and the close;
- **probed**: a timer (wall and CPU time of the driving thread) wrapped around
  each function of the per-frame path (`PROBES`), on the driving thread only;
  each component's time excludes the probed functions it calls, so the
  components add up to the whole `frameReady`; `Stream._write_levels` counts
  everything inside it (the pyramid row comes from runs with
  `downsample={"levels": "auto"}`);
- **cProfile** (one run): the functions with the most own time, for detail.

A probe whose function is not found (the code changed) is reported and its
time stays in the caller's row. Reported, not a target.

Run alone: ``python benchmarks/profile.py [--quick] [--out DIR]`` (about 1
min; ``--quick``: 128x128, 100 frames).
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import logging
import os
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from _harness import BACKENDS, Config, alternate, log, make_ring, median, remove
from _session import Section, run_alone

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import numpy as np
    import useq

#: top functions listed from the cProfile run
TOP_FUNCTIONS = 12
BACKEND = "<backend>"  # stands for the backend's module / class in `PROBES`


@dataclass(frozen=True)
class Probe:
    """A function on the per-frame path, timed as (part of) one component."""

    component: str
    module: str  # "mmzarr._stream", or BACKEND
    name: str  # "Class.method" or "function" (a module global)
    #: time of the probed functions it calls stays here too
    inclusive: bool = False


HANDLER = "handler: frameReady (lock, index, checks)"
META = "handler: frame metadata dict"
APPEND = "stream: append (lock, glue)"
CHECKS = "checks: open, shape/dtype"
ROUTING = "routing: place, is_written, mark"
ROOM = "backpressure: room for the frame?"
WAIT = "backpressure: waiting (storage behind)"
FLUSH = "backend flush (when full)"
JSON = "frame log: JSON encode"
LOG = "frame log: record (queued; written by the flush thread)"
LATEST = "recent frames (live view)"
RANGES = "display-range sampling"
PYRAMID = "pyramid: 2x2 downsample (level writes in the backend row)"
WRITE = "backend write (its Python + library call)"

#: the per-frame path; rows of the table in this order (a function that is
#: renamed is reported missing, and its time stays in its caller's row)
PROBES: tuple[Probe, ...] = (
    Probe(HANDLER, "mmzarr.handlers._pymmcore", "MDAWriter.frameReady"),
    Probe(META, "mmzarr.handlers._pymmcore", "_frame_metadata"),
    Probe(APPEND, "mmzarr._stream", "Stream.append"),
    Probe(CHECKS, "mmzarr._stream", "Stream._check_open"),
    Probe(CHECKS, "mmzarr._stream", "Stream._check_frame"),
    Probe(ROUTING, "mmzarr._routing", "Router.place"),
    Probe(ROUTING, "mmzarr._routing", "Router.is_written"),
    Probe(ROUTING, "mmzarr._routing", "Router.mark"),
    Probe(ROOM, "mmzarr.backends._pressure", "Backpressure.admit"),
    Probe(ROOM, "mmzarr.backends._pressure", "Backpressure.accepted"),
    Probe(WAIT, "mmzarr.backends._pressure", "Backpressure._wait"),
    Probe(FLUSH, "mmzarr._stream", "Stream._flush"),
    Probe(FLUSH, BACKEND, "flush"),
    Probe(JSON, "mmzarr._metadata", "_dumps"),
    Probe(LOG, "mmzarr._stream", "Stream._log_frame"),
    Probe(LOG, "mmzarr._metadata", "FrameLog.write"),
    Probe(LATEST, "mmzarr._recent", "RecentFrames.keep"),
    Probe(RANGES, "mmzarr._dataset", "ChannelRanges.update"),
    Probe(PYRAMID, "mmzarr._pyramid", "downsample_frame"),
    Probe(WRITE, BACKEND, "write"),
)
COMPONENTS = tuple(dict.fromkeys(p.component for p in PROBES))
#: options of the runs with resolution levels (512x512 -> one level, 256x256)
LEVELS = {"downsample": {"levels": "auto"}}


# ---------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------


@dataclass
class Probes:
    """Timers wrapped around `PROBES` (installed by `install`, removed by `remove`)."""

    backend_class: type
    #: per component: wall seconds, CPU seconds of the driving thread, calls
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    found: set[str] = field(default_factory=set)  # components with a probe
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _driver: int = 0
    _stack: list[list[float]] = field(default_factory=list)
    _inside: int = 0  # depth of inclusive probes being timed

    def reset(self) -> None:
        """Zero the counts; time calls made on the current thread from now on."""
        # in place: the installed timers hold these dicts
        for counts in (self.wall, self.cpu):
            counts.clear()
            counts.update(dict.fromkeys(COMPONENTS, 0.0))
        self.calls.clear()
        self.calls.update(dict.fromkeys(COMPONENTS, 0))
        self._driver = threading.get_ident()
        self._stack.clear()

    def stop(self) -> None:
        """Time nothing more (the timers stay installed until `remove`)."""
        self._driver = 0

    def install(self) -> None:
        self.reset()
        for probe in PROBES:
            try:
                owner, attr = self._resolve(probe)
            except (ImportError, AttributeError):
                where = (
                    self.backend_class.__name__
                    if probe.module == BACKEND
                    else probe.module
                )
                self.missing.append(f"{where}.{probe.name}")
                continue
            self.patch(owner, attr, probe)
            self.found.add(probe.component)

    def remove(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _resolve(self, probe: Probe) -> tuple[Any, str]:
        if probe.module == BACKEND:
            owner: Any = self.backend_class
            attr = probe.name
        else:
            owner = importlib.import_module(probe.module)
            *path, attr = probe.name.split(".")
            for part in path:
                owner = getattr(owner, part)
        getattr(owner, attr)  # AttributeError when the code changed
        return owner, attr

    def patch(self, owner: Any, attr: str, probe: Probe) -> None:
        """Time `owner.attr` as `probe` (undone by `remove`)."""
        own = isinstance(owner, type) and attr in owner.__dict__
        original = owner.__dict__[attr] if own else getattr(owner, attr)
        owner_is_class = isinstance(owner, type)
        fn = original
        component, inclusive = probe.component, probe.inclusive
        wall, cpu, calls, stack = self.wall, self.cpu, self.calls, self._stack
        perf, thread_time = time.perf_counter, time.thread_time
        ident = threading.get_ident

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if ident() != self._driver or self._inside:
                return fn(*args, **kwargs)
            stack.append([0.0, 0.0])  # time of the probed calls inside this one
            if inclusive:
                self._inside += 1
            t0, c0 = perf(), thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                dc, dt = thread_time() - c0, perf() - t0
                if inclusive:
                    self._inside -= 1
                inner_t, inner_c = stack.pop()
                wall[component] += dt - inner_t
                cpu[component] += dc - inner_c
                calls[component] += 1
                if stack:
                    stack[-1][0] += dt
                    stack[-1][1] += dc

        setattr(owner, attr, timed)
        if owner_is_class and not own:  # inherited: remove the override
            self._undo.append(lambda: delattr(owner, attr))
        else:
            self._undo.append(lambda: setattr(owner, attr, original))


def probe_overhead_us(n: int = 20000) -> float:
    """Time one probe adds to a call (µs), measured on an empty function."""

    def empty() -> None:
        return None

    owner = types.SimpleNamespace(fn=empty)
    probes = Probes(backend_class=object)
    probes.reset()
    probes.patch(owner, "fn", Probe(HANDLER, "", "fn"))
    timed = owner.fn
    t0 = time.perf_counter()
    for _ in range(n):
        timed()
    t1 = time.perf_counter()
    for _ in range(n):
        empty()
    t2 = time.perf_counter()
    probes.remove()
    return max(0.0, ((t1 - t0) - (t2 - t1)) / n * 1e6)


# ---------------------------------------------------------------------------
# CPU time of threads
# ---------------------------------------------------------------------------


def thread_ticks() -> dict[int, tuple[str, int]]:
    """`{native thread id: (name, user + system clock ticks)}` of this process.

    Python threads are named by `threading`, the others by their `comm` (the
    backend libraries' threads: acquire-zarr's and zarrs' are `python`,
    tensorstore's `ts_pool_worker`).
    """
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
    out: dict[int, tuple[str, int]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm", encoding="ascii") as f:
                comm = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(tid)) or f"native ({comm})"
        out[int(tid)] = (_thread_group(name), int(fields[11]) + int(fields[12]))
    return out


def _thread_group(name: str) -> str:
    """A thread name without its number (`ThreadPoolExecutor-0_1`: `ThreadPool…`)."""
    head = name.split(" (")[0]
    return head.rstrip("0123456789_-") or head


def ticks_by_group(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], skip: int
) -> dict[str, float]:
    """CPU seconds per thread group between two `thread_ticks`, without `skip`."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid, (name, ticks) in after.items():
        if tid == skip:
            continue
        spent = (ticks - before.get(tid, (name, 0))[1]) / hz
        if spent > 0:
            out[name] = out.get(name, 0.0) + spent
    return out


# ---------------------------------------------------------------------------
# the burst being replayed
# ---------------------------------------------------------------------------


@dataclass
class Burst:
    """What pymmcore-plus hands an output handler during a sequenced burst."""

    sequence: useq.MDASequence
    summary: dict[str, Any]
    events: list[useq.MDAEvent]
    metas: list[dict[str, Any]]
    ring: list[np.ndarray]


def make_burst(side: int, frames: int) -> Burst:
    """The events and metadata of a `frames`-frame burst on the demo core."""
    import useq
    from pymmcore_plus.metadata import frame_metadata, summary_metadata

    from mmzarr.demo import demo_core

    logging.getLogger("pymmcore-plus").setLevel(logging.ERROR)
    core = demo_core()
    cam = core.getCameraDevice()
    core.setProperty(cam, "SensorWidth", side)
    core.setProperty(cam, "SensorHeight", side)
    # the camera's own metadata of a sequenced frame, from a real burst
    seen: list[dict[str, Any]] = []
    core.mda.events.frameReady.connect(lambda img, ev, meta: seen.append(meta))
    core.mda.run(useq.MDASequence(time_plan={"interval": 0, "loops": 2}))
    camera_meta = dict(seen[-1].get("camera_metadata", {}))
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": frames})
    summary = dict(summary_metadata(core, mda_sequence=seq))
    events = list(seq)
    exposure = core.getExposure()
    metas = []
    for i, event in enumerate(events):
        meta = dict(
            frame_metadata(
                core,
                runner_time_ms=i * exposure,
                camera_device=cam,
                mda_event=event,
            )
        )
        meta["hardware_triggered"] = True
        meta["images_remaining_in_buffer"] = 0
        meta["camera_metadata"] = {**camera_meta, "ImageNumber": str(i)}
        metas.append(meta)
    core.unloadAllDevices()
    return Burst(seq, summary, events, metas, make_ring(side))


# ---------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------


def run_burst(
    burst: Burst,
    path: Path,
    backend: str,
    *,
    probes: Probes | None = None,
    profiler: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Open an `MDAWriter`, feed it the burst's frames, close it; timings."""
    from mmzarr import MDAWriter

    remove(path)
    writer = MDAWriter(path, backend=backend, **options)
    writer.sequenceStarted(burst.sequence, burst.summary)
    if writer.error is not None:
        raise writer.error
    gc.collect()
    os.sync()
    n, ring = len(burst.events), burst.ring
    me = threading.get_native_id()
    ticks0 = thread_ticks()
    if probes is not None:
        probes.reset()
    p0, c0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for i, (event, meta) in enumerate(zip(burst.events, burst.metas, strict=True)):
        writer.frameReady(ring[i % len(ring)], event, meta)
    if profiler is not None:
        profiler.disable()
    if probes is not None:
        probes.stop()  # the close is timed as a whole, below
    t1, c1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
    ticks1 = thread_ticks()
    writer.sequenceFinished(burst.sequence)
    t2, c2, p2 = time.perf_counter(), time.thread_time(), time.process_time()
    written = writer.frames_written
    writer.close()  # raises the run's error, if any
    remove(path)
    if written != n:
        raise RuntimeError(f"{backend}: wrote {written} of {n} frames")
    return {
        "loop_s": t1 - t0,
        "driver_cpu_s": c1 - c0,
        "others_cpu_s": (p1 - p0) - (c1 - c0),
        "close_s": t2 - t1,
        "close_driver_cpu_s": c2 - c1,
        "close_others_cpu_s": (p2 - p1) - (c2 - c1),
        "threads_s": ticks_by_group(ticks0, ticks1, me),
        "wall_s": dict(probes.wall) if probes is not None else {},
        "cpu_s": dict(probes.cpu) if probes is not None else {},
        "calls": dict(probes.calls) if probes is not None else {},
    }


def top_functions(profiler: Any, frames: int, n: int = TOP_FUNCTIONS) -> list[Any]:
    """The `n` functions with the most own time: [name, calls/frame, µs/frame]."""
    import pstats

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_, calls, own, _cum, _) in stats.items():
        where = file
        if "site-packages/" in file:
            where = file.split("site-packages/", 1)[1]
        elif "/src/" in file:
            where = file.split("/src/", 1)[1]
        elif "/lib/python" in file:  # the standard library: drop "3.11/"
            where = file.split("/lib/python", 1)[1].partition("/")[2]
        label = f"{func}" if file == "~" else f"{where}:{line}({func})"
        rows.append([label, calls / frames, own / frames * 1e6])
    rows.sort(key=lambda r: -r[2])
    return rows[:n]


def backend_class(name: str) -> type:
    """The class of backend `name` (constructing one does no I/O)."""
    from mmzarr.backends import get_backend

    return type(get_backend(name))


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    side, n, reps = cfg.mda_side, cfg.mda_frames, cfg.mda_reps
    burst = make_burst(side, n)
    overhead = probe_overhead_us()
    log(
        f"\n-- profile: MDAWriter.frameReady, {side}x{side} uint16, {n} frames per "
        f"run (a burst replayed), {reps} round(s); probe overhead "
        f"{overhead:.2f} µs per probed call --"
    )
    path = scratch / "profile.ome.zarr"
    kinds = ["plain", "probed", "levels"]
    out: dict[str, Any] = {
        "side": side,
        "frames": n,
        "rounds": reps,
        "probe_overhead_us": overhead,
        "backends": {},
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        b: {k: [] for k in kinds} for b in BACKENDS
    }
    missing: set[str] = set()
    found: set[str] = set()
    for b in BACKENDS:  # warm up (imports, the first dataset of a backend)
        run_burst(burst, path, b)
    for rep in range(reps):
        for b in alternate(BACKENDS, rep):
            for kind in alternate(kinds, rep):
                probes = None
                if kind != "plain":
                    probes = Probes(backend_class(b))
                    probes.install()
                    missing.update(probes.missing)
                    found.update(probes.found)
                try:
                    options = LEVELS if kind == "levels" else {}
                    result = run_burst(burst, path, b, probes=probes, **options)
                finally:
                    if probes is not None:
                        probes.remove()
                runs[b][kind].append(result)
    import cProfile as cprofile

    for b in BACKENDS:
        profiler = cprofile.Profile()
        run_burst(burst, path, b, profiler=profiler)
        out["backends"][b] = summarize(runs[b], n)
        out["backends"][b]["top_functions"] = top_functions(profiler, n)
    out["missing_probes"] = sorted(missing)
    out["unprobed_components"] = [c for c in COMPONENTS if c not in found]
    report(out)
    return out


def _us(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def summarize(runs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    """Medians over the rounds, in µs per frame."""
    plain, probed, levels = runs["plain"], runs["probed"], runs["levels"]

    def per_component(rs: list[dict[str, Any]], clock: str) -> dict[str, float]:
        return {c: median(_us(r[clock][c], n) for r in rs) for c in COMPONENTS}

    wall, cpu = per_component(probed, "wall_s"), per_component(probed, "cpu_s")
    # the pyramid row comes from the runs with levels (the same probes)
    wall[PYRAMID] = per_component(levels, "wall_s")[PYRAMID]
    cpu[PYRAMID] = per_component(levels, "cpu_s")[PYRAMID]
    threads: dict[str, float] = {}
    for r in plain:
        for name, s in r["threads_s"].items():
            threads[name] = threads.get(name, 0.0) + _us(s, n) / len(plain)
    loop_us = median(_us(r["loop_s"], n) for r in plain)

    def total(rs: list[dict[str, Any]], clock: str) -> float:
        return median(sum(_us(s, n) for s in r[clock].values()) for r in rs)

    return {
        "wall_us": wall,
        "cpu_us": cpu,
        "calls_per_frame": {c: probed[0]["calls"][c] / n for c in COMPONENTS},
        "probed_wall_us": total(probed, "wall_s"),
        "probed_cpu_us": total(probed, "cpu_s"),
        "levels_wall_us": total(levels, "wall_s"),
        "levels_cpu_us": total(levels, "cpu_s"),
        "frame_us": loop_us,
        "frames_per_s": 1e6 / loop_us,
        "driver_cpu_us": median(_us(r["driver_cpu_s"], n) for r in plain),
        "others_cpu_us": median(_us(r["others_cpu_s"], n) for r in plain),
        "close_ms": median(r["close_s"] * 1e3 for r in plain),
        "close_others_cpu_us": median(_us(r["close_others_cpu_s"], n) for r in plain),
        "end_to_end_frames_per_s": median(
            n / (r["loop_s"] + r["close_s"]) for r in plain
        ),
        "threads_us": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "runs": runs,
    }


def table_rows(res: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(label, one "CPU / wall" cell per backend) rows of the report."""
    names = list(res)

    def pair(cpu: float, wall: float) -> str:
        return f"{cpu:.0f} / {wall:.0f}"

    rows = []
    for c in COMPONENTS:
        label = c + (" (levels on)" if c == PYRAMID else "")
        rows.append(
            (label, [pair(res[b]["cpu_us"][c], res[b]["wall_us"][c]) for b in names])
        )
    rows += [
        (
            "**frameReady, probed (sum of the rows)**",
            [pair(res[b]["probed_cpu_us"], res[b]["probed_wall_us"]) for b in names],
        ),
        (
            "**frameReady without probes**",
            [pair(res[b]["driver_cpu_us"], res[b]["frame_us"]) for b in names],
        ),
        (
            "frames/s (frameReady without probes)",
            [f"{res[b]['frames_per_s']:.0f}" for b in names],
        ),
        (
            "other threads, CPU during the frames (backend's own)",
            [f"{res[b]['others_cpu_us']:.0f}" for b in names],
        ),
        (
            "other threads, CPU during the close, per frame",
            [f"{res[b]['close_others_cpu_us']:.0f}" for b in names],
        ),
        ("close, ms", [f"{res[b]['close_ms']:.0f}" for b in names]),
        (
            "frames/s including the close",
            [f"{res[b]['end_to_end_frames_per_s']:.0f}" for b in names],
        ),
        (
            "frameReady with levels (`downsample` auto), probed",
            [pair(res[b]["levels_cpu_us"], res[b]["levels_wall_us"]) for b in names],
        ),
    ]
    return rows


def report(out: dict[str, Any]) -> None:
    res = out["backends"]
    names = list(res)
    rows = table_rows(res)
    width = max(len(label) for label, _ in rows)
    log(
        f"{'µs per frame, median: CPU / wall':<{width}}"
        + "".join(f"{b:>16}" for b in names)
    )
    for label, cells in rows:
        log(f"{label.replace('**', ''):<{width}}" + "".join(f"{c:>16}" for c in cells))
    for b in names:
        threads = ", ".join(
            f"{k} {v:.0f}" for k, v in res[b]["threads_us"].items() if v >= 1
        )
        log(f"{b}: other threads' CPU µs/frame during the frames: {threads or '-'}")
    log(
        "probes not found (renamed or absent in this version; their time is in "
        "the caller's row): " + (", ".join(out["missing_probes"]) or "none")
    )
    if out["unprobed_components"]:
        log("components with no probe found: " + ", ".join(out["unprobed_components"]))
    for b in names:
        log(f"\n{b}: top functions by own time (cProfile; its overhead included)")
        log(f"{'function':<72} {'calls/fr':>8} {'µs/fr':>7}")
        for label, calls, us in res[b]["top_functions"]:
            log(f"{label[-72:]:<72} {calls:>8.2f} {us:>7.1f}")
    log("\nas a Markdown table (µs per frame, CPU of the driving thread / wall):")
    log("| component | " + " | ".join(names) + " |")
    log("|---|" + "---:|" * len(names))
    for label, cells in rows:
        log(f"| {label} | " + " | ".join(cells) + " |")


SECTION = Section("profile", run)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
