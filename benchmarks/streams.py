"""Stream throughput: mmzarr per backend x compression vs raw write and ome-writers.

For every frame size of the config, a time plan of N frames is written with
`create_stream` / `append` / `close` on each backend and compression, beside the
raw flushed write of the same bytes (the disk's limit) and ome-writers 0.3 on
the matching backend, interleaved round by round. Owns the writers the other
sections reuse (`mmzarr_settings`, `run_stream`, `ome_settings`), the stream
table, its targets and its plot panels.

Run alone: ``python benchmarks/streams.py [--quick] [--out DIR]``.
ome-writers is a benchmark-only dependency: imported in the benchmarks only.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from _harness import (
    BACKENDS,
    COMPRESSIONS,
    MIB,
    CaseResult,
    Config,
    Run,
    Target,
    alternate,
    log,
    make_ring,
    phases,
    run_raw,
    time_run,
)
from _session import Section, run_alone

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

#: the ome-writers backend each mmzarr backend is compared with: mmzarr's
#: "zarr-python" runs through zarrs, as ome-writers' "zarrs-python" does
OME_BACKEND = {
    "acquire-zarr": "acquire-zarr",
    "tensorstore": "tensorstore",
    "zarr-python": "zarrs-python",
}
#: ome-writers backends whose close leaves data unsynced (the benchmark fsyncs
#: their files and counts the time); acquire-zarr and tensorstore fsync writes.
OME_UNSYNCED = {"zarrs-python", "zarr-python"}

TARGET_VS_RAW = 0.9
TARGET_VS_OME = 1.0


# ---------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------


def mmzarr_settings(side: int, n: int, compression: str, **options: Any) -> Any:
    """mmzarr settings of a time plan of `n` frames of `side` x `side` uint16."""
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


def run_stream(
    path: Path,
    ring: Sequence[np.ndarray],
    settings: Any,
    backend: str,
    n: int,
    *,
    indices: Sequence[Any] | None = None,
    label: str = "mmzarr",
) -> Run:
    """Time one mmzarr stream of `n` frames; `indices` are passed to `append`."""
    from mmzarr import create_stream

    def open_() -> Any:
        return create_stream(path, settings, backend=backend)

    # the ring's frames are never changed: handed over (`owned`), as
    # ome-writers takes every frame and as `MDAWriter` hands over pymmcore-plus'
    def append(stream: Any, i: int) -> None:
        stream.append(ring[i % len(ring)], owned=True)

    def append_at(stream: Any, i: int) -> None:
        stream.append(ring[i % len(ring)], index=indices[i], owned=True)  # type: ignore[index]

    def close(stream: Any) -> None:
        stream.close()
        if stream.status != "complete":
            raise RuntimeError(f"{label} {backend}: stream ended {stream.status!r}")

    return time_run(path, open_, append if indices is None else append_at, close, n)


def run_mmzarr(
    path: Path,
    ring: Sequence[np.ndarray],
    n: int,
    backend: str,
    compression: str,
    **options: Any,
) -> Run:
    settings = mmzarr_settings(ring[0].shape[0], n, compression, **options)
    return run_stream(path, ring, settings, backend, n)


def run_variants(
    path: Path,
    ring: Sequence[np.ndarray],
    n: int,
    reps: int,
    variants: dict[str, dict[str, Any]],
) -> dict[tuple[str, str], CaseResult]:
    """Each backend's uncompressed stream with each variant's settings options,
    interleaved over `reps` rounds; `{(backend, variant): case}`."""
    side = ring[0].shape[0]
    cases = {
        (b, v): CaseResult("mmzarr", b, "none", side, n)
        for b in BACKENDS
        for v in variants
    }
    for rep in range(reps):
        for b in BACKENDS:
            for v in alternate(list(variants), rep):
                cases[(b, v)].runs.append(
                    run_mmzarr(path, ring, n, b, "none", **variants[v])
                )
    return cases


def ome_settings(path: Path, side: int, n: int, backend: str, compression: str) -> Any:
    """ome-writers settings of `n` frames (t, y, x), one frame per chunk."""
    import ome_writers as ow

    return ow.AcquisitionSettings(
        root_path=str(path),
        dimensions=ow.dims_from_standard_axes({"t": n, "y": side, "x": side}),
        dtype="uint16",
        compression=compression,
        format=ow.OmeZarrFormat(backend=backend),  # type: ignore[arg-type]
        overwrite=True,
    )


def run_ome_writers(
    path: Path,
    ring: Sequence[np.ndarray],
    n: int,
    backend: str,
    compression: str,
) -> Run:
    import ome_writers as ow

    settings = ome_settings(path, ring[0].shape[0], n, backend, compression)

    def open_() -> Any:
        return ow.create_stream(settings)

    def append(stream: Any, i: int) -> None:
        stream.append(ring[i % len(ring)])

    def close(stream: Any) -> None:
        stream.close()

    return time_run(path, open_, append, close, n, sync_after=backend in OME_UNSYNCED)


# ---------------------------------------------------------------------------
# measure, summarize, check
# ---------------------------------------------------------------------------


def measure(cfg: Config, scratch: Path) -> dict[str, Any]:
    """All runs of every frame size: raw, mmzarr and ome-writers, interleaved."""
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
                    for writer, name, fn in alternate(pair, rep):
                        case = cases[(writer, name, comp)]
                        case.runs.append(
                            fn(scratch / "bench.ome.zarr", ring, n, name, comp)
                        )
            log(
                f"   round {rep + 1}/{cfg.reps} done "
                f"({time.perf_counter() - t_section:.0f} s)"
            )
        out[str(side)] = {"side": side, "frames": n, "raw": raw, "cases": cases}
    return out


def summarize(streams: dict[str, Any]) -> dict[str, Any]:
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


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    return summarize(measure(cfg, scratch))


def _runs(block: dict[str, Any], writer: str, backend: str, comp: str) -> Any:
    return next(
        c["runs"]
        for c in block["cases"]
        if (c["writer"], c["backend"], c["compression"]) == (writer, backend, comp)
    )


def targets(streams: dict[str, Any], cfg: Config) -> list[Target]:
    """vs raw (largest frames, uncompressed), vs ome-writers, fastest vs fastest."""
    out: list[Target] = []
    big = str(max(side for side, _ in cfg.streams))
    for b in ("acquire-zarr", "tensorstore"):
        row = next(
            r
            for r in streams[big]["rows"]
            if r["backend"] == b and r["compression"] == "none"
        )
        out.append(
            Target.check(
                f"{big}^2 uncompressed, {b}: >= {TARGET_VS_RAW}x raw flushed write",
                f"{row['mmzarr_vs_raw']:.2f}x ({row['mmzarr_mb_per_s']:.0f} vs "
                f"{streams[big]['raw_mb_per_s']:.0f} MB/s)",
                row["mmzarr_vs_raw"],
                TARGET_VS_RAW,
                note=f"median open/append/close "
                f"{phases(_runs(streams[big], 'mmzarr', b, 'none'))} s; "
                "the raw write is one file and one fsync",
                short=f"{big} {b} none vs raw",
            )
        )
    sync_phases = ("open_s", "append_s", "close_s", "sync_s")
    for key, block in streams.items():
        for row in block["rows"]:
            mm = _runs(block, "mmzarr", row["backend"], row["compression"])
            om = _runs(block, "ome-writers", row["ome_backend"], row["compression"])
            out.append(
                Target.check(
                    f"{key}^2 {row['backend']}/{row['compression']}: >= "
                    f"{TARGET_VS_OME}x ome-writers {row['ome_backend']}",
                    f"{row['mmzarr_vs_ome']:.2f}x ({row['mmzarr_mb_per_s']:.0f} vs "
                    f"{row['ome_mb_per_s']:.0f} MB/s)",
                    row["mmzarr_vs_ome"],
                    TARGET_VS_OME,
                    note=f"open/append/close/sync s: mmzarr "
                    f"{phases(mm, sync_phases)}, ome-writers {phases(om, sync_phases)}",
                    short=f"{key} {row['backend']} {row['compression']} vs ome-w",
                )
            )
        for f in block["fastest"]:
            out.append(
                Target.check(
                    f"{key}^2 {f['compression']}: fastest mmzarr >= fastest "
                    "ome-writers",
                    f"{f['ratio']:.2f}x ({f['mmzarr_backend']} "
                    f"{f['mmzarr_mb_per_s']:.0f}"
                    f" vs {f['ome_backend']} {f['ome_mb_per_s']:.0f} MB/s)",
                    f["ratio"],
                    TARGET_VS_OME,
                    short=f"{key} {f['compression']} fastest vs fastest",
                )
            )
    return out


def draw(axes: Sequence[Any], streams: dict[str, Any]) -> None:
    """One panel per frame size: mmzarr solid, ome-writers hatched, raw dashed."""
    colors = {"acquire-zarr": "C0", "tensorstore": "C1", "zarr-python": "C2"}
    for ax, (key, block) in zip(axes, streams.items(), strict=False):
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


SECTION = Section("streams", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
