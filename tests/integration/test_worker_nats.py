"""A real worker (real model) against a real nats-server: replies, bad input, dead letters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from skiff_contracts import subjects
from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import WORKER_RESULT, Extracted, ExtractTask, Failed
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_runtime.jetstream import MAX_MESSAGE_BYTES, dlq_subject
from skiff_runtime.nats_server import NatsServer
from skiff_worker.app import create_app
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings

pytestmark = [pytest.mark.nats, pytest.mark.model]


@pytest.fixture
async def flights_worker(
    nats_server: NatsServer, fresh_layout: Client, engine: object
) -> AsyncIterator[Client]:
    settings = WorkerSettings(domain="flights", nats_url=nats_server.url)
    extractor = Extractor(engine, "flights", ModelIdentity("smollm2", "test"))  # type: ignore[arg-type]
    _, broker = create_app(settings, DomainWorker(extractor))
    await broker.start()
    yield fresh_layout
    await broker.stop()


async def next_on(connection: Client, subject: str, timeout: float = 60.0) -> bytes:
    js = connection.jetstream()
    subscription = await js.subscribe(
        subject, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        message = await subscription.next_msg(timeout=timeout)
        return bytes(message.data)
    finally:
        await subscription.unsubscribe()


def task(text: str, trip_id: str = "trip-w1") -> ExtractTask:
    return ExtractTask(
        message_id=subjects.command_id(trip_id, "flights.extract", 1),
        trip_id=trip_id,
        step="flights.extract",
        domain="flights",
        text=text,
        reference_date=date(2019, 3, 1),
    )


async def publish(connection: Client, payload: bytes, msg_id: str) -> None:
    await connection.jetstream().publish(
        subjects.task("flights", "extract"), payload, headers={"Nats-Msg-Id": msg_id}
    )


async def test_a_task_is_extracted_grounded_and_replied_on_results(flights_worker: Client) -> None:
    command = task("I need a flight from Philly to Chicago on March 3rd.")
    await publish(flights_worker, command.model_dump_json().encode(), command.message_id)
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Extracted), result
    assert isinstance(result.params, FlightsRequest)
    assert result.params.origin == "Philadelphia" and result.params.origin_iata == "PHL"
    assert result.params.destination == "Chicago"
    assert result.params.departure_date == date(2019, 3, 3)
    assert result.call is not None and result.call.tokens_out > 0


async def test_malformed_json_goes_to_the_dead_letter_queue(flights_worker: Client) -> None:
    await publish(flights_worker, b"{not json", "bad-1")
    dead = await next_on(flights_worker, dlq_subject(subjects.STREAM_TASKS))
    assert dead == b"{not json"


async def test_a_schema_invalid_command_is_answered_failed_and_dead_lettered(
    flights_worker: Client,
) -> None:
    bad = {"trip_id": "trip-w2", "step": "flights.extract", "kind": "extract", "text": ""}
    await publish(flights_worker, json.dumps(bad).encode(), "bad-2")
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Failed) and result.reason == "malformed_command"
    assert {p.field for p in result.errors} >= {"text", "domain"}
    assert json.loads(await next_on(flights_worker, dlq_subject(subjects.STREAM_TASKS))) == bad


async def test_a_task_for_another_domain_is_refused_not_guessed(flights_worker: Client) -> None:
    command = task("a hotel in Paris").model_copy(update={"domain": "hotels"})
    await publish(flights_worker, command.model_dump_json().encode(), command.message_id)
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Failed) and result.reason == "wrong_domain"


async def test_an_oversized_command_is_refused_at_publish(flights_worker: Client) -> None:
    with pytest.raises(APIError) as refused:
        await publish(flights_worker, b"x" * (MAX_MESSAGE_BYTES + 1), "big-1")
    assert refused.value.err_code == 10054  # message size exceeds maximum allowed
