"""S4 of the conversion loop: rank task clusters by what converting them would save.

For each cluster of S3's report:

* **savings** (US dollars over the logged period) = volume × LLM share × (LLM cost per call
  − the estimated micro-SLM cost per call), i.e. the LLM calls times what each would cost
  less on a micro-SLM. The micro-SLM's cost per call is the named base model's catalog price
  at the mean tokens in and out of the cluster's LLM calls (an estimate: the LLM tier's prompts
  carry retrieved examples, a fine-tuned model's do not, so it errs high).
* **schema stability** = the share of the cluster's answers (see `logged_calls`) whose key set is
  the modal one, reported with the number of distinct key sets. Key sets include null-valued
  keys: they describe the schema, not which fields one request filled. 1.0 means one schema;
  a cluster with no answers has no stability (None), since its schema is unknown.
* **schema fields**: the keys at least 10% of the answers carry; their count is the schema
  size the base model must cover (`catalog.choose`).
* **score** = savings × stability: money that converting can actually capture, since a
  fine-tune learns one schema and the answers off it are the share it cannot.

A cluster is *eligible* when it has LLM calls, positive savings, a stability of at least
`min_stability` (default 0.8: below it the contract should be settled before a fine-tune)
and a base model that fits. Eligible clusters come first, by score; the rest follow with the
reasons they are not. Every row carries its reasons in words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from skiff_flywheel.catalog import Catalog, choose
from skiff_flywheel.clusters import Cluster, ClusterReport
from skiff_flywheel.logged_calls import KeySet

DEFAULT_MIN_STABILITY = 0.8
FIELD_SHARE = 0.1
FORMULA = (
    "savings = calls × LLM share × (LLM cost per call − micro-SLM cost per call); "
    "score = savings × schema stability"
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Stability:
    """How settled a cluster's answer schema is."""

    share: float | None = None
    key_sets: int = 0
    fields: KeySet = ()


class Candidate(_Frozen):
    """One ranked cluster: what converting it saves, how stable its schema is, which base."""

    rank: int
    cluster_id: str
    task: str
    no_model: bool
    calls: int
    llm_calls: int
    llm_share: float
    llm_cost_per_call_usd: float
    slm_cost_per_call_usd: float = Field(description="estimate: the base model's price")
    savings_usd: float = Field(description="over the logged period")
    stability: float | None = Field(description="share of answers with the modal key set")
    key_sets: int = Field(description="distinct answer key sets")
    schema_fields: KeySet
    score: float = Field(description="savings × stability")
    base_model: str
    base_model_fits: bool
    eligible: bool
    reasons: tuple[str, ...]
    samples: tuple[str, ...] = ()


class Ranking(_Frozen):
    """S4's report."""

    formula: str = FORMULA
    catalog: str = Field(description="the catalog file the base models came from")
    min_stability: float
    first_at: datetime | None = None
    last_at: datetime | None = None
    candidates: tuple[Candidate, ...] = ()


def schema_stability(cluster: Cluster) -> Stability:
    """The modal key set's share of the answers, the number of key sets, and the fields."""
    if not cluster.answers:
        return Stability()
    carried: Counter[str] = Counter()
    for shape in cluster.key_sets:
        for key in shape.keys:
            carried[key] += shape.answers
    fields = tuple(sorted(k for k, n in carried.items() if n >= FIELD_SHARE * cluster.answers))
    modal = max(shape.answers for shape in cluster.key_sets)
    return Stability(modal / cluster.answers, len(cluster.key_sets), fields)


def rank_candidates(
    report: ClusterReport,
    catalog: Catalog,
    *,
    catalog_source: str,
    min_stability: float = DEFAULT_MIN_STABILITY,
) -> Ranking:
    """Every cluster of `report`, ranked (see the module's docstring)."""
    rows = [_candidate(cluster, catalog, min_stability) for cluster in report.clusters]
    rows.sort(key=lambda row: (not row.eligible, -row.score, -row.calls, row.cluster_id))
    return Ranking(
        catalog=catalog_source,
        min_stability=min_stability,
        first_at=report.first_at,
        last_at=report.last_at,
        candidates=tuple(row.model_copy(update={"rank": n}) for n, row in enumerate(rows, 1)),
    )


def _candidate(cluster: Cluster, catalog: Catalog, min_stability: float) -> Candidate:
    stability = schema_stability(cluster)
    choice = choose(
        catalog, len(stability.fields) if stability.share is not None else None, cluster.p95_tokens
    )
    llm_calls = cluster.llm_calls
    slm_cost = (
        choice.model.cost_per_call(
            cluster.llm_tokens_in / llm_calls, cluster.llm_tokens_out / llm_calls
        )
        if llm_calls
        else 0.0
    )
    llm_cost = cluster.llm_cost_per_call_usd
    savings = cluster.calls * cluster.llm_share * (llm_cost - slm_cost)
    score = savings * (stability.share or 0.0)
    reasons = [
        _volume(cluster),
        f"saves ${savings:.6f}: {cluster.calls} × {cluster.llm_share:.2f} × "
        f"(${llm_cost:.6f} − ${slm_cost:.6f} on {choice.model.name})",
        _schema(stability),
        f"base model {choice.model.name}: {choice.reason}",
    ]
    blockers = _blockers(cluster, stability, savings, min_stability, choice.fits)
    reasons.extend(blockers)
    return Candidate(
        rank=0,
        cluster_id=cluster.cluster_id,
        task=cluster.task,
        no_model=cluster.no_model,
        calls=cluster.calls,
        llm_calls=llm_calls,
        llm_share=cluster.llm_share,
        llm_cost_per_call_usd=llm_cost,
        slm_cost_per_call_usd=slm_cost,
        savings_usd=savings,
        stability=stability.share,
        key_sets=stability.key_sets,
        schema_fields=stability.fields,
        score=score,
        base_model=choice.model.name,
        base_model_fits=choice.fits,
        eligible=not blockers,
        reasons=tuple(reasons),
        samples=cluster.samples,
    )


def _volume(cluster: Cluster) -> str:
    if cluster.no_model:
        who = f"no micro-SLM: {cluster.task} goes to the LLM tier every time"
    else:
        split = ", ".join(f"{task} {n}" for task, n in cluster.tasks.items())
        who = f"handled by {split}" + (
            "; a challenger fine-tune would cut its escalations" if cluster.llm_calls else ""
        )
    volume = (
        f"{cluster.calls} call{'s' if cluster.calls != 1 else ''} ({cluster.requests} distinct)"
    )
    return f"{volume}, {cluster.llm_share:.0%} LLM; {who}"


def _schema(stability: Stability) -> str:
    if stability.share is None:
        return "schema unknown: no answers logged"
    return (
        f"schema stability {stability.share:.2f} over {stability.key_sets} key set(s), "
        f"{len(stability.fields)} fields"
    )


def _blockers(
    cluster: Cluster, stability: Stability, savings: float, min_stability: float, fits: bool
) -> list[str]:
    """Why the cluster is not a candidate now (empty: it is)."""
    blockers = []
    if not cluster.llm_calls:
        blockers.append("not a candidate: the LLM tier took none of its calls")
    elif savings <= 0:
        blockers.append("not a candidate: a micro-SLM would not cost less per call")
    if stability.share is None:
        blockers.append("not a candidate: no answers to learn a schema from")
    elif stability.share < min_stability:
        blockers.append(
            f"not a candidate: stability {stability.share:.2f} < {min_stability}; "
            "settle the schema first"
        )
    if not fits:
        blockers.append("not a candidate: no catalog model fits its schema and context")
    return blockers
