"""The extraction pipeline: request text → model draft → grounded request, or a typed escalation.

Every check a value must pass lives here, in this order: the engine answered; the answer is
JSON; it fits the draft schema; the text supports each value and the values sit where the
text puts them; its places ground and its dates and numbers (and the counts the text states)
obey the business rules; the model was confident enough. A value that failed any check is
never returned as `Extracted`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from skiff_contracts.domains import DRAFTS, Domain
from skiff_contracts.messages import Extracted, ExtractTask, ModelCall, NeedsEscalation, Tier
from skiff_contracts.problems import EscalationReason, Problem, validation_problems
from skiff_extraction.confidence import value_confidence
from skiff_extraction.evidence import (
    completed_dates,
    completed_places,
    reassigned_roles,
    unsupported_fields,
    without,
)
from skiff_extraction.pricing import ModelPrice, price
from skiff_extraction.prompts import PROMPT_VERSION, extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_extraction.stated import (
    count_problems,
    placed_dates,
    stated_party,
    withdrawn_fields,
)
from skiff_inference.engine import ChatMessage, Engine, EngineError, Generation
from skiff_travel.rules import Rejection, ground_draft, with_problems

MAX_OUTPUT_TOKENS = 160


@dataclass(frozen=True)
class ModelIdentity:
    """What the registry calls this model: name and version, recorded on every call."""

    name: str
    version: str
    tier: Tier = "slm"
    priced_as: str | None = None  # the price-table id, when not `name` (an adapter's base)


@dataclass
class Extractor:
    """One domain's extraction on one engine. Holds no per-request state."""

    engine: Engine
    domain: Domain
    identity: ModelIdentity
    confidence_threshold: float | None = None
    max_tokens: int = MAX_OUTPUT_TOKENS
    prompt_version: str = field(default=PROMPT_VERSION)
    adapter: str | None = None  # the engine's name of a LoRA adapter to apply, if any
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @property
    def schema(self) -> dict[str, Any]:
        return decoding_schema(DRAFTS[self.domain])

    async def warm_up(self) -> None:
        """Pay grammar compilation and prefix evaluation at start-up, not on the first trip."""
        messages = self.messages("I need to travel next week.")
        if self.adapter is None:
            await self.engine.warm_up(messages, self.schema)
        else:  # the adapter's own first-call costs and prompt prefix
            await self.engine.generate_json(
                messages, self.schema, adapter=self.adapter, max_tokens=2
            )

    def _call(self, generation: Generation) -> ModelCall:
        return ModelCall(
            tier=self.identity.tier,
            engine=generation.engine,
            model=self.identity.name,
            version=self.identity.version,
            adapter=generation.adapter,
            tokens_in=generation.tokens_in,
            tokens_out=generation.tokens_out,
            latency_ms=generation.latency_ms,
            cost_usd=price(
                self.identity.priced_as or self.identity.name,
                generation.tokens_in,
                generation.tokens_out,
                self.prices,
            ),
        )

    def _escalate(
        self,
        task: ExtractTask,
        reason: EscalationReason,
        errors: tuple[Problem, ...],
        attempt: dict[str, Any] | None = None,
        call: ModelCall | None = None,
    ) -> NeedsEscalation:
        return NeedsEscalation(
            trip_id=task.trip_id,
            step=task.step,
            domain=self.domain,
            reason=reason,
            attempt=attempt,
            errors=errors,
            call=call,
        )

    def messages(self, text: str, extra_turns: Sequence[ChatMessage] = ()) -> list[ChatMessage]:
        """The prompt for `text`: the domain's fixed prefix, `extra_turns`, then the text."""
        return extraction_messages(
            self.domain, text, extra_turns, prompt_version=self.prompt_version
        )

    async def extract(
        self,
        task: ExtractTask,
        extra_turns: Sequence[ChatMessage] = (),
        *,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Extracted | NeedsEscalation:
        """Run the model on the task's text and check everything it says."""
        try:
            generation = await self.engine.generate_json(
                self.messages(task.text, extra_turns),
                self.schema,
                adapter=self.adapter,
                max_tokens=self.max_tokens,
                temperature=temperature,
                seed=seed,
            )
        except EngineError as error:
            problem = Problem(code="engine_error", message=str(error))
            return self._escalate(task, "engine_error", (problem,))
        return self.check(task, generation)

    def check(self, task: ExtractTask, generation: Generation) -> Extracted | NeedsEscalation:
        """Every check on one generation for `task`: what `extract` does after the model call.

        Public so another tier (the LLM worker) can call the engine its own way (retries,
        several candidates) and still apply exactly this validation.
        """
        call = self._call(generation)
        if not isinstance(generation.value, dict):
            problem = Problem(code="invalid_json", message=generation.json_error or "not an object")
            return self._escalate(task, "schema_invalid", (problem,), {"raw": generation.raw}, call)
        try:
            draft = DRAFTS[self.domain].model_validate(generation.value)
        except ValidationError as error:
            return self._escalate(
                task, "schema_invalid", validation_problems(error, "schema"), generation.value, call
            )
        attempt = draft.model_dump(mode="json")
        dropped = unsupported_fields(draft, task.text)
        dropped += tuple(f for f in withdrawn_fields(draft, task.text) if f not in dropped)
        checked = completed_places(completed_dates(without(draft, dropped), task.text), task.text)
        checked = stated_party(reassigned_roles(checked, task.text), task.text)
        checked, misplaced = placed_dates(checked, task.text)
        # What the text states is checked whatever the draft holds (a count out of range).
        stated = (*misplaced, *count_problems(checked, task.text))
        outcome = with_problems(ground_draft(checked, task.reference_date), stated)
        if isinstance(outcome, Rejection):
            return self._escalate(task, outcome.reason, outcome.problems, attempt, call)
        confidence = value_confidence(generation.raw, generation.token_logprobs)
        overall = confidence.overall if confidence else None
        threshold = self.confidence_threshold
        if threshold is not None and overall is not None and overall < threshold:
            problem = Problem(
                code="low_confidence",
                message=f"confidence {overall:.3f} is below the threshold {threshold:.3f}",
            )
            return self._escalate(task, "low_confidence", (problem,), attempt, call)
        return Extracted(
            trip_id=task.trip_id,
            step=task.step,
            domain=self.domain,
            params=outcome,
            confidence=overall,
            field_confidence=confidence.fields if confidence else {},
            dropped_fields=dropped,
            call=call,
            draft=checked.model_dump(mode="json"),  # what grounded: the training target
        )
