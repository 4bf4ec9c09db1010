"""The LLM worker's logic: one command in, one typed reply out. Never imports NATS.

The tier's strategy lives in `skiff_extraction.resolver` (a library, so `skiff extract
--local` runs the very same code in-process); this module decides what the worker accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from skiff_contracts.messages import AnyTask, Failed, ResolveTask, WorkerReply
from skiff_contracts.problems import Problem
from skiff_extraction.resolver import Resolver


@dataclass
class LlmWorker:
    resolver: Resolver

    async def handle(self, task: AnyTask) -> WorkerReply:
        """Resolve escalations; anything else on the LLM subject is a routing bug: refuse it."""
        if not isinstance(task, ResolveTask):
            return Failed(
                trip_id=task.trip_id,
                step=task.step,
                domain=task.domain,
                reason="wrong_task",
                errors=(
                    Problem(
                        code="wrong_task",
                        message=f"the LLM worker only resolves escalations, got {task.kind}",
                    ),
                ),
            )
        return await self.resolver.resolve(task)
