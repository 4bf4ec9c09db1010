"""Human-readable output: one line per trip event, and the itinerary as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from skiff_contracts.events import (
    ItineraryItem,
    StepChanged,
    TripEvent,
    TripFinished,
    TripPlanned,
    TripReceived,
)

STATUS_STYLE = {
    "dispatched": "cyan",
    "succeeded": "green",
    "escalated": "yellow",
    "failed": "red",
}


def event_line(event: TripEvent) -> str:
    if isinstance(event, TripReceived):
        return f"[bold]received[/] {event.trip_id}"
    if isinstance(event, TripPlanned):
        extra = f" (no micro-SLM for: {', '.join(event.unsupported)})" if event.unsupported else ""
        return f"[bold]planned[/] {', '.join(event.domains) or 'nothing'}{extra}"
    if isinstance(event, StepChanged):
        style = STATUS_STYLE.get(event.status, "white")
        why = f" — {event.reason}" if event.reason else ""
        detail = "; ".join(p.message for p in event.errors[:3])
        detail = f" ({detail})" if detail else ""
        return f"  {event.domain}.{event.operation}: [{style}]{event.status}[/]{why}{detail}"
    assert isinstance(event, TripFinished)
    style = "green" if event.state == "completed" else "red"
    why = f": {event.reason}" if event.reason else ""
    return f"[bold {style}]{event.state}[/]{why}"


def itinerary_table(items: tuple[ItineraryItem, ...]) -> Table:
    table = Table(title="Itinerary", show_lines=True)
    table.add_column("domain", style="bold")
    table.add_column("request")
    table.add_column("by")
    table.add_column("confidence", justify="right")
    for item in items:
        fields = item.params.model_dump(exclude={"domain"}, exclude_none=True)
        text = "\n".join(f"{k}: {v}" for k, v in fields.items()) or "(nothing given)"
        confidence = f"{item.confidence:.2f}" if item.confidence is not None else "–"
        table.add_row(item.domain, text, item.handled_by, confidence)
    return table


def print_event(console: Console, event: TripEvent) -> None:
    console.print(event_line(event))
    if isinstance(event, TripFinished) and event.itinerary:
        console.print(itinerary_table(event.itinerary))
