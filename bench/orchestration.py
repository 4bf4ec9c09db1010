"""Orchestration cost: a worker step over NATS against the same engine call made directly.

One nats-server, one real flights worker process (the bundled model, `threads` threads), and,
in this process, the same engine on the same prompts. Calls alternate — direct, then through
the worker — so both see the same machine load. Ratios are per request; the table reports
their median.

    step time   publish `ExtractTask` → `Extracted` read back from RESULTS (what the planner sees)
    raw time    `LlamaCppEngine.generate_json` on the identical messages and schema
    library     llama-cpp-python's own `create_chat_completion(response_format=json_object+schema)`
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import nats

from skiff_contracts import subjects
from skiff_contracts.domains import DRAFTS
from skiff_contracts.messages import WORKER_RESULT, ExtractTask
from skiff_extraction.prompts import extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_inference.model_files import bundled_model_path
from skiff_runtime.jetstream import WORKER_CONSUMERS, apply_layout, wait_until_consuming
from skiff_runtime.nats_server import NatsServer

REPO = Path(__file__).resolve().parents[1]
SGD = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"


def requests(n: int, domain: str = "flights") -> list[str]:
    texts = []
    with SGD.open() as handle:
        for line in handle:
            record = json.loads(line)
            if record["kind"] == "single" and record["domains"] == [domain]:
                texts.append(record["text"])
                if len(texts) == n:
                    break
    return texts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Sample:
    raw_ms: float
    step_ms: float
    worker_engine_ms: float
    tokens_out: int
    library_ms: float
    library_tokens: int


async def measure(n: int, threads: int) -> dict[str, Any]:
    texts = requests(n)
    schema = decoding_schema(DRAFTS["flights"])
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "nats").start()
        connection = await nats.connect(server.url)
        js = connection.jetstream()
        await apply_layout(js)
        env = {**os.environ, "SKIFF_NATS_URL": server.url, "SKIFF_DOMAIN": "flights",
               "SKIFF_ENGINE__THREADS": str(threads), "SKIFF_LOG_FORMAT": "json",
               "SKIFF_METRICS_PORT": "0"}  # fmt: skip
        log = (Path(tmp) / "services.log").open("wb")
        # The worker registers its model version before it consumes: the registry must run.
        registry = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "skiff_registry", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "skiff_worker", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            await wait_until_consuming(js, [WORKER_CONSUMERS["flights"]], timeout_s=300)
            results = await js.subscribe(subjects.result("flights"), ordered_consumer=True)

            cold_engine = LlamaCppEngine(threads=threads)
            started = time.perf_counter()
            await cold_engine.generate_json(extraction_messages("flights", texts[0]), schema)
            first_call_ms = 1000 * (time.perf_counter() - started)
            started = time.perf_counter()
            await cold_engine.generate_json(extraction_messages("flights", texts[1]), schema)
            second_call_ms = 1000 * (time.perf_counter() - started)
            await cold_engine.aclose()

            engine = LlamaCppEngine(threads=threads)
            await engine.warm_up(extraction_messages("flights", "warm up"), schema)
            with without_extra_buffer_types():
                from llama_cpp import Llama

                library = Llama(str(bundled_model_path()), n_threads=threads,
                                n_threads_batch=threads, n_ctx=2048, verbose=False)  # fmt: skip
            samples = []
            for index, text in enumerate(texts):
                messages = extraction_messages("flights", text)
                raw = await engine.generate_json(messages, schema)

                started = time.perf_counter()
                response: Any = library.create_chat_completion(
                    messages=list(messages),  # type: ignore[arg-type]
                    response_format={"type": "json_object", "schema": schema},
                    temperature=0.0, max_tokens=160,
                )  # fmt: skip
                library_ms = 1000 * (time.perf_counter() - started)

                task = ExtractTask(
                    message_id=f"bench-{index}", trip_id=f"bench-{index}", step="flights.extract",
                    domain="flights", text=text, reference_date=date(2019, 3, 1),
                )  # fmt: skip
                started = time.perf_counter()
                await js.publish(
                    subjects.task("flights", "extract"),
                    task.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": task.message_id},
                )
                reply = WORKER_RESULT.validate_json((await results.next_msg(timeout=300)).data)
                step_ms = 1000 * (time.perf_counter() - started)
                assert reply.trip_id == task.trip_id and reply.call is not None  # type: ignore[union-attr]
                samples.append(Sample(
                    raw_ms=raw.latency_ms, step_ms=step_ms,
                    worker_engine_ms=reply.call.latency_ms,  # type: ignore[union-attr]
                    tokens_out=raw.tokens_out, library_ms=library_ms,
                    library_tokens=response["usage"]["completion_tokens"],
                ))  # fmt: skip
            rss = peak_rss_mb(worker.pid)
        finally:
            for process in (worker, registry):
                process.terminate()
                await process.wait()
            await connection.close()
            server.stop()
    ratios = [s.step_ms / s.raw_ms for s in samples]
    overhead = [s.step_ms - s.worker_engine_ms for s in samples]
    worker_tps = [s.tokens_out / (s.step_ms / 1000) for s in samples]
    library_tps = [s.library_tokens / (s.library_ms / 1000) for s in samples]
    return {
        "requests": len(samples),
        "threads": threads,
        "step_over_raw_p50": round(statistics.median(ratios), 3),
        "step_over_raw_p95": round(percentile(ratios, 0.95), 3),
        "orchestration_ms_p50": round(statistics.median(overhead), 1),
        "orchestration_ms_p95": round(percentile(overhead, 0.95), 1),
        "worker_over_library_tokens_per_s_p50": round(
            statistics.median(w / lib for w, lib in zip(worker_tps, library_tps, strict=True)), 3
        ),
        "worker_tokens_per_s_p50": round(statistics.median(worker_tps), 1),
        "library_tokens_per_s_p50": round(statistics.median(library_tps), 1),
        "step_ms_p50": round(statistics.median(s.step_ms for s in samples), 1),
        "step_ms_p95": round(percentile([s.step_ms for s in samples], 0.95), 1),
        "first_call_ms": round(first_call_ms, 1),
        "warm_call_ms": round(second_call_ms, 1),
        "warm_over_first_call": round(second_call_ms / first_call_ms, 3),
        "worker_peak_rss_mb": round(rss, 1),
    }


def run(n: int = 20, threads: int = 1) -> dict[str, Any]:
    return asyncio.run(measure(n, threads))


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
