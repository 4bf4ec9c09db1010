"""Trip and step states of the saga (DESIGN §4).

received → extracting → holding → confirming (pivot) → completed
                ↕ needs_input          └ before the pivot, any failure:
                                         compensating → compensated
a user's cancellation before the pivot: compensating → cancelled
nothing to undo: failed
"""

from __future__ import annotations

from typing import Literal

TripState = Literal[
    "received",
    "extracting",
    "needs_input",
    "holding",
    "confirming",
    "completed",
    "compensating",
    "compensated",
    "cancelled",
    "failed",
]
TERMINAL_STATES: frozenset[TripState] = frozenset(
    {"completed", "compensated", "cancelled", "failed"}
)
BEFORE_PIVOT: frozenset[TripState] = frozenset({"received", "extracting", "needs_input", "holding"})

Operation = Literal["extract", "resolve", "hold", "confirm", "cancel"]
StepStatus = Literal["pending", "dispatched", "succeeded", "escalated", "failed", "dropped"]
