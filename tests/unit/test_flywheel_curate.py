"""S2 curate and import: validation, dedup, the split by group, the manifest's hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from skiff_flywheel.curate import curate, split_of
from skiff_flywheel.dataset import (
    DatasetCorrupt,
    DatasetExists,
    Example,
    read_dataset,
    split_sha256,
    write_dataset,
)
from skiff_flywheel.sgd import import_sgd

SGD = Path(__file__).parents[2].parent / "shared" / "data" / "sgd-train"
TASK = "flights.extract"


def _call(n: int, text: str = "some text", **extra: Any) -> dict[str, Any]:
    """A micro-SLM call record of trip `t<n>` (the JSON form on the stream)."""
    return {
        "kind": "call_record", "record_id": f"c{n}", "model_id": "flights.extract/smol@1",
        "task": TASK, "tier": "slm", "trip_id": f"t{n}", "step": TASK, "valid": True,
        "latency_ms": 10.0, "tokens_in": 100, "tokens_out": 20, "input_text": text, **extra,
    }  # fmt: skip


def _accepted(
    n: int, text: str, params: dict[str, Any], draft: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    """The accepted answer of trip `t<n>`, naming its call `c<n>`."""
    return {
        "kind": "answer_accepted", "record_id": f"a{n}", "trip_id": f"t{n}", "step": TASK,
        "task": TASK, "call_record_id": f"c{n}", "answered_by": "slm",
        "model_id": "flights.extract/smol@1", "input_text": text, "draft": draft,
        "params": params, "output_digest": f"digest-{n}", **extra,
    }  # fmt: skip


def _answer(destination: str, day: int) -> dict[str, Any]:
    return {"domain": "flights", "destination": destination, "departure_date": f"2026-03-{day:02d}"}


def _draft(destination: str, day: int) -> dict[str, Any]:
    return {"destination": destination, "departure_date": f"March {day}"}


def _labelled(n: int, text: str, destination: str, day: int, **extra: Any) -> list[dict[str, Any]]:
    """A call and the accepted answer that names it."""
    answer = _accepted(n, text, _answer(destination, day), _draft(destination, day), **extra)
    return [_call(n, text), answer]


def _records() -> list[dict[str, Any]]:
    long = (
        "I would like to book a nonstop flight from Boston to Denver on March 12 "
        "for my whole family please"
    )
    return [
        *_labelled(1, long, "Denver", 12),
        *_labelled(2, "  " + long.upper() + " ", "Denver", 12),  # exact (normalised)
        *_labelled(3, long.replace("please", "thanks"), "Denver", 12),  # near
        *_labelled(4, long + "!", "Denver", 13),  # near, but another answer
        _call(5, "Flight to Denver on March 12", valid=False, reason="ungrounded"),  # unanswered
        _call(1, long, record_id="c1.1", valid=False, reason="ungrounded"),  # lost to c1
        _accepted(6, "Flight to Paris on March 12", {"domain": "flights", "passengers": 40},
                  {"passengers": 40}),  # invalid params
        _accepted(7, "Flight to Paris on March 3", _answer("Paris", 3),
                  {"seating_class": "cattle"}),  # invalid draft
        _accepted(8, "Flight to Rome on March 3", _answer("Rome", 3), None),  # no draft
        _call(9, "A hotel in Paris", task="hotels.extract"),
        _accepted(9, "A hotel in Paris", {"domain": "hotels"}, {}, task="hotels.extract"),
        _call(10, "Mirror", shadow=True),
        {"record_id": "broken", "kind": "call_record"},
        _accepted(1, long, _answer("Denver", 12), _draft("Denver", 12)),  # re-published
        *(record for i in range(40)
          for record in _labelled(100 + i, f"Fly me to city number {i} on the {i}th",
                                  "Denver", 1 + i % 28)),
    ]  # fmt: skip


def test_curate_joins_accepted_answers_validates_and_deduplicates() -> None:
    curated = curate(_records(), TASK)
    kept = {e.example_id for split in curated.splits.values() for e in split}
    assert {"a1", "a4"} <= kept
    assert not kept & {"a2", "a3", "a6", "a7", "a8", "a9"}
    assert curated.dropped == {
        "duplicate": 1, "near_duplicate": 1, "no_accepted_answer": 1, "not_accepted": 1,
        "invalid_params": 1, "invalid_draft": 1, "no_draft": 1, "other_task": 2, "shadow": 1,
        "unreadable": 1, "duplicate_record": 1,
    }  # fmt: skip
    assert len(kept) == 42
    first = next(e for s in curated.splits.values() for e in s if e.example_id == "a1")
    assert first.params["departure_date"] == "2026-03-12" and first.params["domain"] == "flights"
    assert first.spans == {"destination": "Denver", "departure_date": "March 12"}
    assert first.answered_by == "slm" and first.source == "calls"


def test_spans_keep_values_as_written_and_leave_out_nulls() -> None:
    records = [
        _call(1, "2 of us fly nonstop to Denver"),
        _accepted(1, "2 of us fly nonstop to Denver", _answer("Denver", 3),
                  {"destination": "Denver", "passengers": 2, "nonstop": True, "airline": None},
                  answered_by="llm"),
    ]  # fmt: skip
    (example,) = curate(records, TASK, eval_share=0.0).splits["train"]
    assert example.spans == {"destination": "Denver", "passengers": "2", "nonstop": "true"}
    assert example.answered_by == "llm"


def test_a_near_duplicate_with_another_answer_is_kept() -> None:
    curated = curate(_records(), TASK)
    texts = [e.text for split in curated.splits.values() for e in split]
    assert any(text.endswith("please!") for text in texts)


def test_the_split_is_deterministic_and_no_group_is_in_both() -> None:
    first = curate(_records(), TASK, eval_share=0.3)
    # Which duplicate wins follows the export's order; the split of a group never does.
    again = curate(_records(), TASK, eval_share=0.3)
    ids = {split: {e.example_id for e in first.splits[split]} for split in first.splits}
    assert ids["train"] and ids["eval"]
    assert {split: {e.example_id for e in again.splits[split]} for split in again.splits} == ids
    train_groups = {e.group for e in first.splits["train"]}
    assert not train_groups & {e.group for e in first.splits["eval"]}
    for split, examples in curate(list(reversed(_records())), TASK, eval_share=0.3).splits.items():
        assert all(split_of(example.group, 0.3) == split for example in examples)


def test_eval_share_is_respected_roughly_and_zero_means_no_eval() -> None:
    groups = [f"g{i}" for i in range(2000)]
    share = sum(split_of(g, 0.2) == "eval" for g in groups) / len(groups)
    assert 0.17 < share < 0.23
    assert curate(_records(), TASK, eval_share=0.0).splits["eval"] == []
    with pytest.raises(ValueError, match="eval_share"):
        curate(_records(), TASK, eval_share=1.5)


def _write(path: Path, examples: list[Example]) -> str:
    manifest = write_dataset(path, {"train": examples, "eval": []}, task=TASK, sources=["calls"],
                             dropped={}, eval_share=0.2)  # fmt: skip
    return manifest.sha256


def test_the_manifest_hash_is_stable_and_follows_the_content(tmp_path: Path) -> None:
    curated = curate(_records(), TASK)
    train = curated.splits["train"]
    first = _write(tmp_path / "a", train)
    assert _write(tmp_path / "b", list(reversed(train))) == first  # order does not matter
    changed = [train[0].model_copy(update={"text": train[0].text + " extra"}), *train[1:]]
    assert _write(tmp_path / "c", changed) != first
    assert _write(tmp_path / "d", train[1:]) != first
    manifest, splits = read_dataset(tmp_path / "a")
    assert manifest.sha256 == first and manifest.version == first[:12]
    assert manifest.counts == {"train": len(train), "eval": 0}
    assert splits["train"] == sorted(train, key=lambda e: (e.group, e.example_id))


def test_a_split_hash_names_its_examples_whatever_the_other_split_holds(tmp_path: Path) -> None:
    examples = curate(_records(), TASK).splits["train"]
    held_out, rest = examples[:3], examples[3:]
    hashes = []
    for name, train in (("a", rest), ("b", rest[1:])):
        manifest = write_dataset(tmp_path / name, {"train": train, "eval": held_out}, task=TASK,
                                 sources=["calls"], dropped={}, eval_share=0.2)  # fmt: skip
        _, splits = read_dataset(tmp_path / name)
        eval_bytes = (tmp_path / name / "eval.jsonl").read_bytes()
        assert split_sha256(splits["eval"]) == hashlib.sha256(eval_bytes).hexdigest()
        hashes.append((manifest.sha256, split_sha256(splits["eval"])))
    (first_dataset, first_eval), (second_dataset, second_eval) = hashes
    assert first_dataset != second_dataset and first_eval == second_eval
    assert split_sha256(list(reversed(held_out))) == first_eval != split_sha256(held_out[:2])


def test_a_dataset_is_not_overwritten_and_tampering_is_detected(tmp_path: Path) -> None:
    train = curate(_records(), TASK).splits["train"]
    _write(tmp_path, train)
    with pytest.raises(DatasetExists):
        _write(tmp_path, train)
    with (tmp_path / "train.jsonl").open("a") as handle:
        handle.write(json.dumps(train[0].model_dump(mode="json")) + "\n")
    with pytest.raises(DatasetCorrupt):
        read_dataset(tmp_path)


@pytest.mark.skipif(not (SGD / "train.jsonl").is_file(), reason="needs ../shared/data/sgd-train")
def test_import_sgd_flights_groups_by_dialogue(tmp_path: Path) -> None:
    curated = import_sgd(SGD, TASK)
    train, evaluation = curated.splits["train"], curated.splits["eval"]
    assert len(train) > 500 and len(evaluation) > 100
    assert all(e.source == "sgd" and e.params["domain"] == "flights" for e in train + evaluation)
    assert not {e.group for e in train} & {e.group for e in evaluation}
    assert all(e.group.startswith("sgd:") for e in train)
    with_iata = [e for e in train if e.params.get("destination_iata")]
    assert len(with_iata) > len(train) // 2
    manifest = write_dataset(tmp_path, curated.splits, task=TASK, sources=["sgd"],
                             dropped=curated.dropped, eval_share=0.2)  # fmt: skip
    assert manifest.counts == {"train": len(train), "eval": len(evaluation)}


def test_the_cli_curates_an_export_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from skiff_cli.flywheel_cli import flywheel_app

    export = tmp_path / "calls.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in _records()) + "not json\n")
    output = tmp_path / "dataset"
    args = ["curate", "--task", TASK, "--input", str(export), "--output", str(output)]
    result = CliRunner().invoke(flywheel_app, args)
    assert result.exit_code == 0, result.output
    manifest, splits = read_dataset(output)
    assert manifest.sources == ("calls",) and manifest.dropped["unreadable"] == 2
    assert manifest.counts["train"] + manifest.counts["eval"] == 42
    assert manifest.counts == {split: len(splits[split]) for split in splits}
    assert CliRunner().invoke(flywheel_app, args).exit_code == 1
    bad_task = ["curate", "--task", "trains.extract", "--input", str(export), "--output", "x"]
    assert CliRunner().invoke(flywheel_app, bad_task).exit_code == 1


def test_the_cli_says_2_when_nats_is_unreachable(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from skiff_cli.flywheel_cli import flywheel_app
    from skiff_runtime.nats_server import free_port

    nowhere = ["--nats-url", f"nats://127.0.0.1:{free_port()}", "--home", str(tmp_path)]
    curate_args = ["curate", "--task", TASK, "--output", str(tmp_path / "d"), *nowhere]
    result = CliRunner().invoke(flywheel_app, curate_args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "d").exists()
    export = ["export", "--output", str(tmp_path / "calls.jsonl"), *nowhere]
    assert CliRunner().invoke(flywheel_app, export).exit_code == 2
    bad = ["export", "--output", str(tmp_path / "calls.jsonl"), "--task", "flights", *nowhere]
    assert CliRunner().invoke(flywheel_app, bad).exit_code == 1
