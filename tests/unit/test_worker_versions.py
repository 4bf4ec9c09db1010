"""Which adapter versions a worker serves, and how one is loaded, served and dropped."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from skiff_contracts.registry import ModelCard
from skiff_extraction.pipeline import Extractor
from skiff_extraction.pricing import HOSTED_8B
from skiff_flywheel.artifacts import AdapterError, adapter_path
from skiff_inference.engine import Generation
from skiff_worker.versions import AdapterVersions, Fleet, extractor_factory, plan
from tests.fakes.registry import registration

OWN = "flights.extract/smollm2@1"
PRICES = {"base": HOSTED_8B}  # the worker's base model is priced, its adapters are not
FLEET = Fleet("flights.extract", "HuggingFaceTB/SmolLM2-135M-Instruct", "llamacpp", OWN)


def adapter_card(version: str, status: str, adapter: Path | None, sha: str | None) -> ModelCard:
    base = registration(name="smollm2-sgd", version=version).card
    return base.model_copy(
        update={
            "status": status,
            "adapter": str(adapter) if adapter else None,
            "adapter_sha256": sha,
            "prompt_version": "ft1",
            "confidence_threshold": -0.5,
        }
    )


def write_adapter(directory: Path, gguf: bytes = b"GGUF-lora") -> str:
    """An exported adapter directory; the manifest's sha256."""
    directory.mkdir(parents=True)
    (directory / "adapter.gguf").write_bytes(gguf)
    files = {"adapter.gguf": hashlib.sha256(gguf).hexdigest()}
    (directory / "training.json").write_text(json.dumps({"files": files}))
    return hashlib.sha256((directory / "training.json").read_bytes()).hexdigest()


def test_the_plan_serves_fitting_versions_that_receive_work_and_drops_retired_ones() -> None:
    shadow = adapter_card("2", "shadow", Path("/a"), "x")
    candidate = adapter_card("3", "candidate", Path("/b"), "y")
    other_base = adapter_card("4", "canary", Path("/c"), "z").model_copy(
        update={"base_model": "Qwen2.5-0.5B"}
    )
    other_engine = adapter_card("5", "champion", Path("/d"), "w").model_copy(
        update={"engine": "sglang"}
    )
    no_adapter = adapter_card("6", "champion", None, None)
    cards = [shadow, candidate, other_base, other_engine, no_adapter]
    start, stop = plan(cards, FLEET, served=[])
    assert [c.model_id for c in start] == [shadow.model_id]
    assert stop == []

    demoted = candidate.model_copy(update={"status": "candidate"})
    retired = shadow.model_copy(update={"status": "retired"})
    start, stop = plan([retired, demoted], FLEET, served=[shadow.model_id, demoted.model_id])
    assert start == [] and stop == [shadow.model_id]  # a served candidate stays warm
    _, gone = plan([], FLEET, served=[demoted.model_id])
    assert gone == [demoted.model_id]


def test_adapter_path_checks_the_manifest_and_each_file_against_the_card(tmp_path: Path) -> None:
    sha = write_adapter(tmp_path / "ok")
    card = adapter_card("2", "shadow", tmp_path / "ok", sha)
    assert adapter_path(card, "llamacpp") == tmp_path / "ok" / "adapter.gguf"
    with pytest.raises(AdapterError, match="no peft"):
        adapter_path(card, "sglang")
    with pytest.raises(AdapterError, match="serves no adapters"):
        adapter_path(card, "openai")
    with pytest.raises(AdapterError, match="does not match the card"):
        adapter_path(card.model_copy(update={"adapter_sha256": "0" * 64}), "llamacpp")
    with pytest.raises(AdapterError, match="unpinned"):
        adapter_path(card.model_copy(update={"adapter_sha256": None}), "llamacpp")
    (tmp_path / "ok" / "adapter.gguf").write_bytes(b"tampered")
    with pytest.raises(AdapterError, match="does not match its manifest"):
        adapter_path(card, "llamacpp")


class FakeEngine:
    kind = "llamacpp"
    model = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.loaded: dict[str, Path] = {}
        self.calls: list[str | None] = []
        self.fail = fail

    async def load_adapter(self, name: str, path: Path) -> None:
        from skiff_inference.engine import EngineError

        if self.fail:
            raise EngineError("cannot load", transient=False)
        self.loaded[name] = path

    async def unload_adapter(self, name: str) -> None:
        del self.loaded[name]

    async def generate_json(self, messages: Any, schema: Any, **kw: Any) -> Any:
        self.calls.append(kw.get("adapter"))
        return None

    async def warm_up(self, messages: Any, schema: Any) -> None:
        self.calls.append(None)


def serving(
    engine: FakeEngine,
    versions: dict[str, Extractor],
    subscribe: Callable[[str], Awaitable[None]],
    unsubscribe: Callable[[str], Awaitable[None]],
) -> AdapterVersions:
    """The flights fleet's adapter versions on the fake engine (base model priced)."""
    return AdapterVersions(
        engine=engine,  # type: ignore[arg-type]
        fleet=FLEET, versions=versions, subscribe=subscribe, unsubscribe=unsubscribe,
        make_extractor=extractor_factory(engine, "flights", PRICES, "base"),  # type: ignore[arg-type]
    )  # fmt: skip


async def test_reconcile_loads_the_adapter_warms_it_and_subscribes_then_drops_it(
    tmp_path: Path,
) -> None:
    sha = write_adapter(tmp_path / "v2")
    card = adapter_card("2", "canary", tmp_path / "v2", sha)
    engine = FakeEngine()
    versions: dict[str, Extractor] = {}
    subscribed: list[str] = []
    unsubscribed: list[str] = []

    async def subscribe(model_id: str) -> None:
        subscribed.append(model_id)

    async def unsubscribe(model_id: str) -> None:
        unsubscribed.append(model_id)

    adapters = serving(engine, versions, subscribe, unsubscribe)
    await adapters.reconcile([card])
    assert engine.loaded == {card.adapter_name: tmp_path / "v2" / "adapter.gguf"}
    assert engine.calls == [card.adapter_name]  # warmed up with its own adapter
    assert subscribed == [card.model_id]
    served = versions[card.model_id]
    assert (served.prompt_version, served.adapter, served.confidence_threshold) == (
        "ft1", card.adapter_name, -0.5,
    )  # fmt: skip
    generation = Generation(value={}, raw="{}", tokens_in=1_000_000, tokens_out=0,
                            token_logprobs=(), latency_ms=1.0, engine="llamacpp",
                            model="m", adapter=card.adapter_name)  # fmt: skip
    assert served._call(generation).cost_usd == 0.02  # an adapter pays its base model's rate

    await adapters.reconcile([card])  # already served: nothing again
    assert subscribed == [card.model_id] and len(engine.calls) == 1
    calibrated = card.model_copy(update={"confidence_threshold": 0.4})  # skiff calibrate
    await adapters.reconcile([calibrated])  # the served version follows its card
    assert served.confidence_threshold == 0.4 and len(engine.calls) == 1
    await adapters.reconcile([card.model_copy(update={"status": "retired"})])
    assert unsubscribed == [card.model_id] and versions == {}
    assert engine.loaded == {}  # its adapter unloaded


async def test_a_version_that_cannot_be_served_is_reported_and_retried(tmp_path: Path) -> None:
    sha = write_adapter(tmp_path / "v2")
    card = adapter_card("2", "shadow", tmp_path / "v2", sha)
    engine = FakeEngine(fail=True)
    versions: dict[str, Extractor] = {}

    async def nothing(model_id: str) -> None:
        raise AssertionError("must not subscribe a version that failed to load")

    adapters = serving(engine, versions, nothing, nothing)
    await adapters.reconcile([card])
    assert versions == {} and "cannot load" in adapters.failures[card.model_id]
    engine.fail = False
    versions_seen: list[str] = []

    async def record(model_id: str) -> None:
        versions_seen.append(model_id)

    adapters.subscribe = record
    await adapters.reconcile([card])
    assert versions_seen == [card.model_id] and card.model_id not in adapters.failures


async def test_a_card_this_code_cannot_serve_does_not_stop_the_others(tmp_path: Path) -> None:
    bad = adapter_card("2", "shadow", tmp_path / "v2", write_adapter(tmp_path / "v2"))
    bad = bad.model_copy(update={"prompt_version": "ft99"})  # from a newer flywheel
    good = adapter_card("3", "canary", tmp_path / "v3", write_adapter(tmp_path / "v3"))
    engine = FakeEngine()
    versions: dict[str, Extractor] = {}
    subscribed: list[str] = []

    async def subscribe(model_id: str) -> None:
        subscribed.append(model_id)

    adapters = serving(engine, versions, subscribe, subscribe)
    await adapters.reconcile([bad, good])
    assert subscribed == [good.model_id] and list(versions) == [good.model_id]
    assert "ft99" in adapters.failures[bad.model_id]
