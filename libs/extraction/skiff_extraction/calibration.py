"""Confidence thresholds: what share the SLM keeps at each threshold, how right it is, and
where the chosen threshold is stored with the model.

`sweep` takes the SLM's outcome on labelled records (extracted with a confidence, or
escalated) and, for each threshold t, reports the share the SLM would keep (extracted with
confidence ≥ t) and the slot accuracy of what it kept (`scoring.SlotScore` over the kept
records only). `choose` picks the lowest threshold whose kept accuracy reaches the target:
the one that keeps the most work on the SLM at that quality. When no threshold reaches it
`choose` returns None, and nothing is stored — a model that cannot meet the target at any
threshold needs a better model (or a lower target), not a guess.

A chosen threshold lives on the model version's registry card (`SetThreshold`, sent by
`skiff calibrate`; a shipped adapter's card carries the one `make models` chose on the dev
split), which the workers serving the version read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skiff_contracts.domains import Domain
from skiff_extraction.scoring import SlotScore

BUNDLED_MODEL_NAME = "smollm2-135m-instruct"
BUNDLED_MODEL_VERSION = "base-q4_1"
DEFAULT_THRESHOLDS = tuple(round(i * 0.05, 2) for i in range(21))  # 0.00, 0.05, …, 1.00


@dataclass(frozen=True)
class Outcome:
    """The SLM on one labelled record: its params and confidence when it extracted."""

    params: Mapping[str, Any] | None  # None: the SLM escalated, nothing to keep
    confidence: float | None
    gold: Mapping[str, Any]

    def kept_at(self, threshold: float) -> bool:
        """Kept by the SLM at `threshold`. A missing confidence passes only a zero threshold."""
        if self.params is None:
            return False
        return (self.confidence if self.confidence is not None else 0.0) >= threshold


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    records: int
    kept: int
    kept_accuracy: float | None  # None when nothing with gold slots is kept
    kept_gold_slots: int

    @property
    def kept_share(self) -> float:
        return self.kept / self.records if self.records else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "records": self.records,
            "kept": self.kept,
            "kept_share": round(self.kept_share, 4),
            "kept_accuracy": None if self.kept_accuracy is None else round(self.kept_accuracy, 4),
            "kept_gold_slots": self.kept_gold_slots,
        }


def sweep(
    domain: Domain, outcomes: Sequence[Outcome], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[ThresholdRow]:
    """Kept share and kept slot accuracy at every threshold."""
    rows = []
    for threshold in thresholds:
        score = SlotScore()
        kept = [o for o in outcomes if o.kept_at(threshold)]
        for outcome in kept:
            score.add(domain, outcome.params, outcome.gold)
        accuracy = score.accuracy if score.gold_slots else None
        rows.append(ThresholdRow(threshold, len(outcomes), len(kept), accuracy, score.gold_slots))
    return rows


def choose(rows: Sequence[ThresholdRow], target_accuracy: float) -> ThresholdRow | None:
    """The lowest threshold whose kept accuracy reaches the target (None: none does)."""
    for row in sorted(rows, key=lambda r: r.threshold):
        if row.kept and row.kept_accuracy is not None and row.kept_accuracy >= target_accuracy:
            return row
    return None
