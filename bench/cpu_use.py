"""CPU time spent by a process tree during a window, split by role (service, slots, Ray).

A thread samples the tree's CPU times every `interval_s`; `spent(start, end)` takes, per
process, the difference between the samples nearest the window's ends, so processes that
live through the window count whole and the start-up before it does not.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import psutil


def role(process: psutil.Process, root_pid: int) -> str:
    if process.pid == root_pid:
        return "service"
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "Ray"
    return "slots" if "TrialSlot" in command else "Ray"


class TreeCpu:
    """Samples the CPU times of `root_pid` and its descendants until stopped."""

    def __init__(self, root_pid: int, interval_s: float = 0.1):
        self.root_pid, self.interval_s = root_pid, interval_s
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self._roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._sample()))
            self._stop.wait(self.interval_s)

    def _sample(self) -> dict[int, tuple[str, float]]:
        snap: dict[int, tuple[str, float]] = {}
        try:
            root = psutil.Process(self.root_pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return snap
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            # A Ray worker becomes a slot when an actor takes it: only that role is final.
            known = self._roles.get(process.pid) or role(process, self.root_pid)
            if known != "Ray":
                self._roles[process.pid] = known
            snap[process.pid] = (known, times.user + times.system)
        return snap

    def spent(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per role between the samples nearest `start` and `end`."""
        first = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        totals: Counter[str] = Counter()
        for pid, (_, cpu) in last.items():
            name = self._roles.get(pid, "Ray")
            totals[name] += cpu - (first[pid][1] if pid in first else 0.0)
        return dict(totals)
