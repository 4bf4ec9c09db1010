"""Metrics and the health endpoint: what each method records, `settle`'s counts, and
`/healthz`, `/readyz`, `/metrics` over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from skiff_contracts import subjects
from skiff_contracts.messages import ModelCall
from skiff_runtime.delivery import PoisonMessage, settle
from skiff_runtime.health import HealthServer, serving_health
from skiff_runtime.jetstream import ConsumerSpec
from skiff_runtime.metrics import Metrics, process_metrics, subject_label
from skiff_runtime.nats_server import free_port
from skiff_runtime.settings import ServiceSettings


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# --- Metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "label"),
    [
        (subjects.task("flights", "extract"), "skiff.v1.task.flights.extract"),
        (subjects.result("hotels"), "skiff.v1.result.hotels"),
        (subjects.trip_input("web", "trip-0123456789abcdef0123"), "skiff.v1.trip.input.*.*"),
        (subjects.trip_events("cli", "trip-0123456789abcdef0123"), "skiff.v1.trip.events.*.*"),
        ("_INBOX.planner.Xyz.42", "_INBOX.>"),
        ("somebody.else", "other"),
    ],
)
def test_subject_labels_are_bounded(subject: str, label: str) -> None:
    assert subject_label(subject) == label


def test_messages_are_counted_by_bounded_subject_and_status() -> None:
    metrics = Metrics()
    metrics.message(subjects.trip_input("web", "trip-a"), "acked")
    metrics.message(subjects.trip_input("cli", "trip-b"), "acked")
    metrics.message(subjects.trip_input("cli", "trip-b"), "poison")
    trips = "skiff.v1.trip.input.*.*"
    assert value(metrics, "skiff_messages_total", subject=trips, status="acked") == 2
    assert value(metrics, "skiff_messages_total", subject=trips, status="poison") == 1


def test_steps_escalations_trips_and_conflicts() -> None:
    metrics = Metrics()
    metrics.step("flights", "extract", 0.3)
    with metrics.timed_step("flights", "hold"):
        pass
    metrics.escalation("ungrounded", "hotels")
    metrics.escalation("no_model")
    metrics.trip_finished("completed")
    metrics.conflict()
    labels = {"domain": "flights", "operation": "extract"}
    assert value(metrics, "skiff_step_duration_seconds_count", **labels) == 1
    assert value(metrics, "skiff_step_duration_seconds_sum", **labels) == pytest.approx(0.3)
    assert value(metrics, "skiff_step_duration_seconds_count", domain="flights", operation="hold")
    assert value(metrics, "skiff_escalations_total", reason="ungrounded", domain="hotels") == 1
    assert value(metrics, "skiff_escalations_total", reason="no_model", domain="none") == 1
    assert value(metrics, "skiff_trips_finished_total", outcome="completed") == 1
    assert value(metrics, "skiff_saga_conflicts_total") == 1


def test_model_calls_tokens_cost_and_the_slm_share() -> None:
    metrics = Metrics()
    slm = ModelCall(tier="slm", engine="llamacpp", model="smollm2", version="v1", tokens_in=300,
                    tokens_out=20, latency_ms=250.0)  # fmt: skip
    llm = ModelCall(tier="llm", engine="openai", model="big", version="2025", tokens_in=900,
                    tokens_out=60, latency_ms=2000.0, cost_usd=0.0004, calls=2)  # fmt: skip
    for call in (slm, slm, slm, llm):
        metrics.model_call(call)
    for tier in ("slm", "slm", "slm", "llm"):
        metrics.resolved("flights", tier)
    slm_labels = {"tier": "slm", "model": "smollm2", "version": "v1"}
    assert value(metrics, "skiff_model_calls_total", **slm_labels) == 3
    assert value(metrics, "skiff_model_calls_total", tier="llm", model="big", version="2025") == 2
    assert value(metrics, "skiff_model_tokens_total", **slm_labels, type="input") == 900
    assert value(metrics, "skiff_model_tokens_total", **slm_labels, type="output") == 60
    assert value(metrics, "skiff_model_cost_usd_total", tier="llm") == pytest.approx(0.0004)
    assert value(metrics, "skiff_model_call_duration_seconds_count", tier="slm", model="smollm2")
    resolved_slm = value(metrics, "skiff_steps_resolved_total", domain="flights", tier="slm")
    resolved_llm = value(metrics, "skiff_steps_resolved_total", domain="flights", tier="llm")
    assert resolved_slm / (resolved_slm + resolved_llm) == 0.75


def test_each_metrics_object_has_its_own_registry_and_the_process_one_is_shared() -> None:
    first, second = Metrics(), Metrics()
    first.conflict()
    assert value(second, "skiff_saga_conflicts_total") == 0
    assert process_metrics() is process_metrics()


def test_exposition_speaks_prometheus_text_and_openmetrics() -> None:
    metrics = Metrics()
    metrics.message(subjects.result("cars"), "nacked")
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    assert b'skiff_messages_total{status="nacked",subject="skiff.v1.result.cars"} 1.0' in body
    assert b"process_cpu_seconds_total" in body or b"python_info" in body
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


# --- settle counts how each delivery ended -------------------------------------------------


class FakeMessage:
    def __init__(self, subject: str, delivered: int = 1) -> None:
        self.body = b"{}"
        self.raw_message = SimpleNamespace(
            subject=subject,
            metadata=SimpleNamespace(num_delivered=delivered, sequence=SimpleNamespace(stream=9)),
        )
        self.settled: str | None = None

    async def ack(self) -> None:
        self.settled = "ack"

    async def nack(self, delay: float | None = None) -> None:
        self.settled = "nack"

    async def reject(self) -> None:
        self.settled = "term"

    async def in_progress(self) -> None:
        pass


class FakeBroker:
    def __init__(self, max_deliver: int) -> None:
        self.published: list[str] = []
        info = SimpleNamespace(config=SimpleNamespace(max_deliver=max_deliver))

        async def consumer_info(stream: str, durable: str) -> Any:
            return info

        self.connection = SimpleNamespace(
            jetstream=lambda: SimpleNamespace(consumer_info=consumer_info)
        )

    async def publish(self, body: bytes, subject: str, **_: Any) -> None:
        self.published.append(subject)


SPEC = ConsumerSpec(stream="TASKS", durable="metrics-unit-test", filter_subject="skiff.v1.task.>")


async def fails() -> None:
    raise RuntimeError("supplier down")


async def is_poison() -> None:
    raise PoisonMessage("not a task")


async def works() -> None:
    pass


@pytest.mark.parametrize(
    ("work", "delivered", "status", "settled"),
    [
        (works, 1, "acked", "ack"),
        (fails, 1, "nacked", "nack"),
        (fails, 3, "dead_lettered", "term"),
        (is_poison, 1, "poison", "term"),
    ],
)
async def test_settle_counts_each_outcome(
    work: Any, delivered: int, status: str, settled: str
) -> None:
    metrics = Metrics()
    message = FakeMessage(subjects.task("cars", "hold"), delivered)
    broker = FakeBroker(max_deliver=3)
    await settle(broker, message, SPEC, work, metrics=metrics)  # type: ignore[arg-type]
    assert message.settled == settled
    subject = "skiff.v1.task.cars.hold"
    assert value(metrics, "skiff_messages_total", subject=subject, status=status) == 1
    assert (
        sum(
            value(metrics, "skiff_messages_total", subject=subject, status=other)
            for other in ("acked", "nacked", "dead_lettered", "poison")
        )
        == 1
    )


# --- /healthz, /readyz, /metrics over HTTP -------------------------------------------------


class Flag:
    def __init__(self) -> None:
        self.up = False

    async def __call__(self) -> bool:
        return self.up


class FakePing:
    def __init__(self, connected: bool) -> None:
        self.connected = connected

    async def ping(self, timeout: float | None) -> bool:
        return self.connected


def settings() -> ServiceSettings:
    return ServiceSettings(metrics_port=free_port(), metrics_host="127.0.0.1")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_readiness_follows_the_service_check(http: httpx.AsyncClient) -> None:
    flag, metrics = Flag(), Metrics()
    async with serving_health(settings(), flag, metrics, broker=FakePing(True)) as server:
        assert isinstance(server, HealthServer)
        base = f"http://127.0.0.1:{server.port}"
        assert (await http.get(f"{base}/healthz")).status_code == 200
        not_ready = await http.get(f"{base}/readyz")
        assert (not_ready.status_code, not_ready.text) == (503, "service not ready\n")
        flag.up = True
        assert (await http.get(f"{base}/readyz")).status_code == 200


async def test_readiness_needs_the_broker_connected(http: httpx.AsyncClient) -> None:
    broker = FakePing(False)
    async with serving_health(settings(), lambda: True, Metrics(), broker=broker) as server:
        assert server is not None
        response = await http.get(f"http://127.0.0.1:{server.port}/readyz")
        assert (response.status_code, response.text) == (503, "broker not connected\n")
        broker.connected = True
        assert (await http.get(f"http://127.0.0.1:{server.port}/readyz")).status_code == 200


async def test_a_failing_or_hanging_check_means_not_ready(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> bool:
        raise RuntimeError("engine gone")

    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    monkeypatch.setattr("skiff_runtime.health.READY_TIMEOUT_S", 0.2)
    for check in (broken, hangs):
        async with serving_health(settings(), check, Metrics()) as server:
            assert server is not None
            response = await http.get(f"http://127.0.0.1:{server.port}/readyz")
            assert response.status_code == 503
            assert response.text.startswith("readiness check failed")


async def test_metrics_and_the_other_routes(http: httpx.AsyncClient) -> None:
    metrics = Metrics()
    metrics.escalation("ambiguous", "flights")
    async with serving_health(settings(), lambda: True, metrics) as server:
        assert server is not None
        base = f"http://127.0.0.1:{server.port}"
        scraped = await http.get(f"{base}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert 'skiff_escalations_total{domain="flights",reason="ambiguous"} 1.0' in scraped.text
        open_metrics = await http.get(
            f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
        assert (await http.get(f"{base}/nothing")).status_code == 404
        post = await http.post(f"{base}/healthz")
        assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
        head = await http.head(f"{base}/metrics")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0


async def test_a_garbage_request_does_not_hurt_the_server(http: httpx.AsyncClient) -> None:
    async with serving_health(settings(), lambda: True, Metrics()) as server:
        assert server is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x00\x01 not http\r\n\r\n")
        await writer.drain()
        await reader.read()  # the server closes the connection
        writer.close()
        assert (await http.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200


async def test_port_zero_turns_the_endpoint_off() -> None:
    async with serving_health(ServiceSettings(metrics_port=0), lambda: True) as server:
        assert server is None


async def test_the_endpoint_is_gone_after_the_block(http: httpx.AsyncClient) -> None:
    async with serving_health(settings(), lambda: True, Metrics()) as server:
        assert server is not None
        port = server.port
    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{port}/healthz")
