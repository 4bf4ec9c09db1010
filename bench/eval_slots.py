"""`make eval`: slot accuracy of `skiff extract --local` on the SGD development data.

Takes the first N single-domain records of each domain (flights, hotels, cars), runs the
real CLI on them with reference date 2019-03-01 (the data's "today"), and scores every gold
slot our schemas have. Writes bench/results/eval.json and eval.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from skiff_contracts.domains import Domain
from skiff_extraction.scoring import SlotScore

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
REFERENCE_DATE = "2019-03-01"


def first_single_domain(data: Path, domain: str, n: int) -> list[dict[str, Any]]:
    picked = []
    with data.open() as handle:
        for line in handle:
            record = json.loads(line)
            if record["kind"] == "single" and record["domains"] == [domain]:
                picked.append(record)
                if len(picked) == n:
                    break
    return picked


def run_cli(domain: str, records: list[dict[str, Any]], workdir: Path, threads: int) -> Path:
    source = workdir / f"{domain}.in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    )
    output = workdir / f"{domain}.out.jsonl"
    skiff = Path(sys.executable).parent / "skiff"
    subprocess.run(
        [str(skiff), "extract", "--domain", domain, "--input", str(source), "--output",
         str(output), "--reference-date", REFERENCE_DATE, "--local", "--threads", str(threads)],
        check=True,
    )  # fmt: skip
    return output


def score(domain: Domain, records: list[dict[str, Any]], output: Path) -> dict[str, Any]:
    rows = {row["id"]: row for row in map(json.loads, output.read_text().splitlines())}
    scores = SlotScore()
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    latencies = []
    for record in records:
        row = rows[record["id"]]
        statuses[row["status"]] += 1
        if row["reason"]:
            reasons[row["reason"]] += 1
        if row["latency_ms"] is not None:
            latencies.append(row["latency_ms"])
        scores.add(domain, row["params"], record["gold_norm"].get(domain, {}))
    latencies.sort()
    return {
        **scores.summary(),
        "status": dict(statuses),
        "escalation_reasons": dict(reasons),
        "latency_ms_p50": latencies[len(latencies) // 2] if latencies else None,
    }


def markdown(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Slot accuracy, `skiff extract --local` ({meta['model']}, {meta['n']} records/domain)",
        "",
        f"Reference date {REFERENCE_DATE}; run {meta['when']}; {meta['seconds']:.0f} s total.",
        "",
        "| domain | records | gold slots | slot accuracy | invented rate | exact records "
        "| extracted | escalated | p50 latency ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for domain, r in results.items():
        lines.append(
            f"| {domain} | {r['records']} | {r['gold_slots']} | {r['slot_accuracy']:.3f} "
            f"| {r['invented_rate']:.3f} | {r['exact_record_rate']:.3f} "
            f"| {r['status'].get('extracted', 0)} | {r['status'].get('needs_escalation', 0)} "
            f"| {r['latency_ms_p50']} |"
        )
    lines += ["", "Per slot:", ""]
    for domain, r in results.items():
        lines.append(f"- **{domain}**: " + ", ".join(f"{k} {v}" for k, v in r["per_slot"].items()))
        lines.append(f"  escalations: {r['escalation_reasons']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--domains", nargs="+", default=["flights", "hotels", "cars"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            records = first_single_domain(args.data, domain, args.n)
            output = run_cli(domain, records, Path(tmp), args.threads)
            results[domain] = score(domain, records, output)
    meta = {
        "model": "SmolLM2-135M-Instruct Q4_1 (bundled), llama.cpp",
        "n": args.n,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.time() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    report = markdown(results, meta)
    (args.out / "eval.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
