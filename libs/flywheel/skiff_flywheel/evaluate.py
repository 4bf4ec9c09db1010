"""S6 offline evaluation: a candidate against the incumbent on a dataset's eval split.

Both run in one process on one engine, side by side (each example goes to both, in
alternating order, so the machine's noise falls on both alike), through the worker's own
`Extractor`: the same prompt versions, grounding, rules and checks as live traffic. A
contender is the base model with its prompt, or base + an adapter directory (checked and
loaded like a worker loads it). Figures per contender:

* `slot_accuracy`: every example scored, an escalated one counting as nothing extracted
  (the SLM alone); `kept_accuracy`: over what it extracted; `invented_rate`; the
  `exact_record_rate`;
* `valid_rate` (extracted ÷ examples), `escalation_rate` and `escalation.<reason>`;
* `slot.<name>`: the accuracy on each slot the gold gives (where the errors are);
* `p50_ms` / `p95_ms` per step (wall time of the whole check, model call included), mean
  tokens in and out;
* the confidence threshold reaching `target_accuracy` on what is kept, and the share kept
  at it: chosen on one half of the examples and measured on the other (two folds by a hash
  of the example id, then both halves added up), so the share is not measured on the
  examples that chose it. `threshold` is the one chosen on all of them, for the model card.

Gold: an example's accepted params, scored by `skiff_extraction.scoring` (the `make eval`
scorer); the values as written (`spans`) count as variants of free-text slots.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skiff_contracts import subjects
from skiff_contracts.base import utc_now
from skiff_contracts.domains import Domain
from skiff_contracts.messages import Extracted, ExtractTask
from skiff_extraction.calibration import Outcome, choose, sweep
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.scoring import DERIVED_FIELDS, SlotScore
from skiff_flywheel.artifacts import GGUF_FILE, MANIFEST, file_sha256, verify
from skiff_flywheel.dataset import Example
from skiff_inference.engine import Engine

DEFAULT_TARGET_ACCURACY = 0.8
FALLBACK_REFERENCE_DATE = date(2019, 3, 1)  # examples without their own "today"


@dataclass(frozen=True)
class Contender:
    """One side of the comparison: the base model with a prompt, or base + an adapter."""

    label: str
    prompt_version: str
    adapter_dir: Path | None = None
    model_id: str | None = None

    def describe(self) -> dict[str, Any]:
        """What was evaluated, so a registration can tell whether it is the champion."""
        adapter_sha = file_sha256(self.adapter_dir / MANIFEST) if self.adapter_dir else None
        return {
            "label": self.label,
            "model_id": self.model_id,
            "prompt_version": self.prompt_version,
            "adapter": str(self.adapter_dir) if self.adapter_dir else None,
            "adapter_sha256": adapter_sha,
        }


@dataclass
class _Run:
    extractor: Extractor
    outcomes: list[Outcome] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    tokens_in: list[int] = field(default_factory=list)
    tokens_out: list[int] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    score: SlotScore = field(default_factory=SlotScore)
    kept_score: SlotScore = field(default_factory=SlotScore)


def gold_of(example: Example) -> dict[str, dict[str, Any]]:
    """The example's accepted params in the scorer's gold form."""
    gold = {}
    for slot, value in example.params.items():
        if value is None or slot in DERIVED_FIELDS:
            continue
        span = example.spans.get(slot)
        gold[slot] = {
            "canonical": value,
            "value": span or value,
            "variants": [span] if span else [],
        }
    return gold


def _task(domain: Domain, example: Example, n: int) -> ExtractTask:
    trip = f"eval-{n}"
    return ExtractTask(
        message_id=subjects.command_id(trip, f"{domain}.extract", 1), trip_id=trip,
        step=f"{domain}.extract", domain=domain, text=example.text,
        reference_date=example.reference_date or FALLBACK_REFERENCE_DATE,
    )  # fmt: skip


async def _extractor(engine: Engine, domain: Domain, contender: Contender) -> Extractor:
    adapter = None
    if contender.adapter_dir is not None:
        verify(contender.adapter_dir, file_sha256(contender.adapter_dir / MANIFEST))
        adapter = f"eval-{contender.label}"
        await engine.load_adapter(adapter, contender.adapter_dir / GGUF_FILE)
    return Extractor(
        engine=engine, domain=domain,
        identity=ModelIdentity(name=contender.label, version=contender.prompt_version),
        prompt_version=contender.prompt_version, adapter=adapter,
    )  # fmt: skip


def _fold(example_id: str) -> int:
    return hashlib.sha256(example_id.encode()).digest()[0] % 2


def cross_fitted(
    domain: Domain, outcomes: Sequence[Outcome], ids: Sequence[str], target: float
) -> tuple[float, float | None]:
    """Share kept, and its accuracy, with each half's threshold chosen on the other half."""
    kept_score = SlotScore()
    kept = 0
    for fold in (0, 1):
        choose_on = [o for o, i in zip(outcomes, ids, strict=True) if _fold(i) != fold]
        measure_on = [o for o, i in zip(outcomes, ids, strict=True) if _fold(i) == fold]
        chosen = choose(sweep(domain, choose_on), target)
        if chosen is None:
            continue  # no threshold reaches the target there: that half keeps nothing
        for outcome in measure_on:
            if outcome.kept_at(chosen.threshold):
                kept += 1
                kept_score.add(domain, outcome.params, outcome.gold)
    share = kept / len(outcomes) if outcomes else 0.0
    return share, (kept_score.accuracy if kept_score.gold_slots else None)


def _figures(domain: Domain, run: _Run, target: float) -> dict[str, float]:
    records = len(run.outcomes)
    extracted = sum(o.params is not None for o in run.outcomes)
    metrics: dict[str, float] = {
        "records": float(records),
        "slot_accuracy": round(run.score.accuracy, 4),
        "kept_accuracy": round(run.kept_score.accuracy, 4),
        "invented_rate": round(run.score.invented_rate, 4),
        "exact_record_rate": round(run.score.exact_records / records, 4) if records else 0.0,
        "valid_rate": round(extracted / records, 4) if records else 0.0,
        "escalation_rate": round(1 - extracted / records, 4) if records else 0.0,
        "p50_ms": round(statistics.median(run.latencies), 1) if run.latencies else 0.0,
        "p95_ms": round(_p95(run.latencies), 1) if run.latencies else 0.0,
        "tokens_in_mean": round(statistics.fmean(run.tokens_in), 1) if run.tokens_in else 0.0,
        "tokens_out_mean": round(statistics.fmean(run.tokens_out), 1) if run.tokens_out else 0.0,
    }
    for reason, n in sorted(run.reasons.items()):
        metrics[f"escalation.{reason}"] = round(n / records, 4)
    for slot, (right, total) in sorted(run.score.per_slot.items()):
        metrics[f"slot.{slot}"] = round(right / total, 4)
    chosen = choose(sweep(domain, run.outcomes), target)
    if chosen is not None:
        metrics["threshold"] = chosen.threshold
    share, accuracy = cross_fitted(domain, run.outcomes, run.ids, target)
    metrics["kept_share_at_threshold"] = round(share, 4)
    if accuracy is not None:
        metrics["kept_accuracy_at_threshold"] = round(accuracy, 4)
    return metrics


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def evaluate(
    engine: Engine,
    domain: Domain,
    examples: Sequence[Example],
    contenders: Sequence[Contender],
    *,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Each contender's figures (by label) on `examples`."""
    runs = {c.label: _Run(await _extractor(engine, domain, c)) for c in contenders}
    labels = list(runs)
    for n, example in enumerate(examples):
        gold = gold_of(example)
        order = labels if n % 2 == 0 else labels[::-1]
        for label in order:
            run = runs[label]
            started = time.perf_counter()
            reply = await run.extractor.extract(_task(domain, example, n))
            run.latencies.append((time.perf_counter() - started) * 1000.0)
            if reply.call is not None:
                run.tokens_in.append(reply.call.tokens_in)
                run.tokens_out.append(reply.call.tokens_out)
            params = reply.params.model_dump(mode="json") if isinstance(reply, Extracted) else None
            if not isinstance(reply, Extracted):
                run.reasons[reply.reason] += 1
            confidence = reply.confidence if isinstance(reply, Extracted) else None
            run.outcomes.append(Outcome(params, confidence, gold))
            run.ids.append(example.example_id)
            run.score.add(domain, params, gold)
            if params is not None:
                run.kept_score.add(domain, params, gold)
        if progress is not None:
            progress(n + 1, len(examples))
    return {label: _figures(domain, run, target_accuracy) for label, run in runs.items()}


class EvaluationReport(BaseModel):
    """What `skiff flywheel evaluate` writes: both contenders and their figures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    dataset_id: str = Field(description="'<task>@<dataset version>'")
    dataset_sha256: str
    eval_sha256: str | None = Field(
        default=None, description="split_sha256 of the examples evaluated: the same dev set"
    )
    split: str = "eval"
    examples: int
    target_accuracy: float
    contenders: dict[str, dict[str, Any]] = Field(description="by label: what was evaluated")
    metrics: dict[str, dict[str, float]] = Field(description="by label: its figures")
    duration_s: float
    machine: dict[str, Any] = Field(default_factory=dict)
    evaluated_at: datetime = Field(default_factory=utc_now)
