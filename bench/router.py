"""The router's CPU per request, side by side with what the previous router spent.

    .venv/bin/python -m bench.router [--requests 300]     (and a section of `make bench`)

The shipped router (`skiff_extraction.router`: static embeddings and hashed n-grams, NumPy)
routes held-out requests; on the same requests, in the same run, the bundled SmolLM2 embeds
the same clauses through llama.cpp, one thread — what the router before it did per request
(a mean-pooled SmolLM2 embedding per clause, then a linear layer, which costs nothing beside
it). The figure is the ratio of CPU seconds (process time), interleaved request by request so
the machine's noise hits both alike. Writes bench/results/router-cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from skiff_extraction.router import load_router, segments
from skiff_inference.embeddings import LlamaEmbedder

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = REPO / "libs/models/devsets/router.jsonl"


def run(requests: int) -> dict[str, float]:
    texts = [json.loads(line)["text"] for line in HELD_OUT.open() if line.strip()]
    texts = (texts * (requests // len(texts) + 1))[:requests]
    router = load_router()
    before = LlamaEmbedder(threads=1)
    router.route(texts[0]), before.embed(texts[0])  # warm both
    now_cpu = before_cpu = 0.0
    for text in texts:
        started = time.process_time()
        router.route(text)
        now_cpu += time.process_time() - started
        started = time.process_time()
        for clause in segments(text)[1:] or [text]:
            before.embed(clause)
        before_cpu += time.process_time() - started
    return {
        "requests": len(texts),
        "router_cpu_ms_per_request": round(now_cpu / len(texts) * 1000, 3),
        "previous_router_cpu_ms_per_request": round(before_cpu / len(texts) * 1000, 3),
        "ratio_previous_over_now": round(before_cpu / max(now_cpu, 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    print(json.dumps(run(parser.parse_args().requests)))


if __name__ == "__main__":
    main()
