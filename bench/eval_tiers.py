"""The SLM alone against the SLM with the LLM tier behind it, through `skiff extract --local`.

Takes the first N single-domain records of each domain (flights, hotels, cars), runs the
real CLI on them (the shipped champions, or `--model base`) with reference date 2019-03-01
(the data's "today"), and scores every gold slot our schemas have. Writes
bench/results/eval-<tiers>[-base].json and .md. (`make eval` is `eval_slots.py`: base against
adapter on the dev split.)

Figures per domain:

* SLM alone: every record scored, an escalated record counting as nothing extracted;
* the share escalated, by reason, and the slot accuracy of what the SLM kept;
* with `--tiers slm+llm` (escalations resolved by the LLM tier, in-process: the stand-in LLM
  server unless `SKIFF_LLM__URL` is set): the accuracy after escalation, what the LLM tier
  replied (extracted / clarify / needs_escalation), its calls, and the cost of the run against
  the same tokens priced as if the LLM tier had done every step.
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
from skiff_extraction.pricing import all_llm_cost
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


def run_cli(
    domain: str,
    records: list[dict[str, Any]],
    workdir: Path,
    threads: int,
    tiers: str = "slm",
    model: str = "champion",
) -> Path:
    source = workdir / f"{domain}.in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    )
    output = workdir / f"{domain}.out.jsonl"
    skiff = Path(sys.executable).parent / "skiff"
    subprocess.run(
        [str(skiff), "extract", "--domain", domain, "--input", str(source), "--output",
         str(output), "--reference-date", REFERENCE_DATE, "--local", "--threads", str(threads),
         "--tiers", tiers, "--model", model],
        check=True,
    )  # fmt: skip
    return output


def score(domain: Domain, records: list[dict[str, Any]], output: Path) -> dict[str, Any]:
    rows = {row["id"]: row for row in map(json.loads, output.read_text().splitlines())}
    alone, kept, after = SlotScore(), SlotScore(), SlotScore()
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    llm_replies: Counter[str] = Counter()
    latencies = []
    cost = counterfactual = 0.0
    llm_calls = 0
    for record in records:
        row = rows[record["id"]]
        gold = record["gold_norm"].get(domain, {})
        by_slm = row.get("handled_by", "slm") == "slm"
        statuses[row["status"]] += 1
        if row["reason"]:
            reasons[row["reason"]] += 1
        if row["latency_ms"] is not None:
            latencies.append(row["latency_ms"])
        slm_params = row["params"] if by_slm else None
        alone.add(domain, slm_params, gold)
        if slm_params is not None:
            kept.add(domain, slm_params, gold)
        after.add(domain, row["params"], gold)
        if not by_slm:
            llm_replies[row["status"]] += 1
            llm_calls += row.get("llm_calls", 0)
        cost += row.get("cost") or 0.0
        counterfactual += all_llm_cost(row["tokens_in"] or 0, row["tokens_out"] or 0)
    latencies.sort()
    n = len(records)
    return {
        **alone.summary(),
        "kept_records": kept.records,
        "kept_slot_accuracy": round(kept.accuracy, 4),
        "escalated_share": round(sum(reasons.values()) / n, 4) if n else 0.0,
        "escalated_share_by_reason": {r: round(c / n, 4) for r, c in reasons.most_common()},
        "status": dict(statuses),
        "escalation_reasons": dict(reasons),
        "after_escalation": after.summary() if llm_replies else None,
        "llm_replies": dict(llm_replies),
        "llm_calls": llm_calls,
        "cost_usd": round(cost, 6),
        "all_llm_cost_usd": round(counterfactual, 6),
        "latency_ms_p50": latencies[len(latencies) // 2] if latencies else None,
    }


def markdown(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Slot accuracy, `skiff extract --local --tiers {meta['tiers']}` ({meta['model']}, "
        f"{meta['n']} records/domain)",
        "",
        f"Reference date {REFERENCE_DATE}; run {meta['when']}; {meta['seconds']:.0f} s total.",
        "",
        "| domain | records | gold slots | SLM alone | escalated | SLM kept: accuracy "
        "| after escalation | invented rate | exact records | p50 latency ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for domain, r in results.items():
        after = r["after_escalation"]
        after_accuracy = f"{after['slot_accuracy']:.3f}" if after else "—"
        lines.append(
            f"| {domain} | {r['records']} | {r['gold_slots']} | {r['slot_accuracy']:.3f} "
            f"| {r['escalated_share']:.3f} | {r['kept_slot_accuracy']:.3f} ({r['kept_records']}) "
            f"| {after_accuracy} | {r['invented_rate']:.3f} | {r['exact_record_rate']:.3f} "
            f"| {r['latency_ms_p50']} |"
        )
    lines += ["", "Escalated share by reason, and the LLM tier's replies:", ""]
    for domain, r in results.items():
        lines.append(f"- **{domain}**: {r['escalated_share_by_reason']}")
        if r["llm_replies"]:
            lines.append(
                f"  LLM tier: {r['llm_replies']}, {r['llm_calls']} calls; cost "
                f"${r['cost_usd']:.6f} vs ${r['all_llm_cost_usd']:.6f} all-LLM"
            )
    lines += ["", "Per slot (SLM alone):", ""]
    for domain, r in results.items():
        lines.append(f"- **{domain}**: " + ", ".join(f"{k} {v}" for k, v in r["per_slot"].items()))
        if r["after_escalation"]:
            per_slot = r["after_escalation"]["per_slot"]
            shown = ", ".join(f"{k} {v}" for k, v in per_slot.items())
            lines.append(f"  after escalation: {shown}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--domains", nargs="+", default=["flights", "hotels", "cars"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--tiers", choices=["slm", "slm+llm"], default="slm+llm")
    parser.add_argument("--model", choices=["champion", "base"], default="champion")
    parser.add_argument("--keep", type=Path, help="keep the CLI's output lines in this folder")
    args = parser.parse_args()
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for domain in args.domains:
            records = first_single_domain(args.data, domain, args.n)
            output = run_cli(domain, records, workdir, args.threads, args.tiers, args.model)
            results[domain] = score(domain, records, output)
    model = (
        "SmolLM2-135M-Instruct Q4_1 (bundled)"
        if args.model == "base"
        else "the shipped adapters on SmolLM2-135M-Instruct Q4_1"
    ) + ", llama.cpp"
    if args.tiers == "slm+llm":
        model += "; LLM tier: the stand-in (the same SmolLM2 over HTTP, retrieved examples)"
    meta = {
        "model": model,
        "tiers": args.tiers,
        "n": args.n,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.time() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"eval-{args.tiers}" + ("-base" if args.model == "base" else "")
    (args.out / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    report = markdown(results, meta)
    (args.out / f"{name}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
