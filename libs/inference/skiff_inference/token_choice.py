"""Choosing the next token from one row of logits under a token mask, and log-probabilities.

Greedy decoding takes the highest-scoring allowed token; ties go to the lowest id, as in
llama.cpp's greedy sampler, so it picks what `decoder="grammar"` picks from the same logits.
Sampling (temperature > 0) follows llama-cpp-python's default chain in the same order:
top-k 40, top-p 0.95 and min-p 0.05 on the untempered distribution, then the temperature,
then a draw from a seeded numpy generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05

BoolMask = npt.NDArray[np.bool_]
Row = npt.NDArray[np.float32]


def mask_from_bitmask(bitmask: npt.NDArray[np.int32], n_vocab: int) -> BoolMask:
    """Expand a 32-tokens-per-word bitmask (llguidance's layout) into one bool per token."""
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")
    return bits[:n_vocab].astype(np.bool_)


def logprobs_at(rows: npt.NDArray[np.float32], tokens: Sequence[int]) -> list[float]:
    """Log-softmax of row i at `tokens[i]`: the model's own probability, before any mask."""
    if not len(tokens):
        return []
    picked = rows[: len(tokens)]
    peaks = picked.max(axis=1, keepdims=True)
    totals = np.log(np.exp(picked - peaks).sum(axis=1))
    chosen = picked[np.arange(len(tokens)), np.asarray(tokens)]
    return [float(v) for v in chosen - peaks[:, 0] - totals]


def choose_token(
    row: Row, allowed: BoolMask, *, temperature: float, rng: np.random.Generator | None
) -> int:
    """The greedy (temperature 0) or sampled token among those `allowed`."""
    masked = np.where(allowed, row, -np.inf)
    if temperature == 0.0 or rng is None:
        return int(np.argmax(masked))
    candidates = np.flatnonzero(allowed)
    if len(candidates) == 0:
        return int(np.argmax(masked))
    scores = masked[candidates].astype(np.float64)
    order = np.argsort(-scores, kind="stable")[:TOP_K]
    candidates, scores = candidates[order], scores[order]
    probs = np.exp(scores - scores[0])
    probs /= probs.sum()
    # top-p keeps the smallest head whose mass reaches TOP_P (at least one token).
    keep = int(np.searchsorted(np.cumsum(probs), TOP_P)) + 1
    candidates, scores = candidates[:keep], scores[:keep]
    # min-p keeps tokens at least MIN_P as likely as the best one.
    keep_min = scores >= scores[0] + np.log(MIN_P)
    candidates, scores = candidates[keep_min], scores[keep_min]
    tempered = np.exp((scores - scores[0]) / temperature)
    return int(rng.choice(candidates, p=tempered / tempered.sum()))
