"""S3 and S4's reports as Markdown, for reading beside the JSON the CLI writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from skiff_flywheel.candidates import Candidate, Ranking
from skiff_flywheel.clusters import Cluster, ClusterReport


def _cell(text: str, limit: int = 90) -> str:
    """One table cell: a pipe would end it and a newline would end the row."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def split_text(cluster: Cluster) -> str:
    """'flights.extract' or 'flights.extract 40, hotels.extract 2' when mixed."""
    if len(cluster.tasks) == 1:
        return cluster.task
    return ", ".join(f"{task} {n}" for task, n in cluster.tasks.items())


def stability_text(candidate: Candidate) -> str:
    """'0.92 (3)': the modal key set's share, and how many key sets; '–' when unknown."""
    if candidate.stability is None:
        return "–"
    return f"{candidate.stability:.2f} ({candidate.key_sets})"


def period(first: object, last: object) -> str:
    return f"{first} … {last}" if first and last else "no timestamps"


def clusters_markdown(report: ClusterReport) -> str:
    """The cluster report: how it was made, then one row per cluster, then the samples."""
    skipped = ", ".join(f"{k} {n}" for k, n in report.skipped.items()) or "none"
    header = ["cluster", "calls", "distinct", "task", "no micro-SLM", "LLM share", "cost $",
              "$ per call", "escalations"]  # fmt: skip
    rows = [
        [c.cluster_id, str(c.calls), str(c.requests), _cell(split_text(c)),
         "yes" if c.no_model else "", f"{c.llm_share:.2f}", f"{c.cost_usd:.6f}",
         f"{c.cost_per_call_usd:.6f}", _cell(", ".join(f"{r} {n}" for r, n in c.reasons.items()))]
        for c in report.clusters
    ]  # fmt: skip
    lines = [
        "# Request clusters (S3)",
        "",
        f"- {report.records} records read, {report.used} calls clustered; skipped: {skipped}",
        f"- period: {period(report.first_at, report.last_at)}",
        f"- {report.method}; embeddings: {report.embedder} ({report.embed_seconds:.1f} s)",
        "",
        *_table(header, rows),
        "",
        "## Samples",
        "",
    ]
    for cluster in report.clusters:
        lines.append(f"- **{cluster.cluster_id}** ({cluster.task}, {cluster.calls} calls):")
        lines.extend(f"  - {_cell(sample, 200)}" for sample in cluster.samples)
    return "\n".join(lines) + "\n"


def candidates_markdown(ranking: Ranking) -> str:
    """The ranking: the formula, one row per cluster, then each row's reasons."""
    header = ["rank", "cluster", "task", "calls", "LLM share", "LLM $/call", "SLM $/call",
              "savings $", "stability", "fields", "base model", "candidate"]  # fmt: skip
    rows = [
        [str(c.rank), c.cluster_id, c.task, str(c.calls), f"{c.llm_share:.2f}",
         f"{c.llm_cost_per_call_usd:.6f}", f"{c.slm_cost_per_call_usd:.6f}",
         f"{c.savings_usd:.6f}", stability_text(c),
         str(len(c.schema_fields)), c.base_model, "yes" if c.eligible else "no"]
        for c in ranking.candidates
    ]  # fmt: skip
    lines = [
        "# Conversion candidates (S4)",
        "",
        f"- {ranking.formula}",
        f"- period: {period(ranking.first_at, ranking.last_at)}",
        f"- catalog: {ranking.catalog}; eligible from stability {ranking.min_stability}",
        "",
        *_table(header, rows),
        "",
        "## Reasons",
        "",
    ]
    for row in ranking.candidates:
        lines.append(f"- **{row.rank}. {row.cluster_id}** ({row.task}):")
        lines.extend(f"  - {reason}" for reason in row.reasons)
    return "\n".join(lines) + "\n"
