"""`skiff flywheel train`: exit codes 0/1/2, what it prints, and resume through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from skiff_cli.flywheel_cli import flywheel_app
from tests.unit.flywheel_train_helpers import TASK, tiny_base, write_flights_dataset


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI loads the base itself: make that the tiny llama (seconds, not a GGUF load)."""
    import skiff_flywheel.training_run

    base = tiny_base()
    monkeypatch.setattr(skiff_flywheel.training_run, "load_base", lambda path: base)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(flywheel_app, ["train", "--task", TASK, *args])


def text(result: Any) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(str(result.output).split())


def test_it_trains_exports_and_reports(tiny: None, tmp_path: Path) -> None:
    dataset = write_flights_dataset(tmp_path / "data")
    out = tmp_path / "out"
    args = ["--dataset", str(dataset), "--output", str(out), "--max-steps", "3"]
    settings = ("--batch-size", "2", "--limit", "4", "--seed", "7", "--threads", "1")
    result = invoke(*args, *settings)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 3 and record["seed"] == 7
    assert record["dataset"]["examples"] == 4 and record["machine"]["torch_threads"] == 1
    for name in ("adapter.gguf", "peft/adapter_model.safetensors", "training.json"):
        assert f"{out}/{name}" in str(result.output).replace("\n", "")
    assert "final loss" in text(result) and f"{record['final_loss']:.4f}" in text(result)
    again = invoke(*args)
    assert again.exit_code == 1 and "not empty" in text(again)
    done = invoke(*args, *settings, "--resume")
    assert done.exit_code == 0 and "already holds a finished run" in text(done)
    other = invoke(*args, "--resume")  # other settings: not the finished run
    assert other.exit_code == 1 and "changed" in text(other)


@pytest.mark.parametrize(
    ("task", "make_dataset", "message"),
    [
        ("trains.extract", True, "trains.extract"),
        (TASK, False, "no dataset"),
    ],
)
def test_bad_input_exits_1(tmp_path: Path, task: str, make_dataset: bool, message: str) -> None:
    dataset = write_flights_dataset(tmp_path / "data") if make_dataset else tmp_path / "none"
    result = CliRunner().invoke(
        flywheel_app,
        ["train", "--task", task, "--dataset", str(dataset), "--output", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    assert message in text(result)


def test_bad_settings_exit_1(tmp_path: Path) -> None:
    dataset = write_flights_dataset(tmp_path / "data")
    result = invoke(
        "--dataset", str(dataset), "--output", str(tmp_path / "o"), "--learning-rate", "-1"
    )
    assert result.exit_code == 1 and "bad settings" in text(result)


def test_a_missing_extra_exits_2_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    dataset = write_flights_dataset(tmp_path / "data")
    result = invoke("--dataset", str(dataset), "--output", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "flywheel" in text(result) and "torch" in text(result)
