"""Deterministic randomness: every generated fact draws from its own seeded `Random`.

A `Random` seeded with a string hashes it with SHA-512, so the draws depend only on the
catalog seed and the names passed here — not on `PYTHONHASHSEED`, the process, or the order
in which anything was generated before.
"""

from __future__ import annotations

import random


def seeded(seed: int, *parts: object) -> random.Random:
    """A generator for one fact of the catalog: `seeded(7, "hotels", "paris-fr")`."""
    return random.Random(":".join(str(part) for part in (seed, *parts)))


def money(amount: float) -> float:
    """Round to cents, the unit every price is quoted in."""
    return round(amount + 1e-9, 2)
