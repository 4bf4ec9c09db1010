"""Shipping an adapter with Skiff: its files, card, evaluation and model card as package data.

`skiff flywheel register --ship DIR` writes, instead of a registry entry, a directory the
`skiff_models` package carries (`libs/models/skiff_models/adapters/<domain>/`):

    training.json, adapter.gguf, peft/   copied from the trained adapter, checked against
                                         its manifest first (so the card's sha256 holds)
    card.json                            the model card, `adapter` left empty: each
                                         installation fills in where it put the directory
    evaluation.json                      the `skiff flywheel evaluate` report it was shipped on
    README.md                            the model card for people: what, how, how well

The directory is written under a temporary name and renamed into place, so a failed ship
leaves the previous one whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from skiff_contracts.registry import ModelCard
from skiff_flywheel.artifacts import MANIFEST, verify
from skiff_flywheel.evaluate import EvaluationReport
from skiff_flywheel.registration import BASELINE, CANDIDATE
from skiff_flywheel.training_record import TrainingRecord

CARD = "card.json"
REPORT = "evaluation.json"
README = "README.md"
SHOWN = (
    ("slot_accuracy", "slot accuracy (an escalated step counts as nothing extracted)"),
    ("exact_record_rate", "exact records"),
    ("invented_rate", "invented-value rate"),
    ("escalation_rate", "escalation rate"),
    ("kept_share_at_threshold", "share the SLM keeps at its threshold (cross-fitted)"),
    ("kept_accuracy_at_threshold", "accuracy on what it keeps"),
    ("p50_ms", "p50 step latency, ms (2 CPU threads)"),
)


def ship(adapter_dir: Path, report: EvaluationReport, card: ModelCard, destination: Path) -> Path:
    """Write the shipped directory for `card` (see the module docstring); returns it."""
    files = verify(adapter_dir, card.adapter_sha256)
    partial = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for name in (MANIFEST, *files):
        target = partial / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(adapter_dir / name, target)
    unplaced = card.model_copy(update={"adapter": None})
    (partial / CARD).write_text(unplaced.model_dump_json(indent=2) + "\n", "utf-8")
    (partial / REPORT).write_text(report.model_dump_json(indent=2) + "\n", "utf-8")
    record = TrainingRecord.model_validate_json((adapter_dir / MANIFEST).read_text("utf-8"))
    sizes = {name: (partial / name).stat().st_size for name in files}
    (partial / README).write_text(model_card(card, record, report, sizes), "utf-8")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


def model_card(
    card: ModelCard, record: TrainingRecord, report: EvaluationReport, sizes: dict[str, int]
) -> str:
    """The README of a shipped adapter."""
    config = record.hyperparameters
    base, tuned = report.metrics[BASELINE], report.metrics[CANDIDATE]
    threshold = card.confidence_threshold
    lines = [
        f"# {card.model_id}",
        "",
        f"LoRA adapter of {record.base_model.name} for `{card.task}`: it reads a traveller's "
        "request and writes the domain's draft (values as written), which the worker grounds "
        f"and checks. Served with prompt `{card.prompt_version}` on llama.cpp "
        "(`adapter.gguf`) or SGLang (`peft/`).",
        "",
        "## Training",
        "",
        f"- data: `{record.dataset.version}` ({record.dataset.sequences} examples; skipped "
        f"{record.dataset.skipped or 'none'}), split manifest `libs/models/splits/"
        f"{record.domain}.json`",
        f"- LoRA rank {config.rank}, alpha {config.alpha}, dropout {config.dropout}, on "
        f"{', '.join(config.target_modules)}; AdamW lr {config.learning_rate:g} "
        f"({config.schedule}), batch {config.batch_size}, {record.epochs:.2f} epochs = "
        f"{record.steps} steps, seed {record.seed}",
        f"- {record.duration_s / 60:.0f} min on {record.machine.cpu_count} CPU cores "
        f"({record.machine.torch_threads} torch threads), final loss {record.final_loss:.4f}",
        "- rebuild: `make models` (`libs/models/build_models.py`, settings in "
        "`libs/models/recipe.json`)",
        "",
        f"## Evaluation: {report.examples} dev examples of `{report.dataset_id}`",
        "",
        "| figure | base model (few-shot prompt) | this adapter |",
        "|---|---|---|",
    ]
    for name, label in SHOWN:
        lines.append(f"| {label} | {_figure(base.get(name))} | {_figure(tuned.get(name))} |")
    shown = "none reaches it" if threshold is None else f"{threshold:.2f}"
    lines += [
        "",
        f"Confidence threshold (card): {shown}, the lowest at which the kept accuracy reaches "
        f"{report.target_accuracy:.2f} on the dev split; below it a step escalates "
        "(`low_confidence`). `skiff calibrate` moves it on the registry's card.",
        "",
        "## Files",
        "",
        *(f"- `{name}`: {size / 1e6:.1f} MB" for name, size in sorted(sizes.items())),
        "",
    ]
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}" if value < 10 else f"{value:.0f}"
