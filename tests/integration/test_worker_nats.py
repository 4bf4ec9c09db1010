"""A real worker (real model) against a real nats-server: replies, bad input, dead letters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from skiff_cli.batch import local_extractors
from skiff_contracts import subjects
from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import WORKER_RESULT, Extracted, ExtractTask, Failed
from skiff_contracts.registry import CallRecord, model_id_for, slug_of
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_runtime.jetstream import MAX_MESSAGE_BYTES, dlq_subject, version_consumer
from skiff_runtime.nats_server import NatsServer
from skiff_worker.app import create_app
from skiff_worker.inventory_client import NatsInventory
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings

pytestmark = [pytest.mark.nats, pytest.mark.model]


MODEL_ID = model_id_for("flights.extract", "smollm2", "test")


@pytest.fixture
async def flights_worker(
    nats_server: NatsServer, fresh_layout: Client, engine: LlamaCppEngine
) -> AsyncIterator[Client]:
    settings = WorkerSettings(domain="flights", nats_url=nats_server.url, metrics_port=0)
    # The shipped flights champion, as the worker serves it by default.
    extractor = (await local_extractors(engine, "champion", {}, None))["flights"]
    # What the registry does when this model version registers: provision its consumer.
    js = fresh_layout.jetstream()
    await js.add_consumer(
        subjects.tasks_stream("flights"), version_consumer("flights", slug_of(MODEL_ID)).config()
    )
    supplier = NatsInventory(fresh_layout)
    worker = create_app(settings, DomainWorker(extractor, supplier), MODEL_ID)
    await worker.broker.start()
    yield fresh_layout
    await worker.broker.stop()


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
    command = task("Get me from Pittsburgh to Nashville on the 7th of March, please.")
    await publish(flights_worker, command.model_dump_json().encode(), command.message_id)
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Extracted), result
    assert isinstance(result.params, FlightsRequest)
    assert result.params.model_dump(mode="json", exclude={"domain"}, exclude_none=True) == {
        "origin": "Pittsburgh", "origin_iata": "PIT", "destination": "Nashville",
        "destination_iata": "BNA", "departure_date": "2019-03-07",
    }  # fmt: skip
    assert result.call is not None and result.call.tokens_out > 0
    assert result.command_id == command.message_id  # the planner takes no other reply


async def test_an_extraction_on_request_answers_the_asker_only(flights_worker: Client) -> None:
    """`skiff extract` over NATS: the reply comes back to the asker, and nothing reaches
    RESULTS, so a request naming a real trip's step cannot settle it."""
    results = await flights_worker.jetstream().stream_info(subjects.STREAM_RESULTS)
    command = task("Fly me from Seattle to Miami on the 9th of March.", trip_id="trip-w4")
    reply = await flights_worker.request(
        subjects.extract("flights"), command.model_dump_json().encode(), timeout=120
    )
    result = WORKER_RESULT.validate_json(reply.data)
    assert isinstance(result, Extracted) and result.command_id == command.message_id
    assert isinstance(result.params, FlightsRequest)
    assert (result.params.origin_iata, result.params.destination_iata) == ("SEA", "MIA")
    assert result.params.departure_date == date(2019, 3, 9)
    unserved = command.model_copy(update={"model_id": "flights.extract/other@9"})
    reply = await flights_worker.request(
        subjects.extract("flights"), unserved.model_dump_json().encode(), timeout=30
    )
    refused = WORKER_RESULT.validate_json(reply.data)
    assert isinstance(refused, Failed) and refused.reason == "not_served"
    after = await flights_worker.jetstream().stream_info(subjects.STREAM_RESULTS)
    assert after.state.messages == results.state.messages


async def test_a_routed_extraction_is_served_and_its_call_recorded(flights_worker: Client) -> None:
    command = task("A flight from Boston to Denver on March 3rd.", trip_id="trip-w3")
    command = command.model_copy(update={"model_id": MODEL_ID})
    await flights_worker.jetstream().publish(
        subjects.model_extract("flights", slug_of(MODEL_ID)),
        command.model_dump_json().encode(),
        headers={"Nats-Msg-Id": command.message_id},
    )
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Extracted) and result.trip_id == "trip-w3"
    record = CallRecord.model_validate_json(
        await next_on(flights_worker, subjects.calls("flights"))
    )
    assert (record.model_id, record.trip_id, record.valid, record.shadow) == (
        MODEL_ID, "trip-w3", True, False,
    )  # fmt: skip
    assert record.tokens_out > 0 and record.output_digest is not None


async def test_malformed_json_goes_to_the_dead_letter_queue(flights_worker: Client) -> None:
    await publish(flights_worker, b"{not json", "bad-1")
    dead = await next_on(flights_worker, dlq_subject(subjects.tasks_stream("flights")))
    assert dead == b"{not json"


async def test_a_schema_invalid_command_is_answered_failed_and_dead_lettered(
    flights_worker: Client,
) -> None:
    bad = {"trip_id": "trip-w2", "step": "flights.extract", "kind": "extract", "text": ""}
    await publish(flights_worker, json.dumps(bad).encode(), "bad-2")
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Failed) and result.reason == "malformed_command"
    assert {p.field for p in result.errors} >= {"extract.text", "extract.domain"}
    assert (
        json.loads(await next_on(flights_worker, dlq_subject(subjects.tasks_stream("flights"))))
        == bad
    )


async def test_a_task_for_another_domain_is_refused_not_guessed(flights_worker: Client) -> None:
    command = task("a hotel in Paris").model_copy(update={"domain": "hotels"})
    await publish(flights_worker, command.model_dump_json().encode(), command.message_id)
    result = WORKER_RESULT.validate_json(await next_on(flights_worker, subjects.result("flights")))
    assert isinstance(result, Failed) and result.reason == "wrong_domain"


async def test_an_oversized_command_is_refused_at_publish(flights_worker: Client) -> None:
    with pytest.raises(APIError) as refused:
        await publish(flights_worker, b"x" * (MAX_MESSAGE_BYTES + 1), "big-1")
    assert refused.value.err_code == 10054  # message size exceeds maximum allowed
