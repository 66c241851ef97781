"""What a shared-cluster run shows: trial windows, utilization, makespan against its
lower bound, Jain's index of the tenants' CPU-seconds while all waited, queue waits
(see bench/shared_cluster.py and bench/README.md)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

TENANTS = ("alpha", "beta", "gamma")
TARGETS = {"utilization": 0.9, "makespan_over_bound": 1.15, "jain": 0.95}  # issue 14's


@dataclass(frozen=True)
class Interval:
    tenant: str
    study: int
    start: float
    end: float
    cpus: float

    def overlap(self, start: float, end: float) -> float:
        """CPU-seconds of this trial within [start, end]."""
        return max(0.0, min(self.end, end) - max(self.start, start)) * self.cpus


def intervals(run: dict[str, Any]) -> list[Interval]:
    """Every stretch a trial held a slot: one per run of a preempted trial."""
    return [
        Interval(s["tenant"], s["index"], start, end, t["cpus"])
        for s in run["studies"]
        for t in s["trials"]
        for start, end in t.get("runs", [[t["start"], t["end"]]])
    ]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one takes everything."""
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else float("nan")


def summarize(run: dict[str, Any], capacity: float) -> dict[str, Any]:
    runs = intervals(run)
    if {r.tenant for r in runs} != set(TENANTS):
        raise RuntimeError(f"some tenant has no finished trial: {_errors(run)}")
    first = run["first_submission"]
    last_end = max(r.end for r in runs)
    last_start = max(r.start for r in runs)
    busy = sum(r.overlap(first, last_end) for r in runs)
    # Contended: from the first submission until some tenant has no trial left to start.
    contended_end = min(max(r.start for r in runs if r.tenant == t) for t in TENANTS)
    used = {t: sum(r.overlap(first, contended_end) for r in runs if r.tenant == t) for t in TENANTS}
    waits = [
        min(t["start"] for t in s["trials"]) - s["submitted"] for s in run["studies"] if s["trials"]
    ]
    makespan = last_end - first
    return {
        "makespan_s": makespan,
        "lower_bound_s": busy / capacity,
        "makespan_over_bound": makespan * capacity / busy,
        "utilization": busy / (capacity * makespan),
        "utilization_while_waiting": sum(r.overlap(first, last_start) for r in runs)
        / (capacity * (last_start - first)),
        "busy_cpu_s": busy,
        "contended_s": contended_end - first,
        "jain": jain(list(used.values())),
        "tenant_cpu_s": used,
        "longest_wait_s": max(waits),
        "median_wait_s": statistics.median(waits),
        "trials": sum(len(s["trials"]) for s in run["studies"]),
        "runs": len(runs),
        "mean_trial_s": sum(r.end - r.start for r in runs)
        / sum(len(s["trials"]) for s in run["studies"]),
        "in_epochs": sum(t["train_s"] for s in run["studies"] for t in s["trials"])
        / sum(r.end - r.start for r in runs),
        "workers": len({t["worker"] for s in run["studies"] for t in s["trials"]}),
        "studies_not_completed": sum(1 for s in run["studies"] if s["state"] != "completed"),
        "timeline": timeline(runs, first, last_end, capacity),
    }


def _errors(run: dict[str, Any]) -> str:
    return "; ".join(
        f"study {s['index']} {s['state']}: {s.get('errors', [''])[:1]}"
        for s in run["studies"]
        if s["state"] != "completed"
    )


def timeline(
    runs: list[Interval], first: float, last: float, capacity: float, n: int = 10
) -> list[float]:
    """Utilization in each tenth of the makespan."""
    step = (last - first) / n
    return [
        round(
            sum(r.overlap(first + k * step, first + (k + 1) * step) for r in runs)
            / (capacity * step),
            3,
        )
        for k in range(n)
    ]


def held_not_training(run: dict[str, Any]) -> dict[str, float]:
    """From the service's /cluster samples: CPUs its busy slots held, against the CPUs
    in trials at the same moments (a slot's start and hand-over show as the gap), and
    the CPUs of idle slots."""
    runs, samples = intervals(run), run.get("samples", [])
    if not samples:
        return {}
    training = [sum(r.cpus for r in runs if r.start <= s["t"] < r.end) for s in samples]
    return {
        "granted_cpus": statistics.mean(s["busy_cpus"] for s in samples),
        "training_cpus": statistics.mean(training),
        "idle_slot_cpus": statistics.mean(s["idle_cpus"] for s in samples),
        "reserved_fraction": statistics.mean(1.0 if s["reserved"] else 0.0 for s in samples),
    }


ARM_TITLES = {
    "service": "service",
    "service-reserved": "service, slots reserve CPUs",
    "tune": "Ray Tune",
}


def report(figures: dict[str, dict[str, Any]]) -> str:
    """One column per arm (in run order), then service / Tune where both ran; the targets
    are judged on the `service` arm."""
    arms = list(figures)
    ratio = "service" in figures and "tune" in figures
    service = figures.get("service", figures[arms[0]])

    def row(name: str, key: str, fmt: str, target: str = "") -> str:
        cells = [f"{figures[a][key]:{fmt}}" for a in arms]
        if ratio:
            b = figures["tune"][key]
            cells.append(f"{figures['service'][key] / b:.2f}" if b else "-")
        return f"| {name} | {' | '.join(cells)} | {target} |"

    def met(key: str, ok: bool) -> str:
        return f"{TARGETS[key]:g} ({'met' if ok else 'not met'})"

    def shares(f: dict[str, Any]) -> str:
        used = f["tenant_cpu_s"]
        return "/".join(f"{used[t] / max(1e-9, sum(used.values())):.2f}" for t in TENANTS)

    head = [ARM_TITLES.get(a, a) for a in arms] + (["service / Tune"] if ratio else [])
    blanks = " |" * (len(head) - len(arms))
    lines = [
        f"| | {' | '.join(head)} | issue's target (service) |",
        "| --- |" + " ---: |" * len(head) + " --- |",
        row("makespan s", "makespan_s", ".1f"),
        row("lower bound s (busy CPU-s / CPUs)", "lower_bound_s", ".1f"),
        row(
            "makespan / lower bound",
            "makespan_over_bound",
            ".2f",
            "<= " + met("makespan_over_bound", service["makespan_over_bound"] <= 1.15),
        ),
        row(
            "utilization",
            "utilization",
            ".3f",
            ">= " + met("utilization", service["utilization"] >= 0.9),
        ),
        row("utilization until the last trial started", "utilization_while_waiting", ".3f"),
        row(
            "Jain's index, tenants' CPU-s while all waited",
            "jain",
            ".3f",
            ">= " + met("jain", service["jain"] >= 0.95),
        ),
        f"| CPU-s shares {'/'.join(TENANTS)} in that window | "
        + " | ".join(shares(figures[a]) for a in arms)
        + f" |{blanks} |",
        row("that window s", "contended_s", ".1f"),
        row("longest queue wait s", "longest_wait_s", ".1f"),
        row("median queue wait s", "median_wait_s", ".1f"),
        row("mean trial s", "mean_trial_s", ".2f"),
        row("share of trial time inside train_epoch", "in_epochs", ".2f"),
        row("trials", "trials", "d"),
        row("worker processes that trained", "workers", "d"),
    ]
    return "\n".join(lines)


# -- entry point -------------------------------------------------------------------------
