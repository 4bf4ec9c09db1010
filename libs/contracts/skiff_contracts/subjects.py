"""NATS subject names, stream names and KV buckets. Services never spell these as literals."""

from __future__ import annotations

from skiff_contracts.domains import Domain
from skiff_contracts.inventory import InventoryOperation

PREFIX = "skiff.v1"

TRIP_SUBMIT_ALL = f"{PREFIX}.trip.submit.*"
TRIP_STATUS_ALL = f"{PREFIX}.trip.status.*"
TRIP_EVENTS_ALL = f"{PREFIX}.trip.events.*.*"
TRIP_INPUT_ALL = f"{PREFIX}.trip.input.*.*"
TASKS_ALL = f"{PREFIX}.task.>"
RESULTS_ALL = f"{PREFIX}.result.*"

# Trips are scoped to their owner: the client identity that submitted them. The owner is a
# subject token, so a NATS permission can let a client publish and read its own trips' subjects
# and no one else's (docs/security.md).


def trip_submit(owner: str) -> str:
    """Where `owner` submits trips (request/reply, answered by the planner)."""
    return f"{PREFIX}.trip.submit.{owner}"


def trip_status(owner: str) -> str:
    """Where `owner` asks for one of its trips' saga record (request/reply, the planner)."""
    return f"{PREFIX}.trip.status.{owner}"


def trip_input(owner: str, trip_id: str) -> str:
    """The user's answers and cancellations for one trip."""
    return f"{PREFIX}.trip.input.{owner}.{trip_id}"


def trip_events(owner: str, trip_id: str) -> str:
    """Where every transition of one trip is published."""
    return f"{PREFIX}.trip.events.{owner}.{trip_id}"


def owner_trips_events(owner: str) -> str:
    """Every event of every trip `owner` submitted."""
    return f"{PREFIX}.trip.events.{owner}.*"


def token(subject: str, index: int) -> str:
    """One token of a subject: `token("skiff.v1.trip.submit.web", -1)` is `web`."""
    return subject.split(".")[index]


def task(domain: Domain, operation: str) -> str:
    """The command subject for one domain worker and operation, e.g. `task.flights.extract`."""
    return f"{PREFIX}.task.{domain}.{operation}"


def domain_tasks(domain: Domain) -> str:
    """Every command for one domain: the filter of that domain's durable consumer."""
    return f"{PREFIX}.task.{domain}.*"


def model_extract(domain: Domain, model_slug: str) -> str:
    """Extraction commands for one model version (champion, canary or shadow) of a domain."""
    return f"{PREFIX}.task.{domain}.extract.{model_slug}"


def model_consumer(domain: Domain, model_slug: str) -> str:
    """The durable consumer of one model version's extraction commands."""
    return f"worker-{domain}-{model_slug}"


def registry(operation: str, caller: str) -> str:
    """The registry's request/reply API, e.g. `registry.promote.operator`: the caller's
    identity is the last token, which NATS permissions pin to the connection's own user, so the
    registry knows who asks (the `who` of the alias history) without trusting a field."""
    return f"{PREFIX}.registry.{operation}.{caller}"


def extract(domain: str) -> str:
    """Extraction on request (`skiff extract` over NATS), answered by a domain's workers
    (`llm`: the LLM tier resolves): the reply goes to the asker only, never to a trip."""
    return f"{PREFIX}.extract.{domain}"


def calls(domain: str) -> str:
    """Where every model call of a domain is recorded (stream CALLS)."""
    return f"{PREFIX}.calls.{domain}"


REGISTRY_ALL = f"{PREFIX}.registry.*.*"
REGISTRY_HISTORY_ALL = f"{PREFIX}.registry-history.>"
CALLS_ALL = f"{PREFIX}.calls.*"
STREAM_CALLS = "CALLS"
STREAM_REGISTRY_HISTORY = "REGISTRY_HISTORY"
BUCKET_MODELS = "REGISTRY_MODELS"
BUCKET_ALIASES = "REGISTRY_ALIASES"
BUCKET_SCHEMAS = "REGISTRY_SCHEMAS"
BUCKET_METRICS = "REGISTRY_METRICS"


def registry_history(task: str) -> str:
    """A task's append-only alias history (`<task>` is `<domain>.<operation>`)."""
    return f"{PREFIX}.registry-history.{task}"


TASK_LLM_RESOLVE = f"{PREFIX}.task.llm.resolve"
LLM_ROUTE = f"{PREFIX}.llm.route"  # request/reply: the LLM tier decides an unsure route
LLM_ROUTE_QUEUE = "llm-worker"
RESULT_LLM = f"{PREFIX}.result.llm"
LLM_WORKER_CONSUMER = "llm-worker"


def result(domain: Domain) -> str:
    """Where a domain's workers publish their replies."""
    return f"{PREFIX}.result.{domain}"


def command_id(trip_id: str, step: str, attempt: int) -> str:
    """`Nats-Msg-Id` for a command: the same command published twice is stored once."""
    return f"{trip_id}:{step}:{attempt}"


# JetStream streams and KV buckets (provisioned by `skiff streams apply`).
STREAM_TRIPS = "TRIPS"


def tasks_stream(domain: str) -> str:
    """The work-queue stream of one domain's commands (`llm`: the LLM tier's).

    One stream per domain, not one for all: a stream name is a whole subject token in the
    JetStream API, so a NATS permission can let a worker pull from every consumer of its own
    domain (the shared one and each model version's) and from no other domain's.
    """
    return f"TASKS_{domain.upper()}"


STREAM_TASKS_LLM = tasks_stream("llm")
STREAM_RESULTS = "RESULTS"
STREAM_TRIP_EVENTS = "TRIP_EVENTS"
BUCKET_SAGAS = "SAGAS"

# Durable consumers.
PLANNER_RESULTS_CONSUMER = "planner-results"
PLANNER_INPUT_CONSUMER = "planner-input"


def worker_consumer(domain: Domain) -> str:
    return f"worker-{domain}"


# The inventory service: core NATS request/reply, one subject per domain and operation.
INVENTORY_QUEUE = "inventory"
INVENTORY_ALL = f"{PREFIX}.inventory.>"


def inventory(domain: Domain, operation: InventoryOperation) -> str:
    """A supplier operation on one domain, e.g. `inventory.flights.hold`.

    Operations: `search`, `hold`, `confirm`, `release` (see `skiff_contracts.inventory`).
    """
    return f"{PREFIX}.inventory.{domain}.{operation}"
