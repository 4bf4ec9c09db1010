"""Trip and step states of the saga (DESIGN §4)."""

from __future__ import annotations

from typing import Literal

TripState = Literal[
    "received",
    "extracting",
    "completed",
    "failed",
]
TERMINAL_STATES: frozenset[TripState] = frozenset({"completed", "failed"})

Operation = Literal["extract"]
StepStatus = Literal["pending", "dispatched", "succeeded", "escalated", "failed"]
