"""The worker's model card, and its client for the registry (register, heartbeat).

A worker registers its model version before taking work: registration is the step that
provisions the version's extraction consumer. It then heartbeats, and learns from the reply
when its version was retired; at each beat it also lists its task's cards, to serve the
adapter versions of its base model (versions.py).
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from skiff_contracts import subjects
from skiff_contracts.registry import (
    REGISTRY_REPLY,
    Ack,
    Heartbeat,
    ListModels,
    ModelCard,
    ModelList,
    RegisterModel,
)


class RegistryRefused(Exception):
    """The registry would not take this model (incompatible schema, retired …)."""


class RegistryClient:
    def __init__(self, connection: Client, caller: str, *, timeout_s: float = 5.0) -> None:
        """`caller`: the identity `connection` authenticated as (the registry's subjects)."""
        self.connection = connection
        self.caller = caller
        self.timeout_s = timeout_s

    async def _ask(self, operation: str, request: Any, budget_s: float) -> Any:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((NoRespondersError, NatsTimeout)),
            wait=wait_exponential_jitter(multiplier=0.5, max=5.0, jitter=0.5),
            stop=stop_after_delay(budget_s),
            reraise=True,
        ):
            with attempt:
                reply = await self.connection.request(
                    subjects.registry(operation, self.caller),
                    request.model_dump_json().encode(),
                    timeout=self.timeout_s,
                )
        return REGISTRY_REPLY.validate_json(reply.data)

    async def register(
        self, card: ModelCard, schema: dict[str, Any], budget_s: float = 300.0
    ) -> ModelCard:
        """Register (idempotent); waits for the registry up to `budget_s`."""
        reply = await self._ask(
            "register_model", RegisterModel(card=card, json_schema=schema), budget_s
        )
        if not isinstance(reply, Ack) or reply.card is None:
            raise RegistryRefused(getattr(reply, "message", repr(reply)))
        return reply.card

    async def heartbeat(self, model_id: str) -> ModelCard | None:
        """The card as the registry has it now (None when the registry did not answer)."""
        try:
            reply = await self._ask("heartbeat", Heartbeat(model_id=model_id), self.timeout_s)
        except (NoRespondersError, NatsTimeout):
            return None
        return reply.card if isinstance(reply, Ack) else None

    async def cards(self, task: str) -> list[ModelCard] | None:
        """Every card of `task` (None when the registry did not answer)."""
        try:
            reply = await self._ask("list_models", ListModels(task=task), self.timeout_s)
        except (NoRespondersError, NatsTimeout):
            return None
        return [view.card for view in reply.models] if isinstance(reply, ModelList) else None
