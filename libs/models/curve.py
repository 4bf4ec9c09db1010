"""The learning curve behind the recipe: dev-split accuracy at a run's checkpoints.

For each domain, the adapter's run keeps its checkpoints (`build_models.py` trains with
`--keep-checkpoints 40`); a quarter, half, three quarters and all of the way through, the
checkpoint is exported like a finished adapter and scored on the first `limit` dev examples
(the same examples at every point), alone, by `skiff_flywheel.evaluate`. The x axis is the
training examples seen (steps x batch). The schedule is the full run's (cosine over all of
it), so an early point is that run part way, not a shorter run. Written to
bench/results/models-curve.{json,md}.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from skiff_flywheel.base_model import load_base
from skiff_flywheel.checkpoints import checkpoint_root
from skiff_flywheel.dataset import read_dataset
from skiff_flywheel.evaluate import Contender, evaluate
from skiff_flywheel.training_config import TrainingConfig
from skiff_flywheel.training_run import export_checkpoint
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_inference.model_files import bundled_model_path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
FIGURES = ("slot_accuracy", "exact_record_rate", "invented_rate", "escalation_rate",
           "kept_share_at_threshold", "kept_accuracy_at_threshold")  # fmt: skip


def _points(adapter: Path) -> list[Path]:
    steps = sorted(p for p in checkpoint_root(adapter).iterdir() if p.name.startswith("step-"))
    if not steps:
        return []
    wanted = [steps[-1]]
    for fraction in (0.25, 0.5, 0.75):
        target = int(steps[-1].name.removeprefix("step-")) * fraction
        wanted.append(min(steps, key=lambda p: abs(int(p.name.removeprefix("step-")) - target)))
    return sorted(set(wanted))


def learning_curve(
    domains: list[str], work: Path, recipe: dict[str, Any], limit: int | None
) -> list[dict[str, Any]]:
    base = load_base(bundled_model_path())
    rows: list[dict[str, Any]] = []
    results = RESULTS / "models-curve.json"
    if results.exists():
        rows = [r for r in json.loads(results.read_text("utf-8")) if r["domain"] not in domains]
    for domain in domains:
        plan = recipe["domains"][domain]
        adapter = work / domain / "adapter"
        record = json.loads((adapter / "training.json").read_text("utf-8"))
        config = TrainingConfig.model_validate(record["hyperparameters"])
        _, splits = read_dataset(work / domain / "dataset")
        examples = splits["eval"][:limit] if limit else splits["eval"]
        for checkpoint in _points(adapter):
            step = int(checkpoint.name.removeprefix("step-"))
            exported = export_checkpoint(
                checkpoint, work / domain / "curve" / checkpoint.name, task=f"{domain}.extract",
                config=config, base=base,
            )  # fmt: skip
            started = time.perf_counter()
            engine = LlamaCppEngine(threads=recipe["threads"])
            try:
                contender = Contender("candidate", config.prompt_version, adapter_dir=exported)
                figures = asyncio.run(
                    evaluate(engine, domain, examples, [contender],  # type: ignore[arg-type]
                             target_accuracy=recipe["target_accuracy"])
                )["candidate"]  # fmt: skip
            finally:
                asyncio.run(engine.aclose())
            rows.append({
                "domain": domain, "step": step, "examples_seen": step * config.batch_size,
                "epochs": round(step * config.batch_size / record["dataset"]["sequences"], 2),
                "train_examples": record["dataset"]["sequences"], "dev_examples": len(examples),
                "rank": plan["rank"], "learning_rate": plan["learning_rate"],
                "seconds": round(time.perf_counter() - started, 1),
                **{name: figures.get(name) for name in FIGURES},
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            results.write_text(json.dumps(rows, indent=1) + "\n", "utf-8")
            (RESULTS / "models-curve.md").write_text(markdown(rows), "utf-8")
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Learning curve of the shipped adapters (`python libs/models/build_models.py curve`)",
        "",
        "Dev-split accuracy at checkpoints of each domain's `make models` run, the same dev",
        "examples at every point; threshold figures for kept accuracy >= 0.97, cross-fitted.",
        "",
        "| domain | step | examples seen | epochs | dev examples | slot accuracy | exact records "
        "| invented | escalated | kept at threshold | accuracy kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["domain"], r["step"])):
        cells = [_cell(r.get(name)) for name in FIGURES]
        lines.append(
            f"| {r['domain']} | {r['step']} | {r['examples_seen']} | {r['epochs']} "
            f"| {r['dev_examples']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
