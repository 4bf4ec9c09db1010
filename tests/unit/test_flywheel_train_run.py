"""`finetune.train` end to end on a tiny llama: outputs, determinism, resume, refusals.

The tiny model (SmolLM2's vocabulary, 2 small layers) makes a step take milliseconds; what a
real base learns, and that its adapter loads in llama.cpp, is in
tests/integration/test_flywheel_train_adapter.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION
from skiff_flywheel.artifacts import file_sha256
from skiff_flywheel.curate import UnknownTask
from skiff_flywheel.finetune import train
from skiff_flywheel.flywheel_extra import FlywheelExtraMissing, require_flywheel
from skiff_flywheel.training_config import TrainingConfig
from skiff_flywheel.training_types import (
    DatasetUnusable,
    OutputExists,
    ResumeMismatch,
    StepReport,
)
from tests.unit.flywheel_train_helpers import TASK, tiny_base, write_flights_dataset

CONFIG = TrainingConfig(max_steps=6, batch_size=2, checkpoint_every=2, learning_rate=1e-2)
EXPORTED = ("adapter.gguf", "peft/adapter_config.json", "peft/adapter_model.safetensors")


@pytest.fixture(scope="module")
def base() -> Any:
    return tiny_base()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flights_dataset(tmp_path_factory.mktemp("data") / "flights")


def files(output: Path) -> dict[str, str]:
    return {name: file_sha256(output / name) for name in EXPORTED}


def test_a_run_writes_both_exports_and_its_record(base: Any, dataset: Path, tmp_path: Path) -> None:
    steps: list[StepReport] = []
    result = train(TASK, dataset, tmp_path / "out", config=CONFIG, base=base, on_step=steps.append)
    record = result.record
    assert [s.step for s in steps] == [1, 2, 3, 4, 5, 6]
    assert record.steps == 6 and len(record.losses) == 6
    assert record.final_loss == steps[-1].loss
    assert record.files == files(result.output)
    assert result.gguf == tmp_path / "out" / "adapter.gguf"
    assert record.dataset.sequences == record.dataset.examples == 6
    assert record.prompt_version == ADAPTER_PROMPT_VERSION and record.hyperparameters == CONFIG
    assert record.base_model.sha256 == file_sha256(Path(record.base_model.path))
    assert record.machine.torch_threads == CONFIG.threads
    assert record.throughput.steps == 6 and record.throughput.sequence_tokens_per_s > 0
    on_disk = json.loads((tmp_path / "out" / "training.json").read_text())
    assert on_disk["schema_sha256"] == record.schema_sha256
    config = json.loads((result.peft_dir / "adapter_config.json").read_text())
    assert config["r"] == CONFIG.rank and config["lora_alpha"] == CONFIG.alpha
    # Sorted, whatever the process's hash seed (peft keeps them in a set).
    assert config["target_modules"] == sorted(CONFIG.target_modules)
    assert record.losses[-1].loss < record.losses[0].loss, "a high rate on six examples learns"


def test_same_seed_same_adapter_other_seed_other_adapter(
    base: Any, dataset: Path, tmp_path: Path
) -> None:
    one = train(TASK, dataset, tmp_path / "one", config=CONFIG, base=base)
    two = train(TASK, dataset, tmp_path / "two", config=CONFIG, base=base)
    other = CONFIG.model_copy(update={"seed": 1})
    three = train(TASK, dataset, tmp_path / "three", config=other, base=base)
    assert files(one.output) == files(two.output)
    assert [p.loss for p in one.record.losses] == [p.loss for p in two.record.losses]
    assert files(three.output)["adapter.gguf"] != files(one.output)["adapter.gguf"]


RUN_IN_A_PROCESS = """
import sys
from pathlib import Path
from skiff_flywheel.finetune import train
from skiff_flywheel.training_config import TrainingConfig
from tests.unit.flywheel_train_helpers import TASK, tiny_base
config = TrainingConfig(max_steps=2, batch_size=2, checkpoint_every=2)
train(TASK, Path(sys.argv[1]), Path(sys.argv[2]), config=config, base=tiny_base())
"""


def test_two_processes_with_other_hash_seeds_write_the_same_bytes(
    dataset: Path, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_IN_A_PROCESS, str(dataset), str(tmp_path / seed)],
            cwd=repo,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2")
    ]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    assert files(tmp_path / "1") == files(tmp_path / "2")


class Crash(Exception):
    pass


def crash_after(step: int) -> Any:
    def on_step(report: StepReport) -> None:
        if report.step == step:
            raise Crash

    return on_step


def test_a_resumed_run_ends_identical_to_an_unbroken_one(
    base: Any, dataset: Path, tmp_path: Path
) -> None:
    unbroken = train(TASK, dataset, tmp_path / "unbroken", config=CONFIG, base=base)
    with pytest.raises(Crash):  # dies after step 3; its last checkpoint is step 2
        train(TASK, dataset, tmp_path / "broken", config=CONFIG, base=base, on_step=crash_after(3))
    assert not (tmp_path / "broken" / "training.json").exists()
    seen: list[int] = []
    resumed = train(
        TASK,
        dataset,
        tmp_path / "broken",
        config=CONFIG,
        base=base,
        resume=True,
        on_step=lambda s: seen.append(s.step),
    )
    assert seen == [3, 4, 5, 6]
    assert resumed.resumed and resumed.record.resumed_at == (2,)
    assert files(resumed.output) == files(unbroken.output)
    assert [p.loss for p in resumed.record.losses] == [p.loss for p in unbroken.record.losses]
    again = train(TASK, dataset, tmp_path / "broken", config=CONFIG, base=base, resume=True)
    assert again.already_done and again.record == resumed.record
    # A finished run is reused only for the same run: other settings or data are refused.
    changed = CONFIG.model_copy(update={"learning_rate": 5e-3})
    with pytest.raises(ResumeMismatch, match="hyperparameters changed"):
        train(TASK, dataset, tmp_path / "broken", config=changed, base=base, resume=True)
    with pytest.raises(ResumeMismatch, match="examples changed"):
        train(TASK, dataset, tmp_path / "broken", config=CONFIG, base=base, resume=True, limit=1)


def test_resuming_with_other_settings_is_refused(base: Any, dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train(TASK, dataset, tmp_path / "run", config=CONFIG, base=base, on_step=crash_after(2))
    changed = CONFIG.model_copy(update={"learning_rate": 5e-3})
    with pytest.raises(ResumeMismatch, match="config"):
        train(TASK, dataset, tmp_path / "run", config=changed, base=base, resume=True)


def test_an_occupied_output_needs_resume_or_overwrite(
    base: Any, dataset: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "something").write_text("x")
    with pytest.raises(OutputExists):
        train(TASK, dataset, output, config=CONFIG, base=base)
    result = train(TASK, dataset, output, config=CONFIG, base=base, overwrite=True)
    assert not (output / "something").exists() and result.record.steps == 6


def test_bad_inputs_are_refused_before_any_training(tmp_path: Path, dataset: Path) -> None:
    with pytest.raises(UnknownTask):
        train("trains.extract", dataset, tmp_path / "a")
    with pytest.raises(DatasetUnusable, match="no dataset"):
        train(TASK, tmp_path / "missing", tmp_path / "a")
    with pytest.raises(DatasetUnusable, match=r"flights\.extract dataset"):
        train("hotels.extract", dataset, tmp_path / "a")
    corrupt = write_flights_dataset(tmp_path / "corrupt")
    (corrupt / "train.jsonl").write_text((corrupt / "train.jsonl").read_text()[:-40] + "\n")
    with pytest.raises(DatasetUnusable, match="sha256"):
        train(TASK, corrupt, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_missing_extra_is_a_typed_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    with pytest.raises(FlywheelExtraMissing, match=r"flywheel") as error:
        require_flywheel()
    assert error.value.missing == ["peft"]
