"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from f5serve.registry import LoadedModel

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20)


class _LiveCollector(Collector):
    """Gauges read at scrape time: queue depths and loaded models."""

    def __init__(
        self,
        queue_depth: Callable[[], dict[str, float]],
        loaded: Callable[[], list[LoadedModel]],
    ) -> None:
        self.queue_depth = queue_depth
        self.loaded = loaded

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "f5serve_queue_depth", "Requests or jobs waiting", labels=["queue"]
        )
        for name, value in self.queue_depth().items():
            queue.add_metric([name], value)
        models = GaugeMetricFamily(
            "f5serve_model_loaded_bytes", "Loaded models and their size", labels=["model", "device"]
        )
        count = GaugeMetricFamily("f5serve_models_loaded", "Number of loaded models")
        loaded = self.loaded()
        for model in loaded:
            models.add_metric([model.name, model.device], model.bytes)
        count.add_metric([], len(loaded))
        yield from (queue, models, count)


class Metrics:
    """Request counts and latencies, synthesis real-time factor, job outcomes, live gauges."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "f5serve_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "f5serve_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rtf = Histogram(
            "f5serve_synthesis_rtf",
            "Real-time factor (wall seconds / audio seconds)",
            ["kind"],
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "f5serve_audio_seconds", "Seconds of audio produced", ["kind"], registry=self.registry
        )
        self.jobs = Counter(
            "f5serve_jobs", "Finished jobs by outcome", ["outcome"], registry=self.registry
        )
        # per API key (its id and name, never the key), counted by the process that served it
        self.key_requests = Counter(
            "f5serve_key_requests",
            "Requests accepted per API key",
            ["key_id", "key_name"],
            registry=self.registry,
        )
        self.key_audio_seconds = Counter(
            "f5serve_key_audio_seconds",
            "Seconds of audio produced per API key",
            ["key_id", "key_name"],
            registry=self.registry,
        )

    def watch(
        self,
        queue_depth: Callable[[], dict[str, float]],
        loaded: Callable[[], list[LoadedModel]],
    ) -> None:
        """Register the scrape-time gauges."""
        self.registry.register(_LiveCollector(queue_depth, loaded))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_synthesis(self, kind: str, wall_seconds: float, audio_seconds: float) -> None:
        if audio_seconds > 0:
            self.rtf.labels(kind).observe(wall_seconds / audio_seconds)
            self.audio_seconds.labels(kind).inc(audio_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
