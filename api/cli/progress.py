"""Live progress while the CLI follows a study: a rich bar on a terminal, plain lines elsewhere.

The study is polled with GET /studies/{id} (every 0.5 s): each answer carries the full
counts, so a dropped poll loses nothing, unlike a half-read event stream.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from api.cli.output import fmt
from api.cli.study_tables import max_trials, n_done
from api.client import HpoClient


class Tally(NamedTuple):
    """What a progress line shows; a new line is printed only when it changes."""

    state: str
    done: int
    total: int
    running: int
    best: float | None
    queue: int | None

    @classmethod
    def of(cls, study: dict[str, Any]) -> Tally:
        best = study["best"]["value"] if study["best"] else None
        running = study["counts"].get("running", 0)
        # A queued study's place only: one that runs and wants more slots would add a line
        # whenever a trial of another study ends.
        queue = study.get("queue_position") if study["state"] == "queued" else None
        return cls(study["state"], n_done(study), max_trials(study), running, best, queue)

    def waiting(self) -> str:
        """`, #2 in the queue` while it waits for its first slot; empty otherwise."""
        return "" if self.queue is None else f", #{self.queue} in the queue"


class View(Protocol):
    def __enter__(self) -> View: ...
    def __exit__(self, *exc: object) -> None: ...
    def update(self, study: dict[str, Any]) -> None: ...


def follow(
    client: HpoClient, study: dict[str, Any], *, console: Console, quiet: bool
) -> dict[str, Any]:
    """Poll the study until it ends, showing progress unless `quiet`; returns its last state."""
    if quiet:
        return client.wait(study["id"])
    view: View = (Bar if console.is_terminal else Lines)(console, study)
    with view:
        return client.wait(study["id"], on_update=view.update)


class Lines:
    """One plain line per change, for logs, CI and pipes, with an ETA from the finish rate."""

    def __init__(self, console: Console, study: dict[str, Any]) -> None:
        self.console, self.study_id = console, study["id"]
        self.last: Tally | None = None
        self.first: tuple[float, int] | None = None

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, study: dict[str, Any]) -> None:
        tally = Tally.of(study)
        if tally == self.last:
            return
        self.last = tally
        self.console.print(
            f"study {self.study_id} {tally.state}: {tally.done}/{tally.total} trials, "
            f"{tally.running} running, best {fmt(tally.best)}, eta {self._eta(tally)}"
            f"{tally.waiting()}",
            highlight=False,
            soft_wrap=True,
        )

    def _eta(self, tally: Tally) -> str:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, tally.done)
        if tally.state not in ("queued", "running"):
            return "0s"
        since, done_then = self.first
        if tally.done <= done_then:
            return "-"
        per_trial_s = (now - since) / (tally.done - done_then)
        return f"{per_trial_s * max(tally.total - tally.done, 0):.0f}s"


class Bar:
    """rich's live bar: trials done of the budget, running, best so far, elapsed and ETA."""

    def __init__(self, console: Console, study: dict[str, Any]) -> None:
        self.total = max_trials(study)
        columns = (
            TextColumn(f"study {study['id']}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} trials"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console)
        self.task: TaskID | None = None

    def __enter__(self) -> Bar:
        self.progress.start()
        self.task = self.progress.add_task("", total=self.total, status="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, study: dict[str, Any]) -> None:
        assert self.task is not None
        t = Tally.of(study)
        status = escape(f"running {t.running}  best {fmt(t.best)}  [{t.state}{t.waiting()}]")
        self.progress.update(self.task, completed=t.done, total=t.total, status=status)
