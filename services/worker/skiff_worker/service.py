"""The worker's logic: one command in, one typed result out. Never imports NATS."""

from __future__ import annotations

from dataclasses import dataclass

from skiff_contracts.messages import Extracted, ExtractTask, Failed, NeedsEscalation
from skiff_contracts.problems import Problem
from skiff_extraction.pipeline import Extractor

WorkerReply = Extracted | NeedsEscalation | Failed


@dataclass
class DomainWorker:
    extractor: Extractor

    async def handle(self, task: ExtractTask) -> WorkerReply:
        if task.domain != self.extractor.domain:
            return Failed(
                trip_id=task.trip_id,
                step=task.step,
                domain=task.domain,
                reason="wrong_domain",
                errors=(
                    Problem(
                        code="wrong_domain",
                        message=f"a {self.extractor.domain} worker got a {task.domain} task",
                    ),
                ),
            )
        return await self.extractor.extract(task)
