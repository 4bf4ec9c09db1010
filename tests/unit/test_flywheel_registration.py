"""A trained adapter and its evaluation become a candidate card: checked against each other,
with the evaluation's baseline named only when it is the current champion."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from skiff_cli.flywheel_loop import contender
from skiff_contracts.registry import ModelCard
from skiff_extraction.cards import BUNDLED_BASE_MODEL, extraction_card
from skiff_flywheel.artifacts import AdapterError
from skiff_flywheel.evaluate import EvaluationReport
from skiff_flywheel.registration import RegistrationError, adapter_card

TASK = "flights.extract"


def trained(directory: Path, task: str = TASK) -> str:
    directory.mkdir(parents=True)
    gguf = b"GGUF lora"
    (directory / "adapter.gguf").write_bytes(gguf)
    manifest = {"task": task, "prompt_version": "ft1",
                "files": {"adapter.gguf": hashlib.sha256(gguf).hexdigest()}}  # fmt: skip
    (directory / "training.json").write_text(json.dumps(manifest))
    return hashlib.sha256((directory / "training.json").read_bytes()).hexdigest()


def report(candidate_sha: str | None, baseline: dict[str, Any]) -> EvaluationReport:
    return EvaluationReport(
        task=TASK, dataset_id=f"{TASK}@abc", dataset_sha256="f" * 64, examples=100,
        target_accuracy=0.8,
        contenders={
            "baseline": baseline,
            "candidate": {"label": "candidate", "prompt_version": "ft1",
                          "adapter_sha256": candidate_sha},
        },
        metrics={"baseline": {"slot_accuracy": 0.5}, "candidate": {"slot_accuracy": 0.7,
                                                                    "threshold": 0.35}},
        duration_s=10.0,
    )  # fmt: skip


BASE = {"label": "baseline", "prompt_version": "v1", "adapter_sha256": None}


def champion(prompt: str = "v1") -> ModelCard:
    card, _ = extraction_card(
        "flights", name="smollm2-135m-instruct", version="base-q4_1",
        base_model=BUNDLED_BASE_MODEL, engine="llamacpp", owner="skiff", prompt_version=prompt,
    )  # fmt: skip
    return card


def make(directory: Path, evaluated: EvaluationReport, current: ModelCard | None) -> ModelCard:
    card, schema = adapter_card(
        directory, evaluated, name="smollm2-135m-lora", version="1",
        base_model=BUNDLED_BASE_MODEL, engine="llamacpp", owner="ana", rollout="auto",
        champion=current,
    )  # fmt: skip
    assert schema["title"] == "FlightsDraft"
    return card


def test_the_card_pins_the_adapter_and_names_the_champion_it_beat(tmp_path: Path) -> None:
    sha = trained(tmp_path / "a")
    card = make(tmp_path / "a", report(sha, BASE), champion())
    assert card.adapter == str((tmp_path / "a").resolve()) and card.adapter_sha256 == sha
    assert (card.prompt_version, card.confidence_threshold, card.rollout) == ("ft1", 0.35, "auto")
    [evaluation] = card.evaluations
    assert evaluation.baseline_model == champion().model_id
    assert (evaluation.metrics["slot_accuracy"], evaluation.baseline_metrics["slot_accuracy"]) == (
        0.7, 0.5,
    )  # fmt: skip


def test_a_baseline_that_is_not_the_current_champion_is_not_named(tmp_path: Path) -> None:
    sha = trained(tmp_path / "a")
    other = {"label": "baseline", "prompt_version": "ft1", "adapter_sha256": "0" * 64}
    assert (
        make(tmp_path / "a", report(sha, other), champion()).evaluations[0].baseline_model is None
    )
    assert (
        make(tmp_path / "a", report(sha, BASE), champion("ft1")).evaluations[0].baseline_model
        is None
    )
    assert make(tmp_path / "a", report(sha, BASE), None).evaluations[0].baseline_model is None


def test_an_adapter_and_an_evaluation_that_do_not_belong_together_are_refused(
    tmp_path: Path,
) -> None:
    sha = trained(tmp_path / "a")
    with pytest.raises(RegistrationError, match="not of the adapter"):
        make(tmp_path / "a", report("0" * 64, BASE), champion())
    trained(tmp_path / "b", task="hotels.extract")
    other_sha = hashlib.sha256((tmp_path / "b" / "training.json").read_bytes()).hexdigest()
    with pytest.raises(RegistrationError, match=r"trained for 'hotels\.extract'"):
        make(tmp_path / "b", report(other_sha, BASE), champion())
    (tmp_path / "a" / "adapter.gguf").write_bytes(b"changed after evaluation")
    with pytest.raises(AdapterError, match="does not match its manifest"):
        make(tmp_path / "a", report(sha, BASE), champion())


def test_an_adapter_whose_manifest_names_no_prompt_version_is_a_typed_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "training.json").write_text('{"files": {}}')
    with pytest.raises(AdapterError, match="names no prompt_version"):
        contender("candidate", tmp_path)
