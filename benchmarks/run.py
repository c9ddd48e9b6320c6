"""mmzarr benchmark: write throughput, MDA overhead, plates and memory, side by side.

Run from the repository root (in the dev environment, with ome-writers and
matplotlib installed)::

    python benchmarks/run.py            # full run, < 10 min
    python benchmarks/run.py --quick    # small sizes, < 2 min (smoke test)
    python benchmarks/run.py --out DIR  # write latest.json / latest.png to DIR

Every measurement writes real data to a scratch directory on the same disk as
the repository (never /tmp when that is tmpfs) and deletes it afterwards. All
timings include opening and closing the dataset, and every number counts only
durable data: mmzarr's backends fsync at close, acquire-zarr and tensorstore
fsync what they write; where a writer does not (ome-writers' zarr-python and
zarrs-python backends) an fsync of every file it wrote is added to its time.
See benchmarks/README.md for what each number means.

ome-writers is a benchmark-only dependency: it is imported here and nowhere else.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
MIB = 1024**2
MB = 1e6

#: mmzarr backends, and the ome-writers backend each is compared with. mmzarr's
#: "zarr-python" backend runs through the zarrs codec pipeline when zarrs is
#: installed, as ome-writers' "zarrs-python" backend does.
BACKENDS = ("acquire-zarr", "tensorstore", "zarr-python")
OME_BACKEND = {
    "acquire-zarr": "acquire-zarr",
    "tensorstore": "tensorstore",
    "zarr-python": "zarrs-python",
}
#: ome-writers backends whose close leaves data unsynced (the benchmark fsyncs
#: their files and counts the time); acquire-zarr and tensorstore fsync writes.
OME_UNSYNCED = {"zarrs-python", "zarr-python"}
COMPRESSIONS = ("none", "blosc-lz4", "blosc-zstd")
DEFAULT_BACKEND = "acquire-zarr"

TARGET_VS_RAW = 0.9
TARGET_VS_OME = 1.0
TARGET_MDA = 1.10
TARGET_PLATE = 0.8
MEM_SLACK = 128 * MIB
MEM_SAME = 0.10


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    name: str
    reps: int
    #: (frame side, frames per run) of the stream matrix
    streams: tuple[tuple[int, int], ...]
    mda_side: int
    mda_frames: int
    mda_reps: int
    #: exposure (ms) of the paced camera: 512^2 uint16 at 5 ms is ~105 MB/s
    mda_exposure_ms: float
    plate_side: int
    plate_channels: tuple[str, ...]
    plate_reps: int
    mem_side: int
    mem_frames: tuple[int, int] = (1000, 4000)


FULL = Config(
    name="full",
    reps=3,
    streams=((2048, 64), (512, 512)),
    mda_side=512,
    mda_frames=400,
    mda_reps=5,
    mda_exposure_ms=5.0,
    plate_side=512,
    plate_channels=("DAPI", "FITC"),
    plate_reps=2,
    mem_side=512,
)
QUICK = Config(
    name="quick",
    reps=1,
    streams=((512, 16), (128, 64)),
    mda_side=128,
    mda_frames=100,
    mda_reps=1,
    mda_exposure_ms=5.0,
    plate_side=64,
    plate_channels=("DAPI",),
    plate_reps=1,
    mem_side=64,
)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def log(msg: str = "") -> None:
    print(msg, flush=True)


def median(values: Iterable[float]) -> float:
    vals = list(values)
    return float(statistics.median(vals)) if vals else float("nan")


def fsync_tree(path: Path) -> None:
    """fsync every file and directory under `path` (and `path` itself)."""
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    for dirpath, _, files in os.walk(path):
        for name in [*(os.path.join(dirpath, f) for f in files), dirpath]:
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def disk_usage(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    )


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def settle() -> None:
    """Start a timed run with no dirty pages and no garbage from the last one."""
    gc.collect()
    os.sync()


def fs_type(path: Path) -> str:
    """File system type of the mount holding `path` (from /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1]
                inside = (
                    mount == "/"
                    or resolved == mount
                    or resolved.startswith(mount.rstrip("/") + "/")
                )
                if inside and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def git_state() -> dict[str, str]:
    """Commit of the repository and whether src/ has uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_dirty": "yes" if git("status", "--porcelain", "--", "src") else "no",
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "mmzarr",
        "ome-writers",
        "acquire-zarr",
        "tensorstore",
        "zarr",
        "zarrs",
        "numpy",
        "pymmcore-plus",
        "useq-schema",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def make_ring(side: int, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Camera-like uint16 frames: blobs on a background, shot and read noise.

    12-bit range, background ~100 counts, blobs up to ~3000 counts, Poisson-like
    noise (sqrt of the signal) plus read noise; blosc compresses it ~2x.
    """
    rng = np.random.default_rng(seed)
    impulses = np.zeros((side, side), np.float32)
    n_blobs = max(8, side * side // 2000)
    impulses.flat[rng.integers(0, side * side, n_blobs)] = rng.uniform(0.3, 1, n_blobs)
    sigma = max(2.0, side / 400)
    ky = np.fft.fftfreq(side)[:, None]
    kx = np.fft.rfftfreq(side)[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (ky**2 + kx**2))
    smooth = np.fft.irfft2(np.fft.rfft2(impulses) * kernel, s=(side, side))
    signal = (100 + 3000 * smooth / smooth.max()).astype(np.float32)
    noise_scale = np.sqrt(signal)
    ring = []
    for _ in range(n):
        noise = rng.standard_normal((side, side), dtype=np.float32)
        frame = (
            signal
            + noise * noise_scale
            + 2 * rng.standard_normal((side, side), dtype=np.float32)
        )
        ring.append(np.clip(frame, 0, 4095).astype(np.uint16))
    return ring


# ---------------------------------------------------------------------------
# 1-3: streams (mmzarr x backend x compression, raw write, ome-writers)
# ---------------------------------------------------------------------------


@dataclass
class Run:
    """One timed write."""

    seconds: float  # open -> durable (close, plus fsync where the writer skips it)
    open_s: float = 0.0
    append_s: float = 0.0
    close_s: float = 0.0
    sync_s: float = 0.0
    stored_bytes: int = 0


def _time_run(
    path: Path,
    open_: Callable[[], Any],
    append: Callable[[Any, int], None],
    close: Callable[[Any], None],
    n: int,
    *,
    sync_after: bool,
) -> Run:
    remove(path)
    settle()
    t0 = time.perf_counter()
    handle = open_()
    t1 = time.perf_counter()
    for i in range(n):
        append(handle, i)
    t2 = time.perf_counter()
    close(handle)
    t3 = time.perf_counter()
    if sync_after:
        fsync_tree(path)
    t4 = time.perf_counter()
    run = Run(
        seconds=t4 - t0,
        open_s=t1 - t0,
        append_s=t2 - t1,
        close_s=t3 - t2,
        sync_s=t4 - t3,
        stored_bytes=disk_usage(path),
    )
    remove(path)
    return run


def run_raw(path: Path, ring: Sequence[np.ndarray], n: int) -> Run:
    """The disk's limit: the same bytes with `tofile` into one file, then fsync."""

    def open_() -> Any:
        return open(path, "wb")  # closed in close()

    def append(f: Any, i: int) -> None:
        ring[i % len(ring)].tofile(f)

    def close(f: Any) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()

    return _time_run(path, open_, append, close, n, sync_after=False)


def mmzarr_settings(side: int, n: int, compression: str, **options: Any) -> Any:
    import useq

    from mmzarr import AcquisitionSettings

    seq = useq.MDASequence(time_plan={"interval": 0, "loops": n})
    return AcquisitionSettings.from_useq(
        seq,
        image_shape=(side, side),
        dtype="uint16",
        pixel_size_um=1.0,
        compression=compression,
        **options,
    )


def run_mmzarr(
    path: Path,
    ring: Sequence[np.ndarray],
    n: int,
    backend: str,
    compression: str,
    **options: Any,
) -> Run:
    from mmzarr import create_stream

    settings = mmzarr_settings(ring[0].shape[0], n, compression, **options)

    def open_() -> Any:
        return create_stream(path, settings, backend=backend)

    def append(stream: Any, i: int) -> None:
        stream.append(ring[i % len(ring)])

    def close(stream: Any) -> None:
        stream.close()
        if stream.status != "complete":
            raise RuntimeError(f"mmzarr {backend}: stream ended {stream.status!r}")

    return _time_run(path, open_, append, close, n, sync_after=False)


def run_ome_writers(
    path: Path,
    ring: Sequence[np.ndarray],
    n: int,
    backend: str,
    compression: str,
) -> Run:
    import ome_writers as ow

    side = ring[0].shape[0]
    settings = ow.AcquisitionSettings(
        root_path=str(path),
        dimensions=ow.dims_from_standard_axes({"t": n, "y": side, "x": side}),
        dtype="uint16",
        compression=compression,
        format=ow.OmeZarrFormat(backend=backend),  # type: ignore[arg-type]
        overwrite=True,
    )

    def open_() -> Any:
        return ow.create_stream(settings)

    def append(stream: Any, i: int) -> None:
        stream.append(ring[i % len(ring)])

    def close(stream: Any) -> None:
        stream.close()

    return _time_run(path, open_, append, close, n, sync_after=backend in OME_UNSYNCED)


@dataclass
class CaseResult:
    """All runs of one (writer, backend, compression, size) case."""

    writer: str  # "raw", "mmzarr", "ome-writers"
    backend: str
    compression: str
    side: int
    frames: int
    runs: list[Run] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.frames * self.side * self.side * 2

    @property
    def mbps(self) -> float:
        return median(self.nbytes / r.seconds / MB for r in self.runs)

    @property
    def spread(self) -> float:
        """(max - min) / median of the runs' MB/s (noise indicator)."""
        vals = [self.nbytes / r.seconds / MB for r in self.runs]
        return (max(vals) - min(vals)) / median(vals) if len(vals) > 1 else 0.0

    @property
    def ratio(self) -> float:
        """Uncompressed / stored bytes."""
        stored = median(r.stored_bytes for r in self.runs)
        return self.nbytes / stored if stored else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "writer": self.writer,
            "backend": self.backend,
            "compression": self.compression,
            "side": self.side,
            "frames": self.frames,
            "bytes": self.nbytes,
            "mb_per_s": self.mbps,
            "spread": self.spread,
            "compression_ratio": self.ratio,
            "runs": [asdict(r) for r in self.runs],
        }


def bench_streams(cfg: Config, scratch: Path) -> dict[str, Any]:
    """Sections 1-3 for every frame size of the config."""
    out: dict[str, Any] = {}
    for side, n in cfg.streams:
        t_section = time.perf_counter()
        ring = make_ring(side)
        raw = CaseResult("raw", "-", "none", side, n)
        cases: dict[tuple[str, str, str], CaseResult] = {}
        for comp in COMPRESSIONS:
            for b in BACKENDS:
                cases[("mmzarr", b, comp)] = CaseResult("mmzarr", b, comp, side, n)
                ob = OME_BACKEND[b]
                cases[("ome-writers", ob, comp)] = CaseResult(
                    "ome-writers", ob, comp, side, n
                )
        log(
            f"\n-- streams {side}x{side} uint16, {n} frames/run "
            f"({n * side * side * 2 / MIB:.0f} MiB), {cfg.reps} rounds --"
        )
        for rep in range(cfg.reps):
            for comp in COMPRESSIONS:
                raw.runs.append(run_raw(scratch / "raw.bin", ring, n))
                for b in BACKENDS:
                    pair = [
                        ("mmzarr", b, run_mmzarr),
                        ("ome-writers", OME_BACKEND[b], run_ome_writers),
                    ]
                    if rep % 2:  # alternate who goes first
                        pair.reverse()
                    for writer, name, fn in pair:
                        case = cases[(writer, name, comp)]
                        case.runs.append(
                            fn(scratch / "bench.ome.zarr", ring, n, name, comp)
                        )
            log(
                f"   round {rep + 1}/{cfg.reps} done "
                f"({time.perf_counter() - t_section:.0f} s)"
            )
        out[str(side)] = {
            "side": side,
            "frames": n,
            "raw": raw,
            "cases": cases,
        }
    return out


def summarize_streams(streams: dict[str, Any]) -> dict[str, Any]:
    """Ratios vs raw and vs ome-writers, printed as a table."""
    summary: dict[str, Any] = {}
    for key, block in streams.items():
        raw: CaseResult = block["raw"]
        cases: dict[tuple[str, str, str], CaseResult] = block["cases"]
        side, n = block["side"], block["frames"]
        log(
            f"\n== Streams {side}x{side} uint16, {n} frames/run "
            f"({n * side * side * 2 / MIB:.0f} MiB), median of {len(raw.runs)} raw / "
            f"{len(next(iter(cases.values())).runs)} per case =="
        )
        log(
            f"raw flushed write (tofile + fsync): {raw.mbps:7.0f} MB/s "
            f"(spread {raw.spread:.0%})"
        )
        header = (
            f"{'backend':<13} {'compr.':<10} {'mmzarr MB/s':>11} {'x raw':>6} "
            f"{'ome-w backend':<13} {'ome-w MB/s':>10} {'x raw':>6} "
            f"{'mm/ome':>7} {'CR mm':>6} {'CR ome':>6} {'spread mm/ome':>14}"
        )
        log(header)
        log("-" * len(header))
        rows = []
        for comp in COMPRESSIONS:
            for b in BACKENDS:
                mm = cases[("mmzarr", b, comp)]
                om = cases[("ome-writers", OME_BACKEND[b], comp)]
                row = {
                    "backend": b,
                    "ome_backend": OME_BACKEND[b],
                    "compression": comp,
                    "mmzarr_mb_per_s": mm.mbps,
                    "ome_mb_per_s": om.mbps,
                    "mmzarr_vs_raw": mm.mbps / raw.mbps,
                    "ome_vs_raw": om.mbps / raw.mbps,
                    "mmzarr_vs_ome": mm.mbps / om.mbps,
                    "mmzarr_compression_ratio": mm.ratio,
                    "ome_compression_ratio": om.ratio,
                }
                rows.append(row)
                log(
                    f"{b:<13} {comp:<10} {mm.mbps:11.0f} {row['mmzarr_vs_raw']:6.2f} "
                    f"{OME_BACKEND[b]:<13} {om.mbps:10.0f} {row['ome_vs_raw']:6.2f} "
                    f"{row['mmzarr_vs_ome']:7.2f} {mm.ratio:6.2f} {om.ratio:6.2f} "
                    f"{mm.spread:6.0%} /{om.spread:5.0%}"
                )
        fastest = []
        for comp in COMPRESSIONS:
            mm_best = max(BACKENDS, key=lambda b: cases[("mmzarr", b, comp)].mbps)
            om_best = max(
                BACKENDS,
                key=lambda b: cases[("ome-writers", OME_BACKEND[b], comp)].mbps,
            )
            mm_v = cases[("mmzarr", mm_best, comp)].mbps
            om_v = cases[("ome-writers", OME_BACKEND[om_best], comp)].mbps
            fastest.append(
                {
                    "compression": comp,
                    "mmzarr_backend": mm_best,
                    "mmzarr_mb_per_s": mm_v,
                    "ome_backend": OME_BACKEND[om_best],
                    "ome_mb_per_s": om_v,
                    "ratio": mm_v / om_v,
                }
            )
            log(
                f"fastest vs fastest, {comp:<10}: mmzarr {mm_best} {mm_v:.0f} MB/s / "
                f"ome-writers {OME_BACKEND[om_best]} {om_v:.0f} MB/s "
                f"= {mm_v / om_v:.2f}"
            )
        summary[key] = {
            "side": side,
            "frames": n,
            "raw_mb_per_s": raw.mbps,
            "raw_spread": raw.spread,
            "rows": rows,
            "fastest": fastest,
            "raw": raw.summary(),
            "cases": [c.summary() for c in cases.values()],
        }
    return summary


# ---------------------------------------------------------------------------
# 4: pymmcore-plus MDA on the demo camera
# ---------------------------------------------------------------------------


def bench_pyramids(cfg: Config, scratch: Path) -> dict[str, Any]:
    """What writing resolution levels during acquisition costs (issue #11).

    The largest stream of the config, uncompressed, per backend: throughput of
    level-0 bytes with `downsample={"levels": "auto"}` (halving until a side is
    <= 256) over the same stream without levels, interleaved.
    """
    side, n = max(cfg.streams)
    ring = make_ring(side)
    log(f"\n-- pyramids {side}x{side} uint16, {n} frames/run, {cfg.reps} rounds --")
    cases = {
        (b, lv): CaseResult("mmzarr", b, "none", side, n)
        for b in BACKENDS
        for lv in ("none", "auto")
    }
    for rep in range(cfg.reps):
        for b in BACKENDS:
            order = ["none", "auto"] if rep % 2 == 0 else ["auto", "none"]
            for lv in order:
                opts = {} if lv == "none" else {"downsample": {"levels": "auto"}}
                cases[(b, lv)].runs.append(
                    run_mmzarr(scratch / "pyr.ome.zarr", ring, n, b, "none", **opts)
                )
    rows = []
    head = f"{'backend':<13} {'no levels':>10} {'levels':>8} {'ratio':>6}"
    log(f"{head}  (MB/s of level 0)")
    for b in BACKENDS:
        plain, pyr = cases[(b, "none")].mbps, cases[(b, "auto")].mbps
        rows.append(
            {
                "backend": b,
                "plain_mbps": plain,
                "pyramid_mbps": pyr,
                "ratio": pyr / plain,
            }
        )
        log(f"{b:<13} {plain:>10.0f} {pyr:>8.0f} {pyr / plain:>6.2f}")
    return {"side": side, "frames": n, "rows": rows}


def bench_mda(cfg: Config, scratch: Path, *, exposure_ms: float) -> dict[str, Any]:
    """The MDA with and without outputs; the camera takes `exposure_ms` per frame.

    `exposure_ms=0`: the demo camera's `Timing` is `instant` (frames as fast as
    it renders them, ~1 core); otherwise `exposure`, as a real camera.
    """
    import useq

    from mmzarr import MDAWriter
    from mmzarr.demo import demo_core

    logging.getLogger("pymmcore-plus").setLevel(logging.ERROR)
    core = demo_core()
    cam = core.getCameraDevice()
    core.setProperty(cam, "SensorWidth", cfg.mda_side)
    core.setProperty(cam, "SensorHeight", cfg.mda_side)
    core.setProperty(cam, "Timing", "exposure" if exposure_ms else "instant")
    core.setExposure(exposure_ms)
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": cfg.mda_frames})
    core.mda.run(useq.MDASequence(time_plan={"interval": 0, "loops": 5}))  # warm up

    variants: dict[str, list[float]] = {"no output": []}
    for b in BACKENDS:
        variants[f"MDAWriter {b}"] = []
    ome_name = "pymmcore-plus output=.ome.zarr (ome-writers)"
    variants[ome_name] = []
    #: context, not a target: durably writing the MDA's bytes takes this long
    #: even with nothing else to do (the floor for any writer on this disk)
    floor_name = "raw write of the same bytes (tofile+fsync)"
    variants[floor_name] = []
    ring = make_ring(cfg.mda_side)
    errors: dict[str, str] = {}
    path = scratch / "mda.ome.zarr"
    reps = cfg.mda_reps if not exposure_ms else max(1, cfg.mda_reps - 2)

    def run_variant(name: str) -> None:
        remove(path)
        settle()
        if name == "no output":
            t0 = time.perf_counter()
            core.mda.run(seq)
            variants[name].append(time.perf_counter() - t0)
        elif name == floor_name:
            run = run_raw(scratch / "raw.bin", ring, cfg.mda_frames)
            variants[name].append(run.seconds)
        elif name.startswith("MDAWriter"):
            writer = MDAWriter(path, backend=name.split()[-1])
            t0 = time.perf_counter()
            core.mda.run(seq, output=writer)
            writer.close()
            variants[name].append(time.perf_counter() - t0)
            if writer.frames_written != cfg.mda_frames:
                errors[name] = f"wrote {writer.frames_written}/{cfg.mda_frames} frames"
        else:
            t0 = time.perf_counter()
            core.mda.run(seq, output=str(path), overwrite=True)
            variants[name].append(time.perf_counter() - t0)
        remove(path)

    names = list(variants)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[:1] + names[:0:-1]
        for name in order:
            if name in errors and not variants[name]:
                continue
            try:
                run_variant(name)
            except Exception as e:  # report, keep benchmarking
                errors[name] = f"{type(e).__name__}: {e}"
    base = median(variants["no output"])
    timing = f"exposure {exposure_ms:g} ms, paced" if exposure_ms else "instant"
    log(
        f"\n== MDA on the demo camera ({timing}): {cfg.mda_side}x{cfg.mda_side} "
        f"uint16, {cfg.mda_frames} frames, interval 0, median of {reps} =="
    )
    log(f"{'variant':<46} {'wall s':>7} {'x no output':>12}  runs")
    rows = []
    for name, times in variants.items():
        med = median(times)
        ratio = med / base
        rows.append({"variant": name, "wall_s": med, "ratio": ratio, "runs": times})
        note = f"  ERROR {errors[name]}" if name in errors else ""
        log(
            f"{name:<46} {med:7.2f} {ratio:12.2f}  "
            f"{', '.join(f'{t:.2f}' for t in times)}{note}"
        )
    return {
        "side": cfg.mda_side,
        "frames": cfg.mda_frames,
        "exposure_ms": exposure_ms,
        "timing": timing,
        "rows": rows,
        "errors": errors,
        "no_output_s": base,
        "raw_write_s": median(variants[floor_name]),
    }


# ---------------------------------------------------------------------------
# 5: a 96-well plate vs one array of the same size
# ---------------------------------------------------------------------------


def bench_plate(cfg: Config, scratch: Path) -> dict[str, Any]:
    import useq

    from mmzarr import AcquisitionSettings, create_stream

    side = cfg.plate_side
    plan = useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=(slice(None), slice(None)),
        well_points_plan=useq.GridRowsColumns(
            rows=2, columns=2, fov_width=side, fov_height=side
        ),
    )
    plate_seq = useq.MDASequence(
        stage_positions=plan, channels=list(cfg.plate_channels), axis_order="pgc"
    )
    plate_events = [e.index for e in plate_seq]
    n_fields = len(plate_events) // len(cfg.plate_channels)
    one_seq = useq.MDASequence(
        time_plan={"interval": 0, "loops": n_fields},
        channels=list(cfg.plate_channels),
        axis_order="tc",
    )
    one_events = [e.index for e in one_seq]
    common = {"image_shape": (side, side), "dtype": "uint16", "pixel_size_um": 1.0}
    plate_settings = AcquisitionSettings.from_useq(plate_seq, **common)
    one_settings = AcquisitionSettings.from_useq(one_seq, **common)
    assert plate_settings.layout == "plate", plate_settings.layout
    assert plate_settings.bytes_planned == one_settings.bytes_planned
    ring = make_ring(side)
    nbytes = int(plate_settings.bytes_planned or 0)
    path = scratch / "plate.ome.zarr"

    def one_run(settings: Any, events: list[Any], backend: str) -> Run:
        def open_() -> Any:
            return create_stream(path, settings, backend=backend)

        def append(stream: Any, i: int) -> None:
            stream.append(ring[i % len(ring)], index=events[i])

        def close(stream: Any) -> None:
            stream.close()
            if stream.status != "complete":
                raise RuntimeError(f"plate {backend}: stream ended {stream.status!r}")

        return _time_run(path, open_, append, close, len(events), sync_after=False)

    results: dict[str, dict[str, list[Run]]] = {
        b: {"plate": [], "one": []} for b in BACKENDS
    }
    for rep in range(cfg.plate_reps):
        for b in BACKENDS:
            order = [
                ("plate", plate_settings, plate_events),
                ("one", one_settings, one_events),
            ]
            if rep % 2:
                order.reverse()
            for kind, settings, events in order:
                results[b][kind].append(one_run(settings, events, b))
    log(
        f"\n== Plate: 96 wells x 4 fields x {len(cfg.plate_channels)} channel(s) = "
        f"{len(plate_settings.images)} images, {len(plate_events)} frames of "
        f"{side}x{side} ({nbytes / MIB:.0f} MiB) vs one array (t={n_fields}, "
        f"c={len(cfg.plate_channels)}), median of {cfg.plate_reps} =="
    )
    log(
        f"{'backend':<13} {'plate MB/s':>10} {'one MB/s':>9} {'ratio':>6}   "
        f"plate open/append/close s    one open/append/close s"
    )
    rows = []
    for b in BACKENDS:
        p, o = results[b]["plate"], results[b]["one"]
        p_mbps = median(nbytes / r.seconds / MB for r in p)
        o_mbps = median(nbytes / r.seconds / MB for r in o)

        def parts(runs: list[Run]) -> str:
            return "/".join(
                f"{median(getattr(r, k) for r in runs):.2f}"
                for k in ("open_s", "append_s", "close_s")
            )

        rows.append(
            {
                "backend": b,
                "plate_mb_per_s": p_mbps,
                "one_mb_per_s": o_mbps,
                "ratio": p_mbps / o_mbps,
                "plate_runs": [asdict(r) for r in p],
                "one_runs": [asdict(r) for r in o],
            }
        )
        log(
            f"{b:<13} {p_mbps:10.0f} {o_mbps:9.0f} {p_mbps / o_mbps:6.2f}   "
            f"{parts(p):<27}  {parts(o)}"
        )
    return {
        "side": side,
        "channels": list(cfg.plate_channels),
        "images": len(plate_settings.images),
        "frames": len(plate_events),
        "bytes": nbytes,
        "rows": rows,
    }


# ---------------------------------------------------------------------------
# 6: peak memory (each count in its own process)
# ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="utf-8") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """Peak RSS of this process image (VmHWM).

    Not `ru_maxrss`: Linux carries the forked parent's peak RSS over `exec`
    into the child's `ru_maxrss`, so a child of a big parent would report the
    parent's size. VmHWM belongs to the child's own address space.
    """
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: (writer, backend) of the memory children: mmzarr's default backend (the
#: target), then ome-writers' acquire-zarr and tensorstore for comparison.
MEMORY_WRITERS = (
    ("mmzarr", DEFAULT_BACKEND),
    ("ome-writers", "acquire-zarr"),
    ("ome-writers", "tensorstore"),
)


def memory_child(
    writer: str, backend: str, side: int, frames: int, path: Path
) -> dict[str, Any]:
    """Runs in a subprocess: stream `frames` frames, report peak RSS growth.

    Growth is the process's peak RSS (VmHWM) minus its RSS just before the
    stream is created (after imports and the frame ring).
    """
    warnings.simplefilter("ignore")
    ring = make_ring(side)
    max_buffer: int | None = None
    if writer == "mmzarr":
        from mmzarr import create_stream

        settings = mmzarr_settings(side, frames, "none")
        max_buffer = settings.max_buffer_bytes

        def open_() -> Any:
            return create_stream(path, settings, backend=backend)

    else:
        import ome_writers as ow

        ow_settings = ow.AcquisitionSettings(
            root_path=str(path),
            dimensions=ow.dims_from_standard_axes({"t": frames, "y": side, "x": side}),
            dtype="uint16",
            compression="none",
            format=ow.OmeZarrFormat(backend=backend),  # type: ignore[arg-type]
            overwrite=True,
        )

        def open_() -> Any:
            return ow.create_stream(ow_settings)

    gc.collect()
    base = _rss_bytes()
    sampled = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            sampled.append(_rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with open_() as stream:
        for i in range(frames):
            stream.append(ring[i % len(ring)])
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    peak = _peak_rss_bytes()
    return {
        "writer": writer,
        "backend": backend,
        "side": side,
        "frames": frames,
        "bytes": frames * side * side * 2,
        "seconds": seconds,
        "max_buffer_bytes": max_buffer,
        "baseline_rss": base,
        "peak_rss": peak,
        "growth": peak - base,
        "sampled_peak_growth": max(sampled) - base,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def bench_memory(cfg: Config, scratch: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for writer, backend in MEMORY_WRITERS:
        for frames in cfg.mem_frames:
            path = scratch / f"mem{frames}.ome.zarr"
            remove(path)
            settle()
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--memory-child",
                f"{writer},{backend},{cfg.mem_side},{frames},{path}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            remove(path)
            if proc.returncode != 0:
                rows.append(
                    {
                        "writer": writer,
                        "backend": backend,
                        "frames": frames,
                        "error": proc.stderr[-2000:],
                    }
                )
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    log(
        f"\n== Peak memory: {cfg.mem_side}x{cfg.mem_side} uint16, no compression, "
        "one process per run; mmzarr with the default max_buffer_bytes =="
    )
    log(
        f"{'writer':<26} {'frames':>6} {'data GB':>8} {'s':>6} {'MB/s':>6} "
        f"{'base MiB':>9} {'peak MiB':>9} {'growth MiB':>11} {'limit MiB':>10}"
    )
    for r in rows:
        name = f"{r['writer']} {r['backend']}"
        if "error" in r:
            log(f"{name:<26} {r['frames']:>6} ERROR {r['error']}")
            continue
        limit = (
            f"{(r['max_buffer_bytes'] + MEM_SLACK) / MIB:10.0f}"
            if r["max_buffer_bytes"]
            else f"{'-':>10}"
        )
        log(
            f"{name:<26} {r['frames']:>6} {r['bytes'] / 1e9:8.2f} {r['seconds']:6.1f} "
            f"{r['bytes'] / r['seconds'] / MB:6.0f} {r['baseline_rss'] / MIB:9.0f} "
            f"{r['peak_rss'] / MIB:9.0f} {r['growth'] / MIB:11.0f} {limit}"
        )
    return {"side": cfg.mem_side, "backend": DEFAULT_BACKEND, "rows": rows}


# ---------------------------------------------------------------------------
# 7: targets
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """One target line: what, measured, threshold, verdict, why."""

    name: str
    measured: str
    passed: bool
    note: str = ""
    #: measured / threshold, inverted for "<=" targets: >= 1 passes
    margin: float = float("nan")
    #: label for the plot
    short: str = ""


def evaluate(results: dict[str, Any], cfg: Config) -> list[Target]:
    targets: list[Target] = []
    streams = results["streams"]
    big = str(max(side for side, _ in cfg.streams))
    rows = streams[big]["rows"]
    cases = {
        (c["writer"], c["backend"], c["compression"]): c for c in streams[big]["cases"]
    }
    for b in ("acquire-zarr", "tensorstore"):
        row = next(r for r in rows if r["backend"] == b and r["compression"] == "none")
        ok = row["mmzarr_vs_raw"] >= TARGET_VS_RAW
        case = cases[("mmzarr", b, "none")]
        note = ""
        if not ok:
            runs = case["runs"]
            note = (
                f"median open/append/close {median(r['open_s'] for r in runs):.2f}/"
                f"{median(r['append_s'] for r in runs):.2f}/"
                f"{median(r['close_s'] for r in runs):.2f} s; "
                "the raw write is one file and one fsync"
            )
        targets.append(
            Target(
                f"{big}^2 uncompressed, {b}: >= {TARGET_VS_RAW}x raw flushed write",
                f"{row['mmzarr_vs_raw']:.2f}x ({row['mmzarr_mb_per_s']:.0f} vs "
                f"{streams[big]['raw_mb_per_s']:.0f} MB/s)",
                ok,
                note,
                row["mmzarr_vs_raw"] / TARGET_VS_RAW,
                f"{big} {b} none vs raw",
            )
        )
    for key, block in streams.items():
        for row in block["rows"]:
            ok = row["mmzarr_vs_ome"] >= TARGET_VS_OME
            targets.append(
                Target(
                    f"{key}^2 {row['backend']}/{row['compression']}: >= "
                    f"{TARGET_VS_OME}x ome-writers {row['ome_backend']}",
                    f"{row['mmzarr_vs_ome']:.2f}x ({row['mmzarr_mb_per_s']:.0f} vs "
                    f"{row['ome_mb_per_s']:.0f} MB/s)",
                    ok,
                    "" if ok else _vs_ome_note(block, row),
                    row["mmzarr_vs_ome"] / TARGET_VS_OME,
                    f"{key} {row['backend']} {row['compression']} vs ome-w",
                )
            )
        for f in block["fastest"]:
            targets.append(
                Target(
                    f"{key}^2 {f['compression']}: fastest mmzarr >= fastest "
                    "ome-writers",
                    f"{f['ratio']:.2f}x ({f['mmzarr_backend']} "
                    f"{f['mmzarr_mb_per_s']:.0f}"
                    f" vs {f['ome_backend']} {f['ome_mb_per_s']:.0f} MB/s)",
                    f["ratio"] >= TARGET_VS_OME,
                    "",
                    f["ratio"] / TARGET_VS_OME,
                    f"{key} {f['compression']} fastest vs fastest",
                )
            )
    mem = [
        r
        for r in results["memory"]["rows"]
        if r["writer"] == "mmzarr" and "error" not in r
    ]
    if len(mem) == 2:
        limit = mem[0]["max_buffer_bytes"] + MEM_SLACK
        g0, g1 = mem[0]["growth"], mem[1]["growth"]
        for r in mem:
            targets.append(
                Target(
                    f"peak RSS growth, mmzarr {r['backend']}, {r['frames']} frames: "
                    "<= max_buffer_bytes + "
                    "128 MiB",
                    f"{r['growth'] / MIB:.0f} MiB (limit {limit / MIB:.0f} MiB)",
                    r["growth"] <= limit,
                    "",
                    limit / max(r["growth"], 1),
                    f"RSS growth {r['frames']} frames",
                )
            )
        same = abs(g1 - g0) <= MEM_SAME * max(g0, g1)
        targets.append(
            Target(
                f"peak RSS growth {mem[0]['frames']} vs {mem[1]['frames']} frames "
                "within 10%",
                f"{g0 / MIB:.0f} vs {g1 / MIB:.0f} MiB "
                f"({abs(g1 - g0) / max(g0, g1, 1):.0%} apart)",
                same,
                "",
                MEM_SAME / max(abs(g1 - g0) / max(g0, g1, 1), 1e-3),
                "RSS growth same for both",
            )
        )
    else:
        targets.append(Target("peak RSS growth", "child process failed", False))
    for m in results["mda"].values():
        targets.extend(_mda_targets(m))
    for row in results["plate"]["rows"]:
        targets.append(
            Target(
                f"plate 96x4 {row['backend']}: >= {TARGET_PLATE}x one array's bytes/s",
                f"{row['ratio']:.2f}x ({row['plate_mb_per_s']:.0f} vs "
                f"{row['one_mb_per_s']:.0f} MB/s)",
                row["ratio"] >= TARGET_PLATE,
                "" if row["ratio"] >= TARGET_PLATE else _plate_note(row),
                row["ratio"] / TARGET_PLATE,
                f"plate {row['backend']}",
            )
        )
    return targets


def _mda_targets(m: dict[str, Any]) -> list[Target]:
    """The MDA targets of one camera timing (paced or instant)."""
    mda = {r["variant"]: r for r in m["rows"]}
    mda_bytes = m["frames"] * m["side"] ** 2 * 2
    rate = mda_bytes / m["no_output_s"] / MB
    note = (
        f"the camera delivers {rate:.0f} MB/s; a raw durable write of the same "
        f"{mda_bytes / MIB:.0f} MiB alone takes {m['raw_write_s']:.2f} s "
        f"({m['raw_write_s'] / m['no_output_s']:.2f}x the MDA without output)"
    )
    if not m["exposure_ms"]:
        note += (
            "; the instant camera renders on one core and the writer needs the "
            "other: CPU-bound on 2 cores"
        )
    out = []
    for b in BACKENDS:
        r = mda[f"MDAWriter {b}"]
        default = " (default backend)" if b == DEFAULT_BACKEND else ""
        ok = r["ratio"] <= TARGET_MDA
        out.append(
            Target(
                f"MDA ({m['timing']}, {rate:.0f} MB/s) with MDAWriter {b}{default}: "
                f"<= {TARGET_MDA}x no output",
                f"{r['ratio']:.2f}x ({r['wall_s']:.2f} vs {m['no_output_s']:.2f} s)",
                ok,
                "" if ok else note,
                TARGET_MDA / r["ratio"],
                f"MDA {'paced' if m['exposure_ms'] else 'instant'} {b}",
            )
        )
    return out


def _plate_note(row: dict[str, Any]) -> str:
    def parts(runs: list[dict[str, Any]]) -> str:
        return "/".join(
            f"{median(r[k] for r in runs):.2f}"
            for k in ("open_s", "append_s", "close_s")
        )

    return (
        f"open/append/close s: plate {parts(row['plate_runs'])}, "
        f"one array {parts(row['one_runs'])}"
    )


def _vs_ome_note(block: dict[str, Any], row: dict[str, Any]) -> str:
    cases = {(c["writer"], c["backend"], c["compression"]): c for c in block["cases"]}
    mm = cases[("mmzarr", row["backend"], row["compression"])]["runs"]
    om = cases[("ome-writers", row["ome_backend"], row["compression"])]["runs"]

    def parts(runs: list[dict[str, Any]]) -> str:
        return "/".join(
            f"{median(r[k] for r in runs):.2f}"
            for k in ("open_s", "append_s", "close_s", "sync_s")
        )

    return f"open/append/close/sync s: mmzarr {parts(mm)}, ome-writers {parts(om)}"


def print_targets(targets: list[Target]) -> None:
    log("\n== Targets ==")
    for t in targets:
        log(f"[{'PASS' if t.passed else 'FAIL'}] {t.name}: {t.measured}")
        if t.note:
            log(f"       {t.note}")
    n_pass = sum(t.passed for t in targets)
    log(f"{n_pass}/{len(targets)} targets met")


# ---------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = results["streams"]
    fig, axes = plt.subplots(3, 2, figsize=(15, 15))
    colors = {"acquire-zarr": "C0", "tensorstore": "C1", "zarr-python": "C2"}
    for ax, (key, block) in zip(axes[0], streams.items(), strict=False):
        x = np.arange(len(COMPRESSIONS))
        width = 0.13
        by = {(r["backend"], r["compression"]): r for r in block["rows"]}
        for i, b in enumerate(BACKENDS):
            mm = [by[(b, c)]["mmzarr_mb_per_s"] for c in COMPRESSIONS]
            om = [by[(b, c)]["ome_mb_per_s"] for c in COMPRESSIONS]
            ax.bar(
                x + (2 * i - 2.5) * width,
                mm,
                width,
                color=colors[b],
                label=f"mmzarr {b}",
            )
            ax.bar(
                x + (2 * i - 1.5) * width,
                om,
                width,
                color=colors[b],
                alpha=0.4,
                hatch="//",
                label=f"ome-writers {OME_BACKEND[b]}",
            )
        raw = block["raw_mb_per_s"]
        ax.axhline(raw, color="k", ls="--", label="raw tofile+fsync")
        ax.axhline(TARGET_VS_RAW * raw, color="k", ls=":", label="0.9x raw")
        ax.set_xticks(x, COMPRESSIONS)
        ax.set_ylabel("MB/s (uncompressed, open to durable)")
        ax.set_title(f"{key}x{key} uint16, {block['frames']} frames/run")
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax = axes[1][0]
    labels = [r["variant"] for r in results["mda"]["paced"]["rows"]]
    y = np.arange(len(labels))
    for k, (kind, mda) in enumerate(results["mda"].items()):
        ratios = [r["ratio"] for r in mda["rows"]]
        ax.barh(y + (k - 0.5) * 0.4, ratios, 0.4, label=f"{kind}: {mda['timing']}")
    ax.axvline(TARGET_MDA, color="k", ls=":", label=f"{TARGET_MDA}x")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("wall time / MDA without output (median)")
    mda = results["mda"]["paced"]
    ax.set_title(f"MDA, demo camera {mda['side']}^2, {mda['frames']} frames")
    ax.legend(fontsize=8)
    ax.invert_yaxis()
    ax = axes[1][1]
    plate = results["plate"]
    x = np.arange(len(plate["rows"]))
    ax.bar(x - 0.2, [r["plate_mb_per_s"] for r in plate["rows"]], 0.4, label="plate")
    ax.bar(x + 0.2, [r["one_mb_per_s"] for r in plate["rows"]], 0.4, label="one array")
    for i, r in enumerate(plate["rows"]):
        ax.annotate(f"{r['ratio']:.2f}x", (i, r["one_mb_per_s"]), ha="center")
    ax.set_xticks(x, [r["backend"] for r in plate["rows"]])
    ax.set_ylabel("MB/s")
    ax.set_title(
        f"plate {plate['images']} images, {plate['frames']} frames of "
        f"{plate['side']}^2 vs one array"
    )
    ax.legend(fontsize=8)
    ax = axes[2][0]
    mem = [r for r in results["memory"]["rows"] if "error" not in r]
    short = {"mmzarr": "mmzarr", "ome-writers": "ome-w"}
    labels = [f"{short[r['writer']]}\n{r['backend']}\n{r['frames']}" for r in mem]
    ax.bar(range(len(mem)), [r["growth"] / MIB for r in mem], color="C5")
    limits = [r["max_buffer_bytes"] for r in mem if r.get("max_buffer_bytes")]
    if limits:
        ax.axhline((limits[0] + MEM_SLACK) / MIB, color="k", ls=":", label="limit")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(mem)), labels, fontsize=7)
    ax.set_ylabel("peak RSS growth, MiB")
    ax.set_title(f"memory, {results['memory']['side']}^2 frames")
    ax = axes[2][1]
    targets: list[dict[str, Any]] = results["targets"]
    ys = np.arange(len(targets))
    ax.barh(
        ys,
        [t["margin"] for t in targets],
        color=["C2" if t["passed"] else "C3" for t in targets],
    )
    ax.axvline(1, color="k", ls=":")
    ax.set_xscale("log")
    ax.set_yticks(ys, [t["short"] for t in targets], fontsize=6)
    ax.set_xlabel("measured / target (>= 1 passes)")
    ax.set_title("targets")
    ax.invert_yaxis()
    fig.suptitle(
        f"mmzarr benchmark ({results['config']['name']}), {results['started']}, "
        f"commit {results['git']['commit']}, {results['machine']['cpus']} CPUs, "
        f"load {results['machine']['loadavg_start']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, CaseResult):
        return obj.summary()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 2 min)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="directory for latest.json/.png"
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="scratch parent directory (default: next to the repository, same disk)",
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")  # pixel-size/t-scale and ome-writers notices
    if args.memory_child:
        writer, backend, side, frames, path = args.memory_child.split(",", 4)
        row = memory_child(writer, backend, int(side), int(frames), Path(path))
        print(json.dumps(row))
        return 0

    cfg = QUICK if args.quick else FULL
    scratch_parent = args.scratch or REPO.parent
    scratch = Path(tempfile.mkdtemp(prefix="mmzarr-bench-", dir=scratch_parent))
    kind = fs_type(scratch)
    if kind in ("tmpfs", "ramfs"):
        shutil.rmtree(scratch, ignore_errors=True)
        parser.error(f"scratch {scratch} is on {kind}: pick a disk with --scratch")
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results: dict[str, Any] = {
        "started": started,
        "config": asdict(cfg),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "mem_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1
            ),
            "scratch": str(scratch),
            "scratch_fs": kind,
            "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": versions(),
        "git": git_state(),
    }
    log(
        f"mmzarr benchmark ({cfg.name}) {started}; commit {results['git']['commit']}"
        f" (src dirty: {results['git']['src_dirty']}); scratch {scratch} ({kind}); "
        f"{os.cpu_count()} CPUs; load average {results['machine']['loadavg_start']}"
    )
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        log("WARNING: the machine is busy; timings will be noisy")
    sections: dict[str, float] = {}
    try:
        t = time.perf_counter()
        streams = bench_streams(cfg, scratch)
        results["streams"] = summarize_streams(streams)
        sections["streams"] = time.perf_counter() - t
        t = time.perf_counter()
        results["pyramids"] = bench_pyramids(cfg, scratch)
        sections["pyramids"] = time.perf_counter() - t
        t = time.perf_counter()
        results["mda"] = {
            "paced": bench_mda(cfg, scratch, exposure_ms=cfg.mda_exposure_ms),
            "instant": bench_mda(cfg, scratch, exposure_ms=0),
        }
        sections["mda"] = time.perf_counter() - t
        t = time.perf_counter()
        results["plate"] = bench_plate(cfg, scratch)
        sections["plate"] = time.perf_counter() - t
        t = time.perf_counter()
        results["memory"] = bench_memory(cfg, scratch)
        sections["memory"] = time.perf_counter() - t
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    targets = evaluate(results, cfg)
    print_targets(targets)
    results["targets"] = [asdict(t) for t in targets]
    results["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    results["sections_s"] = sections
    results["elapsed_s"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "latest.json"
    json_path.write_text(
        json.dumps(_jsonable(results), indent=1) + "\n", encoding="utf-8"
    )
    png_path = args.out / "latest.png"
    try:
        plot(results, png_path)
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        png_path = None  # type: ignore[assignment]
    log(
        "\nsections: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in sections.items())
        + f"; total {results['elapsed_s']:.0f} s; load average at end "
        f"{results['machine']['loadavg_end']}"
    )
    log(f"wrote {json_path}" + (f" and {png_path}" if png_path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
