"""The StudySpec: what a user submits, composed of the leaves' own input types and the
sections in `service.spec_sections`."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from search.population import MUTABLE, PopulationSpec, mutation_errors
from search.pruners import AshaPrunerSpec, NoPrunerSpec, PrunerSpec
from search.samplers import SamplerSpec, TPESamplerSpec, check_sampler
from search.space import ParamSpec, draw_order
from service import spec_checks
from service.spec_sections import (
    COST_METRICS,
    Budget,
    CheckpointSpec,
    EarlyStoppingSpec,
    FixedValue,
    HyperparameterName,
    Objective,
    Resources,
    SchedulePoint,
    _Strict,
    default_space,
)
from workers.hyperparameters import check_value
from workers.spec import BuiltinDataset, DatasetSpec, ModelSpec, SplitSpec

__all__ = ["StudySpec", "default_space"]


def _defaults_in_words(schema: dict[str, Any]) -> None:
    """Object defaults (a whole `budget`, `sampler`, ...) move from `default` into the
    description: OpenAPI client generators cannot give a model-typed property a default
    (openapi-python-client drops the whole schema, and with it the submit operation).
    An omitted section still gets the same default from the service."""
    for prop in schema.get("properties", {}).values():
        default = prop.get("default")
        if isinstance(default, dict) or (isinstance(default, list) and default):
            del prop["default"]
            said = f"Omitted: {json.dumps(default, separators=(', ', ': '))}."
            prop["description"] = f"{prop['description']} {said}" if "description" in prop else said


class StudySpec(_Strict):
    """A study definition; field names are a contract (see DESIGN.md).

    Trial `n` trains with the seed `split.seed + n` (its weights' init, data order,
    dropout and input noise), so that trials differ; `training_seed`, when set, is the
    seed of every trial instead: what GET /best/spec sets to the PBT member's own seed
    (its lineage's first member's), so that the replay's trial 0 trains as that member did.
    `split.seed` keeps choosing the data split either way.
    """

    model_config = ConfigDict(json_schema_extra=_defaults_in_words)

    name: str = Field(min_length=1, max_length=200)
    dataset: DatasetSpec = BuiltinDataset(source="builtin", name="digits")
    model: ModelSpec = ModelSpec()
    split: SplitSpec = SplitSpec()
    training_seed: int | None = Field(
        default=None,
        description="The seed every trial trains with (init, data order, dropout, noise); "
        "default split.seed + the trial's number. A PBT replay (GET /best/spec) sets it to "
        "the member's, so that its curve repeats the member's.",
    )
    objective: Objective | Annotated[list[Objective], Field(min_length=1, max_length=4)] = (
        Objective()
    )
    prune_on: str | None = Field(
        default=None,
        description="The objective metric that pruning, early stopping, a trial's best epoch "
        "and the target use; default the first objective.",
    )
    space: dict[HyperparameterName, ParamSpec] = Field(default_factory=default_space)
    params: dict[HyperparameterName, FixedValue] = Field(default_factory=dict)
    initial_trials: list[dict[HyperparameterName, FixedValue]] = Field(
        default_factory=list, max_length=1000, description="Configs evaluated first, in order."
    )
    sampler: SamplerSpec = TPESamplerSpec(type="tpe")
    pruner: PrunerSpec = AshaPrunerSpec(type="asha")
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    budget: Budget = Budget()
    resources: Resources = Resources()
    checkpoints: CheckpointSpec = CheckpointSpec()
    priority: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="Among one tenant's studies, freed slots go to the highest priority "
        "first, then the oldest study; tenants share the cluster by weight whatever this is.",
    )
    param_schedule: dict[str, list[SchedulePoint]] = Field(
        default_factory=dict,
        description="Fixed per-epoch values of knobs a running trial can change (lr, "
        "weight_decay, momentum, ...): each point holds from its epoch on, `params` before "
        "the first. What GET /best/spec exports to replay a PBT member's schedule.",
    )
    population: PopulationSpec | None = Field(
        default=None,
        description="Population-based training: `size` members train at once; every "
        "`interval_epochs` the bottom `quantile` copies the top one's weights and params and "
        "mutates them. Sets budget.max_trials and budget.parallelism to `size` and the "
        "pruner to none unless given.",
    )

    @property
    def objectives(self) -> list[Objective]:
        return list(self.objective) if isinstance(self.objective, list) else [self.objective]

    @property
    def primary(self) -> Objective:
        """The objective that pruning, early stopping, best epoch and target follow."""
        metric = self.prune_on or self.objectives[0].metric
        return next(o for o in self.objectives if o.metric == metric)

    def trial_seed(self, number: int) -> int:
        """The seed trial `number` trains with (see the class docstring)."""
        return self.training_seed if self.training_seed is not None else self.split.seed + number

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        return [o.direction for o in self.objectives]

    @model_validator(mode="before")
    @classmethod
    def _population_defaults(cls, data: Any) -> Any:
        """A PBT study trains its `size` members at once and never prunes them (the
        exploit step replaces pruning): the budget and pruner follow unless given."""
        if not isinstance(data, dict) or not isinstance(data.get("population"), dict):
            return data
        size = data["population"].get("size", PopulationSpec.model_fields["size"].default)
        budget = data.get("budget")
        if budget is None or isinstance(budget, dict):
            budget = {"max_trials": size, "parallelism": size, **(budget or {})}
        return {"pruner": {"type": "none"}, **data, "budget": budget}

    @field_validator("space")
    @classmethod
    def _space_values(cls, space: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        spec_checks.check_space_values(space)
        return space

    @field_validator("params")
    @classmethod
    def _fixed_values(cls, params: dict[str, FixedValue]) -> dict[str, FixedValue]:
        spec_checks.check_fixed_values(params)
        return params

    @model_validator(mode="after")
    def _space_is_consistent(self) -> StudySpec:
        both = sorted(set(self.space) & set(self.params))
        if both:
            raise ValueError(f"{both} cannot be both searched (space) and fixed (params)")
        draw_order(self.space, self.params)
        spec_checks.check_optimizer_knobs(self.space, self.params)
        spec_checks.check_batch_norm_batch_size(self.space, self.params)
        spec_checks.check_initial_trials(self.initial_trials, self.space)
        return self

    @model_validator(mode="after")
    def _objectives_are_consistent(self) -> StudySpec:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objective lists a metric twice: {metrics}")
        if self.prune_on is not None and self.prune_on not in metrics:
            raise ValueError(
                f"prune_on must be one of the objectives {metrics}, got {self.prune_on!r}"
            )
        if self.primary.metric in COST_METRICS:
            raise ValueError(
                f"{self.primary.metric} cannot drive pruning; set prune_on to a val_ metric"
            )
        return self

    @model_validator(mode="after")
    def _fits_the_data_and_sampler(self) -> StudySpec:
        for i, objective in enumerate(self.objectives):
            if objective.metric not in COST_METRICS:
                where = f"objective.{i}.metric" if isinstance(self.objective, list) else None
                spec_checks.check_objective(objective.metric, self.dataset, field=where)
        spec_checks.check_model(self.model, self.dataset)
        spec_checks.check_task_hyperparameters(self.model, self.space, self.params)
        check_sampler(self.sampler, self.space, n_objectives=len(self.objectives))
        return self

    @model_validator(mode="after")
    def _param_schedule_is_consistent(self) -> StudySpec:
        errors = []
        for name, points in self.param_schedule.items():
            where = f"param_schedule.{name}"
            if name not in MUTABLE:
                errors.append(
                    f"{where}: {name} cannot change while a trial runs; schedulable: "
                    f"{sorted(MUTABLE)}"
                )
            elif name in self.space:
                errors.append(f"{where}: {name} is searched (space); fix it in params instead")
            starts = [p.from_epoch for p in points]
            if starts != sorted(set(starts)) or (starts and starts[-1] > self.budget.max_epochs):
                errors.append(f"{where}: from_epoch must rise, up to budget.max_epochs")
            errors += [f"{where}: {e}" for p in points if (e := check_value(name, p.value))]
        schedule = self.params.get("lr_schedule", "constant")
        if "lr" in self.param_schedule and (
            schedule != "constant" or self.params.get("warmup_epochs")
        ):
            errors.append("param_schedule.lr: needs lr_schedule constant, without warmup")
        if "dropout" in self.param_schedule and not self.params.get("dropout"):
            errors.append("param_schedule.dropout: needs params.dropout above 0 (the layers)")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @model_validator(mode="after")
    def _population_is_consistent(self) -> StudySpec:
        population = self.population
        if population is None:
            return self
        errors = mutation_errors(population, self.space, self.params)
        size = population.size
        if self.budget.max_trials != size:
            errors.append(("budget.max_trials", f"a PBT study has its {size} members as trials"))
        if self.budget.parallelism != size:
            errors.append(("budget.parallelism", f"a PBT study trains its {size} members at once"))
        if not isinstance(self.pruner, NoPrunerSpec):
            errors.append(
                ("pruner.type", "a PBT study's exploit step replaces pruning: use type none")
            )
        if not self.checkpoints.enabled:
            errors.append(("checkpoints.enabled", "PBT copies members through their checkpoints"))
        if len(self.objectives) > 1:
            errors.append(("objective.metric", "PBT ranks members by one objective"))
        max_epochs = self.budget.max_epochs
        if population.interval_epochs >= max_epochs:
            errors.append(("population.interval_epochs", f"must be below max_epochs {max_epochs}"))
        if errors:
            raise ValueError("; ".join(f"{where}: {message}" for where, message in errors))
        return self

    def warnings(self) -> list[str]:
        """What the study will do differently from what a reader of the spec might expect."""
        return check_sampler(self.sampler, self.space, n_objectives=len(self.objectives))
