"""The JetStream layout (streams, durable consumers, KV buckets) and the step that provisions it.

Services never declare streams at start-up; `skiff streams apply` (and `make run`) calls
`apply_layout`, which is idempotent: it creates what is missing and updates what changed.
On a JetStream cluster, `replicas=3` keeps every stream, consumer and bucket on three nodes,
so an acknowledged write outlives any one of them (docs/durability.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain

MiB = 1024 * 1024
DAY = 24 * 3600.0
DUPLICATE_WINDOW_S = 120.0
MAX_MESSAGE_BYTES = 256 * 1024
CALLS_MAX_AGE_S = 7 * DAY  # the call log's retention (docs/governance.md)
CALLS_MAX_BYTES = 1024 * MiB


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    max_age_s: float = 7 * DAY
    max_bytes: int = 1024 * MiB
    duplicate_window_s: float = DUPLICATE_WINDOW_S

    def config(self, replicas: int = 1) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            max_msg_size=MAX_MESSAGE_BYTES,
            duplicate_window=self.duplicate_window_s,
            num_replicas=replicas,
        )


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 64
    description: str = ""

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            description=self.description or None,
        )


@dataclass(frozen=True)
class Layout:
    streams: tuple[StreamSpec, ...]
    consumers: tuple[ConsumerSpec, ...]
    buckets: tuple[KeyValueConfig, ...] = field(default=())


def dlq_subject(stream: str) -> str:
    """Where messages of `stream` go once they have exhausted their deliveries."""
    return f"{subjects.PREFIX}.dlq.{stream}"


STREAM_DLQ = "DLQ"

WORKER_CONSUMERS = {
    domain: ConsumerSpec(
        stream=subjects.tasks_stream(domain),
        durable=subjects.worker_consumer(domain),
        filter_subject=subjects.domain_tasks(domain),
        # Paced retries reach 30 s apart by the 7th delivery: a reply that cannot be stored
        # while a cluster elects a stream leader (seconds) is retried, not dead-lettered.
        max_deliver=10,
        description=f"{domain} workers (one queue of commands shared by all replicas)",
    )
    for domain in DOMAINS
}
LLM_WORKER = ConsumerSpec(
    stream=subjects.STREAM_TASKS_LLM,
    durable=subjects.LLM_WORKER_CONSUMER,
    filter_subject=f"{subjects.PREFIX}.task.llm.*",
    ack_wait_s=60.0,
    max_deliver=10,
    description="the LLM tier: escalations from any domain",
)
PLANNER_RESULTS = ConsumerSpec(
    stream=subjects.STREAM_RESULTS,
    durable=subjects.PLANNER_RESULTS_CONSUMER,
    filter_subject=subjects.RESULTS_ALL,
    max_deliver=10,
    description="planner: every worker reply drives a saga transition",
)

PLANNER_INPUT = ConsumerSpec(
    stream=subjects.STREAM_TRIPS,
    durable=subjects.PLANNER_INPUT_CONSUMER,
    filter_subject=subjects.TRIP_INPUT_ALL,
    max_deliver=10,
    description="planner: users' answers and cancellations",
)

REGISTRY_CALLS = ConsumerSpec(
    stream=subjects.STREAM_CALLS,
    durable="registry-metrics",
    filter_subject=subjects.CALLS_ALL,
    ack_wait_s=60.0,
    max_deliver=10,
    max_ack_pending=1024,  # the registry takes call records in batches of a few hundred
    description="registry: live metrics from every model call",
)
REGISTRY_BUCKETS = (
    # Cards and aliases keep a few revisions, so a bad write can be read back and undone.
    KeyValueConfig(bucket=subjects.BUCKET_MODELS, history=5, storage=StorageType.FILE),
    KeyValueConfig(bucket=subjects.BUCKET_ALIASES, history=10, storage=StorageType.FILE),
    KeyValueConfig(bucket=subjects.BUCKET_SCHEMAS, history=1, storage=StorageType.FILE),
    KeyValueConfig(bucket=subjects.BUCKET_METRICS, history=1, storage=StorageType.FILE),
)

LAYOUT = Layout(
    streams=(
        StreamSpec(subjects.STREAM_TRIPS, (subjects.TRIP_INPUT_ALL,)),
        *(
            StreamSpec(
                subjects.tasks_stream(owner),
                (f"{subjects.PREFIX}.task.{owner}.>",),
                retention=RetentionPolicy.WORK_QUEUE,
            )
            for owner in (*DOMAINS, "llm")
        ),
        StreamSpec(subjects.STREAM_RESULTS, (subjects.RESULTS_ALL,)),
        StreamSpec(subjects.STREAM_TRIP_EVENTS, (subjects.TRIP_EVENTS_ALL,)),
        StreamSpec(STREAM_DLQ, (f"{subjects.PREFIX}.dlq.>",), max_age_s=30 * DAY),
        # The call log: redacted user text, kept only as long as the conversion loop needs
        # between two `skiff flywheel export` runs; past either limit the oldest go first.
        StreamSpec(
            subjects.STREAM_CALLS,
            (subjects.CALLS_ALL,),
            max_age_s=CALLS_MAX_AGE_S,
            max_bytes=CALLS_MAX_BYTES,
        ),
        # The alias history is the governance record: kept without an age limit.
        StreamSpec(
            subjects.STREAM_REGISTRY_HISTORY,
            (subjects.REGISTRY_HISTORY_ALL,),
            max_age_s=0.0,
            max_bytes=256 * MiB,
        ),
    ),
    consumers=(
        *WORKER_CONSUMERS.values(),
        LLM_WORKER,
        PLANNER_RESULTS,
        PLANNER_INPUT,
        REGISTRY_CALLS,
    ),
    buckets=(
        KeyValueConfig(bucket=subjects.BUCKET_SAGAS, history=5, storage=StorageType.FILE),
        *REGISTRY_BUCKETS,
    ),
)


async def apply_layout(
    js: JetStreamContext, layout: Layout = LAYOUT, *, replicas: int = 1
) -> list[str]:
    """Create or update every stream, consumer and bucket; returns one line per action.

    `replicas` is each stream's and bucket's copy count (1 on a single server, 3 on a
    three-node cluster); consumers follow their stream's. An existing stream or bucket is
    moved to that count (JetStream copies the data to the new peers)."""
    report: list[str] = []
    for spec in layout.streams:
        try:
            await js.stream_info(spec.name)
            await js.update_stream(spec.config(replicas))
            report.append(f"stream {spec.name}: up to date")
        except NotFoundError:
            await js.add_stream(spec.config(replicas))
            report.append(f"stream {spec.name}: created")
    for consumer in layout.consumers:
        await js.add_consumer(consumer.stream, consumer.config())
        report.append(f"consumer {consumer.stream}/{consumer.durable}: applied")
    for bucket in layout.buckets:
        try:
            await js.key_value(bucket.bucket)
        except BucketNotFoundError:
            await js.create_key_value(dataclasses.replace(bucket, replicas=replicas))
            report.append(f"bucket {bucket.bucket}: created")
            continue
        report.append(f"bucket {bucket.bucket}: {await _bucket_replicas(js, bucket, replicas)}")
    return report


async def _bucket_replicas(js: JetStreamContext, bucket: KeyValueConfig, replicas: int) -> str:
    """Move an existing bucket (its `KV_` stream) to `replicas` copies; its config is kept."""
    info = await js.stream_info(f"KV_{bucket.bucket}")
    if info.config.num_replicas == replicas:
        return "exists"
    was = info.config.num_replicas
    await js.update_stream(dataclasses.replace(info.config, num_replicas=replicas))
    return f"replicas {was} -> {replicas}"


async def wait_until_consuming(
    js: JetStreamContext, consumers: Iterable[ConsumerSpec], timeout_s: float = 60.0
) -> None:
    """Return once every consumer has a pull request waiting: its service is up and working.

    This is a readiness signal from the server itself, needing no endpoint on the service.
    """
    specs = list(consumers)
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = [(await js.consumer_info(c.stream, c.durable)).num_waiting for c in specs]
        if all(waiting):
            return
        if time.monotonic() > deadline:
            idle = [c.durable for c, n in zip(specs, waiting, strict=True) if not n]
            raise TimeoutError(f"not consuming after {timeout_s:.0f}s: {', '.join(idle)}")
        await asyncio.sleep(0.2)


def version_consumer(domain: Domain, model_slug: str) -> ConsumerSpec:
    """The durable consumer of one model version's extractions (the registry provisions it
    when the version registers)."""
    return ConsumerSpec(
        stream=subjects.tasks_stream(domain),
        durable=subjects.model_consumer(domain, model_slug),
        filter_subject=subjects.model_extract(domain, model_slug),
        description=f"{domain} extractions for model {model_slug}",
    )
