"""`skiff calibrate`: choose a model version's confidence threshold from labelled data.

Runs the version the registry card describes (its adapter, its prompt) with no threshold on
every record of the domain in an SGD-format file (`text`, `gold_norm[domain]` and, where a
record has one, its `reference_date`), then sweeps thresholds
(`skiff_extraction.calibration`): the share the SLM keeps and the slot accuracy of what it
keeps. The chosen threshold is the lowest that reaches the target accuracy; it is written to
the card (`SetThreshold`), its only home, and the workers serving the version apply it at
their next heartbeat.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from skiff_cli.registry_cli import RegistryApi, RegistryRefused, RegistryUnavailable
from skiff_contracts.domains import Domain
from skiff_contracts.messages import Extracted, ExtractTask
from skiff_contracts.registry import Ack, ListModels, ModelCard, ModelList, SetThreshold
from skiff_contracts.registry import Calibration as CardCalibration
from skiff_extraction.calibration import (
    DEFAULT_THRESHOLDS,
    Outcome,
    ThresholdRow,
    choose,
    sweep,
)
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_flywheel.artifacts import adapter_path
from skiff_inference.factory import EngineSettings, build_engine


@dataclass(frozen=True)
class Calibration:
    domain: Domain
    model: str
    version: str
    target_accuracy: float
    rows: list[ThresholdRow]
    chosen: ThresholdRow | None
    seconds: float

    def report(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "model": self.model,
            "version": self.version,
            "target_accuracy": self.target_accuracy,
            "chosen_threshold": self.chosen.threshold if self.chosen else None,
            "rows": [row.as_dict() for row in self.rows],
            "seconds": round(self.seconds, 1),
        }


def labelled(path: Path, domain: Domain, limit: int | None) -> Iterator[dict[str, Any]]:
    """Records of `path` whose gold covers `domain` (at most `limit`)."""
    taken = 0
    with path.open() as handle:
        for raw in handle:
            if not raw.strip():
                continue
            record = json.loads(raw)
            if domain not in record.get("gold_norm", {}):
                continue
            yield record
            taken += 1
            if limit is not None and taken >= limit:
                return


async def outcomes(
    path: Path,
    domain: Domain,
    reference_date: date,
    engine_settings: EngineSettings,
    card: ModelCard,
    limit: int | None = None,
) -> list[Outcome]:
    """The card's model (no threshold) on every labelled record of the domain."""
    engine = build_engine(engine_settings)
    adapter = None
    if card.adapter is not None:
        adapter = card.adapter_name
        await engine.load_adapter(adapter, adapter_path(card, engine_settings.kind))
    extractor = Extractor(
        engine, domain, ModelIdentity(name=card.name, version=card.version),
        confidence_threshold=None, prompt_version=card.prompt_version, adapter=adapter,
    )  # fmt: skip
    found: list[Outcome] = []
    try:
        for index, record in enumerate(labelled(path, domain, limit)):
            today = record.get("reference_date")
            task = ExtractTask(
                trip_id=f"calibrate-{index}", step=f"{domain}.extract", domain=domain,
                text=record["text"],
                reference_date=date.fromisoformat(today) if today else reference_date,
            )  # fmt: skip
            result = await extractor.extract(task)
            gold = record["gold_norm"][domain]
            if isinstance(result, Extracted):
                params = result.params.model_dump(mode="json", exclude={"domain"})
                found.append(Outcome(params, result.confidence, gold))
            else:
                found.append(Outcome(None, None, gold))
    finally:
        await engine.aclose()
    return found


async def calibrate(
    path: Path,
    domain: Domain,
    reference_date: date,
    engine_settings: EngineSettings,
    card: ModelCard,
    target_accuracy: float,
    limit: int | None = None,
) -> Calibration:
    started = time.monotonic()
    found = await outcomes(path, domain, reference_date, engine_settings, card, limit)
    rows = sweep(domain, found, DEFAULT_THRESHOLDS)
    return Calibration(
        domain, card.model_id, card.version, target_accuracy, rows,
        choose(rows, target_accuracy), time.monotonic() - started,
    )  # fmt: skip


def card_calibration(calibration: Calibration, source: Path) -> CardCalibration:
    """What the registry card records: the chosen threshold (None: none reached the target,
    so the version keeps no threshold) and the evidence for it (the registry adds who set it)."""
    chosen = calibration.chosen
    return CardCalibration(
        threshold=chosen.threshold if chosen else None,
        target_accuracy=calibration.target_accuracy,
        kept_share=round(chosen.kept_share, 4) if chosen else None,
        kept_accuracy=round(chosen.kept_accuracy or 0.0, 4) if chosen else None,
        records=calibration.rows[0].records if calibration.rows else 0,
        data=source.name,
    )


def table(calibration: Calibration) -> str:
    """The sweep as a readable table, the chosen row marked."""
    lines = [
        f"{calibration.domain}: {calibration.model}@{calibration.version}, "
        f"{calibration.rows[0].records if calibration.rows else 0} records, "
        f"target kept accuracy {calibration.target_accuracy:.2f}",
        "",
        "threshold  kept  kept share  kept slot accuracy",
    ]
    for row in calibration.rows:
        accuracy = "—" if row.kept_accuracy is None else f"{row.kept_accuracy:.3f}"
        mark = "  ← chosen" if row is calibration.chosen else ""
        lines.append(
            f"{row.threshold:9.2f}  {row.kept:4d}  {row.kept_share:10.3f}  {accuracy:>18}{mark}"
        )
    return "\n".join(lines)


async def registry_card(url: str, task: str, model: str | None) -> ModelCard | None:
    """The card of `model` (any name `skiff registry` takes), or of the task's champion."""
    async with await RegistryApi.connect(url) as api:
        listed = await api.ask(ListModels(task=task))
        if not isinstance(listed, ModelList):
            raise RegistryUnavailable(f"the registry did not list {task}: {listed!r}")
        if model is None:
            wanted = next((a.champion for a in listed.aliases if a.task == task), None)
        else:
            wanted = await api.resolve(model)
        return next((v.card for v in listed.models if v.card.model_id == wanted), None)


async def set_threshold(url: str, model_id: str, calibration: CardCalibration) -> ModelCard:
    async with await RegistryApi.connect(url) as api:
        reply = await api.ask(SetThreshold(model_id=model_id, calibration=calibration))
    if not isinstance(reply, Ack) or reply.card is None:
        raise RegistryRefused(f"the registry refused the threshold for {model_id}: {reply!r}")
    return reply.card
