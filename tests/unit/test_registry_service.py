"""The registry's rules over in-memory ports: bootstrap, promotion, rollback, retirement,
schemas, and the history each move leaves."""

from __future__ import annotations

from typing import Any

import pytest

from skiff_contracts.domains import FlightsDraft
from skiff_contracts.registry import (
    Ack,
    Calibration,
    GetHistory,
    GetModel,
    Heartbeat,
    History,
    ListModels,
    ListSchemas,
    ModelList,
    ModelView,
    Promote,
    Refused,
    Retire,
    Rollback,
    SchemaList,
    SetThreshold,
    TaskAliases,
)
from tests.fakes.registry import MemoryRegistry, registration

TASK = "flights.extract"
V1, V2, V3 = (f"{TASK}/smollm2-lora@{v}" for v in ("1", "2", "3"))


def promote(model_id: str, to: Any, share: float | None = None) -> Promote:
    return Promote(model_id=model_id, to=to, who="ana", why=f"{to} it", canary_share=share)


async def aliases(registry: MemoryRegistry) -> TaskAliases:
    stored = await registry.aliases.get(TASK)
    assert stored is not None
    return stored.value


async def view(registry: MemoryRegistry, model_id: str) -> ModelView:
    reply = await registry.handle(GetModel(model_id=model_id))
    assert isinstance(reply, ModelView), reply
    return reply


async def status(registry: MemoryRegistry, model_id: str) -> str:
    return (await view(registry, model_id)).card.status


async def history(registry: MemoryRegistry) -> list[tuple[str, str | None, str | None, str]]:
    reply = await registry.handle(GetHistory(task=TASK))
    assert isinstance(reply, History)
    return [(m.alias, m.from_model, m.to_model, m.action or "") for m in reply.moves]


@pytest.fixture
async def registry() -> MemoryRegistry:
    registry = MemoryRegistry()
    await registry.register_contracts()
    for version in ("1", "2", "3"):
        reply = await registry.handle(registration(version=version))
        assert isinstance(reply, Ack) and reply.created, reply
    return registry


async def test_the_first_version_is_champion_by_bootstrap_and_later_ones_candidates(
    registry: MemoryRegistry,
) -> None:
    assert await aliases(registry) == TaskAliases(task=TASK, champion=V1)
    assert [await status(registry, m) for m in (V1, V2, V3)] == [
        "champion", "candidate", "candidate"
    ]  # fmt: skip
    (move,) = registry.log.moves
    assert (move.who, move.action, move.to_model, move.status) == (
        "registry", "bootstrap", V1, "champion"
    )  # fmt: skip
    assert registry.provisioned.consumers == {
        ("flights", "smollm2-lora-1"), ("flights", "smollm2-lora-2"), ("flights", "smollm2-lora-3")
    }  # fmt: skip


async def test_registration_is_idempotent_and_refreshes_last_seen(
    registry: MemoryRegistry,
) -> None:
    before = (await view(registry, V2)).card
    again = await registry.handle(registration(version="2"))
    assert isinstance(again, Ack) and not again.created and again.card is not None
    assert again.card.created_at == before.created_at and again.card.status == "candidate"
    assert again.card.last_seen is not None and before.last_seen is not None
    assert again.card.last_seen >= before.last_seen
    assert len(registry.log.moves) == 1


async def test_register_promote_rollback_retire_with_every_move_recorded(
    registry: MemoryRegistry,
) -> None:
    assert isinstance(await registry.handle(promote(V2, "shadow")), Ack)
    assert await status(registry, V2) == "shadow"
    reply = await registry.handle(promote(V2, "canary", 0.25))
    assert isinstance(reply, Ack) and reply.card is not None
    assert (reply.card.status, reply.card.canary_share) == ("canary", 0.25)
    await registry.handle(promote(V2, "champion"))
    assert await aliases(registry) == TaskAliases(task=TASK, champion=V2, challenger=V1)
    assert [await status(registry, m) for m in (V1, V2)] == ["candidate", "champion"]
    await registry.handle(promote(V3, "champion"))
    assert await aliases(registry) == TaskAliases(task=TASK, champion=V3, challenger=V2)

    back = await registry.handle(Rollback(task=TASK, who="ana", why="p95 regression"))
    assert isinstance(back, Ack) and back.card is not None and back.card.model_id == V2
    assert await aliases(registry) == TaskAliases(task=TASK, champion=V2, challenger=V3)
    await registry.handle(Rollback(task=TASK, who="ana", why="still bad"))
    assert (await aliases(registry)).champion == V1
    refused = await registry.handle(Rollback(task=TASK, who="ana", why="once more"))
    assert isinstance(refused, Refused) and refused.code == "not_found"

    retired = await registry.handle(Retire(model_id=V1, who="ana", why="superseded"))
    assert isinstance(retired, Ack) and retired.card is not None
    assert retired.card.status == "retired"
    assert (await aliases(registry)).champion is None

    assert await history(registry) == [
        ("champion", None, V1, "bootstrap"),
        ("challenger", None, V2, "promote"),  # shadow
        ("challenger", V2, V2, "promote"),  # canary: status only
        ("champion", V1, V2, "promote"),
        ("challenger", V2, V1, "promote"),
        ("champion", V2, V3, "promote"),
        ("challenger", V1, V2, "promote"),
        ("champion", V3, V2, "rollback"),
        ("challenger", V2, V3, "rollback"),
        ("champion", V2, V1, "rollback"),
        ("challenger", V3, V2, "rollback"),
        ("champion", V1, None, "retire"),
    ]
    moves = registry.log.moves
    assert all(m.who == "ana" for m in moves[1:]) and moves[7].why == "p95 regression"
    assert moves[2].status == "canary" and moves[2].model_id == V2


async def test_rollback_skips_retired_versions_and_restores_after_a_retired_champion(
    registry: MemoryRegistry,
) -> None:
    await registry.handle(promote(V2, "champion"))
    await registry.handle(promote(V3, "champion"))
    await registry.handle(Retire(model_id=V2, who="ana", why="bad adapter"))
    await registry.handle(Retire(model_id=V3, who="ana", why="bad too"))
    assert (await aliases(registry)).champion is None
    back = await registry.handle(Rollback(task=TASK, who="ana", why="restore"))
    assert isinstance(back, Ack) and back.card is not None and back.card.model_id == V1
    assert back.card.status == "champion"


async def test_a_retired_model_is_refused_everything_but_reads_and_heartbeats(
    registry: MemoryRegistry,
) -> None:
    await registry.handle(Retire(model_id=V3, who="ana", why="never shipped"))
    again = await registry.handle(registration(version="3"))
    assert isinstance(again, Refused) and again.code == "retired"
    refused = await registry.handle(promote(V3, "canary"))
    assert isinstance(refused, Refused) and refused.code == "retired"
    beat = await registry.handle(Heartbeat(model_id=V3))
    assert isinstance(beat, Ack) and beat.card is not None and beat.card.status == "retired"
    assert registry.log.moves[-1].model_id == V3 and registry.log.moves[-1].status == "retired"


async def test_bad_requests_are_refused_not_raised(registry: MemoryRegistry) -> None:
    cases = [
        (promote("flights.extract/nope@1", "canary"), "not_found"),
        (promote(V1, "shadow"), "invalid"),  # the champion
        (promote(V2, "shadow", 0.5), "invalid"),  # a share is for canaries
        (Promote(model_id=V2, to="canary", who=" ", why="x"), "invalid"),
        (Rollback(task="trains.extract", who="a", why="b"), "invalid"),
        (Heartbeat(model_id="not a model id"), "not_found"),
        (GetHistory(task="*"), "invalid"),
    ]
    for request, code in cases:
        reply = await registry.handle(request)
        assert isinstance(reply, Refused) and reply.code == code, (request, reply)


async def test_an_incompatible_schema_is_refused_with_a_problem_per_field() -> None:
    registry = MemoryRegistry()
    schema = FlightsDraft.model_json_schema()
    del schema["properties"]["origin"]
    schema["properties"]["passengers"] = {"type": "string"}
    reply = await registry.handle(registration(schema=schema))
    assert isinstance(reply, Refused) and reply.code == "incompatible_schema"
    assert {(p.field, p.code) for p in reply.problems} == {
        ("origin", "incompatible_schema.missing"),
        ("passengers", "incompatible_schema.type_changed"),
    }
    assert await registry.cards.values() == [] and not registry.provisioned.consumers


async def test_a_compatible_addition_is_stored_as_a_new_schema_version() -> None:
    registry = MemoryRegistry()
    await registry.register_contracts()
    schema = FlightsDraft.model_json_schema()
    schema["properties"]["cabin_bags"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    reply = await registry.handle(registration(version="9", schema=schema))
    assert isinstance(reply, Ack) and reply.card is not None
    assert reply.card.output_schema.version == 2
    schemas = await registry.handle(ListSchemas())
    assert isinstance(schemas, SchemaList)
    flights = [e.ref.version for e in schemas.schemas if e.ref.schema_id == "flights.draft"]
    assert flights == [1, 2]
    assert len(schemas.schemas) == 6  # five contracts (four drafts, routing) and the addition


async def test_a_slug_collision_or_another_schema_under_the_same_id_is_a_conflict(
    registry: MemoryRegistry,
) -> None:
    clash = registration(name="smollm2 lora", version="1")  # same slug as smollm2-lora@1
    reply = await registry.handle(clash)
    assert isinstance(reply, Refused) and reply.code == "conflict"
    schema = FlightsDraft.model_json_schema()
    schema["properties"]["cabin_bags"] = {"type": ["integer", "null"]}
    reply = await registry.handle(registration(version="2", schema=schema))
    assert isinstance(reply, Refused) and reply.code == "conflict"


async def test_list_models_shows_cards_aliases_and_metrics(registry: MemoryRegistry) -> None:
    listed = await registry.handle(ListModels(task=TASK))
    assert isinstance(listed, ModelList)
    assert [v.card.model_id for v in listed.models] == [V1, V2, V3]
    assert listed.aliases == (TaskAliases(task=TASK, champion=V1),)


async def test_reconcile_completes_an_interrupted_promotion(registry: MemoryRegistry) -> None:
    # A crash after the aliases were written: no status, no history entry.
    stored = await registry.aliases.get(TASK)
    assert stored is not None
    moved = TaskAliases(task=TASK, champion=V2, challenger=V1)
    await registry.aliases.update(TASK, moved, stored.revision)
    repaired = await registry.reconcile()
    assert len(repaired) == 3, repaired
    assert [await status(registry, m) for m in (V1, V2)] == ["candidate", "champion"]
    assert (await history(registry))[-2:] == [
        ("champion", V1, V2, "repair"),
        ("challenger", None, V1, "repair"),
    ]
    assert await registry.reconcile() == []


async def test_a_calibrated_threshold_lives_on_the_card_with_its_evidence(
    registry: MemoryRegistry,
) -> None:
    evidence = Calibration(
        threshold=0.45, target_accuracy=0.97, kept_share=0.86, kept_accuracy=0.975,
        records=300, data="dev.jsonl", who="ops",
    )  # fmt: skip
    reply = await registry.handle(SetThreshold(model_id=V2, calibration=evidence))
    assert isinstance(reply, Ack) and reply.card is not None
    card = (await view(registry, V2)).card
    assert (card.confidence_threshold, card.calibration) == (0.45, evidence)
    assert (await view(registry, V1)).card.confidence_threshold is None  # only that version
    # A re-registration (a worker restarting) keeps the card's threshold.
    await registry.handle(registration(version="2"))
    assert (await view(registry, V2)).card.confidence_threshold == 0.45
    # "No threshold reaches the target" clears it: the version then keeps every answer.
    cleared = evidence.model_copy(update={"threshold": None, "kept_share": None})
    await registry.handle(SetThreshold(model_id=V2, calibration=cleared))
    assert (await view(registry, V2)).card.confidence_threshold is None


async def test_a_threshold_for_an_unknown_model_or_without_who_is_refused(
    registry: MemoryRegistry,
) -> None:
    evidence = Calibration(threshold=0.5, target_accuracy=0.97, records=10, data="d", who="ops")
    unknown = await registry.handle(
        SetThreshold(model_id="flights.extract/x@9", calibration=evidence)
    )
    assert isinstance(unknown, Refused) and unknown.code == "not_found"
    anonymous = evidence.model_copy(update={"who": " "})
    refused = await registry.handle(SetThreshold(model_id=V2, calibration=anonymous))
    assert isinstance(refused, Refused) and refused.code == "invalid"


def test_each_tasks_adapter_has_its_own_engine_name_where_the_subject_slug_is_shared() -> None:
    # The shipped adapters share a name and version; one engine (SGLang, `skiff extract
    # --local`) holds all four, so loading one under another's name would replace it.
    cards = [registration(domain).card for domain in ("flights", "hotels", "cars", "insurance")]
    assert len({card.slug for card in cards}) == 1
    assert len({card.adapter_name for card in cards}) == 4
    assert cards[0].adapter_name == "flights-extract-smollm2-lora-1"
