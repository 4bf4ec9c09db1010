"""The LLM worker's logic: one command in, one typed reply out, and the records of the model
calls behind it. Never imports NATS.

The tier's strategy lives in `skiff_extraction.resolver` (a library, so `skiff extract
--local` runs the very same code in-process); this module decides what the worker accepts
and what it logs: one `CallRecord` per candidate the resolver checked (each a model call,
with its own validity and reason), and for work no micro-SLM covers one `no_model` record per
kind of work, so the conversion loop finds the work that has no model yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skiff_contracts.messages import (
    AnyTask,
    Failed,
    ResolveTask,
    RouteAnswer,
    RouteQuery,
    WorkerReply,
    parts_of,
)
from skiff_contracts.problems import Problem
from skiff_contracts.registry import CallRecord
from skiff_extraction.llm_routing import ROUTE_PROMPT_VERSION, decide_route
from skiff_extraction.pricing import price
from skiff_extraction.resolver import Resolver
from skiff_flywheel.call_records import (
    candidate_records,
    route_record,
    tier_model_id,
    unsupported_records,
)


@dataclass(frozen=True)
class Routed:
    """A routing decision, and the record of the model call behind it (redacted)."""

    answer: RouteAnswer
    record: CallRecord


@dataclass(frozen=True)
class Handled:
    """A command's reply, and the call records to log for it (redacted)."""

    reply: WorkerReply
    records: tuple[CallRecord, ...] = field(default=())


@dataclass
class LlmWorker:
    resolver: Resolver

    @property
    def model_id(self) -> str:
        """What the call log names the tier's model: `llm/<name>@<version>`."""
        return tier_model_id(self.resolver.identity.name, self.resolver.identity.version)

    async def handle(self, task: AnyTask) -> Handled:
        """Resolve escalations; anything else on the LLM subject is a routing bug: refuse it."""
        if not isinstance(task, ResolveTask):
            return Handled(
                Failed(
                    trip_id=task.trip_id,
                    step=task.step,
                    domain=task.domain,
                    reason="wrong_task",
                    errors=(
                        Problem(
                            code="wrong_task",
                            message=f"the LLM worker only resolves escalations, got {task.kind}",
                        ),
                    ),
                )
            )
        resolution = await self.resolver.settle(task)
        if task.domain is None:
            return Handled(resolution.reply, tuple(unsupported_records(task, self.model_id)))
        parts = (*parts_of(task), resolution.context) if resolution.context else parts_of(task)
        records = candidate_records(
            task,
            resolution.candidates,
            parts,
            self.model_id,
            prompt_version=self.resolver.prompt_version,
        )
        return Handled(resolution.reply, tuple(records))

    async def route(self, query: RouteQuery) -> Routed:
        """Decide a route the router was unsure of; the answer is checked against the labels."""
        decision = await decide_route(self.resolver.engine, query)
        generation, answer = decision.generation, decision.answer
        tokens = (generation.tokens_in, generation.tokens_out) if generation else (0, 0)
        record = route_record(
            record_id=f"{query.trip_id}:route:{query.attempt}:llm", model_id=self.model_id,
            tier="llm",
            trip_id=query.trip_id, text=query.text, labels=(*answer.domains, *answer.unsupported),
            decided=answer.decided, latency_ms=generation.latency_ms if generation else 0.0,
            tokens=tokens, cost_usd=price(self.resolver.engine.model, *tokens),
            prompt_version=ROUTE_PROMPT_VERSION, errors=answer.errors,
        )  # fmt: skip
        return Routed(answer, record)
