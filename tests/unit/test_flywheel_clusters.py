"""S3 cluster on constructed records and a fake embedder: reading the log, grouping, the
no_model pools, shares, costs, samples, determinism, masking."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from skiff_flywheel.clusters import Cluster, ClusterReport, cluster_calls
from skiff_flywheel.embedding import Vectors, normalize
from skiff_flywheel.logged_calls import key_set, read_calls
from skiff_flywheel.masking import mask_values

_TOPICS = {"fly": 0, "flight": 0, "hotel": 1, "room": 1, "car": 2, "train": 3}


class TopicEmbedder:
    """A vector per topic word, plus a small per-text wobble so no two texts are identical."""

    name = "topics"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.seen.extend(texts)
        rows = []
        for text in texts:
            vector = np.zeros(8)
            for word, dim in _TOPICS.items():
                if word in text.lower():
                    vector[dim] = 1.0
            wobble = np.random.default_rng(sum(map(ord, text))).random(4)
            vector[4:] = 0.1 * wobble
            rows.append(vector)
        return normalize(np.array(rows))


class SameEmbedder:
    """Every text the same vector: only the pools can keep work apart."""

    name = "same"

    def embed(self, texts: Sequence[str]) -> Vectors:
        return normalize(np.ones((len(texts), 4)))


def call(n: int, text: str, task: str = "flights.extract", tier: str = "slm", **extra: Any) -> Any:
    return {
        "record_id": f"r{n}", "model_id": f"{task}/m@1" if tier == "slm" else "llm-standin",
        "task": task, "tier": tier, "trip_id": f"t{n}", "step": task, "valid": True,
        "latency_ms": 10.0, "tokens_in": 100, "tokens_out": 20, "input_text": text,
        "cost_usd": 0.01 if tier == "slm" else 0.1, "output": {"a": 1, "b": None},
        "occurred_at": f"2026-03-{1 + n % 28:02d}T00:00:00Z", **extra,
    }  # fmt: skip


def trains(n: int, text: str) -> Any:
    return call(n, text, "trains.extract", "llm", reason="no_model")


def log() -> list[dict[str, Any]]:
    return [
        call(1, "Fly me to Boston on May 3"),
        call(2, "  fly me to BOSTON on may 3 "),  # the same request: one point, two calls
        call(3, "A flight to Denver, 2 adults"),
        call(4, "A flight to Denver, 2 adults", valid=False, reason="low_confidence"),
        call(5, "A flight to Denver, 2 adults", tier="llm", reason="low_confidence"),
        call(6, "A hotel room in Paris", "hotels.extract"),
        call(7, "Hotel in Rome for 2 nights", "hotels.extract"),
        call(8, "A flight to Oslo", "hotels.extract"),  # misrouted: the split shows it
        call(9, "Rent a car in Austin", "cars.extract"),
        trains(10, "A train from Boston to New York"),
        trains(11, "Train tickets to Lyon"),
        trains(12, "Train tickets to Lyon"),
    ]


def by_task(report: ClusterReport, task: str) -> Cluster:
    (cluster,) = [c for c in report.clusters if c.task == task]
    return cluster


def test_reading_the_log_skips_what_is_not_a_usable_call() -> None:
    records: list[Any] = [
        call(1, "Fly me to Boston"),
        call(2, "Fly me to Boston", kind="call_record"),
        call(3, "Fly me to Boston", kind="answer_accepted"),
        call(4, "Fly me to Boston", shadow=True),
        call(5, "   "),
        call(6, "Fly me to Boston", added_later_by_a_producer=1),  # ignored, not unreadable
        {},
        "not a mapping",
        {**call(7, "x"), "tier": "robot"},
    ]
    calls, skipped = read_calls(records)
    assert len(calls) == 3
    assert skipped == {"not_a_call": 1, "shadow": 1, "no_text": 1, "unreadable": 3}


def test_the_answer_is_a_valid_calls_output() -> None:
    valid = call(1, "x", output={"z": 1})
    invalid = call(2, "x", valid=False, output={"draft": None})
    calls, _ = read_calls([valid, invalid, call(3, "x")])
    assert [c.answer_keys for c in calls] == [("z",), None, ("a", "b")]
    assert key_set({"b": 1, "a": {"y": None, "x": [1]}, "e": {}}) == ("a.x", "a.y", "b", "e")


def test_clusters_group_identical_texts_and_count_shares_and_costs() -> None:
    report = cluster_calls(log(), TopicEmbedder())
    flights = by_task(report, "flights.extract")
    assert flights.calls == 6 and flights.requests == 3
    assert flights.tasks == {"flights.extract": 5, "hotels.extract": 1}
    assert flights.llm_calls == 1 and flights.llm_share == pytest.approx(1 / 6)
    assert flights.cost_usd == pytest.approx(5 * 0.01 + 0.1)
    assert flights.cost_per_call_usd == pytest.approx(0.15 / 6)
    assert flights.llm_cost_per_call_usd == pytest.approx(0.1)
    assert flights.reasons == {"low_confidence": 2}
    assert flights.samples[0] == "A flight to Denver, 2 adults"  # 3 calls: the most frequent
    assert flights.answers == 5  # the escalated call's draft is no answer
    assert [(k.keys, k.answers) for k in flights.key_sets] == [(("a", "b"), 5)]
    assert by_task(report, "hotels.extract").calls == 2
    assert by_task(report, "cars.extract").calls == 1
    assert report.used == 12 and report.records == 12 and report.skipped == {}
    assert [c.cluster_id for c in report.clusters] == ["c1", "c2", "c3", "c4"]
    assert [c.calls for c in report.clusters] == sorted((c.calls for c in report.clusters),
                                                        reverse=True)  # fmt: skip


def test_no_model_work_is_its_own_cluster_whatever_the_embeddings() -> None:
    records = [*log(), call(20, "A bus to Austin", "buses.extract", "llm", reason="no_model")]
    report = cluster_calls(records, SameEmbedder())
    assert [(c.pool, c.calls) for c in report.clusters] == [
        ("covered", 9), ("no_model:trains.extract", 3), ("no_model:buses.extract", 1)
    ]  # fmt: skip
    trains_cluster = by_task(report, "trains.extract")
    assert trains_cluster.no_model and trains_cluster.llm_share == 1.0
    assert trains_cluster.reasons == {"no_model": 3}
    assert not report.clusters[0].no_model and report.clusters[0].llm_share == pytest.approx(1 / 9)


def test_each_distinct_text_is_embedded_once_masked() -> None:
    embedder = TopicEmbedder()
    report = cluster_calls([*log(), call(30, "Fly me to Chicago on May 3")], embedder)
    # "… Boston …" and "… Chicago …" mask alike: two points, one text embedded.
    assert len(embedder.seen) == len(set(embedder.seen)) == 8
    assert "Fly me to X on # #" in embedder.seen
    assert not any("Boston" in text for text in embedder.seen)
    assert by_task(report, "flights.extract").requests == 4
    raw = TopicEmbedder()
    report = cluster_calls(log(), raw, mask=False)
    # Unmasked, the tidiest spelling of a request stands for it.
    assert "Fly me to Boston on May 3" in raw.seen and len(raw.seen) == 8
    assert "values kept" in report.method


def test_the_report_does_not_depend_on_the_logs_order() -> None:
    first = cluster_calls(log(), TopicEmbedder())
    shuffled = log()
    random.Random(7).shuffle(shuffled)
    second = cluster_calls(shuffled, TopicEmbedder())
    timings = {"embed_seconds", "cluster_seconds"}
    assert first.model_dump(exclude=timings) == second.model_dump(exclude=timings)


def test_the_threshold_decides_what_merges() -> None:
    usual = cluster_calls(log(), TopicEmbedder())
    tight = cluster_calls(log(), TopicEmbedder(), threshold=0.001)
    loose = cluster_calls(log(), TopicEmbedder(), threshold=1.5)
    assert len([c for c in usual.clusters if not c.no_model]) == 3
    assert len([c for c in tight.clusters if not c.no_model]) > 3
    assert [c.pool for c in loose.clusters] == ["covered", "no_model:trains.extract"]
    with pytest.raises(ValueError, match="threshold"):
        cluster_calls(log(), TopicEmbedder(), threshold=0)


def test_past_max_points_the_rest_join_the_nearest_cluster() -> None:
    full = cluster_calls(log(), TopicEmbedder())
    capped = cluster_calls(log(), TopicEmbedder(), max_points=3)
    assert [(c.task, c.calls) for c in capped.clusters] == [
        (c.task, c.calls) for c in full.clusters
    ]


def test_the_report_round_trips_through_json() -> None:
    report = cluster_calls(log(), TopicEmbedder())
    assert ClusterReport.model_validate_json(report.model_dump_json()) == report


def test_an_empty_log_has_no_clusters() -> None:
    report = cluster_calls([{}, call(1, "x", shadow=True)], TopicEmbedder())
    assert report.clusters == () and report.skipped == {"shadow": 1, "unreadable": 1}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Fly me from San Francisco to Boston on March 12th.", "Fly me from X to X on # #."),
        ("I need 2 rooms at 10:30 on Friday, [NAME] pays", "I need # rooms at # on #, [NAME] pays"),
        ("Boston to Denver. Then a car.", "Boston to X. Then a car."),
        ("A flight to San Francisco, then Oakland", "A flight to X, then X"),
        ("I'd like a train", "I'd like a train"),
    ],
)  # fmt: skip
def test_masking_keeps_the_kind_of_request_and_drops_its_values(text: str, masked: str) -> None:
    assert mask_values(text) == masked
