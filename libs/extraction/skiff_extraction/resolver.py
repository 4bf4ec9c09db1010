"""The LLM tier's logic: settle a step a micro-SLM could not, or say why nobody can.

For a `ResolveTask` with a domain:

1. The text gains one sentence saying what the trip's other steps know
   (`context.context_sentence`), for the model and for the evidence check alike.
2. The prompt is the domain's fixed prefix, then the `examples_k` solved requests most like
   this one (`examples.ExampleBank`), then the text.
3. Candidates: the first at temperature 0, the rest sampled with fixed seeds. Each goes
   through `Extractor.check`, exactly the SLM's validation. The first that passes every check
   *and* keeps a value for each field the escalation was about wins; `ModelCall.calls` counts
   the candidates tried. A candidate that passes but drops such a field to null loses: the
   user gave that value, and a resolution that forgets it is not one.
4. Transient engine errors are retried (tenacity); one time budget bounds the whole step,
   retries and candidates included.
5. Nothing won: when every problem is the user's to settle (an ambiguous or unknown place, a
   value no candidate could read) the reply is `Clarify` with a question naming it;
   otherwise `NeedsEscalation` with the errors. Out of budget or engine before any candidate
   was checked: `NeedsEscalation(timeout | engine_error)`.

`domain=None` (reason `no_model`): work no micro-SLM covers. It is recorded by the caller
and `Declined` here without a model call: nothing could book it anyway.

`settle` returns the reply with every candidate it was chosen from (one model call each), so
the LLM worker can log each call on its own; `resolve` returns the reply alone.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.messages import (
    MAX_REQUEST_CHARS,
    Clarify,
    Declined,
    Extracted,
    ExtractTask,
    ModelCall,
    NeedsEscalation,
    ResolveTask,
)
from skiff_contracts.problems import EscalationReason, Problem
from skiff_extraction.context import context_sentence, with_context
from skiff_extraction.examples import ExampleBank, example_turns
from skiff_extraction.llm_tier import ResolverSettings
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.pricing import ModelPrice
from skiff_extraction.questions import MISSING_VALUE, clarifiable, question_for
from skiff_inference.engine import ChatMessage, Engine, EngineError, Generation

Reply = Extracted | Clarify | NeedsEscalation | Declined
Outcome = Extracted | NeedsEscalation

_WRITTEN = re.compile(r"""^(['"])(.+?)\1 """)  # the value a grounding problem quotes first


def _transient(error: BaseException) -> bool:
    return isinstance(error, EngineError) and error.transient


def required_fields(task: ResolveTask) -> frozenset[str]:
    """Fields the escalation was about that the user gave a value for (in the failed draft)."""
    attempt = task.attempt or {}
    return frozenset(p.field for p in task.errors if p.field and attempt.get(p.field) is not None)


def _missing(outcome: Extracted, required: frozenset[str]) -> tuple[str, ...]:
    params = outcome.params.model_dump()
    return tuple(sorted(name for name in required if params.get(name) is None))


def _as_written(problem: Problem, attempt: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The draft value a problem is about: quoted in its message, else the attempt's."""
    found = _WRITTEN.match(problem.message)
    values = dict(attempt or {})
    if found and problem.field:
        values[problem.field] = found.group(2)
    return values


def _appended(task: ResolveTask, text: str) -> str | None:
    """What `with_context` added after the task's text (and the space before it), if anything."""
    if text == task.text:
        return None
    return text[len(task.text) + 1 :] or None


def _question(problems: Sequence[Problem], attempt: Mapping[str, Any] | None) -> str | None:
    values: dict[str, Any] = {}
    for problem in problems:
        values.update(_as_written(problem, attempt))
    return question_for(problems, values)


@dataclass(frozen=True)
class Resolution:
    """A step's reply, and the candidates behind it: one checked model call each, in order.

    `text` is what every candidate was read from and checked against: the task's text, then
    `context` (what the trip's other steps know, as appended) when there was any; None when
    no model ran.
    """

    reply: Reply
    candidates: tuple[Outcome, ...] = ()
    text: str | None = None
    context: str | None = None


@dataclass
class Resolver:
    """The LLM tier on one engine. Holds no per-request state."""

    engine: Engine
    identity: ModelIdentity
    settings: ResolverSettings = field(default_factory=ResolverSettings)
    bank: ExampleBank | None = None
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._extractors = {
            domain: Extractor(
                self.engine,
                domain,
                self.identity,
                confidence_threshold=self.settings.confidence_threshold,
                max_tokens=self.settings.max_tokens,
                prices=self.prices,
            )
            for domain in DOMAINS
        }

    @property
    def prompt_version(self) -> str:
        """The prompt every candidate is given (each domain's extractor has the same)."""
        return self._extractors["flights"].prompt_version

    async def warm_up(self) -> None:
        """One tiny call: checks URL, key, model and schema at start-up."""
        await self._extractors["flights"].warm_up()

    async def resolve(self, task: ResolveTask) -> Reply:
        """Settle the task, ask the user, or say why neither is possible.

        A domain's `no_model` (no champion registered) is resolved like any escalation: the
        tier does the whole extraction. Work outside every domain (a train) is declined."""
        return (await self.settle(task)).reply

    async def settle(self, task: ResolveTask) -> Resolution:
        """`resolve`, with every candidate the reply was chosen from."""
        if task.domain is None:
            return Resolution(self.decline(task))
        domain = task.domain
        extractor = self._extractors[domain]
        sentence = context_sentence(task.known, domain)
        text = with_context(task.text, sentence, MAX_REQUEST_CHARS)
        request = ExtractTask(
            message_id=task.message_id, trip_id=task.trip_id, step=task.step, domain=domain,
            text=text, reference_date=task.reference_date,
        )  # fmt: skip
        messages = extractor.messages(text, self.prompt_turns(task, domain, text, bool(sentence)))
        required = required_fields(task)
        outcomes: list[Outcome] = []
        stopped: EscalationReason | None = None
        stop_detail = ""
        try:
            async with asyncio.timeout(self.settings.budget_s):
                for index in range(self.settings.candidates):
                    generation = await self._generate(extractor, messages, index)
                    outcome = extractor.check(request, generation)
                    outcomes.append(outcome)
                    if isinstance(outcome, Extracted) and not _missing(outcome, required):
                        # `text`: the planner records what the accepted draft was read from.
                        update = {"call": self._total(outcomes), "text": text if sentence else None}
                        settled = outcome.model_copy(update=update)
                        return Resolution(settled, tuple(outcomes), text, _appended(task, text))
        except TimeoutError:
            stopped = "timeout"
            stop_detail = f"the step's budget of {self.settings.budget_s:g}s ran out"
        except EngineError as error:
            stopped = "engine_error"
            stop_detail = str(error)
        reply = self._unsettled(task, outcomes, required, stopped, stop_detail)
        return Resolution(reply, tuple(outcomes), text, _appended(task, text))

    def prompt_turns(
        self, task: ResolveTask, domain: Domain, text: str, has_context: bool
    ) -> list[ChatMessage]:
        """Retrieved solved examples, then (optionally) what the SLM read and why it failed."""
        turns: list[ChatMessage] = []
        if self.bank is not None:
            found = self.bank.retrieve(
                domain, text, self.settings.examples_k, with_context=has_context
            )
            turns += example_turns(found)
        if self.settings.show_failed_attempt and task.attempt and task.errors:
            problems = "; ".join(p.message for p in task.errors)
            turns.append({
                "role": "system",
                "content": f"A first reading of the next message was {json.dumps(task.attempt)}"
                f" and it failed these checks: {problems}. Read the message again and correct"
                " those values; use null for what the message does not say.",
            })  # fmt: skip
        return turns

    async def _generate(
        self, extractor: Extractor, messages: list[ChatMessage], index: int
    ) -> Generation:
        """Candidate `index`: temperature 0 first, then sampled with a fixed seed each."""
        sampled = index > 0
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(self.settings.engine_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.settings.retry_initial_s,
                max=4.0,
                jitter=self.settings.retry_initial_s / 2,
            ),
            reraise=True,
        ):
            with attempt:
                return await self.engine.generate_json(
                    messages,
                    extractor.schema,
                    max_tokens=extractor.max_tokens,
                    temperature=self.settings.sample_temperature if sampled else 0.0,
                    seed=self.settings.seed + index if sampled else None,
                )
        raise AssertionError("tenacity either returns or re-raises")  # pragma: no cover

    def _total(self, outcomes: Sequence[Outcome]) -> ModelCall | None:
        """One record of every candidate's call: tokens, latency and cost summed."""
        calls = [o.call for o in outcomes if o.call is not None]
        if not calls:
            return None
        return calls[0].model_copy(
            update={
                "tokens_in": sum(c.tokens_in for c in calls),
                "tokens_out": sum(c.tokens_out for c in calls),
                "latency_ms": sum(c.latency_ms for c in calls),
                "cost_usd": sum(c.cost_usd for c in calls),
                "calls": len(calls),
            }
        )

    def _unsettled(
        self,
        task: ResolveTask,
        outcomes: Sequence[Outcome],
        required: frozenset[str],
        stopped: EscalationReason | None,
        stop_detail: str,
    ) -> Clarify | NeedsEscalation:
        domain = task.domain
        assert domain is not None
        call = self._total(outcomes)
        rejected = [o for o in outcomes if isinstance(o, NeedsEscalation)]
        for candidate in rejected:
            if clarifiable(candidate.errors):
                question = _question(candidate.errors, candidate.attempt)
                if question:
                    return self._clarify(task, question, candidate.errors, call)
        passed = [o for o in outcomes if isinstance(o, Extracted)]
        if passed:
            # Every reading that passed lost a value the user gave: ask for it, in the
            # SLM's own terms when those were the user's to settle ("Which Springfield…").
            own = [p for p in task.errors if p.field in _missing(passed[0], required)]
            if own and clarifiable(own) and (question := _question(own, task.attempt)):
                return self._clarify(task, question, tuple(own), call)
            missing = tuple(
                Problem(
                    code=MISSING_VALUE,
                    message=f"the {name.replace('_', ' ')} given could not be read",
                    field=name,
                )
                for name in _missing(passed[0], required)
            )
            question = _question(missing, None)
            assert question is not None
            return self._clarify(task, question, missing, call)
        if rejected:
            best = min(rejected, key=lambda o: len(o.errors))
            return NeedsEscalation(
                trip_id=task.trip_id, step=task.step, domain=domain, reason=best.reason,
                attempt=best.attempt, errors=best.errors, call=call,
            )  # fmt: skip
        reason: EscalationReason = stopped or "engine_error"
        problem = Problem(code=reason, message=stop_detail or "no candidate was produced")
        return NeedsEscalation(
            trip_id=task.trip_id, step=task.step, domain=domain, reason=reason,
            attempt=task.attempt, errors=(problem, *task.errors), call=call,
        )  # fmt: skip

    def _clarify(
        self,
        task: ResolveTask,
        question: str,
        problems: Sequence[Problem],
        call: ModelCall | None,
    ) -> Clarify:
        assert task.domain is not None
        return Clarify(
            trip_id=task.trip_id, step=task.step, domain=task.domain, question=question,
            errors=tuple(problems), call=call,
        )  # fmt: skip

    def decline(self, task: ResolveTask) -> Declined:
        """Work no micro-SLM covers: named in the reply, booked by nobody."""
        asked = ", ".join(task.unsupported) or "this request"
        return Declined(
            trip_id=task.trip_id, step=task.step, domain=task.domain, reason="no_model",
            message=f"Skiff cannot book {asked}: no model covers that work yet. "
            "The request is recorded so that one can be trained for it.",
        )  # fmt: skip
