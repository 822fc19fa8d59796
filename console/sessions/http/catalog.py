"""Every metric and fault action the HTTP kind has. k6's names and units, so k6 thresholds read the same."""

from __future__ import annotations

from console.metrics import MetricSpec, MetricType

__all__ = [
    "CONTROL_ACTIONS",
    "ERROR_METRICS",
    "METRICS",
    "PROBE_METRICS",
    "STATUS_METRICS",
    "TARGET_ACTIONS",
]

# Controls reach the workers; target actions flip the embedded target's switches.
CONTROL_ACTIONS = ("pause", "resume", "rate_up", "rate_down", "set_rate", "burst")
TARGET_ACTIONS = ("error_rate", "latency", "stall", "dependency_down", "dependency_up", "clear")

C, G, R, T = MetricType.COUNTER, MetricType.GAUGE, MetricType.RATE, MetricType.TREND

ERROR_METRICS = {
    cls: f"http_errors_{cls}" for cls in ("timeout", "refused", "reset", "tls", "other")
}
STATUS_METRICS = {f"{n}xx": f"http_status_{n}xx" for n in (1, 2, 3, 4, 5)}
PROBE_METRICS = {
    kind: f"http_probe_{kind}" for kind in ("circuit_breaker", "etag", "backpressure", "recovery")
}

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("http_reqs", C, "count", "HTTP requests completed or failed (k6 http_reqs)."),
    MetricSpec(
        "http_req_duration",
        T,
        "ms",
        "Request time; in arrival-rate executors the first request of an iteration is timed "
        "from its scheduled start, so client or server stalls cannot hide (coordinated omission).",
    ),
    MetricSpec(
        "http_req_failed",
        R,
        "",
        "Fraction of requests that failed: no response, or a status not expected (default >= 400).",
    ),
    MetricSpec("iterations", C, "count", "Completed flow iterations."),
    MetricSpec(
        "iteration_duration",
        T,
        "ms",
        "Time of a whole iteration (from its scheduled start in arrival-rate executors).",
    ),
    MetricSpec(
        "dropped_iterations",
        C,
        "count",
        "Arrival-rate iterations that could not start: every VU up to max_vus was busy.",
    ),
    MetricSpec(
        "vus", G, "count", "VUs running an iteration or ready to (sum over workers).", combine="sum"
    ),
    MetricSpec("vus_max", G, "count", "VUs allocated (sum over workers).", combine="sum"),
    # The generator's own health (console.health): the busiest worker's CPU and loop lag.
    MetricSpec("worker_cpu", G, "%", "A worker process's CPU, % of one core (the busiest)."),
    MetricSpec("worker_loop_lag", G, "ms", "A worker's event-loop lag (the worst, per report)."),
    MetricSpec(
        "data_sent", C, "bytes", "Bytes sent (request line, headers, body; approximate headers)."
    ),
    MetricSpec(
        "data_received",
        C,
        "bytes",
        "Bytes received (status line, headers, body; approximate headers).",
    ),
    MetricSpec(
        "http_body_truncated",
        C,
        "count",
        "Responses longer than max_body: counted in full, only their first max_body bytes kept.",
    ),
    MetricSpec("checks", R, "", "Fraction of flow checks that passed."),
    *(
        MetricSpec(name, C, "count", f"Requests that got HTTP {label} responses.")
        for label, name in STATUS_METRICS.items()
    ),
    *(
        MetricSpec(name, C, "count", f"Requests that failed with no response: {cls}.")
        for cls, name in ERROR_METRICS.items()
    ),
    *(
        MetricSpec(
            name,
            R,
            "",
            f"Resilience probe verdict ({kind.replace('_', ' ')}): one sample, true when it passed.",
        )
        for kind, name in PROBE_METRICS.items()
    ),
    MetricSpec(
        "resilience_score",
        G,
        "points",
        "Resilience score out of 100, weighted as the resilience report (backpressure 25, recovery 25, stability 25, circuit breaker 15, ETag 10).",
        combine="avg",
    ),
)
