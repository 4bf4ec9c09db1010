"""S3 and S4 on the real embedding model (all-MiniLM-L6-v2 from its package) and a realistic
log: SGD requests for flights, hotels and cars served by the micro-SLM (a tenth of them
escalated to the LLM tier), plus a dozen train-ticket requests that no micro-SLM covers.

Stated figures: the covered clusters reach a call-weighted purity of at least 0.95 (measured
1.0 on this mix), the three largest covered clusters are flights, hotels and cars, and the
trains work is one cluster with LLM share 1.0 that ranks first as a candidate. The model's
load and embedding times are printed (`-s`) as a JSON line.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff_contracts.domains import REQUESTS, Domain
from skiff_extraction.pricing import DEFAULT_PRICES, LLM_STANDIN_MODEL, price
from skiff_flywheel.candidates import rank_candidates
from skiff_flywheel.catalog import DEFAULT_CATALOG, load_catalog
from skiff_flywheel.clusters import ClusterReport, cluster_calls

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]
SGD = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
PER_DOMAIN = 40
SLM = "SmolLM2-135M-Instruct.Q4_1"
DOMAINS: tuple[Domain, ...] = ("flights", "hotels", "cars")

# Hand-written: SGD has no train requests, and the router sends these to the LLM tier.
TRAINS = (REPO / "tests" / "fixtures" / "train_requests.txt").read_text().splitlines()
TRAIN_KEYS = ("origin", "destination", "departure_date", "return_date", "passengers", "seat_class")


def _sgd(domain: Domain) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in SGD.read_text(encoding="utf-8").splitlines()]
    mine = sorted(
        (r for r in rows if r["kind"] == "single" and r["domains"] == [domain]),
        key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest(),
    )
    return mine[:PER_DOMAIN]


def _record(n: int, task: str, tier: str, text: str, **fields: Any) -> dict[str, Any]:
    tokens_in, tokens_out = (700, 40) if tier == "slm" else (1500, 60)
    model = SLM if tier == "slm" else LLM_STANDIN_MODEL
    return {
        "record_id": f"r{n}", "model_id": model, "task": task, "tier": tier, "trip_id": f"t{n}",
        "step": task, "latency_ms": 50.0, "tokens_in": tokens_in, "tokens_out": tokens_out,
        "cost_usd": price(model, tokens_in, tokens_out, DEFAULT_PRICES), "input_text": text,
        "occurred_at": f"2026-03-{1 + n % 28:02d}T10:00:00Z", **fields,
    }  # fmt: skip


def call_log() -> Iterator[dict[str, Any]]:
    """The mix: each SGD request once (every tenth also escalated), each train request 3 times."""
    n = 0
    for domain in DOMAINS:
        params = REQUESTS[domain]().model_dump(mode="json")
        for i, row in enumerate(_sgd(domain)):
            n += 1
            task = f"{domain}.extract"
            if i % 10:
                yield _record(n, task, "slm", row["text"], valid=True, output=params)
            else:
                yield _record(n, task, "slm", row["text"], valid=False, reason="low_confidence")
                yield _record(n, task, "llm", row["text"], valid=True, reason="low_confidence",
                              output=params)  # fmt: skip
    for i, text in enumerate(TRAINS):
        answer = dict.fromkeys(TRAIN_KEYS)
        if "Amtrak" in text:
            answer["operator"] = "Amtrak"  # an LLM adding a field: the schema is not quite stable
        for _ in range(3):
            n += 1
            cost = price(LLM_STANDIN_MODEL, 900, 60, DEFAULT_PRICES)
            yield _record(n, "trains.extract", "llm", text, valid=True, reason="no_model",
                          output=answer, tokens_in=900, tokens_out=60, cost_usd=cost)  # fmt: skip
        if i == 0:
            yield {
                "kind": "answer_accepted",
                **_record(n + 1000, "trains.extract", "llm", text, valid=True),
            }


@pytest.fixture(scope="module")
def report() -> ClusterReport:
    from skiff_flywheel.embedding import MiniLmEmbedder

    records = list(call_log())
    embedder = MiniLmEmbedder(threads=2)
    started = time.perf_counter()
    result = cluster_calls(records, embedder)
    figures = {
        "test": "flywheel_clusters_model", "records": len(records), "calls": result.used,
        "distinct_texts": sum(c.requests for c in result.clusters),
        "load_s": round(embedder.load_seconds, 2), "embed_s": round(embedder.embed_seconds, 2),
        "cluster_s": result.cluster_seconds, "total_s": round(time.perf_counter() - started, 2),
        "clusters": len(result.clusters),
    }  # fmt: skip
    print(json.dumps(figures))
    return result


def purity(report: ClusterReport) -> float:
    """Share of covered calls whose task is their cluster's majority task."""
    covered = [c for c in report.clusters if not c.no_model]
    return sum(c.tasks[c.task] for c in covered) / sum(c.calls for c in covered)


def test_the_clusters_separate_the_domains(report: ClusterReport) -> None:
    covered = [c for c in report.clusters if not c.no_model]
    print(json.dumps({"purity": round(purity(report), 4), "covered_clusters": len(covered),
                      "sizes": [c.calls for c in covered]}))  # fmt: skip
    assert purity(report) >= 0.95
    biggest = sorted(covered, key=lambda c: -c.calls)[:3]
    assert {c.task for c in biggest} == {f"{d}.extract" for d in DOMAINS}
    # Three domains are most of the log: the rest is at most a few stray requests.
    assert sum(c.calls for c in biggest) >= 0.9 * sum(c.calls for c in covered)
    flights = next(c for c in biggest if c.task == "flights.extract")
    assert 0 < flights.llm_share < 0.2 and flights.reasons.get("low_confidence", 0) >= 2


def test_trains_are_one_cluster_all_llm(report: ClusterReport) -> None:
    trains = [c for c in report.clusters if c.task == "trains.extract"]
    assert len(trains) == 1
    (cluster,) = trains
    assert cluster.no_model and cluster.pool == "no_model:trains.extract"
    assert (cluster.calls, cluster.requests, cluster.llm_share) == (36, 12, 1.0)
    assert cluster.reasons == {"no_model": 36}
    assert report.skipped == {"not_a_call": 1}
    assert all("train" in sample.lower() for sample in cluster.samples)


def test_trains_rank_first_as_a_candidate(report: ClusterReport) -> None:
    ranking = rank_candidates(
        report, load_catalog(DEFAULT_CATALOG), catalog_source=str(DEFAULT_CATALOG)
    )
    top = ranking.candidates[0]
    print(json.dumps({"top": top.model_dump(mode="json", exclude={"samples"})}))
    assert top.task == "trains.extract" and top.eligible and top.llm_share == 1.0
    assert top.stability == pytest.approx(33 / 36)
    assert top.base_model == "SmolLM2-135M-Instruct"
    assert top.savings_usd > max(c.savings_usd for c in ranking.candidates[1:])
