"""A bounded, mergeable latency sketch: quantiles within 1 % of the true value (pure).

Values fall into logarithmic bins (DDSketch's scheme: bin `i` holds values in
`(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`), so a sketch of any number of calls holds at most
a few hundred bins, two sketches merge by adding their bins, and the quantile read back is
within relative accuracy `α` of the exact nearest-rank quantile.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_MS = 0.01  # values at or below this count as zero


class Sketch(BaseModel):
    """Latency counts by logarithmic bin (JSON: bin index → count)."""

    count: int = 0
    zeros: int = 0
    bins: dict[int, int] = Field(default_factory=dict)

    def add(self, value_ms: float) -> None:
        self.count += 1
        if value_ms <= MIN_MS or math.isnan(value_ms):
            self.zeros += 1
            return
        index = math.ceil(math.log(value_ms) / _LOG_GAMMA)
        self.bins[index] = self.bins.get(index, 0) + 1

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.zeros += other.zeros
        for index, n in other.bins.items():
            self.bins[index] = self.bins.get(index, 0) + n

    def quantile(self, q: float) -> float | None:
        """The nearest-rank `q`-quantile (None when empty)."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = self.zeros
        if rank <= seen:
            return 0.0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return 2 * GAMMA**index / (GAMMA + 1)
        return 2 * GAMMA ** max(self.bins) / (GAMMA + 1)
