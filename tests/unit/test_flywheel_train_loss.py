"""The training loss: target tokens only, equal to transformers' own masked loss, prefix or not."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from skiff_flywheel.lora_training import batch_loss, lora_model, scheduler_for  # noqa: E402
from skiff_flywheel.training_config import TrainingConfig  # noqa: E402
from skiff_flywheel.training_data import TrainingSequence, build_training_set  # noqa: E402
from skiff_inference.engine_tokenizer import EngineTokenizer  # noqa: E402
from skiff_inference.model_files import bundled_model_path  # noqa: E402
from tests.unit.flywheel_train_helpers import examples, tiny_base  # noqa: E402

PAD = 2


@pytest.fixture(scope="module")
def sequences() -> tuple[TrainingSequence, ...]:
    tokenizer = EngineTokenizer(bundled_model_path())
    built = build_training_set(
        examples(), "flights", tokenizer, prompt_version="ft1", max_length=512
    )
    tokenizer.close()
    return built.sequences


@pytest.fixture(scope="module")
def model() -> Any:
    peft_model = lora_model(tiny_base().model, TrainingConfig(dropout=0.0, seed=5))
    # Non-zero B, so the adapter takes part in the forward pass.
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return peft_model


def reference_loss(model: Any, batch: tuple[TrainingSequence, ...]) -> Any:
    """transformers' causal-LM loss with prompt and padding labelled -100."""
    width = max(len(s.tokens) for s in batch)
    ids = torch.full((len(batch), width), PAD)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, s in enumerate(batch):
        ids[row, : len(s.tokens)] = torch.tensor(s.tokens)
        labels[row, s.prompt_length : len(s.tokens)] = torch.tensor(s.tokens[s.prompt_length :])
        mask[row, : len(s.tokens)] = 1
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def test_the_loss_is_transformers_masked_loss_with_or_without_a_shared_prefix(
    model: Any, sequences: tuple[TrainingSequence, ...]
) -> None:
    model.eval()
    batch = sequences[:4]
    expected = reference_loss(model, batch)
    plain = batch_loss(model, batch, share_prefix=False, pad_token=PAD)
    shared = batch_loss(model, batch, share_prefix=True, pad_token=PAD)
    assert float(plain.loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    assert float(shared.loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    assert plain.target_tokens == shared.target_tokens == sum(s.target_tokens for s in batch)
    # The shared prefix is the common system prompt: evaluated once instead of four times.
    prompt_prefix = shared.evaluated_tokens - sum(len(s.tokens) for s in batch)
    assert shared.evaluated_tokens < plain.evaluated_tokens == sum(len(s.tokens) for s in batch)
    assert -prompt_prefix > 2 * 100, "three copies of a 100+ token prefix saved"


def test_gradients_through_the_shared_prefix_match_the_full_pass(
    model: Any, sequences: tuple[TrainingSequence, ...]
) -> None:
    model.eval()
    batch = sequences[1:4]
    grads = []
    for share in (False, True):
        model.zero_grad()
        torch.autograd.backward(batch_loss(model, batch, share_prefix=share, pad_token=PAD).loss)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-3)


def test_only_positions_after_the_prompt_are_labels(
    model: Any, sequences: tuple[TrainingSequence, ...]
) -> None:
    model.eval()
    s = sequences[0]
    # The same tokens with five more of them counted as prompt: five fewer labels, and the
    # loss is transformers' with those five labelled -100 as well.
    shorter = TrainingSequence(s.example_id, s.tokens, s.prompt_length + 5, s.target)
    result = batch_loss(model, [shorter], share_prefix=False, pad_token=PAD)
    assert result.target_tokens == s.target_tokens - 5
    assert float(result.loss.detach()) == pytest.approx(
        float(reference_loss(model, (shorter,)).detach()), abs=1e-5
    )
    full = batch_loss(model, [s], share_prefix=False, pad_token=PAD)
    assert float(full.loss.detach()) != pytest.approx(float(result.loss.detach()), abs=1e-5)


def test_the_schedule_warms_up_then_decays_to_zero() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = scheduler_for(optimizer, TrainingConfig(warmup_steps=4), total_steps=40)
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == sorted(rates[:4]) and rates[3] < 1.0
    assert rates[4] == pytest.approx(1.0)
    assert rates[-1] < 0.01 and rates == rates[:4] + sorted(rates[4:], reverse=True)
