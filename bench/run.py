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

from bench import orchestration

RESULTS = Path(__file__).resolve().parent / "results"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Skiff benchmarks — {report['meta']['when']}", "",
             f"Machine: {report['meta']['machine']}; load average before/after: "
             f"{report['meta']['load_before']} / {report['meta']['load_after']}.", ""]  # fmt: skip
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
    args = parser.parse_args()
    report: dict[str, Any] = {
        "meta": {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, "
            f"Python {platform.python_version()}",
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
    }
    report["orchestration (worker over NATS vs the same engine call)"] = orchestration.run(
        args.requests, args.threads
    )
    report["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "bench.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
