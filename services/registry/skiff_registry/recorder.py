"""Turns batches of call-log records (calls and accepted answers) into stored metrics. Never
imports NATS.

A batch is applied per task: the task's working state is read, the new records added
(those already applied are recognised by id and skipped), and the state written back with a
compare-and-set (re-applied from a fresh read if another replica wrote first). Only then are
the derived values written: each model's `ModelMetrics` (key `<task>.<slug>`) and the
task's snapshot series. The caller acknowledges the batch after `record` returns, so a crash
at any point means redelivery, and redelivery means records recognised and skipped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import structlog

from skiff_contracts.registry import ModelMetrics, Series
from skiff_registry import metrics
from skiff_registry.keys import metrics_key
from skiff_registry.metrics import Limits, LogRecord, TaskState
from skiff_registry.ports import RevisionConflict, Table

log = structlog.get_logger()
ATTEMPTS = 8


class MetricsRecorder:
    def __init__(
        self,
        states: Table[TaskState],
        metrics_table: Table[ModelMetrics],
        series: Table[Series],
        *,
        limits: Limits | None = None,
        series_points: int = 1440,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.states = states
        self.metrics = metrics_table
        self.series = series
        self.limits = limits or Limits()
        self.series_points = series_points
        self.clock = clock

    async def record(self, records: Iterable[LogRecord]) -> int:
        """Apply a batch and store the results; how many records were new."""
        by_task: dict[str, list[LogRecord]] = defaultdict(list)
        for record in records:
            by_task[record.task].append(record)
        new = 0
        for task, batch in by_task.items():
            new += await self._update(task, batch)
        return new

    async def snapshot(self) -> None:
        """Re-derive every task's numbers: the window moves on even when no call comes."""
        for state in await self.states.values():
            await self._update(state.task, [])

    async def _update(self, task: str, batch: list[LogRecord]) -> int:
        for _ in range(ATTEMPTS):
            stored = await self.states.get(task)
            state = stored.value if stored else TaskState(task=task)
            now = self.clock()
            new = sum(metrics.apply(state, record, now, self.limits) for record in batch)
            if batch and not new:
                # Every record was applied before; its metrics may not have been stored.
                await self._publish(state, now)
                return 0
            metrics.prune(state, now, self.limits)
            try:
                if stored is None:
                    if await self.states.create(task, state) is None:
                        continue
                else:
                    await self.states.update(task, state, stored.revision)
            except RevisionConflict:
                continue
            await self._publish(state, now)
            return new
        raise RevisionConflict(f"metrics of {task}: still conflicting after {ATTEMPTS} attempts")

    async def _publish(self, state: TaskState, now: float) -> None:
        for model in state.models.values():
            view = metrics.model_metrics(model, now, self.limits)
            await self.metrics.put(metrics_key(state.task, model.model_id), view)
        stored = await self.series.get(state.task)
        old = stored.value.points if stored else ()
        since = metrics.bucket_start(self.limits.oldest_bucket(now), self.limits)
        fresh = metrics.task_points(state, now, self.limits)
        points = metrics.merge_series(old, fresh, since, self.series_points)
        if points != old:
            await self.series.put(state.task, Series(task=state.task, points=points))
