"""The NATS permission model against a real nats-server started with the rendered config.

Each identity connects with its own password and private inbox prefix and does what its service
does (the same nats-py calls FastStream makes); what it must not do is refused by the server,
and the test asserts on the server's permissions-violation error, not on a timeout alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from skiff_cli import stack
from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain
from skiff_flywheel.call_log import LogUnreachable, StreamSource, read_stream
from skiff_runtime.jetstream import (
    LLM_WORKER,
    PLANNER_INPUT,
    PLANNER_RESULTS,
    REGISTRY_CALLS,
    WORKER_CONSUMERS,
    apply_layout,
    dlq_subject,
    version_consumer,
)
from skiff_runtime.nats_server import NatsServer, nats_server_binary
from skiff_runtime.permissions import (
    BY_NAME,
    DEFAULT_CLIENTS,
    IDENTITIES,
    chart_data,
    generate_passwords,
    inbox_prefix,
    js_api,
    password_variable,
    render_config,
    write_private,
)

pytestmark = pytest.mark.nats

REFUSAL_TIMEOUT_S = 1.0


@dataclass
class Secured:
    server: NatsServer
    passwords: dict[str, str]


@dataclass
class Session:
    """One connection as one identity, keeping every error the server reported to it."""

    name: str
    connection: Client
    errors: list[Exception] = field(default_factory=list)

    @property
    def js(self) -> JetStreamContext:
        return self.connection.jetstream(timeout=REFUSAL_TIMEOUT_S)

    async def violation(self, action: str, subject: str, timeout_s: float = 3.0) -> str:
        """The server's permissions-violation message for `action` ("publish"/"subscription")."""
        wanted = f'permissions violation for {action} to "{subject}"'.lower()  # nats-py lowercases
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for error in self.errors:
                if wanted in str(error).lower():
                    return str(error)
            if asyncio.get_running_loop().time() > deadline:
                seen = [str(e) for e in self.errors]
                raise AssertionError(f"{self.name}: no violation {wanted!r}; errors: {seen}")
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    home = tmp_path_factory.mktemp("nats-secured")
    passwords = generate_passwords(BY_NAME)
    config = home / "nats.conf"
    write_private(config, render_config(passwords, store_dir=None))
    server = NatsServer(store_dir=home / "store", config_file=config)
    with server.running():
        yield Secured(server, passwords)


async def connect_as(secured: Secured, name: str) -> Session:
    session = Session(name, Client())

    async def keep(error: Exception) -> None:
        session.errors.append(error)

    await session.connection.connect(
        secured.server.url,
        user=name,
        password=secured.passwords[name],
        inbox_prefix=inbox_prefix(name),
        error_cb=keep,
        allow_reconnect=False,
    )
    return session


@pytest.fixture(scope="module")
async def sessions(secured: Secured) -> AsyncIterator[dict[str, Session]]:
    admin = await connect_as(secured, "admin")
    await apply_layout(admin.connection.jetstream())
    opened = {"admin": admin}
    for name in ("planner", "worker-flights", "worker-hotels", "llm-worker", "inventory", "web",
                 "mobile", "cli", "operator", "flywheel"):  # fmt: skip
        opened[name] = await connect_as(secured, name)
    yield opened
    for session in opened.values():
        await session.connection.close()


async def request_once_served(session: Session, subject: str, timeout_s: float = 5.0) -> Msg:
    """Request, retrying "no responders" while the responder's SUB is still in flight.

    nats-py 2.16 writes `flush()`'s PING straight to the socket, ahead of commands still
    buffered, so a flush after `subscribe()` does not prove the server has the subscription.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await session.connection.request(subject, b"{}", timeout=timeout_s)
        except NoRespondersError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def pending(admin: Session, stream: str, durable: str) -> int:
    return int((await admin.connection.jetstream().consumer_info(stream, durable)).num_pending)


async def dispatch(planner: Session, domain: Domain, trip_id: str) -> None:
    """The planner's durable publish of one command, as `JetStreamBus` does it."""
    ack = await planner.js.publish(
        subjects.task(domain, "extract"),
        json.dumps({"trip_id": trip_id}).encode(),
        stream=subjects.tasks_stream(domain),
        headers={"Nats-Msg-Id": f"{trip_id}:{domain}"},
    )
    assert ack.stream == subjects.tasks_stream(domain)


# --- the table itself --------------------------------------------------------------------------


def test_only_the_planner_may_publish_trip_events_or_write_sagas() -> None:
    for identity in IDENTITIES:
        publish = identity.permissions().publish
        may_publish_events = subjects.TRIP_EVENTS_ALL in publish
        may_write_sagas = f"$KV.{subjects.BUCKET_SAGAS}.>" in publish
        assert may_publish_events == (identity.name == "planner"), identity.name
        assert may_write_sagas == (identity.name == "planner"), identity.name


def allowed(subject: str, patterns: Iterable[str]) -> bool:
    """Whether NATS would match `subject` against any of `patterns` (`*` and `>` wildcards)."""

    def match(pattern: str) -> bool:
        tokens, wanted = pattern.split("."), subject.split(".")
        for i, token in enumerate(tokens):
            if token == ">":
                return len(wanted) > i
            if i >= len(wanted) or token not in ("*", wanted[i]):
                return False
        return len(tokens) == len(wanted)

    return any(match(p) for p in patterns)


def test_each_worker_may_pull_only_its_own_domains_consumers() -> None:
    for domain in DOMAINS:
        consumer = WORKER_CONSUMERS[domain]
        version = version_consumer(domain, "some-model-1")
        for spec in (consumer, version):
            pull = js_api("CONSUMER", "MSG", "NEXT", spec.stream, spec.durable)
            # admin manages JetStream (`$JS.API.>`) and holds no business subject (tested below).
            holders = [
                i.name
                for i in IDENTITIES
                if i.name != "admin" and allowed(pull, i.permissions().publish)
            ]
            assert holders == [f"worker-{domain}"], (spec.durable, holders)


def test_only_the_llm_worker_may_pull_escalations_and_publish_llm_results() -> None:
    pull = js_api("CONSUMER", "MSG", "NEXT", LLM_WORKER.stream, LLM_WORKER.durable)
    assert [i.name for i in IDENTITIES if pull in i.permissions().publish] == ["llm-worker"]
    granted = BY_NAME["llm-worker"].permissions()
    assert subjects.RESULT_LLM in granted.publish
    assert dlq_subject(LLM_WORKER.stream) in granted.publish
    assert not any(s.startswith(f"{subjects.PREFIX}.task") for s in granted.publish)
    assert not any(s.startswith(f"{subjects.PREFIX}.result.") for s in granted.publish
                   if s != subjects.RESULT_LLM)  # fmt: skip


def call_log_rights(publish: Iterable[str]) -> set[str]:
    """How an identity could read CALLS: pull a durable, create a consumer, get messages."""
    calls = subjects.STREAM_CALLS
    ways = {
        "pull": js_api("CONSUMER", "MSG", "NEXT", calls, REGISTRY_CALLS.durable),
        "create": js_api("CONSUMER", "CREATE", calls),
        "create-named": js_api("CONSUMER", "CREATE", calls, "mine", subjects.calls("flights")),
        "create-durable": js_api("CONSUMER", "DURABLE", "CREATE", calls, "mine"),
        "get": js_api("STREAM", "MSG", "GET", calls),
        "direct-get": js_api("DIRECT", "GET", calls),
    }
    return {way for way, subject in ways.items() if allowed(subject, publish)}


def test_only_the_registrys_metrics_consumer_and_the_flywheel_may_read_the_call_log() -> None:
    readers = {
        identity.name: rights
        for identity in IDENTITIES
        # admin manages JetStream (`$JS.API.>`): it can read any stream, by design (operators).
        if identity.name != "admin" and (rights := call_log_rights(identity.permissions().publish))
    }
    assert readers == {"registry": {"pull"}, "flywheel": {"create"}}
    assert BY_NAME["flywheel"].permissions().allow_responses is False


def test_who_may_write_the_call_log() -> None:
    """Workers their own domain's calls, the LLM tier any work's, the planner every domain's
    accepted answers; the flywheel (its reader) nothing but its registry requests."""
    for identity in IDENTITIES:
        publish = identity.permissions().publish
        writes = {d for d in (*DOMAINS, "trains") if allowed(subjects.calls(d), publish)}
        expected = {
            "planner": set(DOMAINS), "llm-worker": {*DOMAINS, "trains"},
            **{f"worker-{d}": {d} for d in DOMAINS},
        }.get(identity.name, set())  # fmt: skip
        assert writes == expected, identity.name
    flywheel = BY_NAME["flywheel"].permissions().publish
    registry = f"{subjects.PREFIX}.registry."
    assert [s for s in flywheel if s.startswith(f"{subjects.PREFIX}.")] == sorted(
        f"{registry}{op}.flywheel"
        for op in (
            "get_history",
            "get_model",
            "get_series",
            "list_models",
            "promote",
            "register_model",
            "set_threshold",
        )
    )


def test_only_the_planner_may_send_commands() -> None:
    """No client, operator or service but the planner can address a trip's step."""
    commands = [
        subjects.task("flights", "extract"), subjects.model_extract("hotels", "some-model-1"),
        subjects.task("cars", "hold"), subjects.TASK_LLM_RESOLVE,
    ]  # fmt: skip
    for identity in IDENTITIES:
        publish = identity.permissions().publish
        senders = [c for c in commands if allowed(c, publish)]
        assert senders == (commands if identity.name == "planner" else []), identity.name


def test_clients_reach_their_own_trips_only() -> None:
    own, other = "web", "mobile"
    events = subjects.STREAM_TRIP_EVENTS
    for name in DEFAULT_CLIENTS:
        granted = BY_NAME[name].permissions()
        assert granted.allow_responses is False
        for subject in granted.publish:  # every right names its own trips, or is a reply
            assert f".{name}" in subject, (name, subject)
    publish = BY_NAME[own].permissions().publish
    assert allowed(subjects.trip_submit(own), publish)
    assert allowed(subjects.trip_input(own, "trip-1"), publish)
    assert allowed(js_api("CONSUMER", "CREATE", events, "c1", subjects.trip_events(own, "t")),
                   publish)  # fmt: skip
    for refused in (
        subjects.trip_submit(other), subjects.trip_status(other),
        subjects.trip_input(other, "trip-1"),
        js_api("CONSUMER", "CREATE", events),  # unnamed: a filter the subject does not show
        js_api("CONSUMER", "CREATE", events, "c1", subjects.trip_events(other, "trip-1")),
        js_api("CONSUMER", "CREATE", events, "c1", subjects.TRIP_EVENTS_ALL),
        js_api("CONSUMER", "CREATE", subjects.STREAM_RESULTS),
        js_api("DIRECT", "GET", f"KV_{subjects.BUCKET_SAGAS}"),
        subjects.registry("list_models", own), subjects.LLM_ROUTE, subjects.extract("flights"),
    ):  # fmt: skip
        assert not allowed(refused, publish), refused


def test_registry_requests_carry_the_callers_own_name_and_changes_are_for_governors() -> None:
    changes = ("register_model", "promote", "rollback", "retire", "set_threshold")
    for identity in IDENTITIES:
        asks = [
            s
            for s in identity.permissions().publish
            if s.startswith(f"{subjects.PREFIX}.registry.")
        ]
        assert all(s.endswith(f".{identity.name}") for s in asks), identity.name
        may_change = {op for op in changes if allowed(subjects.registry(op, identity.name), asks)}
        expected = {
            "operator": set(changes), "flywheel": {"register_model", "promote", "set_threshold"},
            **{f"worker-{d}": {"register_model"} for d in DOMAINS},  # its own: the registry checks
        }.get(identity.name, set())  # fmt: skip
        assert may_change == expected, identity.name


def test_nobody_but_admin_manages_jetstream_and_no_inbox_is_shared() -> None:
    for identity in IDENTITIES:
        granted = identity.permissions()
        assert (js_api(">") in granted.publish) == (identity.name == "admin")
        assert not any(s.startswith("_INBOX.>") for s in granted.subscribe), identity.name


# --- against the server ------------------------------------------------------------------------


async def test_a_wrong_password_is_refused(secured: Secured) -> None:
    with pytest.raises(NatsError, match=r"(?i)authorization"):
        await nats.connect(
            secured.server.url,
            user="planner",
            password="not-the-password",
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


async def test_worker_pulls_its_own_tasks_and_publishes_its_results(
    sessions: dict[str, Session],
) -> None:
    planner, worker, admin = sessions["planner"], sessions["worker-flights"], sessions["admin"]
    errors_before = len(worker.errors)
    await dispatch(planner, "flights", "trip-own")
    consumer = WORKER_CONSUMERS["flights"]

    # What FastStream's pull subscriber does: look the durable up, then fetch from it.
    subscription = await worker.js.pull_subscribe(
        consumer.filter_subject, durable=consumer.durable, stream=consumer.stream
    )
    [message] = await subscription.fetch(1, timeout=5)
    assert message.subject == subjects.task("flights", "extract")
    await message.in_progress()
    await message.ack_sync()

    ack = await worker.js.publish(
        subjects.result("flights"), b'{"kind": "extracted"}', stream=subjects.STREAM_RESULTS
    )
    assert ack.stream == subjects.STREAM_RESULTS
    assert await pending(admin, consumer.stream, consumer.durable) == 0
    info = await admin.connection.jetstream().consumer_info(consumer.stream, consumer.durable)
    assert info.num_ack_pending == 0
    assert worker.errors[errors_before:] == []


async def test_worker_cannot_read_another_domains_tasks(sessions: dict[str, Session]) -> None:
    planner, worker, admin = sessions["planner"], sessions["worker-flights"], sessions["admin"]
    hotels, own = sessions["worker-hotels"], WORKER_CONSUMERS["hotels"]
    hotels_errors_before = len(hotels.errors)
    await dispatch(planner, "hotels", "trip-other")
    assert await pending(admin, own.stream, own.durable) == 1

    # Binding to worker-hotels' durable: the lookup request itself is refused.
    with pytest.raises(NatsTimeout):
        await worker.js.pull_subscribe(own.filter_subject, durable=own.durable, stream=own.stream)
    await worker.violation("publish", js_api("CONSUMER", "INFO", own.stream, own.durable))

    # Asking for the next message directly is refused too.
    next_hotels = js_api("CONSUMER", "MSG", "NEXT", own.stream, own.durable)
    with pytest.raises(NatsTimeout):
        await worker.connection.request(next_hotels, b'{"batch": 1}', timeout=REFUSAL_TIMEOUT_S)
    await worker.violation("publish", next_hotels)

    # Core subscriptions to the hotels commands, or to the hotels worker's inboxes, are refused.
    await worker.connection.subscribe(subjects.domain_tasks("hotels"))
    await worker.violation("subscription", subjects.domain_tasks("hotels"))
    await worker.connection.subscribe("_INBOX.>")
    await worker.violation("subscription", "_INBOX.>")
    await worker.connection.subscribe(f"{inbox_prefix('worker-hotels')}.>")
    await worker.violation("subscription", f"{inbox_prefix('worker-hotels')}.>")

    # The hotels command is still there, and its own worker gets it.
    assert await pending(admin, own.stream, own.durable) == 1
    subscription = await hotels.js.pull_subscribe(
        own.filter_subject, durable=own.durable, stream=own.stream
    )
    [message] = await subscription.fetch(1, timeout=5)
    await message.ack_sync()
    assert hotels.errors[hotels_errors_before:] == []


async def test_llm_worker_pulls_escalations_and_publishes_llm_results(
    sessions: dict[str, Session],
) -> None:
    planner, llm, admin = sessions["planner"], sessions["llm-worker"], sessions["admin"]
    errors_before = len(llm.errors)
    ack = await planner.js.publish(
        subjects.TASK_LLM_RESOLVE, b'{"kind": "resolve"}', stream=subjects.STREAM_TASKS_LLM,
        headers={"Nats-Msg-Id": "trip-llm:flights.resolve:1"},
    )  # fmt: skip
    assert ack.stream == subjects.STREAM_TASKS_LLM
    subscription = await llm.js.pull_subscribe(
        LLM_WORKER.filter_subject, durable=LLM_WORKER.durable, stream=LLM_WORKER.stream
    )
    [message] = await subscription.fetch(1, timeout=5)
    assert message.subject == subjects.TASK_LLM_RESOLVE
    await message.in_progress()
    await message.ack_sync()
    reply = await llm.js.publish(subjects.RESULT_LLM, b"{}", stream=subjects.STREAM_RESULTS)
    assert reply.stream == subjects.STREAM_RESULTS
    assert await pending(admin, LLM_WORKER.stream, LLM_WORKER.durable) == 0
    assert llm.errors[errors_before:] == []


async def test_llm_worker_cannot_read_domain_tasks_or_speak_for_a_domain(
    sessions: dict[str, Session],
) -> None:
    planner, llm, admin = sessions["planner"], sessions["llm-worker"], sessions["admin"]
    hotels = WORKER_CONSUMERS["hotels"]
    before = await pending(admin, hotels.stream, hotels.durable)
    await dispatch(planner, "hotels", "trip-llm-other")

    with pytest.raises(NatsTimeout):
        await llm.js.pull_subscribe(
            hotels.filter_subject, durable=hotels.durable, stream=hotels.stream
        )
    await llm.violation("publish", js_api("CONSUMER", "INFO", hotels.stream, hotels.durable))
    next_hotels = js_api("CONSUMER", "MSG", "NEXT", hotels.stream, hotels.durable)
    with pytest.raises(NatsTimeout):
        await llm.connection.request(next_hotels, b'{"batch": 1}', timeout=REFUSAL_TIMEOUT_S)
    await llm.violation("publish", next_hotels)
    await llm.connection.subscribe(subjects.domain_tasks("hotels"))
    await llm.violation("subscription", subjects.domain_tasks("hotels"))

    await llm.connection.publish(subjects.result("hotels"), b"{}")
    await llm.connection.flush()
    await llm.violation("publish", subjects.result("hotels"))
    await llm.connection.publish(subjects.trip_events("web", "trip-llm-other"), b"{}")
    await llm.connection.flush()
    await llm.violation("publish", subjects.trip_events("web", "trip-llm-other"))

    # The hotels command is untouched: still waiting for the hotels worker.
    assert await pending(admin, hotels.stream, hotels.durable) == before + 1
    drained = await sessions["worker-hotels"].js.pull_subscribe(
        hotels.filter_subject, durable=hotels.durable, stream=hotels.stream
    )
    for message in await drained.fetch(before + 1, timeout=5):
        await message.ack_sync()


async def test_worker_cannot_publish_trip_events_or_other_results(
    sessions: dict[str, Session],
) -> None:
    worker, admin = sessions["worker-flights"], sessions["admin"]
    events = subjects.trip_events("web", "trip-forged")
    before = (await admin.connection.jetstream().stream_info(subjects.STREAM_TRIP_EVENTS)).state

    await worker.connection.publish(events, b'{"kind": "trip_finished"}')
    await worker.connection.flush()
    await worker.violation("publish", events)
    with pytest.raises(NatsTimeout):  # a JetStream publish gets no PubAck either
        await worker.js.publish(events, b"{}", stream=subjects.STREAM_TRIP_EVENTS)

    forged_input = subjects.trip_input("web", "trip-forged")
    await worker.connection.publish(forged_input, b'{"kind": "cancel"}')
    await worker.connection.flush()
    await worker.violation("publish", forged_input)

    await worker.connection.publish(subjects.result("hotels"), b"{}")
    await worker.connection.flush()
    await worker.violation("publish", subjects.result("hotels"))

    await worker.connection.publish(subjects.task("hotels", "extract"), b"{}")
    await worker.connection.flush()
    await worker.violation("publish", subjects.task("hotels", "extract"))

    after = (await admin.connection.jetstream().stream_info(subjects.STREAM_TRIP_EVENTS)).state
    assert after.messages == before.messages


async def follow(client: Session, subject: str) -> Msg:
    """The first event on `subject` through a named push consumer whose filter is in its
    create subject, as `SkiffClient.events` follows a trip."""
    inbox = client.connection.new_inbox()
    subscription = await client.connection.subscribe(inbox)
    try:
        await client.js.add_consumer(subjects.STREAM_TRIP_EVENTS, ConsumerConfig(
            name=f"{client.name}-{secrets.token_hex(4)}", filter_subject=subject,
            deliver_subject=inbox, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
            inactive_threshold=5.0,
        ))  # fmt: skip
        return await subscription.next_msg(timeout=5)
    finally:
        await subscription.unsubscribe()


async def test_planner_and_client_do_their_jobs(sessions: dict[str, Session]) -> None:
    planner, client, worker = sessions["planner"], sessions["web"], sessions["worker-flights"]
    trip_id = "trip-planner"
    planner_errors_before, client_errors_before = len(planner.errors), len(client.errors)

    # trip.submit.<owner> and trip.status.<owner>: the planner serves every owner's, in its
    # queue; the client asks under its own name and gets the answer.
    async def accept(message: Msg) -> None:
        owner = subjects.token(message.subject, -1)
        await message.respond(json.dumps({"trip_id": trip_id, "owner": owner}).encode())

    served = [
        await planner.connection.subscribe(pattern, queue="planner", cb=accept)
        for pattern in (subjects.TRIP_SUBMIT_ALL, subjects.TRIP_STATUS_ALL)
    ]
    for subject in (subjects.trip_submit("web"), subjects.trip_status("web")):
        reply = await request_once_served(client, subject)
        assert json.loads(reply.data) == {"trip_id": trip_id, "owner": "web"}
    for subscription in served:
        await subscription.unsubscribe()

    # Saga records: create, read, compare-and-set, list.
    kv = await planner.js.key_value(subjects.BUCKET_SAGAS)
    revision = await kv.create(trip_id, b'{"state": "new"}')
    entry = await kv.get(trip_id)
    assert entry.value == b'{"state": "new"}'
    await kv.update(trip_id, b'{"state": "extracting"}', last=revision)
    assert trip_id in await kv.keys()

    # A worker result reaches the planner's durable; the planner settles it and emits an event.
    await worker.js.publish(subjects.result("flights"), b"{}", stream=subjects.STREAM_RESULTS)
    results = await planner.js.pull_subscribe(
        PLANNER_RESULTS.filter_subject,
        durable=PLANNER_RESULTS.durable,
        stream=PLANNER_RESULTS.stream,
    )
    for message in await results.fetch(10, timeout=5):
        await message.ack_sync()
    # A user's answer: the client publishes it durably, the planner pulls it from its durable.
    answer = await client.js.publish(
        subjects.trip_input("web", trip_id), b'{"kind": "answer"}', stream=subjects.STREAM_TRIPS
    )
    assert answer.stream == subjects.STREAM_TRIPS
    inputs = await planner.js.pull_subscribe(
        PLANNER_INPUT.filter_subject, durable=PLANNER_INPUT.durable, stream=PLANNER_INPUT.stream
    )
    [user_input] = await inputs.fetch(1, timeout=5)
    assert user_input.subject == subjects.trip_input("web", trip_id)
    await user_input.ack_sync()

    event = await planner.js.publish(
        subjects.trip_events("web", trip_id), b'{"seq": 1}', stream=subjects.STREAM_TRIP_EVENTS
    )
    assert event.stream == subjects.STREAM_TRIP_EVENTS

    # The client follows its trip; the saga record it gets from the planner, never from KV.
    assert (await follow(client, subjects.trip_events("web", trip_id))).data == b'{"seq": 1}'
    assert planner.errors[planner_errors_before:] == []
    assert client.errors[client_errors_before:] == []
    with pytest.raises(NatsTimeout):
        await (await client.js.key_value(subjects.BUCKET_SAGAS)).get(trip_id)
    await client.violation("publish", js_api("STREAM", "INFO", f"KV_{subjects.BUCKET_SAGAS}"))


async def test_a_second_client_can_neither_read_answer_cancel_nor_speak_for_the_first(
    sessions: dict[str, Session],
) -> None:
    """`mobile` against `web`'s trip: every way in is refused by the server itself."""
    planner, admin, other = sessions["planner"], sessions["admin"], sessions["mobile"]
    trip_id = "trip-of-web"
    await planner.js.publish(
        subjects.trip_events("web", trip_id), b'{"seq": 1}', stream=subjects.STREAM_TRIP_EVENTS
    )
    inputs_before = (await admin.connection.jetstream().stream_info(subjects.STREAM_TRIPS)).state

    # Following web's trip: a consumer filtered on it, or on every trip, or unnamed.
    stream = subjects.STREAM_TRIP_EVENTS
    for filter_subject in (subjects.trip_events("web", trip_id), subjects.TRIP_EVENTS_ALL):
        with pytest.raises(NatsTimeout):
            await follow(other, filter_subject)
        wanted = f"{js_api('CONSUMER', 'CREATE', stream)}.mobile-".lower()
        assert any(
            wanted in str(e).lower() and f".{filter_subject}".lower() in str(e).lower()
            for e in other.errors
        ), [str(e) for e in other.errors]
    with pytest.raises(NatsTimeout):
        await other.js.subscribe(
            subjects.trip_events("web", trip_id), stream=stream, ordered_consumer=True
        )
    await other.violation("publish", js_api("CONSUMER", "CREATE", stream))
    await other.connection.subscribe(subjects.trip_events("web", trip_id))
    await other.violation("subscription", subjects.trip_events("web", trip_id))

    # Answering or cancelling it, submitting or reading as web.
    for subject in (subjects.trip_input("web", trip_id), subjects.trip_submit("web"),
                    subjects.trip_status("web")):  # fmt: skip
        await other.connection.publish(subject, b'{"kind": "trip_cancel", "trip_id": "x"}')
        await other.connection.flush()
        await other.violation("publish", subject)
    after = (await admin.connection.jetstream().stream_info(subjects.STREAM_TRIPS)).state
    assert after.messages == inputs_before.messages

    # Worker replies (their extracted values), the saga records, the registry's changes.
    with pytest.raises(NatsTimeout):
        await other.js.subscribe(subjects.RESULTS_ALL, ordered_consumer=True)
    await other.connection.subscribe(subjects.RESULTS_ALL)
    await other.violation("subscription", subjects.RESULTS_ALL)
    for subject in (subjects.registry("retire", "mobile"), subjects.registry("retire", "operator"),
                    subjects.extract("hotels"), subjects.task("hotels", "extract")):  # fmt: skip
        await other.connection.publish(subject, b"{}")
        await other.connection.flush()
        await other.violation("publish", subject)


async def test_the_operator_asks_the_registry_and_the_workers_but_commands_no_step(
    sessions: dict[str, Session],
) -> None:
    operator, worker = sessions["operator"], sessions["worker-flights"]

    async def answer(message: Msg) -> None:
        await message.respond(b'{"kind": "extracted"}')

    served = await worker.connection.subscribe(
        subjects.extract("flights"), queue="worker-flights", cb=answer
    )
    reply = await request_once_served(operator, subjects.extract("flights"))
    assert reply.data == b'{"kind": "extracted"}'
    await served.unsubscribe()
    for subject in (
        subjects.task("flights", "extract"),
        subjects.model_extract("flights", "some-model-1"),
        subjects.registry("promote", "flywheel"),
        subjects.trip_submit("cli"),
    ):
        await operator.connection.publish(subject, b"{}")
        await operator.connection.flush()
        await operator.violation("publish", subject)


async def test_inventory_answers_its_queue_and_workers_ask_only_for_their_domain(
    sessions: dict[str, Session],
) -> None:
    inventory, worker = sessions["inventory"], sessions["worker-flights"]

    async def answer(message: Msg) -> None:
        await message.respond(b'{"kind": "offers_found"}')

    served = await inventory.connection.subscribe(
        subjects.INVENTORY_ALL, queue=subjects.INVENTORY_QUEUE, cb=answer
    )
    reply = await request_once_served(worker, subjects.inventory("flights", "search"))
    assert reply.data == b'{"kind": "offers_found"}'

    hotels_search = subjects.inventory("hotels", "search")
    with pytest.raises(NatsTimeout):
        await worker.connection.request(hotels_search, b"{}", timeout=REFUSAL_TIMEOUT_S)
    await worker.violation("publish", hotels_search)

    # Outside its queue group the inventory may not listen (no silent copies of requests).
    await inventory.connection.subscribe(subjects.INVENTORY_ALL)
    await inventory.violation("subscription", subjects.INVENTORY_ALL)
    await served.unsubscribe()


async def test_admin_manages_jetstream_but_sends_no_business_messages(
    sessions: dict[str, Session],
) -> None:
    admin = sessions["admin"]
    names = await admin.connection.jetstream().streams_info()
    assert {s.config.name for s in names} >= {
        subjects.tasks_stream("flights"),
        subjects.STREAM_RESULTS,
    }
    command = subjects.task("flights", "extract")
    await admin.connection.publish(command, b"{}")
    await admin.connection.flush()
    await admin.violation("publish", command)


async def test_the_call_log_is_written_by_its_producers_and_read_by_the_flywheel_only(
    sessions: dict[str, Session], secured: Secured
) -> None:
    planner, llm, worker = sessions["planner"], sessions["llm-worker"], sessions["worker-flights"]
    flywheel, client, cli = sessions["flywheel"], sessions["web"], sessions["cli"]
    writes = (
        (worker, subjects.calls("flights"), b'{"kind": "call_record", "n": 1}'),
        (llm, subjects.calls("trains"), b'{"kind": "call_record", "n": 2}'),
        (planner, subjects.calls("flights"), b'{"kind": "answer_accepted", "n": 3}'),
    )
    for session, subject, body in writes:
        ack = await session.js.publish(subject, body, stream=subjects.STREAM_CALLS)
        assert ack.stream == subjects.STREAM_CALLS

    # The flywheel reads it as `skiff flywheel export` does (an ordered consumer)…
    source = StreamSource(secured.server.url, user="flywheel",
                          password=secured.passwords["flywheel"])  # fmt: skip
    records = await read_stream(source)
    assert [r.get("n") for r in records][-3:] == [1, 2, 3]
    assert [r.get("n") for r in await read_stream(source, task="trains.extract")] == [2]
    # …and may write nothing there, nor take the registry's durable.
    await flywheel.connection.publish(subjects.calls("flights"), b"{}")
    await flywheel.connection.flush()
    await flywheel.violation("publish", subjects.calls("flights"))
    registry_next = js_api("CONSUMER", "MSG", "NEXT", REGISTRY_CALLS.stream, REGISTRY_CALLS.durable)
    with pytest.raises(NatsTimeout):
        await flywheel.connection.request(registry_next, b'{"batch": 1}', timeout=REFUSAL_TIMEOUT_S)
    await flywheel.violation("publish", registry_next)

    # Nobody else reads it: the consumer a reader needs is refused to clients and the CLI.
    for session in (client, cli):
        with pytest.raises(NatsTimeout):
            await session.js.subscribe(
                subjects.CALLS_ALL, stream=subjects.STREAM_CALLS, ordered_consumer=True
            )
        await session.violation("publish", js_api("CONSUMER", "CREATE", subjects.STREAM_CALLS))
    with pytest.raises(LogUnreachable):  # the reader says so (`skiff flywheel` exits 2)
        await read_stream(
            StreamSource(secured.server.url, user="web", password=secured.passwords["web"],
                         identity="web", timeout_s=REFUSAL_TIMEOUT_S)
        )  # fmt: skip
    # The planner writes accepted answers of the domains only, the worker its own domain's.
    await planner.connection.publish(subjects.calls("trains"), b"{}")
    await planner.connection.flush()
    await planner.violation("publish", subjects.calls("trains"))
    await worker.connection.publish(subjects.calls("hotels"), b"{}")
    await worker.connection.flush()
    await worker.violation("publish", subjects.calls("hotels"))


def test_the_committed_nats_files_are_current() -> None:
    """compose's nats.conf and the chart's table are what the table renders today.

    Regenerate both with `make nats-config`.
    """
    repo = Path(__file__).resolve().parents[2]
    compose = render_config(http_port=8222, private_inboxes=True)
    assert (repo / "infra" / "nats" / "nats.conf").read_text() == compose
    chart = json.loads((repo / "helm" / "skiff" / "files" / "nats-permissions.json").read_text())
    assert chart == chart_data(private_inboxes=True)


async def test_the_local_stack_refuses_connections_without_credentials(tmp_path: Path) -> None:
    """`skiff up`'s config: no anonymous access; the CLI connects with the password the stack
    keeps for it, and gets the `cli` client's rights."""
    passwords = stack.local_passwords(tmp_path)
    assert oct(tmp_path.joinpath("nats-passwords.json").stat().st_mode & 0o777) == "0o600"
    config = stack.secure_nats_config(tmp_path, passwords)
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    with NatsServer(store_dir=tmp_path / "store", config_file=config).running() as server:
        admin = stack.NatsAuth("admin", passwords["admin"])
        assert any("TASKS" in line for line in await stack.provision(server.url, admin))
        with pytest.raises(NatsError, match=r"(?i)authorization"):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0)
        errors: list[Exception] = []

        async def keep(error: Exception) -> None:
            errors.append(error)

        connection = await stack.connect(server.url, home=tmp_path)
        connection._error_cb = keep
        cli = Session("cli", connection, errors)
        try:
            ack = await cli.js.publish(
                subjects.trip_input("cli", "trip-cli"), b"{}", stream=subjects.STREAM_TRIPS
            )
            assert ack.stream == subjects.STREAM_TRIPS
            version = subjects.model_extract("flights", "smollm2-135m-lora-1-0-0")
            await connection.publish(version, b"{}")
            await connection.flush()
            await cli.violation("publish", version)
        finally:
            await connection.close()


def test_the_compose_config_reads_generated_passwords_from_the_environment(
    tmp_path: Path,
) -> None:
    """nats-server parses `$SKIFF_NATS_PASSWORD_*` values as config: generated ones must parse."""
    config = tmp_path / "nats.conf"
    config.write_text(render_config(store_dir=str(tmp_path / "store"), private_inboxes=True))
    for _ in range(5):
        env = {password_variable(n): p for n, p in generate_passwords(BY_NAME).items()}
        checked = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(config)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
