"""The terminal of the `mmzarr` command: its consoles and an MDA run on them.

Owns where text goes (stdout, stderr, never wrapped), the progress display of
an acquisition, and Ctrl-C (or SIGTERM, SIGHUP) while one runs (cancel the MDA,
then wait for it to end). Turning errors into messages and exit statuses is
`mmzarr._cli`'s.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterator

    import useq
    from rich.progress import Task

__all__ = [
    "Interrupted",
    "console",
    "err_console",
    "run_with_progress",
    "say",
    "signal_label",
    "signum_of",
    "stop_signals_interrupt",
]

console = Console()
err_console = Console(stderr=True)


def say(text: str, to: Console = console) -> None:
    """Plain text, never wrapped: paths stay whole, errors stay on one line."""
    to.print(text, markup=False, highlight=False, soft_wrap=True)


class _RateColumn(ProgressColumn):
    """frames/s and MB/s."""

    def __init__(self, frame_bytes: int) -> None:
        super().__init__()
        self.frame_bytes = frame_bytes

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed or 0.0
        return Text(f"{speed:6.1f} frames/s {speed * self.frame_bytes / 1e6:7.1f} MB/s")


class _CountColumn(ProgressColumn):
    """The frames acquired, without a total: "1 frame", "2 frames"."""

    def render(self, task: Task) -> Text:
        n = int(task.completed)
        return Text(f"{n} frame" if n == 1 else f"{n} frames")


def _progress(total: int | None, frame_bytes: int) -> Progress:
    columns: list[Any] = [TextColumn("[bold]acquiring")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    else:
        columns += [_CountColumn()]
    columns += [_RateColumn(frame_bytes), TimeElapsedColumn()]
    return Progress(*columns, console=err_console, transient=False)


class Interrupted(KeyboardInterrupt):
    """A stop signal other than SIGINT (SIGTERM, SIGHUP), handled as Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: the signals that stop a run as Ctrl-C does: `kill`, `timeout`, a scheduler
#: ending a job, a closed terminal or ssh session
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def signum_of(interrupt: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGINT unless `Interrupted`."""
    return interrupt.signum if isinstance(interrupt, Interrupted) else signal.SIGINT


def signal_label(signum: int) -> str:
    """How a message names a signal: Ctrl-C for SIGINT, else its name."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _raise_interrupted(signum: int, _frame: object) -> None:
    if signum == getattr(signal, "SIGHUP", None):
        _leave_a_lost_terminal()
    raise Interrupted(signum)


def _leave_a_lost_terminal() -> None:
    """Send stdout and stderr to the null device where their terminal hung up.

    A closed terminal (ssh dropped, window closed) fails every write with EIO:
    the message saying the run is cancelled, the progress display's last
    refresh, and the dataset was left open (status `acquiring`). Output to a
    file or a pipe is left as it is.
    """
    for fd in (1, 2):
        try:
            os.write(fd, b"")
        except OSError as e:
            if e.errno != errno.EIO:
                continue
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise `Interrupted` as Ctrl-C raises its own.

    A signal already ignored stays ignored (`nohup` ignores SIGHUP so the run
    outlives its terminal). Off the main thread, or where a signal does not
    exist (SIGHUP on Windows), nothing changes. The old handlers come back on
    the way out.
    """
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
                old[signum] = signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def run_with_progress(
    core: Any, seq: useq.MDASequence, writer: Any, total: int | None, frame_bytes: int
) -> tuple[int, BaseException | None]:
    """`_run_mda` with a live progress bar on a terminal, else one final line.

    Off a terminal (a pipe, a log file) rich draws no live display, only the
    bar's last state, wrapped at its 80 columns: a plain line says the same.
    """
    if err_console.is_terminal:
        with _progress(total, frame_bytes) as progress:
            task = progress.add_task("frames", total=total)
            core.mda.events.frameReady.connect(lambda *_: progress.advance(task))
            return _run_mda(core, seq, writer)
    frames: list[None] = []
    core.mda.events.frameReady.connect(lambda *_: frames.append(None))
    t0 = time.perf_counter()
    result = _run_mda(core, seq, writer)
    dt = time.perf_counter() - t0
    rate = len(frames) / dt if dt > 0 else 0.0
    # the noun agrees with the total: "1/6 frames", "1/1 frame", "1 frame"
    done = f"{len(frames)}/{total}" if total else str(len(frames))
    noun = "frame" if (total or len(frames)) == 1 else "frames"
    say(
        f"acquired {done} {noun} in {dt:.1f} s, {rate:.1f} frames/s, "
        f"{rate * frame_bytes / 1e6:.1f} MB/s",
        err_console,
    )
    return result


def _run_mda(
    core: Any, seq: useq.MDASequence, writer: Any
) -> tuple[int, BaseException | None]:
    """Run the MDA on a thread until it ends; Ctrl-C cancels it.

    So do SIGTERM and SIGHUP inside `stop_signals_interrupt`. Returns the
    signal that cancelled the run (0: none) and the runner's error, if any. A
    second one quits at once (the dataset then needs `mmzarr finalize`). While
    waiting, the main thread only sleeps: a KeyboardInterrupt that lands in
    `Thread.join` can make a later `join` return while the thread still runs
    (CPython), and the dataset would be closed under a running MDA.
    """
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            core.mda.run(seq, output=writer)
        except Exception as e:
            errors.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=target, name="mmzarr-mda", daemon=True)
    cancelled = 0
    try:
        thread.start()
        while not done.is_set():
            time.sleep(0.05)
    except KeyboardInterrupt as e:
        cancelled = signum_of(e)
        err_console.print(
            f"[yellow]{signal_label(cancelled)}: cancelling and closing the "
            "dataset (Ctrl-C again to quit at once)...[/]"
        )
    while not done.is_set():
        try:
            core.mda.cancel()  # again each time: a no-op until the run has started
            time.sleep(0.05)
        except KeyboardInterrupt as e:
            where = shlex.quote(str(writer.path))
            say(
                f"mmzarr: aborted; run `mmzarr finalize {where}` to make the "
                "dataset valid",
                err_console,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            # pymmcore-plus' relay thread would block a normal exit
            os._exit(128 + signum_of(e))
    thread.join()
    return cancelled, errors[0] if errors else None
