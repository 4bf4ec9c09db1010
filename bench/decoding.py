"""Constrained decoding on the CPU engine: the fast decoder, the GBNF decoder and free generation.

Three `LlamaCppEngine`s on the bundled SmolLM2 (same model, same threads), one per mode:

    fast     llguidance masks, forced tokens fast-forwarded and batched (the default)
    grammar  llama-cpp-python's GBNF sampler (`decoder="grammar"`)
    free     no constraint: greedy over the whole vocabulary on the same low-level loop

Every request goes to the three engines in turn (the order rotates), so they share the
machine's load; figures are ratios of things measured side by side. Two phases:

* prefix reuse: per domain, an emptied KV cache then one request (cold), then another
  request of the same domain (warm, the fixed prompt prefix cached); time to first token is
  the decoder's own `first_token_ms` (prompt evaluation until the first output token's
  distribution is ready);
* generation: every request to completion with the domain's prefix cached. Output tokens per
  second after the first token, `(tokens_out - 1) / (latency - first_token)`, and JSON
  validity (parses; validates against the domain's pydantic draft).

Run: `.venv/bin/python -m bench.decoding --per-domain 5 --threads 1`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import llama_cpp
import numpy as np
from pydantic import ValidationError

from skiff_contracts.domains import DRAFTS, Domain
from skiff_extraction.prompts import extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_inference.decoding import Decoded
from skiff_inference.kv_session import KvSession
from skiff_inference.llamacpp import LlamaCppEngine

Mode = Literal["fast", "grammar", "free"]
MODES: tuple[Mode, ...] = ("fast", "grammar", "free")
MAX_TOKENS = 160  # the extraction pipeline's limit

REPO = Path(__file__).resolve().parents[1]
SGD = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
INSURANCE = (
    "Travel insurance for two adults please, premium coverage, from June 3 to June 17. "
    "We live in Canada.",
    "I need basic insurance for my trip next week, just me.",
    "Can you insure the four of us from the 5th of August until the 20th? We're UK residents.",
    "Add standard travel insurance for the whole family of 5.",
    "I'm flying to Tokyo on March 2nd and coming back March 16th, and I'd like coverage. "
    "I live in Australia.",
    "Premium cover for me and my partner, we are German, travelling 1 to 14 September.",
)


def requests(per_domain: int = 5, max_chars: int = 170) -> list[tuple[Domain, str]]:
    """The first short single-domain SGD train requests per domain, plus insurance ones.

    With the defaults this is the fixed set of tests/integration/test_fast_decoder.py.
    """
    picked: dict[Domain, list[str]] = {"flights": [], "hotels": [], "cars": []}
    with SGD.open() as handle:
        for line in handle:
            record = json.loads(line)
            domains = record["domains"]
            if record["kind"] != "single" or len(record["text"]) > max_chars:
                continue
            texts = picked.get(domains[0])
            if texts is not None and len(texts) < per_domain:
                texts.append(record["text"])
    picked["insurance"] = list(INSURANCE[:per_domain])
    order: tuple[Domain, ...] = ("flights", "hotels", "cars", "insurance")
    return [(domain, text) for domain in order for text in picked[domain]]


class FreeDecoder:
    """Unconstrained greedy decoding on the fast decoder's loop, without mask or forcing."""

    def __init__(self, engine: LlamaCppEngine) -> None:
        self._session = KvSession(engine._llm)
        vocab = llama_cpp.llama_model_get_vocab(engine._llm.model)
        n_vocab = int(engine._llm.n_vocab())
        self._eog = {t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)}

    def compile(self, schema_json: str) -> object:
        return None

    def decode(
        self,
        prompt: Sequence[int],
        constraint: object,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> Decoded:
        started = time.perf_counter()
        suffix = self._session.keep_common_prefix(prompt)
        row = self._session.evaluate(suffix, rows=1)[0]
        first_token_ms = (time.perf_counter() - started) * 1000.0
        out: list[int] = []
        logprobs: list[float] = []
        while True:
            token = int(np.argmax(row))
            if token in self._eog:
                return Decoded(out, logprobs, False, 0, len(suffix), first_token_ms)
            peak = float(row.max())
            logprobs.append(float(row[token]) - peak - float(np.log(np.exp(row - peak).sum())))
            out.append(token)
            if len(out) >= max_tokens:
                return Decoded(out, logprobs, True, 0, len(suffix), first_token_ms)
            row = self._session.evaluate([token], rows=1)[0]

    def forget_prefix(self) -> None:
        self._session.clear()

    def close(self) -> None:
        self._session.close()


def build_engines(threads: int = 1) -> dict[Mode, LlamaCppEngine]:
    """One engine per mode; the free one swaps its decoder for `FreeDecoder`."""
    free = LlamaCppEngine(threads=threads)
    free._decoder.close()
    free._decoder = FreeDecoder(free)
    return {
        "fast": LlamaCppEngine(threads=threads, decoder="fast"),
        "grammar": LlamaCppEngine(threads=threads, decoder="grammar"),
        "free": free,
    }


@dataclass(frozen=True)
class Sample:
    mode: Mode
    domain: Domain
    tokens_in: int
    tokens_out: int
    forced: int
    prompt_evaluated: int
    first_token_ms: float
    latency_ms: float
    parseable: bool
    schema_valid: bool


async def call(
    engine: LlamaCppEngine, mode: Mode, domain: Domain, text: str, max_tokens: int
) -> Sample:
    generation = await engine.generate_json(
        extraction_messages(domain, text), decoding_schema(DRAFTS[domain]), max_tokens=max_tokens
    )
    decoded = engine.last_decoded
    assert decoded is not None
    valid = generation.value is not None
    if valid:
        try:
            DRAFTS[domain].model_validate(generation.value)
        except ValidationError:
            valid = False
    return Sample(
        mode,
        domain,
        generation.tokens_in,
        generation.tokens_out,
        decoded.forced,
        decoded.prompt_evaluated,
        decoded.first_token_ms,
        generation.latency_ms,
        generation.json_error is None,
        valid,
    )


def rotated(turn: int) -> tuple[Mode, ...]:
    return MODES[turn % 3 :] + MODES[: turn % 3]


async def prefix_reuse(
    engines: dict[Mode, LlamaCppEngine], reqs: Sequence[tuple[Domain, str]]
) -> dict[Mode, list[tuple[Sample, Sample]]]:
    """(cold, warm) first-token samples per mode, one pair per domain."""
    pairs: dict[Mode, list[tuple[Sample, Sample]]] = {mode: [] for mode in MODES}
    by_domain: dict[Domain, list[str]] = {}
    for domain, text in reqs:
        by_domain.setdefault(domain, []).append(text)
    for turn, (domain, texts) in enumerate(by_domain.items()):
        for mode in rotated(turn):
            engine = engines[mode]
            await engine.forget_prefix()
            cold = await call(engine, mode, domain, texts[0], max_tokens=1)
            warm = await call(engine, mode, domain, texts[-1], max_tokens=1)
            pairs[mode].append((cold, warm))
    return pairs


async def generation(
    engines: dict[Mode, LlamaCppEngine], reqs: Sequence[tuple[Domain, str]]
) -> dict[Mode, list[Sample]]:
    """Every request to completion in every mode, the domain's prompt prefix cached."""
    samples: dict[Mode, list[Sample]] = {mode: [] for mode in MODES}
    warmed: set[Domain] = set()
    for turn, (domain, text) in enumerate(reqs):
        if domain not in warmed:
            warmed.add(domain)
            for mode in MODES:  # a request not in the set, so the prefix is cached
                await call(engines[mode], mode, domain, "I need to travel.", max_tokens=1)
        for mode in rotated(turn):
            samples[mode].append(await call(engines[mode], mode, domain, text, MAX_TOKENS))
    return samples


def decode_rate(samples: Sequence[Sample]) -> float:
    """Output tokens per second after the first token, over all samples together."""
    tokens = sum(s.tokens_out - 1 for s in samples)
    seconds = sum(s.latency_ms - s.first_token_ms for s in samples) / 1000.0
    return tokens / seconds


def summarize(
    pairs: dict[Mode, list[tuple[Sample, Sample]]], samples: dict[Mode, list[Sample]]
) -> dict[str, Any]:
    """The figures, ratios first; absolute numbers beside them."""
    report: dict[str, Any] = {}
    rates = {mode: decode_rate(samples[mode]) for mode in MODES}
    report["fast ÷ free, output tokens/s after the first token"] = round(
        rates["fast"] / rates["free"], 2
    )
    report["grammar ÷ free, output tokens/s after the first token"] = round(
        rates["grammar"] / rates["free"], 2
    )
    per_request = [
        (f.tokens_out / f.latency_ms) / (r.tokens_out / r.latency_ms)
        for f, r in zip(samples["fast"], samples["free"], strict=True)
    ]
    report["fast ÷ free, whole call tokens/s, median per request"] = round(
        statistics.median(per_request), 2
    )
    fast = samples["fast"]
    report["fast: share of output tokens fast-forwarded"] = round(
        sum(s.forced for s in fast) / sum(s.tokens_out for s in fast), 3
    )
    for mode in MODES:
        report[f"{mode}: tokens/s after the first token"] = round(rates[mode], 1)
        runs = samples[mode]
        report[f"{mode}: parseable / schema-valid"] = (
            f"{sum(s.parseable for s in runs)}/{len(runs)} / "
            f"{sum(s.schema_valid for s in runs)}/{len(runs)}"
        )
        report[f"{mode}: median call ms, output tokens"] = (
            f"{statistics.median(s.latency_ms for s in runs):.0f}, "
            f"{statistics.median(s.tokens_out for s in runs):.0f}"
        )
    for mode in MODES:
        cold = [c.first_token_ms for c, _ in pairs[mode]]
        warm = [w.first_token_ms for _, w in pairs[mode]]
        ratio = statistics.median(w / c for w, c in zip(warm, cold, strict=True))
        hit = statistics.median(1 - w.prompt_evaluated / w.tokens_in for _, w in pairs[mode])
        report[f"{mode}: TTFT warm ÷ cold (median per domain)"] = round(ratio, 3)
        report[f"{mode}: TTFT cold / warm ms, prefix hit rate"] = (
            f"{statistics.median(cold):.0f} / {statistics.median(warm):.0f}, {hit:.2f}"
        )
    return report


async def measure(per_domain: int = 5, threads: int = 1) -> dict[str, Any]:
    engines = build_engines(threads)
    reqs = requests(per_domain)
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        pairs = await prefix_reuse(engines, reqs)
        samples = await generation(engines, reqs)
    finally:
        for engine in engines.values():
            await engine.aclose()
    report = summarize(pairs, samples)
    report["requests, threads"] = f"{len(reqs)}, {threads}"
    report["load average before / after"] = (
        f"{load_before} / {[round(x, 2) for x in os.getloadavg()]}"
    )
    return report


def run(per_domain: int = 5, threads: int = 1) -> dict[str, Any]:
    """For the benchmark suite (bench/run.py): the figures as a flat dict."""
    return asyncio.run(measure(per_domain, threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    report = run(args.per_domain, args.threads)
    width = max(len(key) for key in report)
    print(f"| {'figure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for key, value in report.items():
        print(f"| {key:<{width}} | {value} |")


if __name__ == "__main__":
    main()
