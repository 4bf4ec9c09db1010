"""`skiff calibrate`: choose a domain's confidence threshold from labelled data.

Runs the SLM pipeline with no threshold on every record of the domain in an SGD-format file
(`text` plus `gold_norm[domain]`), then sweeps thresholds (`skiff_extraction.calibration`):
the share the SLM keeps and the slot accuracy of what it keeps. The chosen threshold is the
lowest that reaches the target accuracy; it is stored under the model's name and version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from skiff_contracts.domains import Domain
from skiff_contracts.messages import Extracted, ExtractTask
from skiff_extraction.calibration import (
    DEFAULT_THRESHOLDS,
    Outcome,
    ThresholdRow,
    choose,
    store_threshold,
    sweep,
)
from skiff_extraction.pipeline import Extractor, ModelIdentity
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
    identity: ModelIdentity,
    limit: int | None = None,
) -> list[Outcome]:
    """The SLM (no threshold) on every labelled record of the domain."""
    engine = build_engine(engine_settings)
    extractor = Extractor(engine, domain, identity, confidence_threshold=None)
    found: list[Outcome] = []
    try:
        for index, record in enumerate(labelled(path, domain, limit)):
            task = ExtractTask(
                trip_id=f"calibrate-{index}", step=f"{domain}.extract", domain=domain,
                text=record["text"], reference_date=reference_date,
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
    identity: ModelIdentity,
    target_accuracy: float,
    limit: int | None = None,
) -> Calibration:
    started = time.monotonic()
    found = await outcomes(path, domain, reference_date, engine_settings, identity, limit)
    rows = sweep(domain, found, DEFAULT_THRESHOLDS)
    return Calibration(
        domain, identity.name, identity.version, target_accuracy, rows,
        choose(rows, target_accuracy), time.monotonic() - started,
    )  # fmt: skip


def store(calibration: Calibration, source: Path, output: Path | None) -> Path | None:
    """Store the chosen threshold with the model; nothing when no threshold was chosen."""
    chosen = calibration.chosen
    if chosen is None:
        return None
    entry = {
        "threshold": chosen.threshold,
        "target_accuracy": calibration.target_accuracy,
        "kept_share": round(chosen.kept_share, 4),
        "kept_accuracy": round(chosen.kept_accuracy or 0.0, 4),
        "records": chosen.records,
        "data": source.name,
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return store_threshold(
        calibration.model, calibration.version, calibration.domain, entry, output
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
