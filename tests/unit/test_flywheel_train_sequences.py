"""Training sequences: prompt, the decoder's target tokens, end of turn; length-grouped batches.

Uses the bundled GGUF's vocabulary and chat template (`EngineTokenizer`, no weights); the
comparison with the running engine is in tests/integration/test_flywheel_train_tokens.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from skiff_contracts.domains import DRAFTS
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION, extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.training_data import (
    WINDOW,
    batch_plan,
    batches_per_epoch,
    build_training_set,
    epoch_batches,
    sequence_for,
)
from skiff_flywheel.training_targets import target_draft, target_json
from skiff_inference.decoder_path import DecoderPathError
from skiff_inference.engine_tokenizer import EngineTokenizer
from skiff_inference.model_files import bundled_model_path
from tests.unit.flywheel_train_helpers import FLIGHTS, example, examples


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[EngineTokenizer]:
    loaded = EngineTokenizer(bundled_model_path())
    yield loaded
    loaded.close()


def test_a_sequence_is_the_prompt_then_the_target_then_end_of_turn(
    tokenizer: EngineTokenizer,
) -> None:
    ex = example(0, *FLIGHTS[0])
    sequence = sequence_for(ex, "flights", tokenizer, prompt_version=ADAPTER_PROMPT_VERSION)
    messages = extraction_messages("flights", ex.text, prompt_version=ADAPTER_PROMPT_VERSION)
    prompt = tokenizer.prompt_tokens(messages)
    assert list(sequence.tokens[: sequence.prompt_length]) == prompt
    assert tokenizer.text(prompt).endswith("<|im_start|>assistant\n")
    target = target_json(target_draft(ex, "flights"))
    assert sequence.target == target
    assert tokenizer.text(sequence.tokens[sequence.prompt_length :]) == target + "<|im_end|>"
    assert sequence.tokens[-1:] == tokenizer.end_of_turn == (2,)
    assert sequence.target_tokens == len(sequence.tokens) - len(prompt)


def test_the_target_is_the_decoders_path_and_a_text_it_cannot_write_is_refused(
    tokenizer: EngineTokenizer,
) -> None:
    ex = example(0, *FLIGHTS[0])
    sequence = sequence_for(ex, "flights", tokenizer, prompt_version=ADAPTER_PROMPT_VERSION)
    path = list(sequence.tokens[sequence.prompt_length : -1])
    # llguidance forces only tokens the canonical encoding would also produce: here the
    # path is the tokenizer's encoding of the whole JSON.
    assert path == tokenizer._encode(sequence.target.encode())
    schema = decoding_schema(DRAFTS["flights"])
    draft = target_draft(ex, "flights")
    for unwritable in (
        json.dumps(draft, ensure_ascii=False, separators=(",", ":")),  # other white space
        json.dumps(dict(reversed(draft.items())), ensure_ascii=False),  # other key order
        target_json({**draft, "passengers": "two"}),  # a string where a number goes
    ):
        with pytest.raises(DecoderPathError):
            tokenizer.output_tokens(schema, unwritable)


def test_non_ascii_values_survive_as_themselves(tokenizer: EngineTokenizer) -> None:
    ex = example(2, *FLIGHTS[2])
    sequence = sequence_for(ex, "flights", tokenizer, prompt_version=ADAPTER_PROMPT_VERSION)
    assert '"origin": "São Paulo"' in tokenizer.text(sequence.tokens[sequence.prompt_length :])


def test_unusable_and_overlong_examples_are_counted_not_trained(
    tokenizer: EngineTokenizer,
) -> None:
    text, params, spans = FLIGHTS[0]
    no_span = example(9, text, params, {k: v for k, v in spans.items() if k != "origin"})
    built = build_training_set(
        [*examples(), no_span], "flights", tokenizer, prompt_version="ft1", max_length=512
    )
    assert len(built.sequences) == len(FLIGHTS)
    assert built.skipped == {"unwritten_value": 1}
    shortest = min(len(s.tokens) for s in built.sequences)
    capped = build_training_set(
        examples(), "flights", tokenizer, prompt_version="ft1", max_length=shortest
    )
    assert len(capped.sequences) == 1
    assert capped.skipped == {"too_long": len(FLIGHTS) - 1}


def test_an_epoch_uses_every_sequence_once_grouped_by_length() -> None:
    lengths = [100 + (i * 37) % 90 for i in range(200)]
    batches = epoch_batches(lengths, 8, seed=3, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert len(batches) == batches_per_epoch(200, 8)
    padding = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert padding / sum(lengths) < 0.03, "length grouping keeps padding small"
    # Without grouping, the same batch size pads far more: the grouping does something.
    ungrouped = [tuple(range(i, i + 8)) for i in range(0, 200, 8)]
    ungrouped_padding = sum(
        max(lengths[i] for i in b) * 8 - sum(lengths[i] for i in b) for b in ungrouped
    )
    assert ungrouped_padding > 5 * padding


def test_the_order_is_a_function_of_seed_and_epoch_only() -> None:
    lengths = [50 + i % 17 for i in range(100)]
    assert epoch_batches(lengths, 4, seed=1, epoch=0) == epoch_batches(lengths, 4, seed=1, epoch=0)
    assert epoch_batches(lengths, 4, seed=1, epoch=0) != epoch_batches(lengths, 4, seed=2, epoch=0)
    assert epoch_batches(lengths, 4, seed=1, epoch=0) != epoch_batches(lengths, 4, seed=1, epoch=1)


def test_a_plan_runs_epochs_back_to_back_and_stops_at_the_step_count() -> None:
    lengths = [10] * 10
    plan = batch_plan(lengths, 4, seed=0, steps=7)  # 3 batches an epoch
    assert len(plan) == 7
    per_epoch = Counter(i for b in plan[:3] for i in b)
    assert set(per_epoch.values()) == {1} and len(per_epoch) == 10
    assert plan[:3] == epoch_batches(lengths, 4, seed=0, epoch=0)
    assert plan[3:6] == epoch_batches(lengths, 4, seed=0, epoch=1)
    assert batches_per_epoch(10, 4) == 3
    assert batches_per_epoch(4 * WINDOW * 2 + 1, 4) == 2 * WINDOW + 1
