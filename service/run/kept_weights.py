"""Which weights a study keeps: the best trial's, and unfinished trials' checkpoints.

The best complete trial's weights (the study's `best/checkpoint`) go to the
`CheckpointStore`; a trial's resumable checkpoints (a lost worker, a pause, PBT
donors) to `TrialCheckpoints`, and are deleted when the trial is done with them.
Every write goes through the study's writer, in order with its rows.
"""

from __future__ import annotations

from service.run.checkpoints import CheckpointStore
from service.run.runner import LastEpoch
from service.run.writer import OrderedWriter
from service.spec import StudySpec
from workers.direction import at_least
from workers.trial_checkpoints import CheckpointPolicy, TrialCheckpoints, trial_key


class KeptWeights:
    """One study's kept weights, with the best value kept so far."""

    def __init__(
        self,
        study_id: int,
        spec: StudySpec,
        writer: OrderedWriter,
        *,
        checkpoints: CheckpointStore | None,
        trial_checkpoints: TrialCheckpoints | None,
        best_value: float | None,
    ):
        self.study_id = study_id
        self.spec = spec
        self.writer = writer
        self.best_value = best_value
        self._checkpoints = checkpoints
        self._trial_checkpoints = trial_checkpoints if spec.checkpoints.enabled else None
        self._kept: dict[int, float] = {}

    def policy(self, number: int) -> CheckpointPolicy | None:
        """Where and how often trial `number` writes resumable checkpoints, if it does."""
        if self._trial_checkpoints is None:
            return None
        return CheckpointPolicy(
            self._trial_checkpoints.uri,
            trial_key(self.study_id, number),
            every_epochs=self.spec.checkpoints.every_epochs,
        )

    def keeps(self, value: float) -> bool:
        """A complete trial at least as good as every earlier one keeps its weights."""
        if self._checkpoints is None:
            return False
        return at_least(value, self.best_value, self.spec.primary.direction)

    def last_epoch(self) -> LastEpoch:
        """What a slot needs to end a trial with its last epoch: the weights to ship."""
        return LastEpoch(keep=self._checkpoints is not None, floor=self.best_value)

    def save(self, number: int, value: float, data: bytes) -> None:
        """Keep trial `number`'s weights as the best (ties with it are kept too)."""
        assert self._checkpoints is not None
        self.best_value = value
        self._kept = {n: v for n, v in self._kept.items() if v == value} | {number: value}
        self.writer.submit(
            self._checkpoints.save, self.study_id, number, data, keep=set(self._kept)
        )

    def forget_trial(self, number: int) -> None:
        """A finished trial's resumable checkpoints are no longer needed."""
        if self._trial_checkpoints is not None:
            self.writer.submit(self._trial_checkpoints.delete, trial_key(self.study_id, number))

    def forget_study(self) -> None:
        """Every resumable checkpoint of the study (PBT donors kept to the end)."""
        if self._trial_checkpoints is not None:
            self.writer.submit(self._trial_checkpoints.delete_study, self.study_id)
