"""Human-readable output: one line per trip event, and the itinerary as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from skiff_contracts.events import (
    Booking,
    ItineraryItem,
    StepChanged,
    TripDeclined,
    TripEvent,
    TripFinished,
    TripNeedsInput,
    TripPlanned,
    TripReceived,
)

STATUS_STYLE = {
    "dispatched": "cyan",
    "succeeded": "green",
    "escalated": "yellow",
    "failed": "red",
    "dropped": "dim",
}


def event_line(event: TripEvent) -> str:
    if isinstance(event, TripReceived):
        return f"[bold]received[/] {event.trip_id}"
    if isinstance(event, TripPlanned):
        extra = f" (no micro-SLM for: {', '.join(event.unsupported)})" if event.unsupported else ""
        by = " (routed by the LLM tier)" if event.routed_by == "llm" else ""
        return f"[bold]planned[/] {', '.join(event.domains) or 'nothing'}{extra}{by}"
    if isinstance(event, TripDeclined):
        return f"[bold red]declined:[/] {event.message}"
    if isinstance(event, StepChanged):
        style = STATUS_STYLE.get(event.status, "white")
        why = f" — {event.reason}" if event.reason else ""
        detail = "; ".join(p.message for p in event.errors[:3]) or event.detail or ""
        detail = f" ({detail})" if detail else ""
        return f"  {event.domain}.{event.operation}: [{style}]{event.status}[/]{why}{detail}"
    if isinstance(event, TripNeedsInput):
        return f"[bold yellow]question:[/] {event.question}"
    style = "green" if event.state == "completed" else "red"
    why = f": {event.reason}" if event.reason else ""
    return f"[bold {style}]{event.state}[/]{why}"


def bookings_table(
    bookings: tuple[Booking, ...], total: float | None, currency: str | None
) -> Table:
    table = Table(title=f"Booked — total {total:.2f} {currency}" if total is not None else "Booked")
    table.add_column("domain", style="bold")
    table.add_column("confirmation")
    table.add_column("what")
    table.add_column("price", justify="right")
    for booking in bookings:
        table.add_row(
            booking.domain,
            booking.confirmation_code,
            describe(booking),
            f"{booking.total_price:.2f} {booking.currency}",
        )
    return table


def describe(booking: Booking) -> str:
    offer = booking.offer
    if offer.kind == "flight_offer":
        legs = [offer.outbound, *([offer.inbound] if offer.inbound else [])]
        return (
            "\n".join(
                f"{leg.flight_number} {leg.origin}→{leg.destination} {leg.depart_at:%a %d %b %H:%M}"
                for leg in legs
            )
            + f"\n{offer.passengers} × {offer.cabin}"
        )
    if offer.kind == "hotel_offer":
        stay = f"{offer.check_in:%d %b}–{offer.check_out:%d %b}"
        return f"{offer.name}, {offer.city}\n{stay}, {offer.rooms} room(s)"
    if offer.kind == "car_offer":
        pickup = f"from {offer.pickup_at:%d %b %H:%M}, {offer.days} day(s)"
        return f"{offer.car_name} ({offer.car_type}), {offer.location}\n{pickup}"
    dates = f"{offer.trip_start:%d %b}–{offer.trip_end:%d %b}"
    return f"{offer.coverage} cover, {offer.travelers} traveller(s), {dates}"


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
        model = f"\n{item.call.model}@{item.call.version}" if item.call else ""
        table.add_row(item.domain, text, f"{item.handled_by}{model}", confidence)
    return table


def print_event(console: Console, event: TripEvent) -> None:
    console.print(event_line(event))
    if isinstance(event, TripFinished) and event.itinerary:
        console.print(itinerary_table(event.itinerary))
    if isinstance(event, TripFinished) and event.bookings:
        console.print(bookings_table(event.bookings, event.total_price, event.currency))
