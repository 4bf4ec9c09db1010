"""The conversion loop's before/after report: one entry per `skiff flywheel run` iteration.

Each iteration appends an `Iteration` to `<workdir>/iterations.jsonl`; the report is made
from all of them: `report.json`, `report.md` (a table of what each iteration moved) and
`report.svg` (slot accuracy of the serving model and the task's live SLM share, per
iteration). "Before" is the champion the iteration started from, "after" the candidate it
trained; live SLM share is read from the registry at the start of the iteration and at its
end (the end of the rollout wait).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skiff_cli.registry_page import line_chart, rate
from skiff_contracts.base import utc_now

ITERATIONS = "iterations.jsonl"
OFFLINE = ("slot_accuracy", "valid_rate", "escalation_rate", "kept_share_at_threshold", "p50_ms")


class Iteration(BaseModel):
    """What one turn of the loop did and measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iteration: int
    task: str
    started_at: datetime
    finished_at: datetime = Field(default_factory=utc_now)
    dataset: dict[str, Any] = Field(description="id, source, counts per split")
    training: dict[str, Any] = Field(description="steps, duration, final loss, machine")
    baseline_model: str | None
    candidate_model: str
    offline: dict[str, dict[str, float]] = Field(description="baseline and candidate figures")
    live_slm_share_before: float | None = None
    live_slm_share_after: float | None = None
    outcome: str = Field(description="the candidate's status (and rollout) at the end")
    moves: tuple[str, ...] = Field(default=(), description="the rollout's moves, with why")


def load(workdir: Path) -> list[Iteration]:
    path = workdir / ITERATIONS
    if not path.exists():
        return []
    return [Iteration.model_validate_json(line) for line in path.read_text().splitlines() if line]


def append(workdir: Path, iteration: Iteration) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / ITERATIONS).open("a", encoding="utf-8") as handle:
        handle.write(iteration.model_dump_json() + "\n")


def _figure(values: dict[str, float], name: str) -> str:
    value = values.get(name)
    if value is None:
        return "—"
    return f"{value:.0f}" if name.endswith("_ms") else f"{value:.3f}"


def markdown(iterations: Sequence[Iteration]) -> str:
    if not iterations:
        return "# Conversion loop\n\nNo iteration yet.\n"
    task = iterations[-1].task
    lines = [f"# Conversion loop: {task}", ""]
    head = "| iteration | dataset (train/eval) | training | figure | before | after |"
    lines += [head, "|---|---|---|---|---|---|"]
    for it in iterations:
        counts = it.dataset.get("counts", {})
        data = f"{it.dataset.get('id', '?')} ({counts.get('train', '?')}/{counts.get('eval', '?')})"
        steps = f"{it.training.get('steps', '?')} steps, {it.training.get('duration_s', '?')} s"
        rows = [(name, _figure(it.offline.get("baseline", {}), name),
                 _figure(it.offline.get("candidate", {}), name)) for name in OFFLINE]  # fmt: skip
        rows.append(
            ("live SLM share", rate(it.live_slm_share_before), rate(it.live_slm_share_after))
        )
        for n, (name, before, after) in enumerate(rows):
            first = (str(it.iteration), data, steps) if n == 0 else ("", "", "")
            lines.append(f"| {' | '.join(first)} | {name} | {before} | {after} |")
    lines += ["", "Before: the champion the iteration started from (offline figures on the eval "
              "split, live share from the registry at the start). After: the candidate it "
              "trained, and the live share when the iteration ended.", ""]  # fmt: skip
    for it in iterations:
        lines.append(f"- iteration {it.iteration}: {it.candidate_model} → {it.outcome}")
        lines.extend(f"  - {move}" for move in it.moves)
    return "\n".join(lines) + "\n"


def svg(iterations: Sequence[Iteration]) -> str:
    """Two charts side by side: slot accuracy of the model serving after each iteration
    (the candidate when it became champion, else the baseline), and the live SLM share."""
    accuracy = [
        (it.finished_at, it.offline.get("candidate" if it.outcome.startswith("champion")
                                        else "baseline", {}).get("slot_accuracy"))
        for it in iterations
    ]  # fmt: skip
    share = [(it.finished_at, it.live_slm_share_after) for it in iterations]
    left = line_chart(accuracy, metric="slot_accuracy", title="slot accuracy serving",
                      fmt=rate, y_max=1.0)  # fmt: skip
    right = line_chart(share, metric="slm_share", title="live SLM share", fmt=rate, y_max=1.0)
    style = (
        "<style>.axis{stroke:#888}.line{fill:none;stroke:#1f6feb;stroke-width:2}"
        "text{font:11px sans-serif}.chart-title{font-weight:bold}</style>"
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="660" height="130">'
        f"{style}<g>{left}</g><g transform='translate(330,0)'>{right}</g></svg>\n"
    )


def write(workdir: Path) -> tuple[Path, Path, Path]:
    """report.json, report.md and report.svg from every iteration so far."""
    iterations = load(workdir)
    paths = (workdir / "report.json", workdir / "report.md", workdir / "report.svg")
    data = [json.loads(it.model_dump_json()) for it in iterations]
    paths[0].write_text(json.dumps({"iterations": data}, indent=2) + "\n", "utf-8")
    paths[1].write_text(markdown(iterations), "utf-8")
    paths[2].write_text(svg(iterations), "utf-8")
    return paths
