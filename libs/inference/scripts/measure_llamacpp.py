"""Measure the llama.cpp engine's design choices on this machine and print a Markdown report.

Run from the repository root (takes a few minutes on 2 cores):

    .venv/bin/python libs/inference/scripts/measure_llamacpp.py --threads 1 --reps 3

What it compares, always with the bundled SmolLM2-135M, the FlightsDraft schema, greedy
decoding and the same prompts, interleaved so machine noise hits every variant alike:

1. grammar: the engine's cached GBNF grammar vs llama-cpp-python's
   `response_format={"type": "json_object", "schema": ...}` (converted per call);
2. logprobs: the engine's last-token log-softmax (`logits_all=False`) vs
   llama-cpp-python's `logprobs=True, top_logprobs=0`, which needs `logits_all=True`;
3. prefix reuse: a call after a call with the same system prompt (warm) vs after a reset
   of the model state (cold), for time-to-first-token and for a whole extraction;
4. first-call cost on a fresh engine, with and without `warm_up`;
5. decode speed with and without the grammar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import LlamaGrammar

from skiff_contracts.domains import FlightsDraft
from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_inference.model_files import bundled_model_path

SCHEMA: dict[str, Any] = FlightsDraft.model_json_schema()
SYSTEM = (
    "You extract flight requests from a traveller's message into JSON. Copy places and dates "
    "exactly as the user wrote them; do not convert or guess. Fields: origin (the city the trip "
    "starts from), destination (where the traveller flies to), departure_date (as written, e.g. "
    "'next Friday' or 'March 3'), return_date (null for one-way), passengers (a number), "
    "seating_class (economy, premium_economy, business or first), airline (only if named), "
    "nonstop (true only if the user asks for a direct or nonstop flight), refundable (true only "
    "if the user asks for a refundable ticket). Use null for anything the user did not say. "
    "Example: 'Fly me from Denver to Austin on May 2, two of us, business' gives origin Denver, "
    "destination Austin, departure_date May 2, passengers 2, seating_class business. "
    "Answer with the JSON object only."
)
USERS = [
    "I need a flight from Philly to Boston next Friday for 2 people, economy please.",
    "Book me a nonstop from Seattle to San Diego on March 3, returning March 10, just me.",
    "First class to London from New York on the 5th, 3 travellers, refundable.",
]
MAX_TOKENS = 128


def chat(user: str) -> list[Any]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def med(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f}"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


async def main(threads: int, reps: int) -> None:
    print(f"# llama.cpp engine measurements (threads={threads}, reps={reps}, ", end="")
    print(f"max_tokens={MAX_TOKENS})\n")
    rss0 = rss_mb()
    engine = LlamaCppEngine(threads=threads, decoder="grammar")
    llm: Any = engine._llm
    print(f"model loaded; peak RSS {rss_mb():.0f} MB (was {rss0:.0f} MB)\n")

    # 1a. conversion costs
    schema_json = json.dumps(SCHEMA)
    to_gbnf = [
        ms(lambda: LlamaGrammar.from_json_schema(schema_json, verbose=False)) for _ in range(20)
    ]
    gbnf = LlamaGrammar.from_json_schema(schema_json, verbose=False)._grammar.encode()
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def parse_in_llama() -> None:
        llama_cpp.llama_sampler_free(llama_cpp.llama_sampler_init_grammar(vocab, gbnf, b"root"))

    parse = [ms(parse_in_llama) for _ in range(20)]
    print("## 1. Grammar\n")
    print(f"- JSON Schema -> GBNF (Python): median {statistics.median(to_gbnf):.2f} ms")
    print(
        f"- GBNF parse in llama.cpp (per sampler init): median {statistics.median(parse):.2f} ms\n"
    )

    # 1b. whole calls, same warm prefix, interleaved
    await engine.warm_up(chat(USERS[0]), SCHEMA)
    t_engine: list[float] = []
    t_rf: list[float] = []
    same = True
    for _ in range(reps):
        for user in USERS:
            # Before each measured call, a call with another user message leaves both
            # variants the same work: the system prompt cached, the user turn to prefill.
            other = chat(USERS[(USERS.index(user) + 1) % len(USERS)])
            await engine.generate_json(other, SCHEMA, max_tokens=1)
            gen = await engine.generate_json(chat(user), SCHEMA, max_tokens=MAX_TOKENS)
            t_engine.append(gen.latency_ms)
            await engine.generate_json(other, SCHEMA, max_tokens=1)
            started = time.perf_counter()
            out = llm.create_chat_completion(
                messages=chat(user),
                response_format={"type": "json_object", "schema": SCHEMA},
                temperature=0.0,
                max_tokens=MAX_TOKENS,
                repeat_penalty=1.0,
            )
            t_rf.append((time.perf_counter() - started) * 1000.0)
            same = same and out["choices"][0]["message"]["content"] == gen.raw
    print("| variant (warm prefix, whole extraction) | median ms |")
    print("|---|---|")
    print(f"| engine: cached grammar + own logprobs | {med(t_engine)} |")
    print(
        f"| create_chat_completion(response_format=json_object+schema), no logprobs | {med(t_rf)} |"
    )
    print(f"\nidentical outputs: {same}\n")

    # 2. logprobs: logits_all=True instance beside the engine's
    rss_before = rss_mb()
    with without_extra_buffer_types():
        llm_all: Any = llama_cpp.Llama(
            model_path=str(bundled_model_path()),
            n_ctx=2048,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=True,
            verbose=False,
        )
    rss_after = rss_mb()
    t_all: list[float] = []
    t_own: list[float] = []
    ttft_all_cold: list[float] = []
    ttft_own_cold: list[float] = []
    kwargs: dict[str, Any] = {
        "response_format": {"type": "json_object", "schema": SCHEMA},
        "temperature": 0.0,
        "repeat_penalty": 1.0,
    }
    llm_all.create_chat_completion(messages=chat(USERS[0]), max_tokens=2, **kwargs)
    for _ in range(reps):
        for user in USERS:
            gen = await engine.generate_json(chat(user), SCHEMA, max_tokens=MAX_TOKENS)
            t_own.append(gen.latency_ms)
            started = time.perf_counter()
            llm_all.create_chat_completion(
                messages=chat(user), max_tokens=MAX_TOKENS, logprobs=True, top_logprobs=0, **kwargs
            )
            t_all.append((time.perf_counter() - started) * 1000.0)
            llm.reset()
            ttft_own_cold.append(
                (await engine.generate_json(chat(user), SCHEMA, max_tokens=1)).latency_ms
            )
            llm_all.reset()
            started = time.perf_counter()
            llm_all.create_chat_completion(
                messages=chat(user), max_tokens=1, logprobs=True, top_logprobs=0, **kwargs
            )
            ttft_all_cold.append((time.perf_counter() - started) * 1000.0)
    scores_mb = llm_all.scores.nbytes / 1e6
    print("## 2. Per-token logprobs\n")
    print(
        "| variant | whole extraction, warm prefix, median ms | cold prefill + 1 token, median ms |"
    )
    print("|---|---|---|")
    own, own_cold = med(t_own), med(ttft_own_cold)
    print(f"| engine: logits_all=False, log-softmax of last logits | {own} | {own_cold} |")
    every, every_cold = med(t_all), med(ttft_all_cold)
    print(f"| llama-cpp-python logprobs=True (logits_all=True) | {every} | {every_cold} |")
    print(
        f"\nlogits_all=True: scores array {scores_mb:.0f} MB; peak RSS grew "
        f"{rss_after - rss_before:.0f} MB on load\n"
    )
    llm_all.close()

    # 3. prefix reuse: warm vs cold
    warm_ttft: list[float] = []
    cold_ttft: list[float] = []
    warm_full: list[float] = []
    cold_full: list[float] = []
    tokens_in: list[int] = []
    for _ in range(reps):
        for user in USERS:
            await engine.generate_json(
                chat(USERS[(USERS.index(user) + 1) % 3]), SCHEMA, max_tokens=4
            )
            gen = await engine.generate_json(chat(user), SCHEMA, max_tokens=1)
            warm_ttft.append(gen.latency_ms)
            tokens_in.append(gen.tokens_in)
            llm.reset()
            cold_ttft.append(
                (await engine.generate_json(chat(user), SCHEMA, max_tokens=1)).latency_ms
            )
            await engine.generate_json(
                chat(USERS[(USERS.index(user) + 1) % 3]), SCHEMA, max_tokens=4
            )
            warm_full.append(
                (await engine.generate_json(chat(user), SCHEMA, max_tokens=MAX_TOKENS)).latency_ms
            )
            llm.reset()
            cold_full.append(
                (await engine.generate_json(chat(user), SCHEMA, max_tokens=MAX_TOKENS)).latency_ms
            )
    system_tokens = len(
        llm.tokenize(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n".encode(), special=True)
    )
    print("## 3. Prefix reuse (second call, same system prompt, different user message)\n")
    print(
        f"prompt {statistics.median(tokens_in):.0f} tokens, of which system turn {system_tokens}\n"
    )
    print("| | warm (prefix reused) median ms | cold (state reset) median ms | warm / cold |")
    print("|---|---|---|---|")
    ratio_ttft = statistics.median(warm_ttft) / statistics.median(cold_ttft)
    ratio_full = statistics.median(warm_full) / statistics.median(cold_full)
    print(f"| prefill + 1 token (TTFT) | {med(warm_ttft)} | {med(cold_ttft)} | {ratio_ttft:.2f} |")
    print(f"| whole extraction | {med(warm_full)} | {med(cold_full)} | {ratio_full:.2f} |\n")

    # 5. decode speed with and without the grammar
    prompt = llm.tokenize(engine._render(chat(USERS[0])).encode(), add_bos=True, special=True)
    rates: dict[str, list[float]] = {"grammar": [], "free": []}
    grammar = engine._constraint_for(SCHEMA)
    for _ in range(reps):
        for name, constraint in (("grammar", grammar), ("free", None)):
            first = last = 0.0
            count = 0
            for token in llm.generate(prompt, temp=0.0, repeat_penalty=1.0, grammar=constraint):
                now = time.perf_counter()
                if count == 0:
                    first = now
                last = now
                count += 1
                if llama_cpp.llama_vocab_is_eog(vocab, token) or count >= 64:
                    break
            rates[name].append((count - 1) / (last - first))
    print("## 5. Decode speed after the first token (tokens/s, median)\n")
    print(f"- with the FlightsDraft grammar: {statistics.median(rates['grammar']):.1f}")
    print(f"- free (no grammar): {statistics.median(rates['free']):.1f}\n")
    await engine.aclose()

    # 4. first call on a fresh engine
    first_plain: list[float] = []
    second_plain: list[float] = []
    first_after_warm: list[float] = []
    warm_up_ms: list[float] = []
    for _ in range(max(1, reps - 1)):
        fresh = LlamaCppEngine(threads=threads, decoder="grammar")
        first_plain.append(
            (await fresh.generate_json(chat(USERS[0]), SCHEMA, max_tokens=MAX_TOKENS)).latency_ms
        )
        second_plain.append(
            (await fresh.generate_json(chat(USERS[0]), SCHEMA, max_tokens=MAX_TOKENS)).latency_ms
        )
        await fresh.aclose()
        fresh = LlamaCppEngine(threads=threads, decoder="grammar")
        started = time.perf_counter()
        await fresh.warm_up(chat("Hi."), SCHEMA)
        warm_up_ms.append((time.perf_counter() - started) * 1000.0)
        first_after_warm.append(
            (await fresh.generate_json(chat(USERS[0]), SCHEMA, max_tokens=MAX_TOKENS)).latency_ms
        )
        await fresh.aclose()
    print("## 4. Fresh engine\n")
    print(f"- first call {med(first_plain)} ms, the same call again {med(second_plain)} ms")
    print(
        f"- warm_up (system prompt + 'Hi.') {med(warm_up_ms)} ms, "
        f"then first real call {med(first_after_warm)} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.threads, args.reps))
