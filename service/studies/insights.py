"""What the dashboard's charts read: bounded aggregates of one study, tenant-checked."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from search.importance import EVALUATOR, param_importances
from service.studies.reads import readable
from service.studies.store_errors import storage_errors
from service.studies.study_service import StudyService
from storage.insights import History, StudyInsights
from storage.records import EpochRecord

# Importance reads an evenly spread sample: building Optuna's trials costs ~0.3 ms each.
IMPORTANCE_SAMPLE = 500
# Importances last until the study's trials change (keyed by what the sample held).
IMPORTANCE_CACHE = 64
MAX_CURVES = 100


@dataclass(frozen=True)
class Importance:
    evaluator: str
    n_trials: int
    shares: dict[str, float]


@dataclass(frozen=True)
class Curve:
    number: int
    state: str
    value: float | None
    epochs: list[int]
    values: list[float | None]


class InsightService:
    def __init__(self, studies: StudyService, insights: StudyInsights):
        self._studies = studies
        self._insights = insights
        self._importances: OrderedDict[tuple[int, int, float], dict[str, float]] = OrderedDict()

    def history(self, study_id: int, *, points: int, tenant: str | None = None) -> History:
        """The primary objective per trial number, bucketed, with the running best."""
        with storage_errors():
            self._studies.owned(study_id, tenant)
            return self._insights.history(study_id, points=points)

    def importance(self, study_id: int, *, tenant: str | None = None) -> Importance:
        """Each searched parameter's share of the primary objective's variation."""
        with storage_errors():
            study = readable(self._studies.owned(study_id, tenant))
            sample = self._insights.sample_complete(study_id, limit=IMPORTANCE_SAMPLE)
        key = (study_id, len(sample), sum(value for _, value in sample))
        shares = self._importances.get(key)
        if shares is None:
            shares = param_importances(sample, study.spec.space, study.record.direction)
            self._importances[key] = shares
            if len(self._importances) > IMPORTANCE_CACHE:
                self._importances.popitem(last=False)
        return Importance(EVALUATOR, len(sample), shares)

    def curves(
        self,
        study_id: int,
        *,
        numbers: Sequence[int] = (),
        top: int = 0,
        pruned: int = 0,
        tenant: str | None = None,
    ) -> tuple[str, list[Curve]]:
        """The primary metric per epoch for the named trials, the `top` best complete ones
        and the `pruned` most recently pruned ones (at most MAX_CURVES in all)."""
        with storage_errors():
            study = readable(self._studies.owned(study_id, tenant))
            chosen = list(dict.fromkeys(numbers))
            if top:
                chosen += [t.number for t in self._studies.store.best_trials(study_id, k=top)]
            if pruned:
                chosen += self._insights.recent_numbers(study_id, state="pruned", limit=pruned)
            chosen = list(dict.fromkeys(chosen))[:MAX_CURVES]
            found = self._insights.curves(study_id, chosen)
        metric = study.spec.primary.metric
        return metric, [_curve(n, *found[n], metric=metric) for n in chosen if n in found]


def _curve(
    number: int, state: str, value: float | None, epochs: list[EpochRecord], *, metric: str
) -> Curve:
    return Curve(
        number, state, value, [e.epoch for e in epochs], [e.metrics.get(metric) for e in epochs]
    )
