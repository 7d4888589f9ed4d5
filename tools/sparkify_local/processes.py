"""Stopping what the local run started: process groups (Airflow's processes, moto) and their
descendants, without a second Ctrl-C leaving any behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from sparkify_local.progress import say


class uninterruptible:  # noqa: N801 - used as a statement: `with uninterruptible():`
    """Ignore Ctrl-C and SIGTERM while stopping: a second Ctrl-C must not leave servers behind
    (stopping takes seconds; it is bounded by the timeouts below)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        self.saved = {}
        for sig in self.SIGNALS:
            try:
                self.saved[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:  # not the main thread
                pass

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def stop_groups(pids: list[int], timeout: float = 20, group_after: float = 5) -> None:
    """Stop processes started in process groups of their own (``start_new_session``) and every
    descendant, all at once. SIGTERM to each process first: it stops its children its own way
    (Airflow's scheduler sends its executor's workers a last message; they would ignore a SIGTERM).
    After ``group_after`` seconds, SIGTERM to the rest of each group, for a child its leader did not
    stop. Not sooner: a second SIGTERM makes Airflow's triggerer force its exit, and its supervisor
    then waits 5 s before it kills the trigger runner; at the end of a run every one of Airflow's
    processes stops within about 3 s of the first SIGTERM on 2 cores. After ``timeout`` seconds
    (the triggerer waits 10 s for its triggers; a scheduler waits for running tasks), SIGKILL to
    each group and to every descendant seen, those in groups of their own (Airflow's task
    processes) included."""
    import psutil

    tracked: dict[int, psutil.Process] = {}
    groups = set(pids)

    def track() -> None:
        # Every member of the groups, whether or not its leader is alive (a SIGKILLed scheduler's
        # LocalExecutor workers stay in its group, orphaned), and every descendant of what is tracked.
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and os.getpgid(proc.pid) in groups:
                    tracked.setdefault(proc.pid, proc)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass
        for proc in [*tracked.values()]:
            try:
                for child in proc.children(recursive=True):
                    tracked.setdefault(child.pid, child)
            except psutil.Error:
                pass

    def alive() -> list[psutil.Process]:
        found = []
        for proc in tracked.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                pass
        return found

    def reap() -> None:
        for pid in [*tracked]:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    for pid in pids:
        try:
            tracked[pid] = psutil.Process(pid)
        except psutil.NoSuchProcess:
            pass
    track()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            # The leader is gone: what is left of its group gets the SIGTERM at once.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
    started = time.monotonic()
    grouped = False
    while time.monotonic() - started < timeout:
        track()
        reap()
        if not alive():
            return
        if not grouped and time.monotonic() - started >= group_after:
            grouped = True
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.2)
    track()
    left = alive()
    names: dict[str, int] = {}
    for proc in left:
        try:
            words = " ".join(proc.cmdline()).split() or [proc.name()]
        except psutil.Error:
            continue
        words = words[2:] if words[1:2] == ["-m"] else [Path(words[0]).name, *words[1:]]
        names[" ".join(words[:2])] = names.get(" ".join(words[:2]), 0) + 1
    listed = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in names.items())
    say(f"  killing what did not stop within {timeout:g} s: {listed}")
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + 5
    while alive() and time.monotonic() < deadline:
        reap()
        time.sleep(0.1)
    reap()


def ours(pid: int) -> bool:
    """Whether ``pid`` is still one of the stack's servers (not a process that reused the id)."""
    import psutil

    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return "airflow" in cmdline or "moto" in cmdline or "redis-server" in cmdline


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
