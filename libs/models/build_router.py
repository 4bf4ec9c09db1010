"""`make router`: train the candidate routers, choose one by its dev figures, ship it.

    .venv/bin/python libs/models/build_router.py [--generated 4000] [--seed 13]

Each candidate (`CANDIDATES`: which features, how strongly regularised) is trained on the
train split, calibrated on the dev split and measured on the held-out sets (SGD's test
dialogues, the hand-written router set, the hand-written insurance set) with its CPU
milliseconds per request. The candidate with the best dev figures is written to
`skiff_extraction/data/router.npz` with its card; the comparison goes to
`bench/results/router.md` and `bench/results/router.json`. About two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from skiff_flywheel.router_data import RouterSources
from skiff_flywheel.router_training import RouterRecipe, build_router

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
SHIPPED = REPO / "libs/extraction/skiff_extraction/data/router.npz"
RESULTS = REPO / "bench/results"
VERSION = "2.1.0"
CANDIDATES = {
    "ngrams": RouterRecipe(features=("ngrams",), c=4.0),
    "static": RouterRecipe(features=("static",), c=16.0),
    "static+ngrams, C=1": RouterRecipe(features=("static", "ngrams")),
    "static+ngrams": RouterRecipe(features=("static", "ngrams"), c=4.0),
    "static+ngrams, one-vs-rest": RouterRecipe(
        features=("static", "ngrams"), c=4.0, link="sigmoid"
    ),
}


FIGURES = ("single_recall", "single_exact", "multi_exact", "non_travel_given_travel",
           "unsupported_named", "escalated")  # fmt: skip
SETS = ("dev", "sgd-test", "written", "insurance-devset")


def markdown(results: dict[str, Any], chosen: str, before: dict[str, dict[str, Any]]) -> str:
    """The comparison: every candidate on every set, the routers before this one beside it."""
    lines = [
        "# Router: candidates compared", "",
        "`python libs/models/build_router.py` (`make router`). Sets: `dev` (SGD dev dialogues "
        "and the hand-written dev set: thresholds and bands are calibrated there), `sgd-test` "
        "(SGD's other held-out dialogues), `written` (231 hand-written requests no step saw), "
        "`insurance-devset` (64 hand-written insurance requests). Figures are the router's own "
        "(SLM only): `escalated` is the share it hands to the LLM tier (a label in its "
        "uncertainty band, or nothing found); an escalated request counts as not routed here. "
        "`ms` is the mean wall time per request in this process.", "",
        f"Chosen (best dev figures): **{chosen}**.", "",
        "| router | set | " + " | ".join(FIGURES) + " | ms |",
        "|---|---|" + "---|" * (len(FIGURES) + 1),
    ]  # fmt: skip
    rows = [*results.items(), *before.items()]
    for name, figures in rows:
        for set_name in SETS:
            if set_name not in figures:
                continue
            m = figures[set_name]
            cells = ["–" if m.get(f) is None else f"{m[f]:.3f}" for f in FIGURES]
            ms = m.get("ms_per_request", {}).get("mean")
            lines.append(f"| {name} | {set_name} | " + " | ".join(cells) + f" | {ms} |")
    return "\n".join(lines) + "\n"


def earlier_routers() -> dict[str, dict[str, Any]]:
    """The figures of the routers shipped before, as measured when they shipped."""
    earlier = {
        "before: SmolLM2 embeddings + linear (commit 7859ea0)": RESULTS / "router-before.json",
        "router 2.0.0 (static+ngrams, C=1; commit 968eed7)": RESULTS / "router-2.0.0.json",
    }
    return {label: json.loads(path.read_text()) for label, path in earlier.items()
            if path.exists()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generated", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    sources = RouterSources(
        sgd_intents=DATA / "sgd-intents", sgd_train=DATA / "sgd-train",
        written=REPO / "libs/models/devsets/router.jsonl",
        written_dev=REPO / "libs/models/devsets/router-dev.jsonl",
        insurance=REPO / "libs/models/devsets/insurance.jsonl",
        generated=args.generated, seed=args.seed,
    )  # fmt: skip
    built = build_router(sources, CANDIDATES, name="skiff-router", version=VERSION,
                         progress=lambda line: print(line, flush=True))  # fmt: skip
    built.model.save(SHIPPED)
    chosen, results = built.chosen, built.results
    (RESULTS / "router.json").write_text(json.dumps({"chosen": chosen, "candidates": results},
                                                    indent=1) + "\n")  # fmt: skip
    (RESULTS / "router.md").write_text(markdown(results, chosen, earlier_routers()))
    print(f"chose {chosen}; wrote {SHIPPED.relative_to(REPO)}")


if __name__ == "__main__":
    main()
