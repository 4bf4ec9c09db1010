"""`make bench`: every benchmark in one run, written to bench/results/bench.json and bench.md.

Each figure is a ratio of two things measured side by side in this run (this machine is
shared and noisy); absolute times are reported beside them with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import decoding, orchestration, router, throughput

RESULTS = Path(__file__).resolve().parent / "results"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Skiff benchmarks — {report['meta']['when']}", "",
             f"Machine: {report['meta']['machine']}; load average before/after: "
             f"{report['meta']['load_before']} / {report['meta']['load_after']}.", ""]  # fmt: skip
    if kept_from := report["meta"].get("kept_from"):
        lines += [f"Sections not re-run in this run are kept from the run of {kept_from}.", ""]
    for section, figures in report.items():
        if section == "meta":
            continue
        lines += [f"## {section}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in figures.items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--per-domain", type=int, default=5, help="decoding: requests per domain")
    parser.add_argument("--trips", type=int, default=8, help="throughput: trips per level")
    parser.add_argument("--skip", nargs="*", default=[], choices=["decoding", "orchestration",
                        "throughput", "router"], help="sections to leave out")  # fmt: skip
    args = parser.parse_args()
    report: dict[str, Any] = {
        "meta": {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, "
            f"Python {platform.python_version()}",
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
    }
    if "decoding" not in args.skip:
        report["decoding (M5 speed, M6 prefix reuse, JSON validity)"] = decoding.run(
            args.per_domain, args.threads
        )
    if "orchestration" not in args.skip:
        report["orchestration (M1, worker over NATS vs the same engine call)"] = orchestration.run(
            args.requests, args.threads
        )
    if "router" not in args.skip:
        report["router (CPU per request: this router vs the previous one's SmolLM2 embeddings)"] = (
            router.run(300)
        )
    if "throughput" not in args.skip:
        report["throughput (M2, trips/s vs the 2-core ceiling)"] = throughput.run(
            trips_per_level=args.trips
        )
    report["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    if args.skip and (RESULTS / "bench.json").exists():
        # Sections left out keep their last results; the meta line says which run is which.
        previous = json.loads((RESULTS / "bench.json").read_text())
        kept = {k: v for k, v in previous.items() if k != "meta" and k not in report}
        if kept:
            report["meta"]["kept_from"] = previous["meta"].get("when")
            report = {"meta": report["meta"], **kept, **{k: v for k, v in report.items()
                                                         if k != "meta"}}  # fmt: skip
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "bench.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
