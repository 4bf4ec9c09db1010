"""A real (if short) fine-tune on SGD flights: the adapter writes held-out drafts better.

Markers `model` and `slow` (deselected by default; about 15 minutes on 2 cores):
`.venv/bin/pytest tests/integration/test_flywheel_train_slow.py -m slow -s`. Trains the
default settings for `STEPS` steps on the first `TRAIN` examples of the train split, then
decodes `EVAL` held-out examples with the base and with the adapter through the engine, and
compares each draft field with the example's target draft. Prints the figures as JSON.
Measured once: field accuracy 0.37 (base, ft1 prompt) -> 0.91 (adapter), exact drafts
0/40 -> 16/40, final loss 0.026.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiff_contracts.domains import DRAFTS
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION, extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.dataset import read_dataset, write_dataset
from skiff_flywheel.finetune import train
from skiff_flywheel.sgd import import_sgd
from skiff_flywheel.training_config import TrainingConfig
from skiff_flywheel.training_targets import TargetError, target_draft
from skiff_inference.llamacpp import LlamaCppEngine

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(2400)]

SGD = Path(__file__).parents[2].parent / "shared" / "data" / "sgd-train"
TRAIN, STEPS, EVAL = 240, 45, 40


async def test_a_short_fine_tune_improves_held_out_drafts(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    curated = import_sgd(SGD, "flights.extract")
    dataset = tmp_path / "flights"
    write_dataset(dataset, curated.splits, task="flights.extract", sources=["sgd"],
                  dropped=curated.dropped, eval_share=0.2)  # fmt: skip
    config = TrainingConfig(max_steps=STEPS, batch_size=8, checkpoint_every=20)
    result = train("flights.extract", dataset, tmp_path / "out", config=config, limit=TRAIN)
    _, splits = read_dataset(dataset)
    schema = decoding_schema(DRAFTS["flights"])
    engine = LlamaCppEngine(threads=2)
    await engine.load_adapter("ft", result.gguf)
    right = {"base": 0, "adapter": 0}
    fields = 0
    exact = {"base": 0, "adapter": 0}
    evaluated = 0
    try:
        for example in splits["eval"]:
            if evaluated == EVAL:
                break
            try:
                target = target_draft(example, "flights")
            except TargetError:
                continue
            evaluated += 1
            fields += len(target)
            messages = extraction_messages(
                "flights", example.text, prompt_version=ADAPTER_PROMPT_VERSION
            )
            for name, adapter in (("base", None), ("adapter", "ft")):
                out = await engine.generate_json(messages, schema, max_tokens=200, adapter=adapter)
                value = out.value if isinstance(out.value, dict) else {}
                right[name] += sum(value.get(k) == v for k, v in target.items())
                exact[name] += value == target
    finally:
        await engine.aclose()
    figures = {
        "train_examples": TRAIN,
        "steps": STEPS,
        "final_loss": round(result.record.final_loss, 4),
        "seconds_per_step": round(result.record.throughput.seconds_per_step, 2),
        "eval_examples": evaluated,
        "field_accuracy": {k: round(v / fields, 3) for k, v in right.items()},
        "exact_drafts": {k: round(v / evaluated, 3) for k, v in exact.items()},
    }
    print(json.dumps(figures))
    assert figures["field_accuracy"]["adapter"] > figures["field_accuracy"]["base"] + 0.1
