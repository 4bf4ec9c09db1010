"""The real registry app against a real nats-server: the API, the KV and stream layout,
consumer provisioning, live metrics from the CALLS stream, and restarts that lose nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from skiff_contracts import subjects
from skiff_contracts.domains import FlightsDraft
from skiff_contracts.registry import (
    REGISTRY_REPLY,
    Ack,
    AnswerAccepted,
    CallRecord,
    Evaluation,
    GetHistory,
    GetModel,
    GetSeries,
    History,
    ListModels,
    ModelCard,
    ModelList,
    ModelView,
    Promote,
    Refused,
    Retire,
    Rollback,
    Series,
    TaskAliases,
)
from skiff_registry.gates import Gates
from skiff_runtime.jetstream import REGISTRY_CALLS, STREAM_DLQ, dlq_subject
from skiff_runtime.nats_server import NatsServer
from tests.fakes.registry import accepted, call, registration
from tests.integration.registry_harness import RunningRegistry, ask, eventually, publish_calls

pytestmark = pytest.mark.nats

TASK = "flights.extract"
V1, V2 = "flights.extract/smollm2-lora@1", "flights.extract/smollm2-lora@2"


@pytest.fixture
async def registry(nats_server: NatsServer, fresh_layout: Client) -> AsyncIterator[RunningRegistry]:
    running = RunningRegistry(nats_server)
    await running.start()
    yield running
    await running.stop()


async def kv_value(connection: Client, bucket: str, key: str) -> bytes:
    entry = await (await connection.jetstream().key_value(bucket)).get(key)
    assert entry.value is not None
    return bytes(entry.value)


async def test_register_promote_rollback_retire_through_nats_with_the_history_stream(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    nc = fresh_layout
    first = await ask(nc, registration(version="1"))
    assert (
        isinstance(first, Ack) and first.created and first.card and first.card.status == "champion"
    )
    assert isinstance(await ask(nc, registration(version="2")), Ack)
    # Same name and version in another domain: another card, no collision.
    hotels = await ask(nc, registration("hotels", version="1"))
    assert isinstance(hotels, Ack) and hotels.card and hotels.card.status == "champion"

    # Registration provisioned each version's durable consumer on TASKS.
    info = await nc.jetstream().consumer_info(
        subjects.tasks_stream("flights"), subjects.model_consumer("flights", "smollm2-lora-2")
    )
    assert info.config.filter_subject == subjects.model_extract("flights", "smollm2-lora-2")

    # `who` is the caller's identity (the subject's last token), whatever the request says.
    steps: list[tuple[BaseModel, str]] = [
        (Promote(model_id=V2, to="shadow", who="someone-else", why="mirror live traffic"),
         "operator"),
        (Promote(model_id=V2, to="canary", why="agreement 97 %", canary_share=0.2), "operator"),
        (Promote(model_id=V2, to="champion", why="beats v1 at every gate"), "flywheel"),
        (Rollback(task=TASK, why="p95 regression"), "flywheel"),
        (Retire(model_id=V2, why="superseded"), "flywheel"),
    ]  # fmt: skip
    for step, caller in steps:
        reply = await ask(nc, step, caller=caller)
        assert isinstance(reply, Ack), reply

    # The planner reads these KV values directly: plain contract JSON.
    aliases = TaskAliases.model_validate_json(await kv_value(nc, subjects.BUCKET_ALIASES, TASK))
    assert aliases == TaskAliases(task=TASK, champion=V1)
    card = ModelCard.model_validate_json(
        await kv_value(nc, subjects.BUCKET_MODELS, "flights.extract.smollm2-lora-2")
    )
    assert card.status == "retired"

    history = await ask(nc, GetHistory(task=TASK))
    assert isinstance(history, History)
    assert [(m.alias, m.from_model, m.to_model, m.who, m.action) for m in history.moves] == [
        ("champion", None, V1, "registry", "bootstrap"),
        ("challenger", None, V2, "operator", "promote"),
        ("challenger", V2, V2, "operator", "promote"),
        ("champion", V1, V2, "flywheel", "promote"),
        ("challenger", V2, V1, "flywheel", "promote"),
        ("champion", V2, V1, "flywheel", "rollback"),
        ("challenger", V1, V2, "flywheel", "rollback"),
        ("challenger", V2, None, "flywheel", "retire"),
    ]
    assert history.moves[5].why == "p95 regression"
    stored = await nc.jetstream().stream_info(
        subjects.STREAM_REGISTRY_HISTORY, subjects_filter=subjects.registry_history(TASK)
    )
    assert stored.state.subjects == {subjects.registry_history(TASK): 8}

    again = await ask(nc, registration(version="2"))
    assert isinstance(again, Refused) and again.code == "retired"


async def test_only_the_governors_change_the_registry_and_workers_register_their_own(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    nc = fresh_layout
    assert isinstance(await ask(nc, registration(version="1"), caller="worker-flights"), Ack)
    other = await ask(nc, registration("hotels", version="1"), caller="worker-flights")
    assert isinstance(other, Refused) and other.code == "forbidden"
    for caller in ("cli", "web", "worker-flights", "planner", "someone-else"):
        for request in (
            Promote(model_id=V1, to="shadow", why="mine"),
            Retire(model_id=V1, why="mine"),
            Rollback(task=TASK, why="mine"),
        ):
            refused = await ask(nc, request, caller=caller)
            assert isinstance(refused, Refused) and refused.code == "forbidden", (caller, request)
    listed = await ask(nc, ListModels(), caller="web")  # reading stays open
    assert isinstance(listed, ModelList) and [v.card.status for v in listed.models] == ["champion"]
    history = await ask(nc, GetHistory(task=TASK), caller="web")
    assert [m.action for m in history.moves] == ["bootstrap"]


async def test_bad_input_is_refused_never_silent(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    garbage = await fresh_layout.request(
        subjects.registry("promote", "operator"), b"{not json", timeout=5
    )
    reply = REGISTRY_REPLY.validate_json(garbage.data)
    assert isinstance(reply, Refused) and reply.code == "invalid"
    wrong = await fresh_layout.request(
        subjects.registry("retire", "operator"),
        GetModel(model_id=V1).model_dump_json().encode(),
        timeout=5,
    )
    reply = REGISTRY_REPLY.validate_json(wrong.data)
    assert isinstance(reply, Refused) and "get_model request sent to retire" in reply.message


async def test_schemas_incompatible_refused_compatible_stored_as_a_new_version(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    broken = FlightsDraft.model_json_schema()
    broken["properties"]["departure_date"] = {"type": "integer"}
    refused = await ask(fresh_layout, registration(version="7", schema=broken))
    assert isinstance(refused, Refused) and refused.code == "incompatible_schema"
    assert [p.field for p in refused.problems] == ["departure_date"]

    extended = FlightsDraft.model_json_schema()
    extended["properties"]["cabin_bags"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    accepted = await ask(fresh_layout, registration(version="8", schema=extended))
    assert isinstance(accepted, Ack) and accepted.card and accepted.card.output_schema.version == 2
    keys = await (await fresh_layout.jetstream().key_value(subjects.BUCKET_SCHEMAS)).keys()
    assert sorted(keys) == [
        "cars.draft.v1", "flights.draft.v1", "flights.draft.v2", "hotels.draft.v1",
        "insurance.draft.v1", "router.labels.v1",
    ]  # fmt: skip


def known_sequence(now: datetime) -> list[CallRecord | AnswerAccepted]:
    """10 champion calls (8 answers, 2 escalations), the LLM tier's 2 answers, 3 shadows, and
    the 10 accepted answers (8 the SLM's, 2 the LLM tier's)."""
    records: list[CallRecord | AnswerAccepted] = [
        call(V1, n, latency_ms=10.0 * n, valid=n <= 8,
             reason=None if n <= 8 else "low_confidence", digest=f"answer-{n}", at=now)
        for n in range(1, 11)
    ]  # fmt: skip
    records += [
        call("llm/llama-3.3-70b@1", n, tier="llm", latency_ms=1500.0, digest="x", at=now)
        for n in (9, 10)
    ]
    records += [
        call(V2, 1, shadow=True, digest="answer-1", at=now),
        call(V2, 2, shadow=True, digest="answer-1", at=now),
        call(V2, 3, shadow=True, digest="answer-3", at=now),
    ]
    records += [accepted(n, digest=f"answer-{n}", at=now) for n in range(1, 9)]
    records += [accepted(n, answered_by="llm", digest="x", at=now) for n in (9, 10)]
    return records


async def metrics_of(connection: Client, model_id: str) -> Any:
    view = await ask(connection, GetModel(model_id=model_id))
    assert isinstance(view, ModelView)
    return view.metrics


async def test_metrics_follow_the_calls_stream_redelivery_included(
    registry: RunningRegistry, fresh_layout: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = fresh_layout
    await ask(nc, registration(version="1"))
    await ask(nc, registration(version="2"))
    await ask(nc, Promote(model_id=V2, to="shadow", who="ana", why="compare"))

    # The first 5 acks are turned into naks: applied, not acknowledged, delivered again.
    redelivered: list[int] = []
    real_ack = Msg.ack

    async def lossy_ack(message: Msg) -> None:
        if message.metadata.num_delivered and message.metadata.num_delivered > 1:
            redelivered.append(message.metadata.sequence.stream)
        if len(lossy) < 5 and message.subject.startswith(subjects.calls("")):
            lossy.append(1)
            await message.nak()
            return
        await real_ack(message)

    lossy: list[int] = []
    monkeypatch.setattr(Msg, "ack", lossy_ack)
    records = known_sequence(datetime.now(UTC))
    await publish_calls(nc, records)
    await publish_calls(nc, records[:3])  # published twice (a worker's retry): same record ids

    async def settled() -> bool:
        metrics = await metrics_of(nc, V1)
        shadow = await metrics_of(nc, V2)
        info = await nc.jetstream().consumer_info(REGISTRY_CALLS.stream, REGISTRY_CALLS.durable)
        return (
            metrics is not None and shadow is not None and info.num_ack_pending == 0
            and info.num_pending == 0 and metrics.total.calls == 10
        )  # fmt: skip

    await eventually(settled)
    assert redelivered, "no record was redelivered"
    champion = await metrics_of(nc, V1)
    for window in (champion.total, champion.window):
        assert window.calls == 10
        assert window.valid_rate == pytest.approx(0.8)
        assert window.escalation_rate == {"low_confidence": pytest.approx(0.2)}
        assert window.latency.p50_ms == pytest.approx(50.0, rel=0.01)
        assert window.latency.p95_ms == pytest.approx(100.0, rel=0.01)
        assert window.tokens_in == 1000 and window.cost_usd == pytest.approx(0.01)
    shadow = await metrics_of(nc, V2)
    assert shadow.total.shadow_calls == 3
    assert shadow.total.shadow_agreement == pytest.approx(2 / 3)  # trip 2 disagreed

    assert champion.total.answer_agreement == pytest.approx(8 / 10)  # 2 escalations
    assert shadow.total.answer_agreement == pytest.approx(2 / 3)

    series = await ask(nc, GetSeries(task=TASK))
    assert isinstance(series, Series)
    assert sum(p.answers for p in series.points) == 10
    assert sum(p.slm_accepted for p in series.points) == 8
    assert sum(p.llm_calls for p in series.points) == 2


async def test_older_records_and_work_no_model_covers_are_counted_not_dead_lettered(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    nc, now = fresh_layout, datetime.now(UTC)
    trains = call("llm/llama-3.3-70b@1", 1, tier="llm", valid=False, reason="no_model",
                  task="trains.extract", step="unsupported.resolve", at=now)  # fmt: skip
    older = call(V1, 2, at=now).model_dump(mode="json", exclude={"kind"})  # before `kind`
    await publish_calls(nc, [trains])
    await nc.jetstream().publish(subjects.calls("flights"), json.dumps(older).encode())

    async def counted() -> bool:
        info = await nc.jetstream().consumer_info(REGISTRY_CALLS.stream, REGISTRY_CALLS.durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(counted)
    dlq = await nc.jetstream().stream_info(STREAM_DLQ)
    assert dlq.state.messages == 0
    series = await ask(nc, GetSeries(task="trains.extract"))
    assert isinstance(series, Series) and sum(p.llm_calls for p in series.points) == 1
    metrics = await kv_value(nc, subjects.BUCKET_METRICS, "trains.extract.llama-3-3-70b-1")
    assert b'"escalation_rate":{"no_model":1.0}' in metrics
    assert (await ask(nc, GetSeries(task=TASK))).points[0].slm_calls == 1


async def test_an_unreadable_call_record_is_dead_lettered(
    registry: RunningRegistry, fresh_layout: Client
) -> None:
    await fresh_layout.jetstream().publish(subjects.calls("flights"), b'{"model_id": 3}')
    dlq = dlq_subject(subjects.STREAM_CALLS)
    sub = await fresh_layout.jetstream().subscribe(dlq, ordered_consumer=True)
    message = await sub.next_msg(timeout=20)
    assert message.data == b'{"model_id": 3}'
    assert message.headers is not None and "poison" in message.headers["Skiff-Dlq-Reason"]
    await sub.unsubscribe()


async def snapshot(connection: Client) -> tuple[Any, ...]:
    listed = await ask(connection, ListModels())
    assert isinstance(listed, ModelList)
    history = await ask(connection, GetHistory(task=TASK))
    cards = [v.card.model_dump(exclude={"last_seen"}) for v in listed.models]
    totals = [v.metrics.total if v.metrics else None for v in listed.models]
    return cards, listed.aliases, history.moves, totals


async def test_restarts_of_the_registry_and_of_nats_lose_nothing(
    registry: RunningRegistry, nats_server: NatsServer, fresh_layout: Client
) -> None:
    nc = fresh_layout
    await ask(nc, registration(version="1"))
    await ask(nc, registration(version="2"))
    await ask(nc, Promote(model_id=V2, to="champion", who="ana", why="better"))
    await publish_calls(nc, known_sequence(datetime.now(UTC))[:10])

    async def counted() -> bool:
        metrics = await metrics_of(nc, V1)
        return metrics is not None and metrics.total.calls == 10

    await eventually(counted)
    before = await snapshot(nc)

    await registry.stop()
    await registry.start()
    assert await snapshot(nc) == before

    await asyncio.to_thread(nats_server.restart)

    async def answering() -> bool:
        try:
            return await snapshot(nc) == before
        except Exception:
            return False

    await eventually(answering, timeout=30)
    # …and it still takes work after the restart.
    await publish_calls(nc, [call(V2, 99, at=datetime.now(UTC))])

    async def recorded() -> bool:
        metrics = await metrics_of(nc, V2)
        return metrics is not None and metrics.total.calls == 1

    await eventually(recorded, timeout=30)


async def test_automatic_rollout_moves_a_winner_and_rolls_back_a_regressing_canary(
    nats_server: NatsServer, fresh_layout: Client
) -> None:
    """The real registry app deciding on its ticker from call records on the real stream."""
    nc = fresh_layout
    gates = Gates(every_s=0.3, shadow_min_calls=3, canary_min_calls=3, canary_share=0.5)
    running = RunningRegistry(nats_server, gates)
    await running.start()
    try:
        await ask(nc, registration(version="1"))
        evaluation = Evaluation(
            dataset_id="flights.extract@test", metrics={"slot_accuracy": 0.7},
            baseline_model=V1, baseline_metrics={"slot_accuracy": 0.5},
        )  # fmt: skip
        challenger = registration(version="2")
        card = challenger.card.model_copy(update={"rollout": "auto", "evaluations": (evaluation,)})
        await ask(nc, challenger.model_copy(update={"card": card}))
        now = datetime.now(UTC)
        await publish_calls(nc, [call(V1, n, at=now) for n in range(1, 11)])

        async def status_is(wanted: str) -> bool:
            view = await ask(nc, GetModel(model_id=V2))
            return isinstance(view, ModelView) and view.card.status == wanted

        await eventually(lambda: status_is("shadow"))  # the offline gain
        await publish_calls(nc, [call(V2, n, shadow=True, at=now) for n in range(1, 4)])
        await eventually(lambda: status_is("canary"))
        view = await ask(nc, GetModel(model_id=V2))
        assert view.card.canary_share == 0.5
        bad = [call(V2, n, valid=False, reason="schema_invalid", at=now) for n in range(11, 14)]
        await publish_calls(nc, bad)
        await eventually(lambda: status_is("candidate"))
        view = await ask(nc, GetModel(model_id=V2))
        assert view.card.rollout == "halted"
        history = await ask(nc, GetHistory(task=TASK))
        automatic = [(m.status, m.action) for m in history.moves if m.who == "rollout"]
        assert automatic == [("shadow", "promote"), ("canary", "promote"),
                             ("candidate", "rollback")]  # fmt: skip
        aliases = (await ask(nc, ListModels(task=TASK))).aliases
        assert aliases == (TaskAliases(task=TASK, champion=V1),)
    finally:
        await running.stop()
