"""Training sequences, token for token what the llama.cpp engine feeds and emits, and batches.

One example becomes one sequence: the prompt exactly as `LlamaCppEngine` renders and
tokenizes it (`EngineTokenizer.prompt_tokens`: the GGUF's chat template, BOS, special
tokens), then the target draft's JSON as the fast decoder's tokens (its forced stretches in
llguidance's spelling, `decoder_path`), then the end-of-turn token. Loss is taken on the
target's tokens only (everything after `prompt_length`), end-of-turn included, so the
adapter also learns to stop where SGLang or the GBNF decoder would sample the end.

Batches are length-grouped rather than packed: packing would let one example attend to
another unless the attention mask is block-diagonal, which is not what inference sees.
Each epoch shuffles the sequences with a seeded generator, sorts windows of
`WINDOW` batches by length, cuts them into batches and shuffles the batches, so padding is a
few tokens per sequence and the order is a pure function of (seed, epoch).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skiff_contracts.domains import DRAFTS, Domain
from skiff_extraction.prompts import extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.dataset import Example
from skiff_flywheel.training_targets import TargetError, target_draft, target_json
from skiff_inference.decoder_path import DecoderPathError
from skiff_inference.engine_tokenizer import EngineTokenizer

# Batches sorted by length together: big enough that neighbours have similar lengths, small
# enough that a batch's examples are still a random draw from the data.
WINDOW = 16

Batch = tuple[int, ...]  # indices into the sequences


@dataclass(frozen=True)
class TrainingSequence:
    """One example's token ids: `tokens[:prompt_length]` the prompt, the rest the target."""

    example_id: str
    tokens: tuple[int, ...]
    prompt_length: int
    target: str

    @property
    def target_tokens(self) -> int:
        """How many tokens the loss is taken on."""
        return len(self.tokens) - self.prompt_length


@dataclass(frozen=True)
class TrainingSet:
    """The sequences built from a split, and the examples skipped, by reason."""

    sequences: tuple[TrainingSequence, ...]
    skipped: dict[str, int]

    @property
    def tokens(self) -> int:
        """Tokens in all sequences (what one epoch evaluates, before prefix sharing)."""
        return sum(len(s.tokens) for s in self.sequences)


def sequence_for(
    example: Example, domain: Domain, tokenizer: EngineTokenizer, *, prompt_version: str
) -> TrainingSequence:
    """The sequence for one example; raises `TargetError` when it has no faithful target."""
    target = target_json(target_draft(example, domain))
    messages = extraction_messages(domain, example.text, prompt_version=prompt_version)
    prompt = tokenizer.prompt_tokens(messages)
    try:
        output = tokenizer.output_tokens(decoding_schema(DRAFTS[domain]), target)
    except DecoderPathError as error:
        raise TargetError("not_decodable", f"{example.example_id}: {error}") from error
    return TrainingSequence(example.example_id, (*prompt, *output), len(prompt), target)


def build_training_set(
    examples: Iterable[Example],
    domain: Domain,
    tokenizer: EngineTokenizer,
    *,
    prompt_version: str,
    max_length: int,
) -> TrainingSet:
    """Every example's sequence, in the given order; skipped ones are counted by reason."""
    sequences: list[TrainingSequence] = []
    skipped: Counter[str] = Counter()
    for example in examples:
        try:
            sequence = sequence_for(example, domain, tokenizer, prompt_version=prompt_version)
        except TargetError as error:
            skipped[error.reason] += 1
            continue
        if len(sequence.tokens) > max_length:
            skipped["too_long"] += 1
            continue
        sequences.append(sequence)
    return TrainingSet(tuple(sequences), dict(sorted(skipped.items())))


def epoch_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int) -> list[Batch]:
    """One epoch's batches, length-grouped, in a shuffled order fixed by (seed, epoch)."""
    rng = random.Random(f"skiff-train:{seed}:{epoch}")  # str seeds hash the same everywhere
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[Batch] = []
    window = batch_size * WINDOW
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: (lengths[i], i))
        batches += [tuple(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_plan(lengths: Sequence[int], batch_size: int, *, seed: int, steps: int) -> list[Batch]:
    """The batch of every optimizer step: epochs after one another until `steps` batches."""
    if not lengths:
        raise ValueError("no training sequences")
    plan: list[Batch] = []
    epoch = 0
    while len(plan) < steps:
        plan += epoch_batches(lengths, batch_size, seed=seed, epoch=epoch)
        epoch += 1
    return plan[:steps]


def batches_per_epoch(count: int, batch_size: int) -> int:
    """How many batches one epoch of `count` sequences has (windows may end part-full)."""
    window = batch_size * WINDOW
    full, rest = divmod(count, window)
    return full * WINDOW + -(-rest // batch_size)
