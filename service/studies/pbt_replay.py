"""A PBT member's schedule as a plain study that replays it: fixed per-epoch values.

The model a member ends with was trained along its lineage: after its last copy, by
the member with that copy's params; before it, by the donor it copied (up to the
donor's epoch in the copied checkpoint), and so on back to a member that copied
nobody, the lineage's root. `lineage_of` walks that way back; `replay_spec` turns the
segments into `params` (the first segment's) and `param_schedule` (the later ones),
and fixes `training_seed` to the root's seed, so that a user can train the schedule
again without a population and get the same curve.

Why the root's seed: a copy continues from the donor's checkpoint, generators included
(data order, dropout, noise), so after a copy the member draws what the donor would
have drawn; the member's own seed lives on in no epoch of the model it ends with.
Training the root's seed from scratch with the lineage's schedule therefore retrains
the root's epochs up to the copy, then the member's after it, value for value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.records import TrialRecord
from service.spec import StudySpec

Segment = tuple[int, dict[str, Any]]
"""Epochs trained with one set of searched params."""


@dataclass(frozen=True)
class Lineage:
    """Who trained a member's model, in order: the root's seed trained the first segment."""

    root: int
    segments: list[Segment]


def lineage_of(members: Mapping[int, TrialRecord], number: int, upto: int) -> Lineage:
    """The root and the (epochs, params) that trained member `number`'s model up to its
    epoch `upto`.

    A copy made at epoch `upto` counts: the member's checkpoint there is the copy (it is
    rewritten at once), so a member that copies it takes the donor's donor's model. Each
    step back goes to an earlier moment (a copy takes a checkpoint that was already
    written), so the walk ends; the loop bound only guards against a corrupt record."""
    tail: list[Segment] = []
    for _ in range(10_000):
        member = members[number]
        copies = [c for c in member.lineage if c["epoch"] <= upto]
        if not copies or copies[-1]["copied"] not in members:
            first = copies[-1]["params"] if copies else member.params
            return Lineage(number, [(upto, dict(first)), *tail])
        last = copies[-1]
        if upto > last["epoch"]:
            tail.insert(0, (upto - last["epoch"], dict(last["params"])))
        number, upto = last["copied"], int(last["copied_epoch"] or last["epoch"])
    raise ValueError(f"member {number}'s lineage does not end")


def lineage_segments(members: Mapping[int, TrialRecord], number: int, upto: int) -> list[Segment]:
    """The (epochs, params) that trained member `number`'s model up to its epoch `upto`."""
    return lineage_of(members, number, upto).segments


def replay_spec(spec: StudySpec, members: Mapping[int, TrialRecord], number: int) -> dict[str, Any]:
    """A study spec that trains member `number`'s schedule once, as fixed per-epoch values,
    with its lineage root's seed. Early stopping and the target are off: the member's
    restarted at each copy, so the replay's would stop where the member did not."""
    member = members[number]
    lineage = lineage_of(members, number, member.epochs_run)
    segments = lineage.segments
    schedule: dict[str, list[dict[str, Any]]] = {}
    start, current = 1, dict(segments[0][1])
    for epochs, params in segments:
        for name, value in params.items():
            if current.get(name) != value:
                schedule.setdefault(name, []).append({"from_epoch": start, "value": value})
                current[name] = value
        start += epochs
    body = spec.model_dump(mode="json", exclude={"population", "space", "initial_trials"})
    return {
        **body,
        "name": f"{spec.name}-replay-{number}"[:200],
        "space": {},
        "params": {**spec.params, **segments[0][1]},
        "param_schedule": schedule,
        "training_seed": spec.trial_seed(lineage.root),
        "sampler": {"type": "random"},
        "pruner": {"type": "none"},
        "early_stopping": {**body["early_stopping"], "patience": start - 1},
        "budget": {
            **body["budget"],
            "max_trials": 1,
            "parallelism": 1,
            "max_epochs": start - 1,
            "target": None,
        },
    }
