"""`skiff registry …` in its own process against a real registry over real NATS."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from skiff_contracts.registry import History, ModelList, SchemaList, TaskAliases
from skiff_extraction.router import RouterModel, SlmRouter
from skiff_inference.static_embeddings import StaticEmbedder
from skiff_runtime.nats_server import NatsServer
from tests.fakes.registry import registration
from tests.integration.registry_harness import RunningRegistry, ask

pytestmark = pytest.mark.nats

TASK = "flights.extract"
V1, V2 = "flights.extract/smollm2-lora@1", "flights.extract/smollm2-lora@2"
CLI = "from skiff_cli.registry_cli import registry_app; registry_app(prog_name='skiff registry')"


@pytest.fixture
async def registry(nats_server: NatsServer, fresh_layout: Client) -> AsyncIterator[Client]:
    running = RunningRegistry(nats_server)
    await running.start()
    await ask(fresh_layout, registration(version="1"))
    await ask(fresh_layout, registration(version="2"))
    yield fresh_layout
    await running.stop()


async def skiff_registry(
    server: NatsServer, *args: str, user: str = "operator"
) -> tuple[int, str, str]:
    """Run the CLI as a user would: its own process, its own connection, as the NATS identity
    `user` (this server checks no password; the registry takes the identity as `who`)."""
    env = {**os.environ, "SKIFF_NATS_USER": user, "COLUMNS": "200"}
    env.pop("SKIFF_NATS_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, *args, "--nats-url", server.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_list_show_and_schemas_read_the_registry(
    registry: Client, nats_server: NatsServer
) -> None:
    code, out, _ = await skiff_registry(nats_server, "list", "--json")
    assert code == 0
    listed = ModelList.model_validate_json(out)
    assert [v.card.model_id for v in listed.models] == [V1, V2]
    assert listed.aliases == (TaskAliases(task=TASK, champion=V1),)

    code, out, _ = await skiff_registry(nats_server, "list")
    assert code == 0 and V1 in out and "champion" in out and "candidate" in out

    code, out, _ = await skiff_registry(nats_server, "show", "smollm2-lora-2")  # by slug
    assert code == 0 and V2 in out and "flights.draft v1" in out and "no calls recorded" in out

    code, out, _ = await skiff_registry(nats_server, "schemas", "--json")
    assert code == 0
    assert {e.ref.schema_id for e in SchemaList.model_validate_json(out).schemas} == {
        "flights.draft", "hotels.draft", "cars.draft", "insurance.draft", "router.labels"
    }  # fmt: skip


async def test_promote_rollback_retire_and_the_history_they_leave(
    registry: Client, nats_server: NatsServer
) -> None:
    code, out, err = await skiff_registry(
        nats_server, "promote", V2, "--to", "canary", "--reason", "mine now", user="cli"
    )
    assert code != 0 and "cli may not promote" in out + err, out + err
    code, out, err = await skiff_registry(
        nats_server, "promote", V2, "--to", "canary", "--share", "0.3", "--reason", "agrees 98 %"
    )
    assert code == 0, err
    assert f"{V2} is now canary" in out
    code, out, err = await skiff_registry(
        nats_server, "promote", "smollm2-lora@2", "--to", "champion", "--reason", "wins",
        user="flywheel",
    )  # fmt: skip
    assert code == 0, err
    assert f"{V2} is now champion" in out
    code, out, err = await skiff_registry(
        nats_server, "rollback", TASK, "--reason", "p95 regression"
    )
    assert code == 0, err
    assert f"{V1} is now champion" in out

    code, out, err = await skiff_registry(nats_server, "retire", V2, "--reason", "superseded")
    assert code == 0 and f"{V2} is now retired" in out, err

    code, out, _ = await skiff_registry(nats_server, "history", TASK, "--json")
    moves = History.model_validate_json(out).moves
    assert [(m.alias, m.to_model, m.who, m.why) for m in moves] == [
        ("champion", V1, "registry", "first version registered for the task"),
        ("challenger", V2, "operator", "agrees 98 %"),
        ("champion", V2, "flywheel", "wins"),
        ("challenger", V1, "flywheel", "wins"),
        ("champion", V1, "operator", "p95 regression"),
        ("challenger", V2, "operator", "p95 regression"),
        ("challenger", None, "operator", "superseded"),
    ]
    code, out, _ = await skiff_registry(nats_server, "history", TASK)
    assert code == 0 and "p95 regression" in out and "operator" in out

    # Refusals exit 1 and say why.
    code, out, _ = await skiff_registry(nats_server, "rollback", TASK, "--reason", "again")
    assert code == 1 and "refused (not_found)" in out
    code, out, _ = await skiff_registry(
        nats_server, "promote", V2, "--to", "shadow", "--reason", "revive"
    )
    assert code == 1 and "refused (retired)" in out


FLYWHEEL = (
    "from skiff_cli.flywheel_cli import flywheel_app; flywheel_app(prog_name='skiff flywheel')"
)
REPO = Path(__file__).resolve().parents[2]


async def test_a_router_retrained_with_the_llm_tier_s_routes_is_registered_and_listed(
    registry: Client, nats_server: NatsServer, tmp_path: Path
) -> None:
    """The router's conversion loop on the real data: the LLM tier's decided routes (a call
    log export) join the training data, the version is measured and carded, registered, and
    the registry lists it with its history."""
    routes = [
        {"kind": "call_record", "record_id": f"t{i}:route:0:llm", "model_id": "llm/big@1",
         "task": "router.route", "tier": "llm", "trip_id": f"t{i}", "step": "route",
         "valid": True, "latency_ms": 900.0, "tokens_in": 200, "tokens_out": 12,
         "input_text": text, "output": {"labels": labels}}
        for i, (text, labels) in enumerate([
            ("a puddle jumper from Kona to Lanai tomorrow", ["flights"]),
            ("a bunk in a ryokan near Hakone for the weekend", ["hotels"]),
        ])
    ]  # fmt: skip
    export = tmp_path / "calls.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in routes))
    output = tmp_path / "router-2.1.0.npz"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLYWHEEL, "router-train", "--output", str(output),
        "--version", "2.1.0", "--call-log", str(export),
        "--data", str(REPO.parent / "shared/data"), "--devsets", str(REPO / "libs/models/devsets"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "2 routes from the call log" in out.decode()
    trained = RouterModel.load(output)
    assert trained.card["version"] == "2.1.0" and trained.card["data"]["call_log"] == 2
    assert trained.card["metrics"]["written"]["requests"] == 231
    route = SlmRouter(trained, StaticEmbedder()).route("Book me a flight from Oslo to Rome.")
    assert route.domains == ("flights",)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLYWHEEL, "router-register", str(output), "--nats-url",
        nats_server.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert "router.route/skiff-router@2.1.0" in out.decode()
    code, out, _ = await skiff_registry(nats_server, "list", "--json")
    assert code == 0
    listed = ModelList.model_validate_json(out)
    (card,) = [v.card for v in listed.models if v.card.task == "router.route"]
    assert card.adapter == str(output) and card.status == "champion"  # the task's first version
    code, out, _ = await skiff_registry(nats_server, "history", "router.route", "--json")
    assert code == 0
    moves = History.model_validate_json(out).moves
    assert [(m.alias, m.to_model) for m in moves] == [("champion", card.model_id)]
