"""A PBT study's members as its driver schedules them: who waits, and how far each got.

Members train in step when the study holds fewer slots than the population: a member
that reached a boundary gives its slot to one that has trained fewer epochs (or has not
started), and the member furthest behind takes the study's next slot. This is what Ray
Tune's PBT does on a cluster smaller than the population; without it, late members
would be ranked against members that had trained to the end, and copy them at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from service.records import TrialRecord
from service.run.jobs import TrialJob
from service.run.population import Population
from service.spec import StudySpec


class Members:
    """The study's `Population`, and the epochs each waiting member has trained."""

    def __init__(self, spec: StudySpec, members: Iterable[TrialRecord] = ()):
        self.population = Population(spec, seed=spec.split.seed)
        members = list(members)
        self.population.restore(members)  # a PBT study resumed: what it ranked with
        self._epochs = {m.number: m.checkpoint_epoch or 0 for m in members}

    def behind(self, job: TrialJob) -> int:
        """Epochs a waiting member has trained (0 for one not started)."""
        return 0 if job.number is None else self._epochs.get(job.number, 0)

    def waits(self, number: int, epochs: int) -> None:
        """Member `number` stopped unfinished after `epochs`: it waits for a slot."""
        self._epochs[number] = epochs

    def gives_way(self, epochs: int, *, waiting: Iterable[TrialJob], unstarted: bool) -> bool:
        """Whether a member that trained `epochs` gives its slot up: a member has not
        started (`unstarted`) or one waiting has trained fewer epochs."""
        return unstarted or any(self.behind(job) < epochs for job in waiting)

    def take_next(self, waiting: deque[TrialJob], *, all_claimed: bool) -> TrialJob | None:
        """The waiting member to run next, the one furthest behind, taken from `waiting`;
        None while a member not started yet should run first (`all_claimed`: none is)."""
        job = min(waiting, key=self.behind)
        if self.behind(job) == 0 or all_claimed:
            waiting.remove(job)
            return job
        return None
