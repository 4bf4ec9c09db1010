"""The conversion loop's real run on the SGD development data: base vs fine-tuned, per domain.

For each of flights, hotels and cars, through the real CLI: `skiff flywheel import` (split by
dialogue, so no dialogue is in both splits) → `skiff flywheel train` (LoRA on the first
`--train` examples of the train split) → `skiff flywheel evaluate` (the bundled base model
with its few-shot prompt against base + the adapter with its own prompt, side by side, on
the first `--eval` examples of the eval split). Writes bench/results/finetune-sgd.json and
.md: slot accuracy, the share the SLM keeps at its calibrated threshold (cross-fitted, see
`skiff_flywheel.evaluate`), escalation rate, latency and tokens, with the training time and
machine.

    python -m bench.finetune_sgd [--domains flights hotels cars] [--train 640] [--eval 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skiff_flywheel.artifacts import MANIFEST, file_sha256

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sgd-train"
SKIFF = Path(sys.executable).parent / "skiff"
FIGURES = ("slot_accuracy", "kept_accuracy", "valid_rate", "escalation_rate",
           "threshold", "kept_share_at_threshold", "kept_accuracy_at_threshold",
           "invented_rate", "p50_ms", "tokens_in_mean")  # fmt: skip


def skiff(*args: str) -> None:
    subprocess.run([str(SKIFF), *args], check=True)


def one_domain(domain: str, work: Path, train: int, evaluate: int, epochs: int) -> dict[str, Any]:
    task = f"{domain}.extract"
    folder = work / domain
    skiff("flywheel", "import", "--task", task, "--source", str(DATA),
          "--output", str(folder / "dataset"), "--overwrite")  # fmt: skip
    started = time.perf_counter()
    skiff("flywheel", "train", "--task", task, "--dataset", str(folder / "dataset"),
          "--output", str(folder / "adapter"), "--limit", str(train), "--epochs", str(epochs),
          "--share-prefix", "--resume")  # fmt: skip
    train_wall = time.perf_counter() - started
    if not _evaluated(folder, evaluate):
        skiff("flywheel", "evaluate", "--task", task, "--dataset", str(folder / "dataset"),
              "--candidate", str(folder / "adapter"), "--limit", str(evaluate),
              "--output", str(folder / "evaluation.json"))  # fmt: skip
    record = json.loads((folder / "adapter" / "training.json").read_text())
    report = json.loads((folder / "evaluation.json").read_text())
    manifest = json.loads((folder / "dataset" / "manifest.json").read_text())
    return {
        "domain": domain,
        "dataset": {"version": manifest["version"], "counts": manifest["counts"]},
        "training": {"examples": train, "steps": record["steps"], "epochs": record["epochs"],
                     "duration_s": record["duration_s"], "wall_s": round(train_wall, 1),
                     "final_loss": record["final_loss"], "machine": record["machine"],
                     "hyperparameters": record["hyperparameters"]},
        "evaluation": {"examples": report["examples"], "duration_s": report["duration_s"],
                       "target_accuracy": report["target_accuracy"],
                       "base": report["metrics"]["baseline"],
                       "fine_tuned": report["metrics"]["candidate"]},
    }  # fmt: skip


def _evaluated(folder: Path, examples: int) -> bool:
    """A finished evaluation of this adapter on this many examples (a rerun picks up there)."""
    report_path = folder / "evaluation.json"
    if not report_path.exists():
        return False
    report = json.loads(report_path.read_text())
    adapter_sha = report["contenders"]["candidate"]["adapter_sha256"]
    manifest_sha = file_sha256(folder / "adapter" / MANIFEST)
    return bool(report["examples"] == examples and adapter_sha == manifest_sha)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# Fine-tuned vs base on the SGD eval split (`python -m bench.finetune_sgd`)", ""]
    machine = rows[0]["training"]["machine"] if rows else {}
    lines.append(f"Machine: {machine}. Load average at the end: {os.getloadavg()[0]:.2f}.")
    lines += ["", "| domain | figure | base | fine-tuned |", "|---|---|---|---|"]
    for row in rows:
        base, tuned = row["evaluation"]["base"], row["evaluation"]["fine_tuned"]
        for name in FIGURES:
            lines.append(f"| {row['domain']} | {name} | {_f(base.get(name))} | "
                         f"{_f(tuned.get(name))} |")  # fmt: skip
    lines += ["", "| domain | train examples | steps | epochs | training time | eval examples |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        t, e = row["training"], row["evaluation"]
        lines.append(f"| {row['domain']} | {t['examples']} | {t['steps']} | {t['epochs']:.2f} | "
                     f"{t['duration_s']:.0f} s | {e['examples']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", nargs="+", default=["flights", "hotels", "cars"])
    parser.add_argument("--train", type=int, default=640)
    parser.add_argument("--eval", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / ".skiff" / "finetune-sgd")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    rows = [one_domain(d, args.work, args.train, args.eval, args.epochs) for d in args.domains]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "finetune-sgd.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "finetune-sgd.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
