"""Prometheus metrics of one service instance, on a registry of its own (no globals)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from service.cluster.cluster_view import ClusterSnapshot

TENANT_LABEL = "tenant"
OTHERS = "others"  # the one name other tenants' series go by, as on GET /api/v1/cluster
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Counters the drivers and the HTTP layer update; study states are read at scrape time."""

    def __init__(self, study_states: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.trials_started = Counter("hpo_trials_started", "Trials started.", registry=r)
        self.trials_finished = Counter(
            "hpo_trials_finished", "Trials finished, by state.", ["state"], registry=r
        )
        self.trials_running = Gauge("hpo_trials_running", "Trials running now.", registry=r)
        self.epochs = Counter("hpo_epochs_trained", "Epochs trained.", registry=r)
        self.ask_seconds = Histogram(
            "hpo_optuna_ask_seconds",
            "Time to draw a trial's params.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.tell_seconds = Histogram(
            "hpo_optuna_tell_seconds",
            "Time to tell Optuna an outcome.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.http_seconds = Histogram(
            "hpo_http_request_seconds",
            "HTTP request latency.",
            ["method", "route", "status"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "hpo_queue_wait_seconds",
            "Time a study waited for each slot it was granted.",
            buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
            registry=r,
        )
        r.register(_StudyStates(study_states))

    def watch_cluster(self, snapshot: Callable[[], ClusterSnapshot]) -> None:
        """Export the scheduler's slots (busy/idle by shape) and per-tenant slots."""
        self.registry.register(_ClusterSlots(snapshot))

    def render(self, *, tenant: str | None = None) -> bytes:
        """The text format: every series, or with `tenant` as that tenant may see them."""
        if tenant is None:
            return generate_latest(self.registry)
        return generate_latest(_TenantScope(self.registry, tenant))


class _TenantScope(Collector):
    """A registry as one tenant sees it: series labelled with another tenant are summed
    into one `tenant="others"` series, so that no other tenant is named."""

    def __init__(self, source: Collector, tenant: str):
        self._source = source
        self._tenant = tenant

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            yield _scoped(family, self._tenant)


def _scoped(family: Metric, tenant: str) -> Metric:
    if not any(TENANT_LABEL in sample.labels for sample in family.samples):
        return family
    kept: list[Sample] = []
    others: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for sample in family.samples:
        owner = sample.labels.get(TENANT_LABEL)
        if owner is None or owner == tenant:
            kept.append(sample)
        if owner is None or sample.name.endswith("_created"):  # a sum of start times means nothing
            continue
        key = (sample.name, tuple(sorted({**sample.labels, TENANT_LABEL: OTHERS}.items())))
        # Present, at 0, while no other tenant has a share.
        others[key] = others.get(key, 0.0) + (sample.value if owner != tenant else 0.0)
    scoped = copy.copy(family)
    scoped.samples = kept + [Sample(name, dict(labels), n) for (name, labels), n in others.items()]
    return scoped


class _StudyStates(Collector):
    def __init__(self, study_states: Callable[[], dict[str, int]]):
        self._study_states = study_states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._study_states()
        studies = GaugeMetricFamily("hpo_studies", "Studies, by state.", labels=["state"])
        for state, n in sorted(counts.items()):
            studies.add_metric([state], n)
        yield studies
        yield GaugeMetricFamily(
            "hpo_queue_depth", "Studies queued, not yet running.", value=counts.get("queued", 0)
        )


class _ClusterSlots(Collector):
    def __init__(self, snapshot: Callable[[], ClusterSnapshot]):
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot()
        slots = GaugeMetricFamily(
            "hpo_slots", "Trial slots held by the scheduler.", labels=["shape", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        for slot in snapshot.slots:
            key = (slot.shape.label(), slot.state)
            counts[key] = counts.get(key, 0) + 1
        for (shape, state), n in sorted(counts.items()):
            slots.add_metric([shape, state], n)
        yield slots
        tenants = GaugeMetricFamily("hpo_tenant_slots", "Busy slots per tenant.", labels=["tenant"])
        for tenant in snapshot.tenants:
            tenants.add_metric([tenant.tenant], tenant.slots)
        yield tenants
        yield GaugeMetricFamily(
            "hpo_queue_length", "Studies waiting for a slot.", value=len(snapshot.queue)
        )
