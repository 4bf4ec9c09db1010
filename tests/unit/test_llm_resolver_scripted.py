"""The LLM tier's logic on a scripted engine: every model reply here is CONSTRUCTED by the
test (no model runs). The real stand-in's own output is tested in
tests/integration/test_llm_worker_real_model.py.

Covered: candidates (temperature 0 first, then seeded samples), the first that passes every
check wins, context from other steps passes the evidence check, clarifying questions for
ambiguous and unknown places and for values no candidate kept, transient retries within the
budget, budget exhaustion, `no_model`, prompt retrieval, cost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import (
    Clarify,
    Declined,
    Extracted,
    ExtractTask,
    Failed,
    NeedsEscalation,
    ResolveTask,
)
from skiff_contracts.problems import Problem
from skiff_extraction.examples import Example, ExampleBank
from skiff_extraction.llm_tier import ResolverSettings
from skiff_extraction.pipeline import ModelIdentity
from skiff_extraction.pricing import ModelPrice
from skiff_extraction.resolver import Resolver
from skiff_inference.engine import ChatMessage, EngineError, Generation
from skiff_llm_worker.service import LlmWorker

REFERENCE = date(2026, 3, 1)
Script = dict[str, Any] | EngineError | float  # a draft, an error to raise, or seconds to hang


@dataclass
class ScriptedEngine:
    """Answers each call with the next scripted item; records what it was asked."""

    script: list[Script]
    kind: str = "openai"
    model: str = "scripted-llm"
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: Mapping[str, Any],
        *,
        adapter: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        self.calls.append({"messages": list(messages), "temperature": temperature, "seed": seed})
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, EngineError):
            raise item
        if isinstance(item, float):
            await asyncio.sleep(item)
            item = {}
        raw = json.dumps(item)
        return Generation(
            value=item, raw=raw, tokens_in=1000, tokens_out=50, token_logprobs=(),
            latency_ms=10.0, engine=self.kind, model=self.model,
        )  # fmt: skip

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        return None


def resolver(engine: ScriptedEngine, **settings: Any) -> Resolver:
    chosen = {"candidates": 3, "budget_s": 5.0, "retry_initial_s": 0.01, **settings}
    return Resolver(
        engine=engine,  # type: ignore[arg-type]
        identity=ModelIdentity("llm-test", "v1", tier="llm"),
        settings=ResolverSettings(**chosen),
        prices={"llm-test": ModelPrice(input_usd_per_mtok=1.0, output_usd_per_mtok=2.0)},
    )


def flights_task(text: str, **fields: Any) -> ResolveTask:
    values: dict[str, Any] = {
        "trip_id": "trip-r1", "step": "flights.resolve", "domain": "flights", "text": text,
        "reference_date": REFERENCE, "reason": "schema_invalid", **fields,
    }  # fmt: skip
    return ResolveTask.model_validate(values)


BOSTON_DENVER = {"origin": "Boston", "destination": "Denver", "departure_date": "March 12"}


async def test_first_candidate_that_passes_every_check_wins__constructed_replies() -> None:
    engine = ScriptedEngine([{**BOSTON_DENVER, "passengers": "lots"}, BOSTON_DENVER])
    reply = await resolver(engine).resolve(flights_task("Boston to Denver on March 12 please"))
    assert isinstance(reply, Extracted), reply
    assert isinstance(reply.params, FlightsRequest)
    assert (reply.params.origin, reply.params.destination) == ("Boston", "Denver")
    assert reply.params.departure_date == date(2026, 3, 12)
    assert reply.call is not None
    assert (reply.call.tier, reply.call.model, reply.call.version) == ("llm", "llm-test", "v1")
    assert reply.call.calls == 2 and reply.call.tokens_in == 2000
    assert reply.call.cost_usd == pytest.approx(2 * (1000 * 1.0 + 50 * 2.0) / 1e6)
    # Temperature 0 first, then a seeded sample.
    assert [(c["temperature"], c["seed"]) for c in engine.calls] == [(0.0, None), (0.7, 2)]


async def test_a_valid_first_candidate_is_the_only_call__constructed_replies() -> None:
    engine = ScriptedEngine([BOSTON_DENVER])
    reply = await resolver(engine).resolve(flights_task("Boston to Denver on March 12"))
    assert isinstance(reply, Extracted) and reply.call is not None and reply.call.calls == 1
    assert len(engine.calls) == 1


async def test_known_context_settles_a_hotel_there_and_passes_evidence__constructed() -> None:
    known = FlightsRequest(
        origin="Boston", origin_iata="BOS", destination="Denver", destination_iata="DEN",
        departure_date=date(2026, 3, 12), return_date=date(2026, 3, 16), passengers=2,
    )  # fmt: skip
    draft = {"location": "Denver", "check_in_date": "2026-03-12", "check_out_date": "2026-03-16"}
    task = ResolveTask(
        trip_id="trip-r2", step="hotels.resolve", domain="hotels", reference_date=REFERENCE,
        text="Book a hotel there for those nights.", reason="ungrounded",
        attempt={"location": "there"},
        errors=(Problem(code="unknown_city", message="'there' is not a city", field="location"),),
        known={"flights": known},
    )  # fmt: skip
    engine = ScriptedEngine([draft])
    reply = await resolver(engine).resolve(task)
    assert isinstance(reply, Extracted), reply
    assert reply.params.model_dump()["location"] == "Denver"
    assert str(reply.params.model_dump()["check_out_date"]) == "2026-03-16"
    shown = engine.calls[0]["messages"][-1]["content"]
    assert shown.startswith("Book a hotel there for those nights. The trip's flight goes from")
    assert "Boston to Denver, leaving 2026-03-12, returning 2026-03-16" in shown

    # Without the context the same draft is unsupported by the text: Denver is dropped, so the
    # value the user gave ("there") was not read, and the tier asks for it.
    alone = ScriptedEngine([draft])
    asked = await resolver(alone).resolve(task.model_copy(update={"known": {}}))
    assert isinstance(asked, Clarify), asked
    assert asked.question == "In which city do you need the hotel?"
    assert len(alone.calls) == 3


async def test_an_ambiguous_city_becomes_a_question_naming_the_options__constructed() -> None:
    engine = ScriptedEngine([{**BOSTON_DENVER, "destination": "Springfield"}])
    task = flights_task(
        "Boston to Springfield on March 12", reason="ambiguous",
        attempt={"destination": "Springfield"},
    )  # fmt: skip
    reply = await resolver(engine, candidates=2).resolve(task)
    assert isinstance(reply, Clarify), reply
    assert reply.question == (
        "Which Springfield do you mean: Springfield, IL, US, Springfield, MO, US or "
        "Springfield, MA, US?"
    )
    assert [p.code for p in reply.errors] == ["ambiguous_city"]
    assert reply.call is not None and reply.call.calls == 2


async def test_an_unknown_city_becomes_a_question__constructed_replies() -> None:
    engine = ScriptedEngine([{**BOSTON_DENVER, "destination": "Atlantis"}])
    reply = await resolver(engine).resolve(flights_task("Boston to Atlantis on March 12"))
    assert isinstance(reply, Clarify), reply
    assert reply.question == "I don't know a city called Atlantis — did you mean Atlanta, GA, US?"
    nowhere = ScriptedEngine([{**BOSTON_DENVER, "destination": "Qwxyzzy"}])
    asked = await resolver(nowhere).resolve(flights_task("Boston to Qwxyzzy on March 12"))
    assert isinstance(asked, Clarify)
    assert asked.question == "I don't know a city called Qwxyzzy — which city did you mean?"


async def test_a_broken_rule_is_escalated_with_its_errors_not_asked__constructed() -> None:
    draft = {**BOSTON_DENVER, "return_date": "March 10"}
    engine = ScriptedEngine([draft])
    reply = await resolver(engine).resolve(
        flights_task("Boston to Denver on March 12, back March 10")
    )
    assert isinstance(reply, NeedsEscalation), reply
    assert reply.reason == "business_rule"
    assert [p.code for p in reply.errors] == ["return_before_departure"]
    assert reply.call is not None and reply.call.calls == 3


async def test_a_tier_that_swaps_the_users_dates_into_order_does_not_book__constructed() -> None:
    """Told "drop-off before pick-up", a candidate that swaps the two dates passed every check:
    the car was booked with the drop-off date as pick-up. The text's cues put them back."""
    text = "Rent a car in Denver: pick it up on March 12 and drop it off on March 10."
    said = {"pickup_city": "Denver", "pickup_date": "March 12", "dropoff_date": "March 10"}
    swapped = {**said, "pickup_date": "March 10", "dropoff_date": "March 12"}
    engine = ScriptedEngine([swapped])  # every candidate "corrects" the order
    task = ResolveTask(
        trip_id="trip-r4", step="cars.resolve", domain="cars", text=text,
        reference_date=REFERENCE, reason="business_rule", attempt=said,
        errors=(Problem(code="dropoff_before_pickup", message="drop-off before pick-up",
                        field="dropoff_date"),),
    )  # fmt: skip
    reply = await resolver(engine).resolve(task)
    assert isinstance(reply, NeedsEscalation), reply
    assert reply.reason == "business_rule"
    assert [(p.code, p.field) for p in reply.errors] == [("dropoff_before_pickup", "dropoff_date")]
    assert reply.call is not None and reply.call.calls == 3


async def test_transient_engine_errors_are_retried_within_the_budget__constructed() -> None:
    flaky = EngineError("HTTP 503", transient=True)
    engine = ScriptedEngine([flaky, flaky, BOSTON_DENVER])
    reply = await resolver(engine).resolve(flights_task("Boston to Denver on March 12"))
    assert isinstance(reply, Extracted), reply
    assert len(engine.calls) == 3
    assert reply.call is not None and reply.call.calls == 1  # one candidate, tried three times


async def test_a_permanent_engine_error_is_not_retried__constructed() -> None:
    engine = ScriptedEngine([EngineError("HTTP 401", transient=False)])
    reply = await resolver(engine).resolve(flights_task("Boston to Denver on March 12"))
    assert isinstance(reply, NeedsEscalation) and reply.reason == "engine_error"
    assert len(engine.calls) == 1


async def test_the_budget_bounds_the_whole_step__constructed() -> None:
    engine = ScriptedEngine([30.0])  # the engine hangs
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await resolver(engine, budget_s=0.3).resolve(flights_task("Boston to Denver"))
    assert loop.time() - started < 2.0
    assert isinstance(reply, NeedsEscalation) and reply.reason == "timeout"
    assert reply.errors[0].code == "timeout"


async def test_the_budget_stops_candidates_and_the_checked_ones_decide__constructed() -> None:
    engine = ScriptedEngine([{**BOSTON_DENVER, "destination": "Atlantis"}, 30.0])
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await resolver(engine, budget_s=0.3).resolve(flights_task("Boston to Atlantis"))
    assert loop.time() - started < 2.0
    assert isinstance(reply, Clarify) and "Atlantis" in reply.question
    assert reply.call is not None and reply.call.calls == 1


async def test_work_no_model_covers_is_declined_without_a_call__constructed() -> None:
    engine = ScriptedEngine([BOSTON_DENVER])
    task = ResolveTask(
        trip_id="trip-r3", step="unsupported.resolve", domain=None, text="a train to Paris",
        reference_date=REFERENCE, reason="no_model", unsupported=("trains",),
    )  # fmt: skip
    reply = await resolver(engine).resolve(task)
    assert isinstance(reply, Declined) and reply.reason == "no_model"
    assert "trains" in reply.message
    assert engine.calls == []


async def test_a_domain_without_a_champion_is_resolved_by_the_tier__constructed() -> None:
    engine = ScriptedEngine([BOSTON_DENVER])
    task = flights_task("Boston to Denver on March 12", reason="no_model")
    reply = await resolver(engine).resolve(task)
    assert isinstance(reply, Extracted), reply
    assert isinstance(reply.params, FlightsRequest)
    assert (reply.params.origin_iata, reply.params.destination_iata) == ("BOS", "DEN")
    assert len(engine.calls) == 1


async def test_the_prompt_carries_the_most_similar_solved_examples_last__constructed() -> None:
    bank = ExampleBank({
        "flights": [
            Example("a", "I need a hotel with wifi", {"origin": None}),
            Example("b", "fly me from Philly to Chicago on March 3rd", {"origin": "Philly"}),
            Example("c", "from Philly to Boston on the 5th, two of us", {"origin": "Philly"}),
        ]
    })  # fmt: skip
    engine = ScriptedEngine([BOSTON_DENVER])
    tier = resolver(engine, examples_k=2)
    tier.bank = bank
    await tier.resolve(flights_task("from Philly to Chicago on March 3rd"))
    users = [m["content"] for m in engine.calls[0]["messages"] if m["role"] == "user"]
    assert users[-3:] == [
        "from Philly to Boston on the 5th, two of us",
        "fly me from Philly to Chicago on March 3rd",
        "from Philly to Chicago on March 3rd",
    ]


async def test_the_llm_worker_refuses_anything_but_escalations__constructed() -> None:
    worker = LlmWorker(resolver(ScriptedEngine([BOSTON_DENVER])))
    task = ExtractTask(
        trip_id="trip-r4", step="flights.extract", domain="flights", text="Boston to Denver",
        reference_date=REFERENCE,
    )  # fmt: skip
    handled = await worker.handle(task)
    assert isinstance(handled.reply, Failed) and handled.reply.reason == "wrong_task"
    assert handled.records == ()  # no model was called


async def test_the_llm_worker_logs_one_call_record_per_candidate__constructed() -> None:
    engine = ScriptedEngine([{**BOSTON_DENVER, "destination": "Atlantis"}, BOSTON_DENVER])
    worker = LlmWorker(resolver(engine))
    task = flights_task(
        "My name is Jane Porter, jane@example.com: Boston to Denver (not Atlantis) on March 12",
        message_id="trip-r1:flights.resolve:1",
    )
    handled = await worker.handle(task)
    assert isinstance(handled.reply, Extracted)
    assert handled.reply.draft is not None and handled.reply.draft["destination"] == "Denver"
    first, second = handled.records
    assert [r.record_id for r in handled.records] == [
        "trip-r1:flights.resolve:1:call", "trip-r1:flights.resolve:1:call.1",
    ]  # fmt: skip
    assert (first.valid, first.reason, first.grounded) == (False, "ungrounded", False)
    assert (second.valid, second.reason, second.grounded) == (True, None, True)
    for record in handled.records:
        assert (record.tier, record.task, record.step) == ("llm", "flights.extract", task.step)
        assert record.model_id == "llm/llm-test@v1" and record.tokens_in == 1000
        assert record.input_text is not None and "[NAME]" in record.input_text
        dumped = record.model_dump_json()
        assert "Jane" not in dumped and "jane@example.com" not in dumped
    assert second.output_digest is not None and first.output_digest is None


async def test_work_no_model_covers_is_logged_as_no_model_under_its_own_task__constructed() -> None:
    worker = LlmWorker(resolver(ScriptedEngine([BOSTON_DENVER])))
    task = ResolveTask(
        message_id="trip-r5:unsupported.resolve:1", trip_id="trip-r5",
        step="unsupported.resolve", domain=None, reference_date=REFERENCE,
        text="A train to Paris and a bus back, call me on 415-555-0132", reason="no_model",
        unsupported=("trains", "buses"),
    )  # fmt: skip
    handled = await worker.handle(task)
    assert isinstance(handled.reply, Declined)
    assert [(r.task, r.reason, r.valid, r.tokens_in) for r in handled.records] == [
        ("trains.extract", "no_model", False, 0), ("buses.extract", "no_model", False, 0),
    ]  # fmt: skip
    assert all(r.input_text and "415-555-0132" not in r.input_text for r in handled.records)
    assert len({r.record_id for r in handled.records}) == 2
