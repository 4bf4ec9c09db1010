"""Generate the AsyncAPI 3.0 document of every Skiff service from its code: `make asyncapi`.

`python docs/asyncapi/generate.py` writes `docs/asyncapi/<service>.yaml`; `--check` only
reports drift (exit 1), which `tests/unit/test_asyncapi.py` also asserts.

Each service's own `create_app` builds its FastStream app with fixed settings and stand-ins
for its ports (nothing connects and no handler runs), and FastStream describes what that
app subscribes to: subjects, queue groups, one channel per subscriber. Two things FastStream
cannot see are added here, from the contracts and the subject constants:

1. **Payloads.** Handlers take the raw `NatsMessage` and parse it themselves (a malformed
   message must be dead-lettered with its reason, not bounced by the framework), so
   FastStream finds no payload type. `Service.receives` names each subscribed subject's
   contract; a subscriber with no entry, or an entry no subscriber uses, fails generation,
   so the document cannot silently fall behind the code's subscribers.
2. **What a service sends.** Services publish with `broker.publish` (`publish_durably`,
   `dead_letter`) or plain nats-py requests, not through `@broker.publisher`, so FastStream
   sees none of it. `Service.sends` declares those publications as FastStream publishers on
   the generator's own copy of the app, never in the services, so runtime behaviour is
   untouched; FastStream then describes them like any publisher. This table is kept by hand
   from the subject constants: review it when a service starts publishing somewhere new.

In subjects, `*` is one token (a trip id, a model slug), as in NATS. The replies of
request/reply subjects are named in the channel's description (FastStream does not generate
AsyncAPI's `reply`). Keys are sorted so the output does not depend on iteration order.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from fast_depends.pydantic._compat import create_model, get_config_base
from faststream.nats import NatsBroker
from faststream.nats.subscriber.specification import NatsSubscriberSpecification
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.message import get_model_schema
from pydantic import BaseModel

from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS
from skiff_contracts.events import TripEvent
from skiff_contracts.inventory import (
    INVENTORY_OPERATIONS,
    ConfirmHold,
    InventoryOperation,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_contracts.messages import (
    CancelTask,
    ConfirmTask,
    ExtractTask,
    HoldTask,
    ResolveTask,
    RouteQuery,
    Task,
    TripRequest,
    UserInput,
    WorkerResult,
)
from skiff_contracts.registry import CallRecord, RegistryRequest, slug_of
from skiff_contracts.saga import TripStatusQuery
from skiff_runtime.jetstream import (
    LLM_WORKER,
    PLANNER_INPUT,
    PLANNER_RESULTS,
    STREAM_DLQ,
    WORKER_CONSUMERS,
    dlq_subject,
)

OUT_DIR = Path(__file__).resolve().parent
NATS_URL = "nats://nats:4222"  # the NATS service's name in docker-compose and the chart
# Fixed here, not read from the environment, so SKIFF_* variables cannot change the output.
COMMON: dict[str, Any] = {
    "nats_url": NATS_URL,
    "nats_creds": None,
    "nats_user": None,
    "nats_password": None,
}

DLQ_HEADERS = (
    "Headers: `Skiff-Dlq-Reason`, `Skiff-Dlq-Subject`, `Skiff-Dlq-Stream`, `Skiff-Dlq-Consumer`, "
    "`Skiff-Dlq-Sequence`, `Skiff-Dlq-Deliveries`; the body is the original message's."
)
MSG_ID = "Carries `Nats-Msg-Id` (JetStream de-duplication) and the W3C `traceparent`."


@dataclass(frozen=True)
class Channel:
    """One subject family a service receives or sends, and the contract it carries."""

    subject: str
    payload: Any
    description: str


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    build: Callable[[], Sequence[NatsBroker]]
    receives: tuple[Channel, ...]
    sends: tuple[Channel, ...]


class _Unused:
    """A stand-in for a port: the generator builds apps but never runs a handler."""

    def __init__(self, port: str) -> None:
        self._port = port

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the AsyncAPI generator touched {self._port}.{name}")


def _unused(port: str) -> Any:
    return _Unused(port)


class _Documented(NatsSubscriberSpecification):
    """FastStream's description of one subscriber, with the payload and text of `channel`."""

    __slots__ = ("_channel",)

    def __init__(self, original: NatsSubscriberSpecification, channel: Channel) -> None:
        super().__init__(original._outer_config, original.config, original.calls)
        self._channel = channel

    @property
    def description(self) -> str | None:
        return self._channel.description

    def get_payloads(self) -> list[tuple[dict[str, Any], str]]:
        model = create_model(
            "", __config__=get_config_base(), response__=(self._channel.payload, ...)
        )
        body = get_model_schema(
            call=model, prefix=f"{self.config.title_ or self.call_name}:Message"
        )
        return [(body, "")] if body else []


def _matches(pattern: str, subject: str) -> bool:
    """Token by token; `*` in `pattern` stands for any one token (a literal `*` included)."""
    want, have = pattern.split("."), subject.split(".")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


# --- the services ------------------------------------------------------------------------------


def _planner() -> Sequence[NatsBroker]:
    from skiff_planner.app import create_app
    from skiff_planner.settings import PlannerSettings

    _, broker = create_app(PlannerSettings(**COMMON), _unused("router"))
    return [broker]


def _worker() -> Sequence[NatsBroker]:
    from skiff_worker.app import create_app
    from skiff_worker.settings import WorkerSettings

    brokers = []
    for domain in DOMAINS:
        settings = WorkerSettings(domain=domain, **COMMON)
        model_id = f"{domain}.extract/{settings.model_name}@{settings.model_version}"
        brokers.append(create_app(settings, _unused("worker"), model_id).broker)
    return brokers


def _llm_worker() -> Sequence[NatsBroker]:
    from skiff_llm_worker.app import create_app
    from skiff_llm_worker.settings import LlmWorkerSettings

    _, broker = create_app(LlmWorkerSettings(**COMMON), _unused("llm worker"))
    return [broker]


def _inventory() -> Sequence[NatsBroker]:
    from skiff_inventory.app import create_app
    from skiff_inventory.settings import InventorySettings

    _, broker = create_app(InventorySettings(**COMMON), _unused("inventory"))
    return [broker]


COMMANDS = {"extract": ExtractTask, "hold": HoldTask, "confirm": ConfirmTask, "cancel": CancelTask}
# Operation -> (request contract, what a success reply is; a refusal is `InventoryFailed`).
INVENTORY: dict[InventoryOperation, tuple[type[BaseModel], str]] = {
    "search": (SearchOffers, "OffersFound"),
    "hold": (PlaceHold, "HoldPlaced"),
    "confirm": (ConfirmHold, "BookingConfirmed"),
    "release": (ReleaseHold, "HoldReleased"),
}
assert set(INVENTORY) == set(INVENTORY_OPERATIONS), "an inventory operation is undocumented"


def _durable(spec: Any) -> str:
    return f"JetStream stream `{spec.stream}`, durable consumer `{spec.durable}`"


def _default_model_slug(domain: str) -> str:
    from skiff_worker.settings import WorkerSettings

    settings = WorkerSettings(domain=domain, **COMMON)  # type: ignore[arg-type]
    return slug_of(f"{domain}.extract/{settings.model_name}@{settings.model_version}")


SERVICES = (
    Service(
        name="planner",
        description="Runs trip sagas: accepts submissions, dispatches commands to the domain "
        "workers and the LLM tier, follows their results, publishes every transition.",
        build=_planner,
        receives=(
            Channel(
                subjects.TRIP_SUBMIT_ALL,
                TripRequest,
                "A client submits a trip under its own name, the last token (core "
                "request/reply, queue group `planner`; NATS lets a client publish under its "
                "own name only). Reply: `TripAccepted`, `SubmitRejected` or `SubmitConflict`.",
            ),
            Channel(
                subjects.TRIP_STATUS_ALL,
                TripStatusQuery,
                "A client asks for one of its own trips' saga record (last token: the client; "
                "core request/reply, queue group `planner`). Reply: `TripStatus` (no record "
                "for another owner's trip).",
            ),
            Channel(
                subjects.RESULTS_ALL,
                WorkerResult,
                f"Every worker's reply drives a saga transition. {_durable(PLANNER_RESULTS)}.",
            ),
            Channel(
                subjects.TRIP_INPUT_ALL,
                UserInput,
                "The user's answer to a question, or a cancellation, for the trip named by "
                "the last token, from the owner named by the one before (another owner's is "
                f"dropped). {_durable(PLANNER_INPUT)}.",
            ),
        ),
        sends=(
            *(
                Channel(
                    subjects.task(domain, op),
                    model,
                    f"Command to the {domain} workers (stream `{subjects.tasks_stream(domain)}`). "
                    + MSG_ID,
                )
                for domain in DOMAINS
                for op, model in COMMANDS.items()
            ),
            *(
                Channel(
                    subjects.model_extract(domain, "*"),
                    ExtractTask,
                    f"Extraction routed to one {domain} model version (last token: the "
                    f"model's slug; stream `{subjects.tasks_stream(domain)}`). " + MSG_ID,
                )
                for domain in DOMAINS
            ),
            Channel(
                subjects.TASK_LLM_RESOLVE,
                ResolveTask,
                f"Escalation to the LLM tier (stream `{subjects.STREAM_TASKS_LLM}`). " + MSG_ID,
            ),
            Channel(
                subjects.LLM_ROUTE,
                RouteQuery,
                "A route the router was unsure of, for the LLM tier to decide (core "
                "request/reply, reason `ambiguous`). Reply: `RouteAnswer`.",
            ),
            Channel(
                subjects.TRIP_EVENTS_ALL,
                TripEvent,
                "Every saga transition of the trip named by the last token, under its owner's "
                f"name (stream `{subjects.STREAM_TRIP_EVENTS}`), numbered per trip. " + MSG_ID,
            ),
            Channel(
                dlq_subject(subjects.STREAM_RESULTS),
                WorkerResult,
                f"Results that exhausted their deliveries (stream `{STREAM_DLQ}`). " + DLQ_HEADERS,
            ),
            Channel(
                dlq_subject(subjects.STREAM_TRIPS),
                UserInput,
                f"User inputs that exhausted their deliveries (stream `{STREAM_DLQ}`). "
                + DLQ_HEADERS,
            ),
        ),
    ),
    Service(
        name="worker",
        description="One micro-SLM per domain (flights, hotels, cars, insurance; one codebase "
        "deployed four times): extracts a grounded request from text, and holds, confirms and "
        "cancels with the supplier.",
        build=_worker,
        receives=(
            *(
                Channel(
                    subjects.domain_tasks(domain),
                    Task,
                    f"Commands to the {domain} workers: extract, hold, confirm, cancel. "
                    f"{_durable(WORKER_CONSUMERS[domain])}, shared by all replicas.",
                )
                for domain in DOMAINS
            ),
            *(
                Channel(
                    subjects.model_extract(domain, "*"),
                    Task,
                    f"Extractions routed to this worker's own {domain} model version (last "
                    f"token: the model's slug; the default model's is "
                    f"`{_default_model_slug(domain)}`). JetStream stream "
                    f"`{subjects.tasks_stream(domain)}`, durable `worker-{domain}-<slug>`.",
                )
                for domain in DOMAINS
            ),
            *(
                Channel(
                    subjects.extract(domain),
                    ExtractTask,
                    f"An operator's {domain} extraction on request (`skiff extract` over NATS; "
                    f"core request/reply, queue group `worker-{domain}`). Reply: the worker's "
                    "reply, to the asker only.",
                )
                for domain in DOMAINS
            ),
        ),
        sends=(
            *(
                Channel(
                    subjects.result(domain),
                    WorkerResult,
                    f"The {domain} workers' replies (stream `{subjects.STREAM_RESULTS}`). "
                    + MSG_ID,
                )
                for domain in DOMAINS
            ),
            *(
                Channel(
                    subjects.calls(domain),
                    CallRecord,
                    f"One record per {domain} model call, redacted at source (stream "
                    f"`{subjects.STREAM_CALLS}`). " + MSG_ID,
                )
                for domain in DOMAINS
            ),
            *(
                Channel(
                    subjects.inventory(domain, op),
                    request,
                    f"Supplier {op} (core request/reply to the inventory). Reply: "
                    f"`{reply}` or `InventoryFailed`.",
                )
                for domain in DOMAINS
                for op, (request, reply) in INVENTORY.items()
            ),
            Channel(
                subjects.REGISTRY_ALL,
                RegistryRequest,
                "Registration and heartbeats of the worker's model version (core "
                "request/reply to the registry; tokens: the operation, then the caller).",
            ),
            *(
                Channel(
                    dlq_subject(subjects.tasks_stream(domain)),
                    Task,
                    f"{domain} commands that exhausted their deliveries or can never succeed "
                    f"(stream `{STREAM_DLQ}`). " + DLQ_HEADERS,
                )
                for domain in DOMAINS
            ),
        ),
    ),
    Service(
        name="llm-worker",
        description="The escalation tier: settles, with a larger model, what a micro-SLM "
        "could not; may ask the user a question.",
        build=_llm_worker,
        receives=(
            Channel(
                LLM_WORKER.filter_subject,
                Task,
                f"Escalations from any domain (`{subjects.TASK_LLM_RESOLVE}`). "
                f"{_durable(LLM_WORKER)}.",
            ),
            Channel(
                subjects.LLM_ROUTE,
                RouteQuery,
                "The planner's unsure routes (core request/reply, queue group "
                f"`{subjects.LLM_ROUTE_QUEUE}`). Reply: `RouteAnswer`, labels checked.",
            ),
            Channel(
                subjects.extract("llm"),
                ResolveTask,
                "An operator's escalation on request (`skiff extract --tiers slm+llm` over "
                f"NATS; core request/reply, queue group `{subjects.LLM_ROUTE_QUEUE}`). Reply: "
                "the tier's reply, to the asker only.",
            ),
        ),
        sends=(
            Channel(
                subjects.RESULT_LLM,
                WorkerResult,
                f"The tier's replies (stream `{subjects.STREAM_RESULTS}`). " + MSG_ID,
            ),
            Channel(
                dlq_subject(subjects.STREAM_TASKS_LLM),
                Task,
                f"Escalations that exhausted their deliveries (stream `{STREAM_DLQ}`). "
                + DLQ_HEADERS,
            ),
        ),
    ),
    Service(
        name="inventory",
        description="The travel supplier: offers, holds with expiry, confirmations and "
        "releases, idempotent by key.",
        build=_inventory,
        receives=tuple(
            Channel(
                subjects.inventory(domain, op),
                request,
                f"Supplier {op} for {domain} (core request/reply, queue group "
                f"`{subjects.INVENTORY_QUEUE}`). Reply: `{reply}`, or `InventoryFailed` "
                "with a code.",
            )
            for domain in DOMAINS
            for op, (request, reply) in INVENTORY.items()
        ),
        sends=(),
    ),
)


# --- generation --------------------------------------------------------------------------------


class UndocumentedChannel(Exception):
    """A subscriber with no contract in `receives`, or an entry no subscriber uses."""


def document(service: Service) -> dict[str, Any]:
    """The service's AsyncAPI document as plain data."""
    brokers = list(service.build())
    used: set[Channel] = set()
    for broker in brokers:
        for subscriber in broker.subscribers:
            described = subscriber.specification
            if not isinstance(described, NatsSubscriberSpecification):
                continue
            if not described.include_in_schema:
                continue
            for subject in described.subjects:
                found = [c for c in service.receives if _matches(c.subject, subject)]
                if not found:
                    raise UndocumentedChannel(f"{service.name}: no contract for {subject}")
                used.add(found[0])
                subscriber.specification = _Documented(described, found[0])  # type: ignore[assignment]
    stale = [c.subject for c in service.receives if c not in used]
    if stale:
        raise UndocumentedChannel(f"{service.name}: no subscriber for {', '.join(stale)}")
    for channel in service.sends:
        brokers[0].publisher(
            channel.subject, schema=channel.payload, description=channel.description
        )
    specification = AsyncAPI(
        *brokers,
        title=f"Skiff {service.name}",
        version=version("skiff"),
        description=service.description,
    ).to_specification()
    data: dict[str, Any] = specification.to_jsonable()
    return data


def render(service: Service) -> str:
    """The document as committed: YAML with sorted keys."""
    text: str = yaml.safe_dump(document(service), sort_keys=True, allow_unicode=True, width=100)
    return text


def drifted(out_dir: Path = OUT_DIR) -> list[str]:
    """Services whose committed document differs from what the code generates."""
    return [
        s.name
        for s in SERVICES
        if not (path := out_dir / f"{s.name}.yaml").exists() or path.read_text() != render(s)
    ]


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICES:
        path = out_dir / f"{service.name}.yaml"
        path.write_text(render(service))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        changed = drifted()
        print("\n".join(changed) or "no drift")
        return 1 if changed else 0
    for path in write():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
