"""Reading pydantic's error locations over the spec's type: the user's path, the union
member a location names, and the fields or tags valid where a wrong one was given."""

from __future__ import annotations

import pytest

from api.body_paths import field_names, tags, walk
from service.spec import StudySpec

FA = "function-before[_infer_direction(), Objective]"


@pytest.mark.parametrize(
    ("loc", "kept", "member_at"),
    [
        (("sampler", "tpe", "seed"), ("sampler", "seed"), None),
        (("space", "lr", "float", "high"), ("space", "lr", "high"), None),
        (("objective", FA, "direction"), ("objective", "direction"), 1),
        (("objective", f"list[{FA}]", 0, "metric"), ("objective", 0, "metric"), 1),
        (("params", "hidden_units", "int"), ("params", "hidden_units"), 2),
        (("params", "hidden_unit", "[key]"), ("params", "hidden_unit"), None),
        (("budget", "max_trials"), ("budget", "max_trials"), None),
    ],
)
def test_a_location_reads_as_the_path_the_user_wrote(
    loc: tuple[str | int, ...], kept: tuple[str | int, ...], member_at: int | None
) -> None:
    read = walk(StudySpec, loc)
    assert read is not None and (read.kept, read.member_at) == (kept, member_at)


def test_a_location_that_does_not_fit_the_type_reads_as_none() -> None:
    assert walk(StudySpec, ("budget", "max_trial")) is None
    assert walk(StudySpec, ("sampler", "tpee")) is None


def test_the_valid_fields_and_tags_where_a_location_ends() -> None:
    budget = walk(StudySpec, ("budget",))
    sampler = walk(StudySpec, ("sampler",))
    assert budget is not None and "max_trials" in field_names(budget.end)
    assert sampler is not None and sampler.discriminator == "type"
    assert tags(sampler.end, "type") == ["tpe", "random", "cmaes", "gp", "qmc", "grid", "nsga2"]
