"""S6 registration: a trained adapter and its evaluation become a candidate model card.

The card names the adapter directory and the sha256 of its manifest (see `artifacts`), the
prompt version it was trained on, the confidence threshold its evaluation chose, and the
evaluation itself. The evaluation's baseline is recorded as `baseline_model` only when it
*is* the task's current champion (same adapter, or both none, and the same prompt): the
registry's automatic rollout compares against the champion of the day, and an evaluation
against anything else waits for a fresh one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skiff_contracts.registry import Evaluation, ModelCard, RolloutMode
from skiff_extraction.cards import extraction_card
from skiff_flywheel.artifacts import MANIFEST, file_sha256, verify
from skiff_flywheel.curate import domain_of
from skiff_flywheel.evaluate import EvaluationReport

BASELINE, CANDIDATE = "baseline", "candidate"


class RegistrationError(Exception):
    """The adapter or the evaluation cannot make a card (mismatched, missing, unverifiable)."""


def is_champion(contender: dict[str, Any], champion: ModelCard | None) -> bool:
    """Whether an evaluated contender is the given champion."""
    return (
        champion is not None
        and contender.get("adapter_sha256") == champion.adapter_sha256
        and contender.get("prompt_version") == champion.prompt_version
    )


def evaluation_of(report: EvaluationReport, champion: ModelCard | None) -> Evaluation:
    baseline = report.contenders.get(BASELINE, {})
    return Evaluation(
        dataset_id=report.dataset_id,
        metrics=report.metrics[CANDIDATE],
        evaluated_at=report.evaluated_at,
        baseline_model=champion.model_id if champion and is_champion(baseline, champion) else None,
        baseline_metrics=report.metrics.get(BASELINE, {}),
    )


def adapter_card(
    adapter_dir: Path,
    report: EvaluationReport,
    *,
    name: str,
    version: str,
    base_model: str,
    engine: str,
    owner: str,
    rollout: RolloutMode,
    champion: ModelCard | None,
) -> tuple[ModelCard, dict[str, Any]]:
    """The candidate's card and output schema, checked against what was evaluated."""
    manifest_sha = file_sha256(adapter_dir / MANIFEST)
    verify(adapter_dir, manifest_sha)
    evaluated = report.contenders.get(CANDIDATE, {})
    if evaluated.get("adapter_sha256") != manifest_sha:
        raise RegistrationError(f"the evaluation was not of the adapter in {adapter_dir}")
    manifest = json.loads((adapter_dir / MANIFEST).read_text("utf-8"))
    if manifest.get("task") != report.task:
        raise RegistrationError(f"{adapter_dir} was trained for {manifest.get('task')!r}")
    threshold = report.metrics[CANDIDATE].get("threshold")
    return extraction_card(
        domain_of(report.task), name=name, version=version, base_model=base_model,
        engine=engine, owner=owner, threshold=threshold,
        prompt_version=str(evaluated["prompt_version"]), adapter=str(adapter_dir.resolve()),
        adapter_sha256=manifest_sha, evaluations=(evaluation_of(report, champion),),
        rollout=rollout,
    )  # fmt: skip
