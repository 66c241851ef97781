"""A PBT study's population while it trains: latest scores, current params, decisions.

The driver keeps one `Population` per PBT study; `trial_loop` asks it at every
`interval_epochs` boundary whether the member exploits another (the rules are in
`search.population`). Members are the study's trials; a member copies another
through the donor's trial checkpoint, written at the boundary before it is ranked.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from search.direction import worst
from search.population import Exploit, decide
from service.records import TrialRecord
from service.spec import StudySpec

_FINISHED = ("complete", "pruned")


class Population:
    """The members' latest scores and the searched params each trains with now."""

    def __init__(self, spec: StudySpec, seed: int):
        assert spec.population is not None
        self.spec = spec
        self.population = spec.population
        self._scores: dict[int, float] = {}
        self._params: dict[int, dict[str, Any]] = {}
        self._rng = random.Random(seed)

    def restore(self, members: Iterable[TrialRecord]) -> None:
        """Rebuild the population a previous run of the driver held (a restarted service, a
        resumed study) from the members' records, their curves included: each member's
        latest params and the score it ranked with. Without this, members that had
        finished would never rank or be copied again, and the quantiles would be cut from
        the unfinished members alone."""
        for member in members:
            if member.state == "failed":
                continue
            self.join(member.number, member.current_params)
            score = self._ranked_with(member)
            if score is not None:
                self._scores[member.number] = self._score(score)

    def _ranked_with(self, member: TrialRecord) -> float | None:
        """A finished member's final value (its final state is the one kept to copy); an
        unfinished one's at its last boundary before its checkpoint (the copy's value if
        it copied there), none before its first. Non-finite values are stored as null."""
        metric = self.spec.primary.metric
        values = {e.epoch: e.metrics.get(metric) for e in member.epochs}
        if member.state in _FINISHED:
            epoch = member.epochs_run
        else:
            interval = self.population.interval_epochs
            epoch = (member.checkpoint_epoch or 0) // interval * interval
            copied = [c for c in member.lineage if c["epoch"] == epoch]
            if copied and copied[-1].get("loaded_value") is not None:
                return float(copied[-1]["loaded_value"])
        if epoch < 1 or epoch not in values:
            return None
        value = values[epoch]
        return math.nan if value is None else float(value)

    def join(self, number: int, params: dict[str, Any]) -> None:
        """Member `number` trains with these searched params (its first, or a resumed
        member's latest)."""
        self._params[number] = {k: v for k, v in params.items() if k in self.spec.space}

    def current(self, number: int, params: dict[str, Any]) -> dict[str, Any]:
        """The member's params now: `params` (as it started) with its latest copy's."""
        return {**params, **self._params.get(number, {})}

    def at_boundary(self, number: int, value: float) -> Exploit | None:
        """Record the member's score at a boundary; its exploit, if it is due one. A
        member whose value is not finite ranks last."""
        self._scores[number] = self._score(value)
        return decide(
            number,
            self._scores,
            self._params,
            self.population,
            self.spec.space,
            self.spec.primary.direction,
            self._rng,
        )

    def adopted(self, number: int, exploit: Exploit, value: float | None) -> None:
        """The member is now a copy: the donor's params (mutated) and, until its next
        boundary, the copy's own value before it trained (the donor's)."""
        self._params[number] = dict(exploit.params)
        if value is not None:
            self._scores[number] = value

    def finished(self, number: int, value: float) -> None:
        """The member trained to its end: its final score ranks it, and its final state
        (kept until the study ends) may be copied."""
        self._scores[number] = self._score(value)

    def _score(self, value: float) -> float:
        """`value`, or the worst score when it is not finite (a diverged member)."""
        return value if math.isfinite(value) else worst(self.spec.primary.direction)

    def leave(self, number: int) -> None:
        """The member failed: nobody copies it."""
        self._scores.pop(number, None)
        self._params.pop(number, None)
