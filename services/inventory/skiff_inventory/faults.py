"""Test knobs: injected failures, added latency and sold-out domains. All off by default.

Each operation draws from its own generator seeded with `fail_seed` and the operation's
name, so a test that makes the same calls in the same order sees the same failures, and
failures of one operation do not shift those of another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from random import Random
from typing import Literal

from skiff_contracts.domains import Domain
from skiff_contracts.inventory import INVENTORY_OPERATIONS, InventoryOperation
from skiff_inventory.seeding import seeded

FailPhase = Literal["before", "after"]


@dataclass
class Faults:
    rate: float = 0.0
    ops: frozenset[InventoryOperation] = frozenset(INVENTORY_OPERATIONS)
    # "before": the call fails and changes nothing; "after": it commits, only the reply is lost.
    phase: FailPhase = "before"
    seed: int = 0
    latency_ms: int = 0
    sold_out_domains: frozenset[Domain] = frozenset()
    _draws: dict[str, Random] = field(default_factory=dict, repr=False)

    def strikes(self, op: InventoryOperation, phase: FailPhase) -> bool:
        """Whether this call of `op` fails at `phase` (one draw per call while active)."""
        if self.rate <= 0 or op not in self.ops or phase != self.phase:
            return False
        draws = self._draws.setdefault(op, seeded(self.seed, "faults", op))
        return draws.random() < self.rate

    async def delay(self) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
