"""`skiff extract`: batch extraction from JSONL, in-process (`--local`) or through the workers.

Input lines need `id` and `text` (other fields are ignored). One output line per input and
domain: `id`, `domain`, `status` (extracted / needs_escalation / error), `params`, `reason`,
`model`, `latency_ms`, `tokens_in`, `tokens_out`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.messages import (
    WORKER_RESULT,
    Extracted,
    ExtractTask,
    Failed,
    NeedsEscalation,
)
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.router import Router, load_router
from skiff_inference.factory import EngineSettings, build_engine

DomainChoice = Literal["flights", "hotels", "cars", "insurance", "auto"]


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
        "id": line_id, "domain": domain, "status": "error", "params": None, "reason": reason,
        "model": None, "latency_ms": None, "tokens_in": None, "tokens_out": None,
    }  # fmt: skip


def result_row(line_id: str, result: Extracted | NeedsEscalation | Failed) -> dict[str, Any]:
    call = getattr(result, "call", None)
    row: dict[str, Any] = {
        "id": line_id,
        "domain": result.domain,
        "status": {"extracted": "extracted", "needs_escalation": "needs_escalation"}.get(
            result.kind, "error"
        ),
        "params": None,
        "reason": None if isinstance(result, Extracted) else result.reason,
        "model": f"{call.model}@{call.version}" if call else None,
        "latency_ms": round(call.latency_ms, 1) if call else None,
        "tokens_in": call.tokens_in if call else None,
        "tokens_out": call.tokens_out if call else None,
    }
    if isinstance(result, Extracted):
        row["params"] = result.params.model_dump(mode="json", exclude={"domain"})
        row["confidence"] = result.confidence
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
    return load_router(engine.model_path, engine.threads) if choice == "auto" else None


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


async def extract_local(
    path: Path, domain: DomainChoice, reference_date: date, engine_settings: EngineSettings
) -> AsyncIterator[dict[str, Any]]:
    """The worker's extraction pipeline, in this process, one line at a time."""
    engine = build_engine(engine_settings)
    identity = ModelIdentity(name=engine.model, version="local")
    extractors = {d: Extractor(engine, d, identity) for d in DOMAINS}
    router = router_for(domain, engine_settings)
    try:
        for index, line in enumerate(read_lines(path)):
            if not isinstance(line, InputLine):
                yield line
                continue
            domains = domains_for(line.text, domain, router)
            for chosen in domains:
                task = task_for("local", index, line, chosen, reference_date)
                yield result_row(line.id, await extractors[chosen].extract(task))
    finally:
        await engine.aclose()


async def extract_over_nats(
    path: Path,
    domain: DomainChoice,
    reference_date: date,
    nats_url: str,
    engine_settings: EngineSettings,
    timeout_s: float = 300.0,
    window: int = 16,
) -> AsyncIterator[dict[str, Any]]:
    """Publish each line as a command to the running workers and collect their replies."""
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    batch = f"{int(time.time() * 1000):x}"
    router = router_for(domain, engine_settings)
    results = await js.subscribe(
        subjects.RESULTS_ALL,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    pending: dict[tuple[str, str | None], InputLine] = {}

    async def collect_one() -> dict[str, Any]:
        while True:
            message = await results.next_msg(timeout=timeout_s)
            result = WORKER_RESULT.validate_json(message.data)
            line = pending.pop((result.trip_id, result.domain), None)
            if line is not None and isinstance(result, Extracted | NeedsEscalation | Failed):
                return result_row(line.id, result)

    try:
        for index, line in enumerate(read_lines(path)):
            if not isinstance(line, InputLine):
                yield line
                continue
            domains = domains_for(line.text, domain, router)
            for chosen in domains:
                task = task_for(batch, index, line, chosen, reference_date)
                pending[(task.trip_id, chosen)] = line
                await js.publish(
                    subjects.task(chosen, "extract"),
                    task.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": task.message_id},
                )
                while len(pending) >= window:
                    yield await collect_one()
        while pending:
            yield await collect_one()
    finally:
        await results.unsubscribe()
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
