"""The real llm-worker app against a real nats-server and the real stand-in LLM server.

REAL MODEL OUTPUT: the bundled SmolLM2 behind llama-cpp-python's OpenAI-compatible server,
reached over HTTP by the tier's engine; nothing here is scripted. (The tier's logic on
constructed replies is in tests/unit/test_llm_resolver_scripted.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from skiff_contracts import subjects
from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import WORKER_RESULT, Clarify, Extracted, ResolveTask
from skiff_contracts.problems import Problem
from skiff_contracts.registry import CallRecord
from skiff_extraction.examples import ExampleBank
from skiff_extraction.llm_tier import LlmEngineSettings, ResolverSettings, build_llm_engine
from skiff_extraction.pipeline import ModelIdentity
from skiff_extraction.resolver import Resolver
from skiff_flywheel.call_log import StreamSource, read_stream
from skiff_inference.model_files import bundled_model_path
from skiff_llm_worker.app import create_app
from skiff_llm_worker.service import LlmWorker
from skiff_llm_worker.settings import LlmWorkerSettings
from skiff_runtime.nats_server import NatsServer
from skiff_runtime.publishing import MSG_ID_HEADER

from .llama_server import MODEL_ALIAS, llama_cpp_server

pytestmark = [pytest.mark.nats, pytest.mark.model]

REFERENCE = date(2019, 3, 1)


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    with llama_cpp_server(bundled_model_path(), threads=1) as url:
        yield url


@pytest.fixture
async def llm_worker(
    nats_server: NatsServer, fresh_layout: Client, standin_url: str
) -> AsyncIterator[Client]:
    settings = LlmWorkerSettings(
        nats_url=nats_server.url,
        llm=LlmEngineSettings(url=standin_url, model=MODEL_ALIAS, timeout_s=300.0),
        # Two short examples and two candidates keep a call within seconds on 2 shared cores.
        resolver=ResolverSettings(examples_k=2, candidates=2, budget_s=300.0),
    )
    engine = build_llm_engine(settings.llm)
    resolver = Resolver(
        engine=engine,
        identity=ModelIdentity(MODEL_ALIAS, "test", tier="llm"),
        settings=settings.resolver,
        bank=ExampleBank.load(),
        prices=settings.prices,
    )
    _, broker = create_app(settings, LlmWorker(resolver))
    await broker.start()
    yield fresh_layout
    await broker.stop()
    await engine.aclose()


async def escalate(connection: Client, task: ResolveTask) -> tuple[bytes, str | None]:
    """Publish the escalation as the planner does; the LLM worker's reply and its message id."""
    js = connection.jetstream()
    replies = await js.subscribe(
        subjects.RESULT_LLM,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        await js.publish(
            subjects.TASK_LLM_RESOLVE,
            task.model_dump_json().encode(),
            headers={MSG_ID_HEADER: task.message_id},
        )
        message = await replies.next_msg(timeout=300)
        return bytes(message.data), (message.headers or {}).get(MSG_ID_HEADER)
    finally:
        await replies.unsubscribe()


async def test_real_model_output_resolves_an_escalation(
    llm_worker: Client, nats_server: NatsServer
) -> None:
    task = ResolveTask(
        message_id=subjects.command_id("trip-llm1", "flights.resolve", 1),
        trip_id="trip-llm1", step="flights.resolve", domain="flights",
        text="I need a flight from Philly to Chicago on March 3rd.", reference_date=REFERENCE,
        reason="schema_invalid", attempt={"raw": '{"origin": "Phi'},
        errors=(Problem(code="invalid_json", message="invalid JSON: unterminated string"),),
    )  # fmt: skip
    body, msg_id = await escalate(llm_worker, task)
    reply = WORKER_RESULT.validate_json(body)
    assert msg_id == f"{task.message_id}:result"
    assert isinstance(reply, Extracted), reply
    assert isinstance(reply.params, FlightsRequest)
    assert reply.params.origin == "Philadelphia" and reply.params.origin_iata == "PHL"
    assert reply.params.destination == "Chicago"
    assert reply.params.departure_date == date(2019, 3, 3)
    assert reply.call is not None
    assert (reply.call.tier, reply.call.engine, reply.call.model) == ("llm", "openai", MODEL_ALIAS)
    assert reply.call.calls >= 1 and reply.call.tokens_in > 0
    assert reply.draft is not None and reply.draft["origin"] is not None

    # One call record per candidate, on CALLS before the reply; the last one is the winner.
    records = [
        CallRecord.model_validate(r) for r in await read_stream(StreamSource(nats_server.url))
    ]
    assert [r.record_id for r in records] == [
        f"{task.message_id}:call" + (f".{i}" if i else "") for i in range(reply.call.calls)
    ]
    assert all((r.tier, r.task, r.step) == ("llm", "flights.extract", task.step) for r in records)
    assert {r.model_id for r in records} == {f"llm/{MODEL_ALIAS}@test"}
    assert records[-1].valid and sum(r.tokens_in for r in records) == reply.call.tokens_in


async def test_real_model_output_on_an_ambiguous_city_becomes_a_question(
    llm_worker: Client,
) -> None:
    task = ResolveTask(
        message_id=subjects.command_id("trip-llm2", "flights.resolve", 1),
        trip_id="trip-llm2", step="flights.resolve", domain="flights",
        text="I want to fly from Boston to Springfield on March 3rd.", reference_date=REFERENCE,
        reason="ambiguous", attempt={"origin": "Boston", "destination": "Springfield"},
        errors=(
            Problem(
                code="ambiguous_city", field="destination",
                message="'Springfield' could be any of: Springfield, IL, US; Springfield, MO, US",
            ),
        ),
    )  # fmt: skip
    body, _ = await escalate(llm_worker, task)
    reply = WORKER_RESULT.validate_json(body)
    assert isinstance(reply, Clarify), reply
    assert reply.question.startswith("Which Springfield do you mean: Springfield, IL, US")
    assert reply.call is not None and reply.call.tier == "llm"
