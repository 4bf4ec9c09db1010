"""`make models`: rebuild the shipped adapters from the repo and `../shared/data` alone.

For each domain, with Skiff's own conversion loop, resumable at every step:

1. **data**: write the generated requests (`skiff_flywheel.synthetic`, seeded), then
   `skiff flywheel import` (SGD split by dialogue; generated records to train; a hand-written
   dev set to eval) and check the split against its committed manifest
   (`libs/models/splits/<domain>.json`: ids, counts, content hash), so every figure is on
   the same dev split; `--write-splits` records it instead (after an intended change);
2. **train**: `skiff flywheel train --resume` with the recipe's settings (`recipe.json`),
   checkpointing as it goes, so an interrupted build continues where it stopped;
3. **evaluate**: `skiff flywheel evaluate` on the dev split (`--limit N`: its first N
   examples), base model against the adapter, the confidence threshold chosen for kept
   accuracy >= the recipe's target;
4. **ship**: `skiff flywheel register --ship` writes the adapter, its card, evaluation and
   training record into the package (`skiff_models/adapters/<domain>/`).

`curve` is separate: the dev-split accuracy of the adapter at its checkpoints (training
examples seen), written to bench/results/models-curve.{json,md}.

    python libs/models/build_models.py [--domains flights ...] [--steps data train evaluate ship]
    python libs/models/build_models.py curve --domains hotels --limit 120
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skiff_flywheel.artifacts import MANIFEST, file_sha256
from skiff_flywheel.dataset import read_dataset, split_sha256
from skiff_flywheel.synthetic import records

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SGD = REPO.parent / "shared" / "data" / "sgd-train"
RECIPE = HERE / "recipe.json"
SPLITS = HERE / "splits"
DEVSETS = HERE / "devsets"
SHIPPED = HERE / "skiff_models" / "adapters"
SKIFF = Path(sys.executable).parent / "skiff"
STEPS = ("data", "train", "evaluate", "ship")


def skiff(*args: str) -> None:
    print("+ skiff", " ".join(args), flush=True)
    subprocess.run([str(SKIFF), *args], check=True)


def recipe() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RECIPE.read_text("utf-8"))
    return loaded


def data(domain: str, plan: dict[str, Any], work: Path, eval_share: float, write: bool) -> None:
    generated = work / "generated.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    with generated.open("w", encoding="utf-8") as out:
        for record in records(plan["generated"], seed=0, focus=domain):  # type: ignore[arg-type]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    args = ["flywheel", "import", "--task", f"{domain}.extract", "--output",
            str(work / "dataset"), "--eval-share", str(eval_share), "--overwrite",
            "--train-only", str(generated)]  # fmt: skip
    if plan["sgd"]:
        args += ["--source", str(SGD)]
    if plan["devset"]:
        args += ["--eval-only", str(DEVSETS / plan["devset"])]
    skiff(*args)
    split = split_manifest(work / "dataset")
    committed = SPLITS / f"{domain}.json"
    if write or not committed.exists():
        SPLITS.mkdir(parents=True, exist_ok=True)
        committed.write_text(json.dumps(split, indent=1) + "\n", "utf-8")
        print(f"split manifest written: {committed}")
    elif json.loads(committed.read_text("utf-8")) != split:
        raise SystemExit(
            f"{domain}: the imported split differs from {committed} (pass --write-splits after "
            "an intended change to the data, and say so: every figure moves with it)"
        )


def split_manifest(dataset: Path) -> dict[str, Any]:
    """What makes a split the same split: its ids, counts, sources and content hash."""
    manifest, splits = read_dataset(dataset)
    return {
        "task": manifest.task,
        "sha256": manifest.sha256,
        "eval_sha256": split_sha256(splits["eval"]),
        "sources": list(manifest.sources),
        "eval_share": manifest.eval_share,
        "counts": manifest.counts,
        "dropped": manifest.dropped,
        "eval_ids": sorted(e.example_id for e in splits["eval"]),
        "train_ids": sorted(e.example_id for e in splits["train"]),
    }


def train(domain: str, plan: dict[str, Any], work: Path, threads: int, dtype: str) -> None:
    skiff("flywheel", "train", "--task", f"{domain}.extract", "--dataset", str(work / "dataset"),
          "--output", str(work / "adapter"), "--epochs", str(plan["epochs"]),
          "--rank", str(plan["rank"]), "--alpha", str(plan["alpha"]),
          "--learning-rate", str(plan["learning_rate"]), "--batch-size", str(plan["batch_size"]),
          "--threads", str(threads), "--checkpoint-every", "10", "--keep-checkpoints", "40",
          "--export-dtype", dtype, "--resume")  # fmt: skip


def evaluate(domain: str, work: Path, target: float, threads: int, limit: int | None) -> None:
    report = work / "evaluation.json"
    if report.exists():
        done = json.loads(report.read_text("utf-8"))
        adapter = file_sha256(work / "adapter" / MANIFEST)
        if done["contenders"]["candidate"]["adapter_sha256"] == adapter:
            print(f"{report}: already evaluated this adapter")
            return
    skiff("flywheel", "evaluate", "--task", f"{domain}.extract", "--dataset",
          str(work / "dataset"), "--candidate", str(work / "adapter"), "--output", str(report),
          "--target-accuracy", str(target), "--threads", str(threads),
          *(["--limit", str(limit)] if limit else []))  # fmt: skip


def ship(domain: str, work: Path, version: str) -> None:
    skiff("flywheel", "register", "--task", f"{domain}.extract", "--adapter",
          str(work / "adapter"), "--evaluation", str(work / "evaluation.json"),
          "--version", version, "--ship", str(SHIPPED / domain))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["build", "curve"], default="build")
    parser.add_argument("--domains", nargs="+", default=["flights", "hotels", "cars", "insurance"])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--work", type=Path, default=REPO / ".skiff" / "models")
    parser.add_argument("--write-splits", action="store_true")
    parser.add_argument("--limit", type=int, help="evaluate / curve: the first N dev examples")
    args = parser.parse_args()
    settings = recipe()
    started = time.perf_counter()
    if args.command == "curve":
        from curve import learning_curve  # the flywheel extra's heavy imports, only here

        learning_curve(args.domains, args.work, settings, args.limit)
        return
    for domain in args.domains:
        plan = settings["domains"][domain]
        work = args.work / domain
        if "data" in args.steps:
            data(domain, plan, work, settings["eval_share"], args.write_splits)
        if "train" in args.steps:
            train(domain, plan, work, settings["threads"], settings["export_dtype"])
        if "evaluate" in args.steps:
            evaluate(domain, work, settings["target_accuracy"], settings["threads"], args.limit)
        if "ship" in args.steps:
            ship(domain, work, settings["version"])
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
