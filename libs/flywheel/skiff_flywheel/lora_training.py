"""The torch side of a LoRA fine-tune: the peft model, the loss of one batch, the optimizer.

**Loss.** Cross-entropy on the target tokens only (the prompt predicts nothing we train),
averaged over the batch's target tokens, so a long target weighs what its tokens weigh.
Logits are computed only at the positions that predict a target token: the output
projection (576 x 49152 for SmolLM2) would otherwise cost about a fifth of the forward pass
on prompt positions whose logits are thrown away.

**Shared prefix.** Every example of a task starts with the same system prompt (about 140
tokens of a 200-260 token sequence under `ft1`). With `share_prefix`, a batch's common
prefix is run once, its keys and values are repeated for each sequence, and only the rest
is run per sequence. Causal attention makes that the same computation (gradients flow back
through the shared keys and values into the one prefix pass), up to float rounding; LoRA
dropout on the prefix is then drawn once per batch instead of once per sequence. The split
point stays at least one token before every sequence's target, so each target token is
predicted from a position evaluated per sequence.

Needs the `flywheel` extra: import this module only after `require_flywheel()`.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch.nn import functional
from transformers import LlamaModel, PreTrainedModel

from skiff_flywheel.training_config import TrainingConfig
from skiff_flywheel.training_data import TrainingSequence

# Below this, running the prefix separately saves less than it costs.
MIN_SHARED_PREFIX = 8

# transformers renamed `past_key_values` to `cache` during 5.x (the old name warns, and goes
# in 5.40); the pin allows any 5.x, so use whichever this version's llama takes.
_CACHE = (
    "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"
)


@dataclass(frozen=True)
class BatchLoss:
    """One batch's loss (a graph to backpropagate) and how many tokens went into it."""

    loss: torch.Tensor
    target_tokens: int
    evaluated_tokens: int


def lora_model(base: PreTrainedModel, config: TrainingConfig) -> PeftModel:
    """A copy of `base` with fresh LoRA layers (initialised from `config.seed`)."""
    torch.manual_seed(config.seed)  # peft draws lora_A from torch's global generator
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(copy.deepcopy(base), lora)
    if not isinstance(model, PeftModel):
        raise TypeError(f"peft returned {type(model).__name__}")
    return model


def batch_loss(
    model: PeftModel, batch: Sequence[TrainingSequence], *, share_prefix: bool, pad_token: int
) -> BatchLoss:
    """Mean cross-entropy over the target tokens of `batch` (see the module docstring)."""
    inner = cast(PreTrainedModel, model.get_base_model())
    # The decoder stack and the output projection, called separately (logits only where a
    # target token is predicted); LoRA is inside the decoder's linear layers.
    decoder = cast(torch.nn.Module, getattr(inner, inner.base_model_prefix))
    head = cast(torch.nn.Module, inner.lm_head)
    device = next(model.parameters()).device
    shared = _shared_prefix(batch) if share_prefix and len(batch) > 1 else 0
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    rest = [s.tokens[shared:] for s in batch]
    width = max(len(r) for r in rest)
    ids = torch.full((len(batch), width), pad_token, dtype=torch.long)
    mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for row, tokens in enumerate(rest):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, shared : shared + len(tokens)] = 1
    cache = None
    if shared:
        prefix = torch.tensor([batch[0].tokens[:shared]], dtype=torch.long, device=device)
        output = decoder(input_ids=prefix, use_cache=True)
        cache = output.cache if _CACHE == "cache" else output.past_key_values
        cache.batch_repeat_interleave(len(batch))
    positions = torch.arange(shared, shared + width, dtype=torch.long).expand(len(batch), -1)
    hidden = decoder(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=cache is not None,
        **{_CACHE: cache},
    ).last_hidden_state
    rows: list[int] = []
    columns: list[int] = []
    labels: list[int] = []
    for row, sequence in enumerate(batch):
        for position in range(sequence.prompt_length, len(sequence.tokens)):
            rows.append(row)
            columns.append(position - 1 - shared)  # the position that predicts this token
            labels.append(sequence.tokens[position])
    picked = hidden[torch.tensor(rows, device=device), torch.tensor(columns, device=device)]
    logits = head(picked)
    loss = functional.cross_entropy(
        logits.float(), torch.tensor(labels, device=device), reduction="mean"
    )
    evaluated = shared + sum(len(r) for r in rest)
    return BatchLoss(loss, len(labels), evaluated)


def optimizer_for(model: PeftModel, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW over the LoRA parameters only (the base stays frozen)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)


def scheduler_for(
    optimizer: torch.optim.Optimizer, config: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up (at most a tenth of the run), then the configured decay to 0."""
    warmup = min(config.warmup_steps, total_steps // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _shared_prefix(batch: Sequence[TrainingSequence]) -> int:
    first = batch[0].tokens
    # Keep the last prompt token of every sequence out of the prefix: it predicts the first
    # target token, and only positions run per sequence give per-sequence hidden states.
    limit = min(s.prompt_length for s in batch) - 1
    common = 0
    while common < limit and all(s.tokens[common] == first[common] for s in batch[1:]):
        common += 1
    return common
