"""AsyncAPI: the committed documents match what the services' code generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest
import yaml  # type: ignore[import-untyped]
from faststream.nats import NatsBroker

from skiff_contracts import subjects
from skiff_contracts.messages import TripRequest

GENERATOR = Path(__file__).resolve().parents[2] / "docs" / "asyncapi" / "generate.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("skiff_asyncapi_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(generator: ModuleType) -> dict[str, str]:
    return {service.name: generator.render(service) for service in generator.SERVICES}


def test_committed_documents_match_the_code(
    generator: ModuleType, rendered: dict[str, str]
) -> None:
    drifted = [
        name
        for name, text in rendered.items()
        if not (path := generator.OUT_DIR / f"{name}.yaml").exists() or path.read_text() != text
    ]
    assert drifted == [], "services' subjects or contracts changed: run `make asyncapi` if intended"


def test_generation_is_deterministic(generator: ModuleType, rendered: dict[str, str]) -> None:
    (planner,) = [s for s in generator.SERVICES if s.name == "planner"]
    assert generator.render(planner) == rendered["planner"]


def test_drift_is_detected(
    generator: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tuple(s for s in generator.SERVICES if s.name == "inventory")
    monkeypatch.setattr(generator, "SERVICES", inventory)
    generator.write(tmp_path)
    path = tmp_path / "inventory.yaml"
    path.write_text(path.read_text().replace("queue: inventory", "queue: elsewhere", 1))
    assert generator.drifted(tmp_path) == ["inventory"]


def test_every_service_is_documented(rendered: dict[str, str]) -> None:
    assert set(rendered) == {"planner", "worker", "llm-worker", "inventory"}


def test_subscribers_carry_their_contract_and_manual_publishes_are_channels(
    generator: ModuleType,
) -> None:
    (planner,) = [s for s in generator.SERVICES if s.name == "planner"]
    document: dict[str, Any] = generator.document(planner)
    channels = {c["address"]: c for c in document["channels"].values()}
    # Received: the contract, not FastStream's EmptyPayload for a raw-message handler.
    assert "EmptyPayload" not in document["components"]["schemas"]
    submit = channels[subjects.TRIP_SUBMIT_ALL]
    assert submit["bindings"]["nats"]["queue"] == "planner"
    (message_ref,) = submit["messages"].values()
    message = document["components"]["messages"][unquote(message_ref["$ref"].rsplit("/", 1)[1])]
    payload = document["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
    assert payload["title"] == TripRequest.__name__
    # Sent with broker.publish: described from the subject constants.
    assert subjects.TRIP_EVENTS_ALL in channels
    assert subjects.task("flights", "extract") in channels
    sends = {op["channel"]["$ref"] for op in document["operations"].values()}
    assert any(ref.endswith(":Publisher") for ref in sends)


def test_an_undocumented_subscriber_fails_generation(generator: ModuleType) -> None:
    def build() -> list[NatsBroker]:
        broker = NatsBroker("nats://nats:4222")

        @broker.subscriber(f"{subjects.PREFIX}.somewhere.new")
        async def handle(body: bytes) -> None: ...

        return [broker]

    service = generator.Service("probe", "", build, receives=(), sends=())
    with pytest.raises(generator.UndocumentedChannel, match="no contract"):
        generator.document(service)


def test_a_stale_entry_fails_generation(generator: ModuleType) -> None:
    stale = generator.Channel(subjects.TRIP_SUBMIT_ALL, TripRequest, "nobody subscribes")
    service = generator.Service(
        "probe", "", lambda: [NatsBroker("nats://nats:4222")], receives=(stale,), sends=()
    )
    with pytest.raises(generator.UndocumentedChannel, match="no subscriber"):
        generator.document(service)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves(rendered: dict[str, str]) -> None:
    for name, text in rendered.items():
        document = yaml.safe_load(text)
        for ref in _refs(document):
            assert ref.startswith("#/"), ref
            node: Any = document
            for token in ref[2:].split("/"):
                key = unquote(token).replace("~1", "/").replace("~0", "~")
                assert key in node, f"{name}: {ref} does not resolve"
                node = node[key]
