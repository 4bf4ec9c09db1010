"""S3 of the conversion loop: cluster the logged requests to find recurring work.

`cluster_calls` reads call records, groups identical requests (the same text after case
folding and collapsing white space: one point, its calls counted as volume), embeds each
distinct request once with its values masked (`masking`: clusters should follow the kind of
work, not the cities), and clusters the points. Each cluster is reported with its volume,
the task that handles it (majority, and the split when mixed), its LLM share, its cost, its
escalation reasons, the shapes of its answers (for S4's schema stability) and samples.

**Pools first.** Points are clustered within a *pool*, never across pools:

* `covered`: every call of a task that has a micro-SLM (any reason but `no_model`), all
  tasks together, so a cluster whose requests reach several tasks shows up as mixed;
* `no_model:<task>`, one pool per task the router named but no micro-SLM serves (calls the
  LLM tier took with reason `no_model`, e.g. `trains.extract`).

So work with no micro-SLM always forms its own cluster(s), by construction, whatever the
embeddings say: it is exactly the work S4 should see whole, and a train request that reads
like a flight request must not disappear into the flights cluster. A task whose champion was
retired shows its `no_model` calls as a separate cluster from its earlier SLM calls, which is
what it is now: work that goes to the LLM every time.

**Method.** Agglomerative clustering with average linkage on cosine distance, cut where the
mean distance between two groups exceeds `threshold` (`scipy.cluster.hierarchy`, which
scikit-learn's `AgglomerativeClustering` also calls for this linkage). It is deterministic
(points are sorted by text before clustering, so the log's order does not matter), needs no
number of clusters, and the threshold reads as "merge while the requests are on average at
least 1 − threshold similar". Average linkage rather than single (which chains across domains
through a few mixed requests) or complete (splits a domain into many small clusters).

**Threshold.** The default, 0.55, was measured with all-MiniLM-L6-v2 on SGD requests (two
samples of 600, 200 per domain; `python -m bench.cluster_threshold`, figures in
`bench/results/cluster-threshold.md`). Masked, flights, hotels and cars never share a
cluster up to a cut at 0.60 (purity 0.998 and 1.0: a stray request), with hotels sometimes
split in two (about 150 + 50) and a singleton or two; from 0.62 hotels and cars merge. The
tests' twelve hand-written train requests form one cluster from 0.445. 0.55 sits in that
window. Unmasked, SGD separates up to 0.66 but the train requests only join at 0.725.

**Scale.** Above `max_points` distinct requests in a pool, the most frequent `max_points` are
clustered, the rest join the cluster with the nearest centroid when within `threshold` of it,
and those left are clustered the same way in turn. This bounds the distance matrix's memory
(`max_points`² floats) at the price of an approximation.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from skiff_flywheel.curate import normalize_text
from skiff_flywheel.embedding import Embedder, FlywheelExtraMissing, Vectors, normalize
from skiff_flywheel.logged_calls import KeySet, LoggedCall, read_calls
from skiff_flywheel.masking import mask_values

NO_MODEL = "no_model"
COVERED = "covered"
DEFAULT_THRESHOLD = 0.55
DEFAULT_SAMPLES = 3
MAX_POINTS = 4000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeySetCount(_Frozen):
    """One shape of the cluster's answers and how many answers had it."""

    keys: KeySet
    answers: int


class Cluster(_Frozen):
    """One recurring kind of request and what it costs today."""

    cluster_id: str = Field(description="c1, c2, … by volume")
    pool: str = Field(description="'covered' or 'no_model:<task>'")
    no_model: bool = Field(description="no micro-SLM serves it: every call went to the LLM tier")
    task: str = Field(description="the task that handles most of its calls")
    tasks: dict[str, int] = Field(description="calls by task: the split when mixed")
    calls: int = Field(description="volume: calls, identical requests each counted")
    requests: int = Field(description="distinct requests (after case and white-space folding)")
    llm_calls: int
    llm_share: float = Field(description="share of its calls served by the LLM tier")
    cost_usd: float
    cost_per_call_usd: float
    llm_cost_usd: float
    llm_cost_per_call_usd: float = Field(description="0 when the LLM tier took none of it")
    llm_tokens_in: int
    llm_tokens_out: int
    p95_tokens: int = Field(description="95th percentile of tokens in + out per call")
    reasons: dict[str, int] = Field(description="escalation reasons, by calls")
    models: dict[str, int] = Field(description="calls by model id")
    answers: int = Field(description="calls with an answer to read the schema from")
    key_sets: tuple[KeySetCount, ...] = Field(description="answer shapes, most frequent first")
    cohesion: float = Field(description="mean cosine similarity of its requests to the centroid")
    samples: tuple[str, ...] = Field(description="most frequent, then most typical requests")


class ClusterReport(_Frozen):
    """S3's report: the clusters of one call log and how they were made."""

    method: str
    embedder: str
    threshold: float
    records: int = Field(description="records read")
    used: int = Field(description="calls clustered")
    skipped: dict[str, int] = Field(description="records left out, by reason")
    first_at: datetime | None = None
    last_at: datetime | None = None
    embed_seconds: float = 0.0
    cluster_seconds: float = 0.0
    clusters: tuple[Cluster, ...] = ()


@dataclass
class _Point:
    """One distinct request of a pool and its calls."""

    key: str
    text: str
    calls: list[LoggedCall] = field(default_factory=list)


def pool_of(call: LoggedCall) -> str:
    """The pool a call is clustered in (see the module's docstring)."""
    return f"{NO_MODEL}:{call.task}" if call.reason == NO_MODEL else COVERED


def cluster_calls(
    records: Iterable[Mapping[str, Any]],
    embedder: Embedder,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    samples: int = DEFAULT_SAMPLES,
    max_points: int = MAX_POINTS,
    mask: bool = True,
) -> ClusterReport:
    """Cluster the requests of `records` (dicts in `CallRecord` JSON form). With `mask`, the
    text embedded is the request with its values masked (`masking`)."""
    if not 0 < threshold < 2:
        raise ValueError(f"threshold is a cosine distance in (0, 2), not {threshold}")
    rows = list(records)
    calls, skipped = read_calls(rows)
    pools = _pools(calls)
    shown = mask_values if mask else str
    # Each distinct text to embed once: requests that differ only in their values mask alike.
    embedded_as = {(name, p.key): shown(p.text) for name, pool in pools.items() for p in pool}
    texts = sorted(set(embedded_as.values()))
    started = time.perf_counter()
    vectors = normalize(embedder.embed(texts)) if texts else None
    embedded = time.perf_counter()
    row_of = {text: i for i, text in enumerate(texts)}
    clusters: list[Cluster] = []
    for name in sorted(pools):
        points = pools[name]
        assert vectors is not None  # a pool has at least one point
        matrix = vectors[[row_of[embedded_as[name, point.key]] for point in points]]
        labels = _labels(matrix, [len(point.calls) for point in points], threshold, max_points)
        for label in sorted(set(labels)):
            members = [i for i, mine in enumerate(labels) if mine == label]
            clusters.append(_cluster(name, [points[i] for i in members], matrix[members], samples))
    finished = time.perf_counter()
    ordered = sorted(clusters, key=lambda c: (-c.calls, c.pool, c.samples))
    times = [call.occurred_at for call in calls]
    return ClusterReport(
        method=(
            f"average-linkage agglomerative on cosine distance, cut at {threshold}, "
            f"values {'masked' if mask else 'kept'}"
        ),
        embedder=embedder.name,
        threshold=threshold,
        records=len(rows),
        used=len(calls),
        skipped=dict(sorted(skipped.items())),
        first_at=min(times, default=None),
        last_at=max(times, default=None),
        embed_seconds=round(embedded - started, 3),
        cluster_seconds=round(finished - embedded, 3),
        clusters=tuple(
            c.model_copy(update={"cluster_id": f"c{n}"}) for n, c in enumerate(ordered, 1)
        ),
    )


def _pools(calls: Sequence[LoggedCall]) -> dict[str, list[_Point]]:
    """Distinct requests per pool, each pool sorted by its folded text."""
    points: dict[str, dict[str, _Point]] = defaultdict(dict)
    for call in calls:
        key = normalize_text(call.text)
        text = call.text.strip()
        point = points[pool_of(call)].setdefault(key, _Point(key=key, text=text))
        # The smallest spelling stands for the request, so the log's order changes nothing.
        point.text = min(point.text, text)
        point.calls.append(call)
    return {name: [pool[key] for key in sorted(pool)] for name, pool in points.items()}


def _labels(
    vectors: Vectors, weights: Sequence[int], threshold: float, max_points: int
) -> list[int]:
    """A cluster label per point, numbered in order of first appearance.

    Up to `max_points` points: one average-linkage clustering. Beyond: the `max_points` most
    frequent are clustered, every other point within `threshold` of a cluster's centroid joins
    the nearest, and the points left are labelled the same way, as new clusters."""
    count = len(vectors)
    order = sorted(range(count), key=lambda i: (-weights[i], i))
    labels = [-1] * count
    offset = 0
    while order:
        core, order = order[:max_points], order[max_points:]
        core_labels = _agglomerate(vectors[core], threshold)
        for i, label in zip(core, core_labels, strict=True):
            labels[i] = offset + label
        if order:
            groups = range(max(core_labels) + 1)
            centroids = normalize(
                np.stack([vectors[[core[j] for j, mine in enumerate(core_labels) if mine == g]]
                          .mean(axis=0) for g in groups])
            )  # fmt: skip
            similarity = vectors[order] @ centroids.T
            nearest = np.argmax(similarity, axis=1)
            left = []
            for row, (i, label) in enumerate(zip(order, nearest.tolist(), strict=True)):
                if 1.0 - float(similarity[row, label]) <= threshold:
                    labels[i] = offset + int(label)
                else:
                    left.append(i)
            order = left
        offset += max(core_labels) + 1
    renumbered: dict[int, int] = {}
    return [renumbered.setdefault(label, len(renumbered)) for label in labels]


def linkage_tree(vectors: Vectors) -> NDArray[np.float64]:
    """scipy's average-linkage tree over the cosine distances of unit vectors (≥ 2 rows)."""
    try:
        from scipy.cluster.hierarchy import linkage
        from scipy.spatial.distance import squareform
    except ImportError as error:
        raise FlywheelExtraMissing("scipy") from error
    # Unit vectors: cosine distance is 1 − the dot product; rounding may leave tiny negatives.
    wide = vectors.astype(np.float64)
    distances = np.clip(1.0 - wide @ wide.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    tree: NDArray[np.float64] = linkage(squareform(distances, checks=False), method="average")
    return tree


def _agglomerate(vectors: Vectors, threshold: float) -> list[int]:
    """Average linkage on cosine distance, cut at `threshold`; labels from 0 by first point."""
    if len(vectors) == 1:
        return [0]
    tree = linkage_tree(vectors)
    from scipy.cluster.hierarchy import fcluster  # present: linkage_tree imported scipy

    raw = [int(label) for label in fcluster(tree, t=threshold, criterion="distance")]
    renumbered: dict[int, int] = {}
    return [renumbered.setdefault(label, len(renumbered)) for label in raw]


def _cluster(pool: str, points: Sequence[_Point], vectors: Vectors, samples: int) -> Cluster:
    calls = [call for point in points for call in point.calls]
    llm = [call for call in calls if call.tier == "llm"]
    tasks = Counter(call.task for call in calls)
    shapes = Counter(call.answer_keys for call in calls if call.answer_keys is not None)
    centroid = normalize(vectors.mean(axis=0, keepdims=True))[0]
    similarity: NDArray[np.float32] = vectors @ centroid
    typical = sorted(
        range(len(points)), key=lambda i: (-len(points[i].calls), -similarity[i], points[i].key)
    )
    cost = sum(call.cost_usd for call in calls)
    llm_cost = sum(call.cost_usd for call in llm)
    tokens = [call.tokens_in + call.tokens_out for call in calls]
    return Cluster(
        cluster_id="",
        pool=pool,
        no_model=pool != COVERED,
        task=min(tasks, key=lambda task: (-tasks[task], task)),
        tasks=_by_count(tasks),
        calls=len(calls),
        requests=len(points),
        llm_calls=len(llm),
        llm_share=len(llm) / len(calls),
        cost_usd=cost,
        cost_per_call_usd=cost / len(calls),
        llm_cost_usd=llm_cost,
        llm_cost_per_call_usd=llm_cost / len(llm) if llm else 0.0,
        llm_tokens_in=sum(call.tokens_in for call in llm),
        llm_tokens_out=sum(call.tokens_out for call in llm),
        p95_tokens=int(np.percentile(tokens, 95, method="higher")),
        reasons=_by_count(Counter(call.reason for call in calls if call.reason)),
        models=_by_count(Counter(call.model_id for call in calls)),
        answers=sum(shapes.values()),
        key_sets=tuple(
            KeySetCount(keys=keys, answers=n)
            for keys, n in sorted(shapes.items(), key=lambda item: (-item[1], item[0]))
        ),
        cohesion=round(float(similarity.mean()), 4),
        samples=tuple(points[i].text for i in typical[:samples]),
    )


def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    """Most frequent first, ties by name: reports read the same on every run."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
