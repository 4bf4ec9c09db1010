"""The adapters in the package: each one's files match its card, its card its evaluation, and
its split the committed manifest (what `make models` wrote, checked without a model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiff_contracts.domains import DOMAINS, Domain
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION
from skiff_flywheel.artifacts import adapter_path
from skiff_flywheel.evaluate import EvaluationReport
from skiff_models import shipped_card, shipped_dir

SPLITS = Path(__file__).resolve().parents[2] / "libs" / "models" / "splits"


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_shipped_adapter_serves_on_both_engines_exactly_as_its_card_pins_it(
    domain: Domain,
) -> None:
    card = shipped_card(domain)
    assert card is not None, f"no shipped {domain} adapter: run make models"
    assert card.task == f"{domain}.extract" and card.prompt_version == ADAPTER_PROMPT_VERSION
    assert card.adapter == str(shipped_dir(domain))  # placed where this installation put it
    assert adapter_path(card, "llamacpp").name == "adapter.gguf"  # checks every sha256
    assert adapter_path(card, "sglang").name == "peft"


@pytest.mark.parametrize("domain", DOMAINS)
def test_its_card_carries_the_threshold_and_figures_of_its_dev_split_evaluation(
    domain: Domain,
) -> None:
    card = shipped_card(domain)
    assert card is not None
    report = EvaluationReport.model_validate_json(
        (shipped_dir(domain) / "evaluation.json").read_text("utf-8")
    )
    (evaluation,) = card.evaluations
    assert evaluation.metrics == report.metrics["candidate"]
    assert evaluation.baseline_metrics == report.metrics["baseline"]
    assert card.confidence_threshold == report.metrics["candidate"].get("threshold")
    assert report.target_accuracy == 0.97
    split = json.loads((SPLITS / f"{domain}.json").read_text("utf-8"))
    assert report.eval_sha256 == split["eval_sha256"]  # evaluated on the committed dev split
    assert report.examples == split["counts"]["eval"] == len(split["eval_ids"])
    assert "# " + card.model_id in (shipped_dir(domain) / "README.md").read_text("utf-8")
