"""Every study file in examples/ is a valid spec, as a newcomer would submit it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.spec import StudySpec

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_study_file_is_a_valid_spec(path: Path) -> None:
    spec = StudySpec.model_validate(yaml.safe_load(path.read_text()))
    assert spec.name and spec.budget.max_trials >= 1


def test_the_examples_include_a_pbt_study() -> None:
    assert any(StudySpec.model_validate(yaml.safe_load(p.read_text())).population for p in EXAMPLES)
