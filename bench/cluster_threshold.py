"""S3's clustering threshold, measured: purity and cluster sizes on SGD requests per cut.

`python -m bench.cluster_threshold`. Samples `--per-domain` single-domain SGD requests per
domain (flights, hotels, cars) with each of `--seeds`, embeds them with the packaged
all-MiniLM-L6-v2 with and without value masking (`skiff_flywheel.masking`), and cuts the
average-linkage tree at each threshold. Per cut: the number of clusters, the purity (share of
requests whose domain is their cluster's majority domain) and the largest sizes. Also, for
the hand-written train requests of the tests, their mean cosine similarity to each other and
to the SGD requests, and the height at which their own tree closes. Writes
bench/results/cluster-threshold.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from skiff_flywheel.clusters import linkage_tree
from skiff_flywheel.embedding import MiniLmEmbedder, Vectors
from skiff_flywheel.masking import mask_values

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
TRAINS = REPO / "tests" / "fixtures" / "train_requests.txt"
RESULTS = REPO / "bench" / "results"
DOMAINS = ("flights", "hotels", "cars")
THRESHOLDS = (0.45, 0.5, 0.55, 0.58, 0.6, 0.62, 0.64, 0.66, 0.68, 0.7)


def sample(rows: list[dict[str, Any]], seed: int, per_domain: int) -> tuple[list[str], list[str]]:
    """`per_domain` single-domain requests of each domain, and their domains."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for domain in DOMAINS:
        mine = [r for r in rows if r["kind"] == "single" and r["domains"] == [domain]]
        for row in rng.sample(mine, per_domain):
            texts.append(row["text"])
            labels.append(domain)
    return texts, labels


def cuts(vectors: Vectors, labels: list[str]) -> list[dict[str, Any]]:
    """Clusters, purity and the largest sizes at each threshold."""
    from scipy.cluster.hierarchy import fcluster

    tree = linkage_tree(vectors)
    out = []
    for threshold in THRESHOLDS:
        members: dict[int, Counter[str]] = {}
        cut = fcluster(tree, t=threshold, criterion="distance")
        for cluster, label in zip(cut.tolist(), labels, strict=True):
            members.setdefault(cluster, Counter())[label] += 1
        pure = sum(counts.most_common(1)[0][1] for counts in members.values())
        sizes = sorted((sum(counts.values()) for counts in members.values()), reverse=True)
        out.append(
            {
                "threshold": threshold,
                "clusters": len(members),
                "purity": round(pure / len(labels), 4),
                "largest": sizes[:5],
            }
        )
    return out


def run(embedder: MiniLmEmbedder, texts: list[str], labels: list[str], masked: bool) -> Any:
    """One sample, raw or masked: its cuts and the train requests' figures."""
    show = mask_values if masked else str
    trains_text = TRAINS.read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    vectors = embedder.embed([show(t) for t in texts])
    seconds = time.perf_counter() - started
    trains = embedder.embed([show(t) for t in trains_text])
    n = len(trains_text)
    within = float(((trains @ trains.T).sum() - n) / (n * n - n))
    return {
        "masked": masked,
        "texts": len(texts),
        "embed_s": round(seconds, 2),
        "trains_within": round(within, 3),
        "trains_to_sgd": round(float((trains @ vectors.T).mean()), 3),
        "trains_tree_top": round(float(linkage_tree(trains)[-1, 2]), 3),
        "cuts": cuts(vectors, labels),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# S3 clustering threshold ({report['model']}, {report['per_domain']} per domain)",
        "",
        "| seed | values | threshold | clusters | purity | largest |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        values = "masked" if r["masked"] else "raw"
        for c in r["cuts"]:
            cells = [r["seed"], values, c["threshold"], c["clusters"], c["purity"], c["largest"]]
            lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    lines += [
        "",
        "| seed | values | embed s | trains within | trains to SGD | trains tree top |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        cells = [r["seed"], "masked" if r["masked"] else "raw", r["embed_s"], r["trains_within"],
                 r["trains_to_sgd"], r["trains_tree_top"]]  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    embedder = MiniLmEmbedder()
    runs = []
    for seed in args.seeds:
        texts, labels = sample(rows, seed, args.per_domain)
        for masked in (False, True):
            runs.append({"seed": seed, **run(embedder, texts, labels, masked)})
    report = {
        "model": embedder.name,
        "load_s": round(embedder.load_seconds, 2),
        "per_domain": args.per_domain,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster-threshold.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "cluster-threshold.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
