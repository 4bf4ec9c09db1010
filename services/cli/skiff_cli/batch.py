"""`skiff extract`: batch extraction from JSONL, in-process (`--local`) or through the workers.

Input lines need `id` and `text` (other fields are ignored). One output line per input and
domain: `id`, `domain`, `status` (extracted / needs_escalation / clarify / declined / error),
`handled_by` (slm / llm: the last tier that worked on the line), `params`, `reason` (why the
SLM escalated, also when the LLM tier then resolved it), `confidence`, `cost` (US dollars,
both tiers), `model`, `latency_ms`, `tokens_in`, `tokens_out`; `question` for `clarify`,
`llm_reason` when the LLM tier could not resolve it either.

`--tiers slm+llm` sends what the SLM escalates to the LLM tier: over NATS to the running
`llm-worker`, or with `--local` in this process on the engine `SKIFF_LLM__*` configures (when
`SKIFF_LLM__URL` is unset, a stand-in LLM server is started for the run and stopped after).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import Field

from skiff_cli.registry_cli import RegistryApi, RegistryUnavailable
from skiff_cli.stack import OPERATOR, acting_as, connect
from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.messages import (
    WORKER_RESULT,
    Clarify,
    Declined,
    Extracted,
    ExtractTask,
    Failed,
    ModelCall,
    NeedsEscalation,
    ResolveTask,
    WorkerReply,
)
from skiff_contracts.problems import Problem
from skiff_contracts.registry import ListModels, ModelList, model_id_for
from skiff_extraction.calibration import BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION
from skiff_extraction.examples import ExampleBank
from skiff_extraction.llm_tier import (
    STANDIN_VERSION,
    LlmEngineSettings,
    ResolverSettings,
    build_llm_engine,
)
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.pricing import DEFAULT_PRICES, ModelPrice
from skiff_extraction.resolver import Resolver
from skiff_extraction.router import Router, load_router
from skiff_flywheel.artifacts import adapter_path
from skiff_inference.engine import Engine
from skiff_inference.factory import EngineSettings, build_engine
from skiff_models import shipped_cards
from skiff_runtime.settings import ServiceSettings

DomainChoice = Literal["flights", "hotels", "cars", "insurance", "auto"]
Tiers = Literal["slm", "slm+llm"]
Reply = Extracted | NeedsEscalation | Clarify | Declined | Failed


class BatchSettings(ServiceSettings):
    """What `skiff extract` reads from the environment: the LLM tier and the price table."""

    llm: LlmEngineSettings | None = Field(
        default=None, description="None (no SKIFF_LLM__*): `--local` starts the stand-in"
    )
    llm_version: str = STANDIN_VERSION
    resolver: ResolverSettings = ResolverSettings()
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))


@dataclass(frozen=True)
class InputLine:
    id: str
    text: str


def read_lines(path: Path) -> Iterator[InputLine | dict[str, Any]]:
    """Each usable line as an `InputLine`; an unusable one as a ready-made error row."""
    with path.open() as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                yield InputLine(id=str(record["id"]), text=str(record["text"]))
            except (ValueError, KeyError, TypeError) as error:
                yield error_row(f"line-{number}", None, f"unreadable input line: {error!r}")


def error_row(line_id: str, domain: Domain | None, reason: str) -> dict[str, Any]:
    return {
        "id": line_id, "domain": domain, "status": "error", "handled_by": None, "params": None,
        "reason": reason, "confidence": None, "cost": None, "model": None, "latency_ms": None,
        "tokens_in": None, "tokens_out": None,
    }  # fmt: skip


STATUS = {
    "extracted": "extracted",
    "needs_escalation": "needs_escalation",
    "clarify": "clarify",
    "declined": "declined",
}


def result_row(
    line_id: str, result: Reply, escalated: NeedsEscalation | None = None
) -> dict[str, Any]:
    """One output line: `result` is the final reply; `escalated` the SLM's, when it escalated."""
    call = getattr(result, "call", None)
    first = escalated.call if escalated is not None else None
    calls: list[ModelCall] = [c for c in (first, call) if c is not None]
    own_reason = None if isinstance(result, Extracted) else getattr(result, "reason", None)
    row: dict[str, Any] = {
        "id": line_id,
        "domain": result.domain,
        "status": STATUS.get(result.kind, "error"),
        "handled_by": "llm" if escalated is not None else "slm",
        "params": None,
        "reason": escalated.reason if escalated is not None else own_reason,
        "confidence": None,
        "cost": round(sum(c.cost_usd for c in calls), 8) if calls else None,
        "model": f"{call.model}@{call.version}" if call else None,
        "latency_ms": round(sum(c.latency_ms for c in calls), 1) if calls else None,
        "tokens_in": sum(c.tokens_in for c in calls) if calls else None,
        "tokens_out": sum(c.tokens_out for c in calls) if calls else None,
    }
    if escalated is not None:
        row["llm_calls"] = call.calls if call else 0
        if not isinstance(result, Extracted):
            row["llm_reason"] = own_reason
    if isinstance(result, Extracted):
        row["params"] = result.params.model_dump(mode="json", exclude={"domain"})
        row["confidence"] = result.confidence
    elif isinstance(result, Clarify):
        row["question"] = result.question
    elif isinstance(result, NeedsEscalation):
        row["attempt"] = result.attempt
        row["errors"] = [p.model_dump(exclude_none=True) for p in result.errors]
    return row


def domains_for(text: str, choice: DomainChoice, router: Router | None) -> tuple[Domain, ...]:
    """The chosen domain, or the router's domains for `auto`."""
    if choice != "auto":
        return (choice,)
    assert router is not None
    return router.route(text).domains


def router_for(choice: DomainChoice, engine: EngineSettings) -> Router | None:
    return load_router() if choice == "auto" else None


def task_for(batch: str, index: int, line: InputLine, domain: Domain, ref: date) -> ExtractTask:
    trip_id = f"x-{batch}-{index}"
    step = f"{domain}.extract"
    return ExtractTask(
        message_id=subjects.command_id(trip_id, step, 1),
        trip_id=trip_id,
        step=step,
        domain=domain,
        text=line.text,
        reference_date=ref,
    )


def resolve_task_for(task: ExtractTask, failed: NeedsEscalation) -> ResolveTask:
    """The escalation of one line, as the planner would send it (no other steps are known)."""
    step = f"{task.domain}.resolve"
    return ResolveTask(
        message_id=subjects.command_id(task.trip_id, step, 1),
        trip_id=task.trip_id, step=step, domain=task.domain, text=task.text,
        reference_date=task.reference_date, reason=failed.reason, attempt=failed.attempt,
        errors=failed.errors,
    )  # fmt: skip


def local_resolver(settings: BatchSettings, url: str | None) -> Resolver:
    """The LLM tier in this process, on the configured engine (or the stand-in at `url`)."""
    engine_settings = settings.llm or LlmEngineSettings()
    if url is not None:
        engine_settings = engine_settings.model_copy(update={"url": url})
    engine = build_llm_engine(engine_settings)
    model = engine_settings.model or engine.model
    return Resolver(
        engine=engine,
        identity=ModelIdentity(name=model, version=settings.llm_version, tier="llm"),
        settings=settings.resolver,
        bank=ExampleBank.load(),
        prices=settings.prices,
    )


ModelChoice = Literal["champion", "base"]


async def local_extractors(
    engine: Engine,
    model: ModelChoice,
    prices: Mapping[str, ModelPrice],
    threshold: float | None,
) -> dict[Domain, Extractor]:
    """Per domain, what a worker would serve: the shipped champion (its adapter loaded into
    `engine`, its prompt, its card's threshold) or, with `base`, the bundled base model with
    its few-shot prompt. `threshold`, when given, replaces every card's."""
    base = ModelIdentity(name=BUNDLED_MODEL_NAME, version=BUNDLED_MODEL_VERSION)
    extractors = {d: Extractor(engine, d, base, threshold, prices=prices) for d in DOMAINS}
    if model == "base":
        return extractors
    for domain, card in shipped_cards().items():
        await engine.load_adapter(card.adapter_name, adapter_path(card, "llamacpp"))
        extractors[domain] = Extractor(
            engine, domain,
            ModelIdentity(name=card.name, version=card.version, priced_as=BUNDLED_MODEL_NAME),
            card.confidence_threshold if threshold is None else threshold,
            prompt_version=card.prompt_version, adapter=card.adapter_name, prices=prices,
        )  # fmt: skip
    return extractors


async def extract_local(
    path: Path,
    domain: DomainChoice,
    reference_date: date,
    engine_settings: EngineSettings,
    *,
    model: ModelChoice = "champion",
    resolver: Resolver | None = None,
    prices: Mapping[str, ModelPrice] = DEFAULT_PRICES,
    threshold: float | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The worker's extraction pipeline, in this process, one line at a time, with the
    shipped champions (or the base model); with a `resolver`, what the SLM escalates goes to
    that LLM tier."""
    engine = build_engine(engine_settings)
    extractors = await local_extractors(engine, model, prices, threshold)
    router = router_for(domain, engine_settings)
    try:
        for index, line in enumerate(read_lines(path)):
            if not isinstance(line, InputLine):
                yield line
                continue
            domains = domains_for(line.text, domain, router)
            for chosen in domains:
                task = task_for("local", index, line, chosen, reference_date)
                result = await extractors[chosen].extract(task)
                if resolver is None or not isinstance(result, NeedsEscalation):
                    yield result_row(line.id, result)
                    continue
                settled = await resolver.resolve(resolve_task_for(task, result))
                yield result_row(line.id, settled, escalated=result)
    finally:
        await engine.aclose()
        if resolver is not None:
            await resolver.engine.aclose()


async def serving_models(api: RegistryApi, model: ModelChoice) -> dict[Domain, str]:
    """The version each domain's extraction asks for: the one the registry makes its
    champion now, or the base model every worker registers."""
    chosen: dict[Domain, str] = {}
    for domain in DOMAINS:
        task = f"{domain}.extract"
        if model == "base":
            wanted: str | None = model_id_for(task, BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION)
        else:
            listed = await api.ask(ListModels(task=task))
            aliases = listed.aliases if isinstance(listed, ModelList) else ()
            wanted = next((a.champion for a in aliases if a.task == task), None)
        if wanted is None:
            raise RegistryUnavailable(f"the registry names no champion for {task}")
        chosen[domain] = wanted
    return chosen


async def ask(
    connection: Client, work: str, task: ExtractTask | ResolveTask, timeout_s: float
) -> Reply:
    """One extraction (`work`: a domain) or escalation (`llm`) on request: the answer comes
    back to this connection only, so no trip's step can be reached this way."""
    try:
        reply = await connection.request(
            subjects.extract(work), task.model_dump_json().encode(), timeout=timeout_s
        )
    except (NoRespondersError, NatsTimeout):
        problem = Problem(code="unavailable", message=f"no answer on {subjects.extract(work)}")
        return Failed(trip_id=task.trip_id, step=task.step, reason="unavailable",
                      retryable=True, errors=(problem,))  # fmt: skip
    result: WorkerReply = WORKER_RESULT.validate_json(reply.data)
    if not isinstance(result, Reply):
        return Failed(trip_id=task.trip_id, step=task.step, reason=f"unexpected {result.kind}")
    return result


async def extract_over_nats(
    path: Path,
    domain: DomainChoice,
    reference_date: date,
    nats_url: str,
    engine_settings: EngineSettings,
    timeout_s: float = 300.0,
    window: int = 16,
    tiers: Tiers = "slm",
    model: ModelChoice = "champion",
) -> AsyncIterator[dict[str, Any]]:
    """Ask the workers serving each line's domains (the champion, or the base model) for its
    extraction, `window` lines at a time; with `tiers="slm+llm"`, an escalation goes on to the
    running LLM tier. As the `operator` identity, which may ask but not command."""
    connection = await connect(nats_url, identity=OPERATOR)
    targets = await serving_models(RegistryApi(connection, acting_as(OPERATOR)), model)
    batch = f"{int(time.time() * 1000):x}"
    router = router_for(domain, engine_settings)

    async def one(line: InputLine, task: ExtractTask) -> dict[str, Any]:
        result = await ask(connection, task.domain, task, timeout_s)
        if isinstance(result, NeedsEscalation) and tiers == "slm+llm":
            resolved = await ask(connection, "llm", resolve_task_for(task, result), timeout_s)
            return result_row(line.id, resolved, result)
        return result_row(line.id, result, None)

    pending: set[asyncio.Task[dict[str, Any]]] = set()
    try:
        for index, line in enumerate(read_lines(path)):
            if not isinstance(line, InputLine):
                yield line
                continue
            for chosen in domains_for(line.text, domain, router):
                task = task_for(batch, index, line, chosen, reference_date)
                task = task.model_copy(update={"model_id": targets[chosen]})
                pending.add(asyncio.create_task(one(line, task)))
                while len(pending) >= window:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for finished in done:
                        yield finished.result()
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                yield finished.result()
    finally:
        for unfinished in pending:
            unfinished.cancel()
        await connection.close()


def run_extract(rows: AsyncIterator[dict[str, Any]], output: Path) -> dict[str, int]:
    """Drain `rows` into `output` (JSONL); returns a count per status."""

    async def drain() -> dict[str, int]:
        counts: dict[str, int] = {}
        with output.open("w") as handle:
            async for row in rows:
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    return asyncio.run(drain())
