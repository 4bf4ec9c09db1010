"""M2 — throughput: trips per second through the whole stack against what 2 cores allow.

The ceiling is computed, not assumed: the same four extractions a trip needs are timed
directly on one thread (the engine as the workers run it), so one trip costs `t` CPU-seconds
of inference and the machine can do at most `cores / t` trips per second. The achieved rate
is a closed loop of `c` concurrent clients, each submitting its next trip when the last one
finishes, through the real local stack (planner, four workers, inventory, registry, NATS).
Both are measured in this run; the ratio is what the table reports.

Where the time goes: at each level, the CPU seconds every process of the stack used (from
/proc, user + system) while the level ran, as shares of the machine's capacity over the
level's wall time (cores × seconds): the workers' inference, the planner (its router embeds
every clause), the LLM tier, the inventory, the registry, nats-server, and what was left
idle. A profile by process, cheap enough to take on every run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from skiff_cli import stack
from skiff_cli.client import SkiffClient
from skiff_contracts.domains import DOMAINS, DRAFTS
from skiff_contracts.events import TripFinished, TripNeedsInput
from skiff_contracts.messages import TripRequest
from skiff_extraction.prompts import extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_inference.llamacpp import LlamaCppEngine

TRIP = (
    "Fly me from Boston to Denver on 12 March, back on the 16th, 2 adults. Book a hotel in "
    "Denver for those nights, rent a compact car at the Denver airport on the 12th, and add "
    "basic travel insurance for both of us."
)


def reference_date(index: int) -> date:
    """Each trip a year apart: the same text (the demo trip, which the model reads right)
    books other dates, so the supplier's finite stock never runs out across the run (a
    sold-out trip compensates: cheaper, and not the work being measured)."""
    return date(2026 + index, 3, 1)


async def inference_seconds_per_trip(repeats: int = 3) -> float:
    """Single-thread engine time of one trip's four extractions (warm, median of repeats)."""
    engines = {d: LlamaCppEngine(threads=1) for d in DOMAINS}
    totals = []
    try:
        for domain, engine in engines.items():
            await engine.warm_up(
                extraction_messages(domain, "warm up"), decoding_schema(DRAFTS[domain])
            )
        for _ in range(repeats):
            total = 0.0
            for domain, engine in engines.items():
                generation = await engine.generate_json(
                    extraction_messages(domain, TRIP), decoding_schema(DRAFTS[domain])
                )
                total += generation.latency_ms / 1000
            totals.append(total)
    finally:
        for engine in engines.values():
            await engine.aclose()
    return statistics.median(totals)


async def one_trip(client: SkiffClient, index: int) -> tuple[float, str]:
    request = TripRequest(text=TRIP, reference_date=reference_date(index),
                          client_request_id=f"bench-{time.time_ns()}-{index}")  # fmt: skip
    started = time.perf_counter()
    accepted = await client.submit(request)
    state = "lost"
    asked = False
    async for event in client.events(accepted.trip_id, timeout_s=600):
        if isinstance(event, TripNeedsInput) and not asked:
            # A question waits for a person; the benchmark has none, so it calls the trip off
            # and reports it as such rather than waiting out the question's timeout.
            asked = True
            await client.cancel(accepted.trip_id, reason="benchmark: no one to answer")
        if isinstance(event, TripFinished):
            state = "needs_input" if asked else event.state
    return time.perf_counter() - started, state


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def processes(running: stack.Stack) -> dict[str, int | None]:
    named = {s.name: s.pid for s in running.services}
    return {**named, "nats-server": running.nats_pid}


def cpu_shares(
    before: dict[str, float], after: dict[str, float], elapsed: float, cores: int
) -> dict[str, float]:
    """Each process's CPU over the level as a share of cores × wall time; and `idle`."""
    capacity = cores * elapsed
    shares = {name: round((after[name] - before[name]) / capacity, 3) for name in before}
    shares["idle"] = round(max(0.0, 1 - sum(shares.values())), 3)
    return shares


async def closed_loop(
    url: str, home: Path, concurrency: int, trips: int, first: int
) -> dict[str, Any]:
    latencies: list[float] = []
    states: list[str] = []
    counter = iter(range(first, first + trips))

    async def client_loop() -> None:
        async with await SkiffClient.connect(url, home=home) as client:
            for index in counter:
                seconds, state = await one_trip(client, index)
                latencies.append(seconds)
                states.append(state)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "trips": trips,
        "trips_per_s": trips / elapsed,
        "p50_trip_s": round(statistics.median(latencies), 2),
        "p95_trip_s": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 2),
        "completed": states.count("completed"),
        "outcomes": dict(sorted(Counter(states).items())),
        "elapsed_s": elapsed,
    }


def run(levels: tuple[int, ...] = (1, 4, 8), trips_per_level: int = 8) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    per_trip = asyncio.run(inference_seconds_per_trip())
    ceiling = cores / per_trip
    report: dict[str, Any] = {
        "cores": cores,
        "inference_s_per_trip_1_thread": round(per_trip, 2),
        "ceiling_trips_per_s": round(ceiling, 4),
    }
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        running = stack.up(Path(tmp), threads=1)
        try:
            first = 0
            pids = processes(running)
            for level in levels:
                trips = max(level, trips_per_level)
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                result = asyncio.run(
                    closed_loop(running.nats_url, running.home, level, trips, first)
                )
                after = {name: cpu_seconds(pid) for name, pid in pids.items()}
                report[f"c{level}_cpu_shares"] = cpu_shares(
                    before, after, result["elapsed_s"], cores
                )
                first += trips
                report[f"c{level}_trips_per_s"] = round(result["trips_per_s"], 4)
                report[f"c{level}_over_ceiling"] = round(result["trips_per_s"] / ceiling, 3)
                report[f"c{level}_p50_trip_s"] = result["p50_trip_s"]
                report[f"c{level}_p95_trip_s"] = result["p95_trip_s"]
                report[f"c{level}_completed"] = f"{result['completed']}/{result['trips']}"
                report[f"c{level}_outcomes"] = result["outcomes"]
        finally:
            stack.down(Path(tmp))
    return report


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
