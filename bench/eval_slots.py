"""`make eval`: the base model against the shipped adapters, per domain, on the dev split.

1. **Per domain** (the dev split of `libs/models/splits/<domain>.json`, imported by
   `build_models.py --steps data`, which fails if the data no longer gives that split):
   `skiff flywheel evaluate --candidate <shipped adapter> --baseline base`, both on one
   engine, side by side: slot accuracy, exact records, invented-value rate, escalation rate,
   the share the SLM keeps at its threshold (kept accuracy >= 0.97, cross-fitted) and its
   accuracy there, p50 step latency. The shipped adapter's own `evaluation.json` is that same
   command's report on the same split; it is reused when it evaluated exactly these files on
   exactly this split (`--fresh` runs it again).
2. **Trips through the router**: the dev split's SGD trip records, `skiff extract --local
   --domain auto`, once with the champions and once with `--model base`; per domain the
   slot accuracy over the domains the gold has (a domain the router missed counts as nothing
   extracted), and how often the router chose exactly the gold's domains.

Writes bench/results/eval.json and eval.md.

    python bench/eval_slots.py [--domains flights hotels cars insurance] [--fresh] [--no-trips]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from skiff_extraction.scoring import SlotScore
from skiff_flywheel.artifacts import MANIFEST, file_sha256
from skiff_flywheel.dataset import read_dataset, split_sha256

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "libs" / "models"
SHIPPED = MODELS / "skiff_models" / "adapters"
WORK = REPO / ".skiff" / "models"
SGD = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
SKIFF = Path(sys.executable).parent / "skiff"
REFERENCE_DATE = "2019-03-01"  # SGD's "today"
FIGURES = (("slot_accuracy", "slot accuracy"), ("exact_record_rate", "exact records"),
           ("invented_rate", "invented values"), ("escalation_rate", "escalated"),
           ("kept_share_at_threshold", "kept at threshold"),
           ("kept_accuracy_at_threshold", "accuracy kept"), ("p50_ms", "p50 ms"))  # fmt: skip


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def domain_report(domain: str, fresh: bool, threads: int) -> dict[str, Any]:
    run(sys.executable, str(MODELS / "build_models.py"), "--domains", domain, "--steps", "data")
    dataset = WORK / domain / "dataset"
    _, splits = read_dataset(dataset)
    shipped = SHIPPED / domain
    report_path = shipped / "evaluation.json"
    if not fresh and report_path.exists():
        report = json.loads(report_path.read_text("utf-8"))
        same_files = report["contenders"]["candidate"]["adapter_sha256"] == file_sha256(
            shipped / MANIFEST
        )
        if same_files and report.get("eval_sha256") == split_sha256(splits["eval"]):
            return {**report, "source": str(report_path.relative_to(REPO))}
    out = REPO / ".skiff" / "eval" / f"{domain}.json"
    run(str(SKIFF), "flywheel", "evaluate", "--task", f"{domain}.extract", "--dataset",
        str(dataset), "--candidate", str(shipped), "--output", str(out),
        "--target-accuracy", "0.97", "--threads", str(threads))  # fmt: skip
    return {**json.loads(out.read_text("utf-8")), "source": "skiff flywheel evaluate (this run)"}


def dev_trips() -> list[dict[str, Any]]:
    """The SGD trip records whose every domain's example is in that domain's dev split."""
    dev_ids: set[str] = set()
    for domain in ("flights", "hotels", "cars"):
        _, splits = read_dataset(WORK / domain / "dataset")
        dev_ids |= {e.example_id for e in splits["eval"]}
    trips = []
    with SGD.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["kind"] == "trip" and record["id"] in dev_ids:
                trips.append(record)
    return trips


def trip_report(trips: list[dict[str, Any]], model: str, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        source.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n"
                                  for r in trips))  # fmt: skip
        started = time.perf_counter()
        run(str(SKIFF), "extract", "--domain", "auto", "--input", str(source), "--output",
            str(output), "--reference-date", REFERENCE_DATE, "--local", "--model", model,
            "--threads", str(threads))  # fmt: skip
        seconds = time.perf_counter() - started
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    by_id: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_id[row["id"]][row["domain"]] = row
    scores: dict[str, SlotScore] = defaultdict(SlotScore)
    exact_routes = 0
    for record in trips:
        routed = by_id.get(record["id"], {})
        exact_routes += set(routed) == set(record["gold_norm"])
        for domain, gold in record["gold_norm"].items():
            row = routed.get(domain)
            params = row["params"] if row and row["status"] == "extracted" else None
            scores[domain].add(domain, params, gold)
    return {
        "model": model,
        "records": len(trips),
        "exact_route_rate": round(exact_routes / len(trips), 4) if trips else 0.0,
        "seconds": round(seconds, 1),
        "per_domain": {d: s.summary() for d, s in sorted(scores.items())},
    }


def markdown(domains: dict[str, Any], trips: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# `make eval`: base model vs shipped adapter on the dev split",
        "",
        f"Run {meta['when']}, {meta['seconds']:.0f} s, {meta['threads']} engine threads.",
        "",
        "| domain | dev examples | model | " + " | ".join(label for _, label in FIGURES) + " |",
        "|---|---|---|" + "---|" * len(FIGURES),
    ]
    for domain, report in domains.items():
        for label, key in (("base", "baseline"), ("adapter", "candidate")):
            figures = report["metrics"][key]
            cells = " | ".join(_cell(figures.get(name)) for name, _ in FIGURES)
            lines.append(f"| {domain} | {report['examples']} | {label} | {cells} |")
    per_slot = {d: {k.removeprefix("slot."): v for k, v in r["metrics"]["candidate"].items()
                    if k.startswith("slot.")} for d, r in domains.items()}  # fmt: skip
    if any(per_slot.values()):
        lines += ["", "The shipped adapter's accuracy per slot (where its errors are):", ""]
        lines += [f"- {d}: " + ", ".join(f"{k} {v:.3f}" for k, v in slots.items())
                  for d, slots in per_slot.items() if slots]  # fmt: skip
    lines += ["", "Where each row comes from:", ""]
    lines += [f"- {d}: {r['source']} (`{r['dataset_id']}`)" for d, r in domains.items()]
    if trips:
        lines += ["", f"Trips through the router (`--domain auto`), {trips[0]['records']} dev "
                  "trip records of SGD, reference date 2019-03-01:", "",
                  "| model | exact route | " + " | ".join(sorted(trips[0]["per_domain"]))
                  + " |", "|---|---|" + "---|" * len(trips[0]["per_domain"])]  # fmt: skip
        for report in trips:
            per = report["per_domain"]
            cells = " | ".join(f"{per[d]['slot_accuracy']:.3f}" for d in sorted(per))
            lines.append(f"| {report['model']} | {report['exact_route_rate']:.3f} | {cells} |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["flights", "hotels", "cars", "insurance"])
    parser.add_argument("--fresh", action="store_true", help="evaluate again, reuse nothing")
    parser.add_argument("--no-trips", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    domains = {d: domain_report(d, args.fresh, args.threads) for d in args.domains}
    trips = []
    if not args.no_trips:
        records = dev_trips()
        trips = [trip_report(records, model, args.threads) for model in ("champion", "base")]
    meta = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": time.perf_counter() - started, "threads": args.threads}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"meta": meta, "domains": domains, "trips": trips}
    (args.out / "eval.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    report = markdown(domains, trips, meta)
    (args.out / "eval.md").write_text(report, "utf-8")
    print(report)


if __name__ == "__main__":
    main()
