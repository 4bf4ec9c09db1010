"""Least-privilege NATS permissions per service identity, and the nats-server config from them.

`IDENTITIES` is the one table: for each identity (one NATS user per service), the subjects it
may publish and subscribe to, built from the subject constants and the JetStream layout. It
includes the JetStream API subjects nats-py 2.16 really uses, because every JetStream call is a
request to a `$JS.API.…` subject answered on the caller's inbox:

- pull from a durable (what FastStream's `pull_sub` does): `CONSUMER.INFO.<stream>.<durable>`,
  then `CONSUMER.MSG.NEXT.<stream>.<durable>`; acks, naks, `+WPI` and `+TERM` go to
  `$JS.ACK.<stream>.<durable>.>`. No `CONSUMER.CREATE`: consumers are provisioned, not declared.
- publish with a PubAck: the stream's subject itself, plus the inbox for the acknowledgement.
- ordered consumer (following a trip, `kv.keys()`): `STREAM.NAMES` (stream lookup by subject),
  `CONSUMER.CREATE.<stream>` (nats-py creates it unnamed), `CONSUMER.INFO.<stream>.*`, and
  flow-control replies to `$JS.FC.<stream>.>`.
- KV: `STREAM.INFO.KV_<bucket>` to open it, `STREAM.MSG.GET.KV_<bucket>` (or `DIRECT.GET` when
  the bucket allows direct gets) to read, and `$KV.<bucket>.<key>` to create/update/put.

Replies arrive on the connection's inbox. With `private_inbox=True` (the default) an identity
may only subscribe to `_INBOX.<identity>.>`, its own inboxes, which its connection must use as
`inbox_prefix` (`inbox_prefix(name)`). Anyone allowed `_INBOX.>` can read every reply, pull
deliveries included, so the shared form exists only for clients that do not set the prefix yet.

Run `python -m skiff_runtime.permissions --help` for the generator (nats.conf for compose, the
JSON table the Helm chart renders from, a `.env` of fresh passwords, the Markdown table).
Adding a service is adding one `Identity` to `IDENTITIES`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nats.js.api import DEFAULT_PREFIX as JS_API

from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.inventory import INVENTORY_OPERATIONS
from skiff_contracts.registry import REGISTRY_OPERATIONS
from skiff_runtime.jetstream import (
    LLM_WORKER,
    PLANNER_INPUT,
    PLANNER_RESULTS,
    REGISTRY_CALLS,
    WORKER_CONSUMERS,
    dlq_subject,
)

INBOX = "_INBOX"  # nats-py's default inbox prefix
JS_ACK = "$JS.ACK"
JS_FLOW_CONTROL = "$JS.FC"
PASSWORD_ENV_PREFIX = "SKIFF_NATS_PASSWORD_"
ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Grant:
    """A set of rights; grants combine with `|`."""

    publish: frozenset[str] = frozenset()
    subscribe: frozenset[str] = frozenset()
    replies: bool = False  # receives replies on its inbox (any request, any JetStream call)
    allow_responses: bool = False  # may answer requests it received, on their reply subject

    def __or__(self, other: Grant) -> Grant:
        return Grant(
            self.publish | other.publish,
            self.subscribe | other.subscribe,
            self.replies or other.replies,
            self.allow_responses or other.allow_responses,
        )


def js_api(*tokens: str) -> str:
    """A JetStream API subject, e.g. `js_api("STREAM", "INFO", "TASKS")`."""
    return ".".join((JS_API, *tokens))


def kv_stream(bucket: str) -> str:
    """The stream behind a KV bucket."""
    return f"KV_{bucket}"


def pull(stream: str, durable: str) -> Grant:
    """Fetch from one provisioned durable pull consumer and settle its messages."""
    return Grant(
        publish=frozenset(
            {
                js_api("CONSUMER", "INFO", stream, durable),
                js_api("CONSUMER", "MSG", "NEXT", stream, durable),
                f"{JS_ACK}.{stream}.{durable}.>",
            }
        ),
        replies=True,
    )


def pull_any(stream: str) -> Grant:
    """Fetch from every durable consumer of one stream (a domain's shared consumer and each of
    its model versions'), settle their messages; nothing on any other stream."""
    return Grant(
        publish=frozenset(
            {
                js_api("CONSUMER", "INFO", stream, "*"),
                js_api("CONSUMER", "MSG", "NEXT", stream, "*"),
                f"{JS_ACK}.{stream}.>",
            }
        ),
        replies=True,
    )


def publish_durably(*subjects_: str) -> Grant:
    """JetStream publishes to these subjects, waiting for the stream's PubAck."""
    return Grant(publish=frozenset(subjects_), replies=True)


def request(*subjects_: str) -> Grant:
    """Core request/reply to these subjects."""
    return Grant(publish=frozenset(subjects_), replies=True)


def serve(*subjects_: str, queue: str | None = None) -> Grant:
    """Answer requests on these subjects (in `queue` only, when given)."""
    entries = (f"{subject} {queue}" if queue else subject for subject in subjects_)
    return Grant(subscribe=frozenset(entries), allow_responses=True)


def follow(stream: str, *, lookup: bool = True) -> Grant:
    """An ordered (ephemeral push) consumer on `stream`; `lookup`: found by subject, not name."""
    rights = {
        js_api("CONSUMER", "CREATE", stream),
        js_api("CONSUMER", "INFO", stream, "*"),
        f"{JS_FLOW_CONTROL}.{stream}.>",
    }
    if lookup:
        rights.add(js_api("STREAM", "NAMES"))
    return Grant(publish=frozenset(rights), replies=True)


def kv_read(bucket: str) -> Grant:
    """Open the bucket and get keys (direct gets too, should the bucket allow them)."""
    stream = kv_stream(bucket)
    return Grant(
        publish=frozenset(
            {
                js_api("STREAM", "INFO", stream),
                js_api("STREAM", "MSG", "GET", stream),
                js_api("DIRECT", "GET", stream),
                js_api("DIRECT", "GET", stream, ">"),
            }
        ),
        replies=True,
    )


def kv_write(bucket: str) -> Grant:
    """Create, update (compare-and-set) and put keys."""
    return Grant(publish=frozenset({f"$KV.{bucket}.>"}), replies=True)


def kv_keys(bucket: str) -> Grant:
    """`kv.keys()` and watches: an ordered consumer on the bucket's stream."""
    return follow(kv_stream(bucket), lookup=False)


def manage_jetstream() -> Grant:
    """Create, update and inspect streams, consumers and buckets; no business subjects."""
    return Grant(publish=frozenset({js_api(">")}), replies=True)


@dataclass(frozen=True)
class Permissions:
    """What goes into one user's `permissions` block."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool


@dataclass(frozen=True)
class Identity:
    """One NATS user: a service (all its replicas share it) or a kind of client."""

    name: str
    does: str
    grant: Grant = field(repr=False)

    def permissions(self, *, private_inbox: bool = True) -> Permissions:
        """The allow lists, with its own inbox (`private_inbox`) or every inbox."""
        subscribe = set(self.grant.subscribe)
        if self.grant.replies:
            subscribe.add(f"{inbox_prefix(self.name) if private_inbox else INBOX}.>")
        return Permissions(
            tuple(sorted(self.grant.publish)), tuple(sorted(subscribe)), self.grant.allow_responses
        )


def inbox_prefix(name: str) -> str:
    """The `inbox_prefix` an identity's connection uses when inboxes are private."""
    return f"{INBOX}.{name}"


def worker(domain: Domain) -> Identity:
    """One domain worker's identity: its own commands, results and supplier domain only."""
    stream = subjects.tasks_stream(domain)
    return Identity(
        f"worker-{domain}",
        f"pulls only from `{stream}` (its domain's shared consumer and its model versions'); "
        "publishes only its own results, call records and dead letters; asks the inventory "
        "about its own domain; registers and heartbeats its model versions and lists the "
        "registry's cards (to serve its base model's adapter versions); answers extraction "
        "requests (`skiff extract` over NATS) to the asker only",
        pull_any(stream)
        | publish_durably(subjects.result(domain), subjects.calls(domain), dlq_subject(stream))
        | request(*(subjects.inventory(domain, op) for op in INVENTORY_OPERATIONS))
        | registry_calls(f"worker-{domain}", "register_model", "heartbeat", "list_models")
        | serve(subjects.extract(domain), queue=f"worker-{domain}"),
    )


LLM_WORKER_IDENTITY = Identity(
    "llm-worker",
    f"the LLM tier: pulls only `{LLM_WORKER.filter_subject}` from its own durable (no domain "
    "worker's commands); publishes only `result.llm`, call records for any work (its model "
    "answers for every domain, and records work no micro-SLM covers) and dead letters; "
    "decides the routes the planner's router was unsure of (`llm.route`) and resolves "
    "`skiff extract`'s escalations (`extract.llm`) for the asker only",
    pull(LLM_WORKER.stream, LLM_WORKER.durable)
    | publish_durably(subjects.RESULT_LLM, subjects.CALLS_ALL, dlq_subject(LLM_WORKER.stream))
    | serve(subjects.LLM_ROUTE, subjects.extract("llm"), queue=subjects.LLM_ROUTE_QUEUE),
)

PLANNER = Identity(
    "planner",
    "answers every owner's trip submissions and status queries; pulls every result and user "
    "input; dispatches commands (the only identity that may); publishes trip events, each "
    "domain's accepted answer and each routing decision (call log); asks the LLM tier about "
    "unsure routes; owns the saga records",
    serve(subjects.TRIP_SUBMIT_ALL, subjects.TRIP_STATUS_ALL, queue="planner")
    | request(subjects.LLM_ROUTE)
    | pull(PLANNER_RESULTS.stream, PLANNER_RESULTS.durable)
    | pull(PLANNER_INPUT.stream, PLANNER_INPUT.durable)
    | publish_durably(
        subjects.TASKS_ALL,
        subjects.TRIP_EVENTS_ALL,
        *(subjects.calls(domain) for domain in DOMAINS),
        subjects.calls("router"),
        dlq_subject(PLANNER_RESULTS.stream),
        dlq_subject(PLANNER_INPUT.stream),
    )
    | kv_read(subjects.BUCKET_SAGAS)
    | kv_write(subjects.BUCKET_SAGAS)
    | kv_keys(subjects.BUCKET_SAGAS)
    | kv_read(subjects.BUCKET_MODELS)
    | kv_keys(subjects.BUCKET_MODELS)
    | kv_read(subjects.BUCKET_ALIASES)
    | kv_keys(subjects.BUCKET_ALIASES),
)


def _registry_grant() -> Grant:
    grant = (
        serve(subjects.REGISTRY_ALL, queue="registry")
        | pull(REGISTRY_CALLS.stream, REGISTRY_CALLS.durable)
        | publish_durably(subjects.REGISTRY_HISTORY_ALL, dlq_subject(REGISTRY_CALLS.stream))
        | Grant(
            publish=frozenset(
                {js_api("STREAM", "MSG", "GET", subjects.STREAM_REGISTRY_HISTORY)}
                | {  # provisioning model versions' consumers, with their filter only
                    js_api(
                        "CONSUMER",
                        "CREATE",
                        subjects.tasks_stream(d),
                        "*",
                        subjects.model_extract(d, "*"),
                    )
                    for d in DOMAINS
                }
                | {  # reading the shared consumer's timers, which versions' consumers copy
                    js_api("CONSUMER", "INFO", c.stream, c.durable)
                    for c in WORKER_CONSUMERS.values()
                }
            ),
            replies=True,
        )
    )
    for bucket in (subjects.BUCKET_MODELS, subjects.BUCKET_ALIASES, subjects.BUCKET_SCHEMAS,
                   subjects.BUCKET_METRICS):  # fmt: skip
        grant = grant | kv_read(bucket) | kv_write(bucket) | kv_keys(bucket)
    return grant


REGISTRY = Identity(
    "registry",
    "answers the registry API; owns cards, aliases, schemas, metrics and the alias history; "
    "pulls call records; provisions model versions' consumers",
    _registry_grant(),
)

INVENTORY = Identity(
    "inventory",
    "answers supplier requests in its queue group; nothing else",
    serve(subjects.INVENTORY_ALL, queue=subjects.INVENTORY_QUEUE),
)


def registry_calls(caller: str, *operations: str) -> Grant:
    """Registry requests as `caller`: its name is the subject's last token, so the registry
    knows who asks (`subjects.registry`)."""
    return request(*(subjects.registry(operation, caller) for operation in operations))


def client(name: str) -> Identity:
    """A client identity: submits trips, and follows, answers, cancels and reads only its own.

    Its name is the owner token of its trips' subjects (`trip.submit.<name>`,
    `trip.input.<name>.<trip>`, `trip.events.<name>.<trip>`): it may publish and read those
    only. It follows a trip with a named push consumer whose filter is in the create subject
    (`CONSUMER.CREATE.TRIP_EVENTS.<consumer>.<filter>`), so the server refuses a filter on
    another owner's events; deliveries go to its own inbox. No KV, no results, no registry.
    """
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(
            f"a client name is one subject token of letters, digits, - and _: {name!r}"
        )
    stream = subjects.STREAM_TRIP_EVENTS
    follow_own = js_api("CONSUMER", "CREATE", stream, "*", subjects.owner_trips_events(name))
    grant = (
        request(subjects.trip_submit(name), subjects.trip_status(name))
        | publish_durably(subjects.trip_input(name, "*"))
        | Grant(publish=frozenset({follow_own}), replies=True)
    )
    return Identity(
        name,
        "a client: submits trips under its own name; follows, answers, cancels and reads its "
        "own trips only",
        grant,
    )


DEFAULT_CLIENTS = ("cli", "web", "mobile")
"""The client identities of the local stack, compose and the chart: `cli` is the `skiff`
CLI's trips; `web` and `mobile` stand for applications (docs/security.md)."""

OPERATOR = Identity(
    "operator",
    "a platform operator (`skiff registry`, `skiff extract` and `skiff route --llm` over "
    "NATS): changes and reads the registry as `operator`; asks the workers and the LLM tier "
    "for extractions and routes answered to it alone; no trip's subjects",
    registry_calls("operator", *REGISTRY_OPERATIONS)
    | request(subjects.LLM_ROUTE, *(subjects.extract(d) for d in (*DOMAINS, "llm"))),
)

FLYWHEEL_OPERATIONS = (
    "register_model", "promote", "set_threshold", "list_models", "get_model", "get_history",
    "get_series",
)  # fmt: skip

FLYWHEEL = Identity(
    "flywheel",
    "the conversion loop (`skiff flywheel export`, `curate`, `run`) and `skiff models "
    "install`: reads the call log with ordered consumers on `CALLS`; asks the registry for its "
    "cards, history and series, registers versions, promotes the shipped champions and sets "
    "calibrated thresholds; publishes nothing else",
    follow(subjects.STREAM_CALLS, lookup=False) | registry_calls("flywheel", *FLYWHEEL_OPERATIONS),
)

ADMIN = Identity(
    "admin",
    "`skiff streams apply` and readiness checks: the JetStream API only, no business subjects",
    manage_jetstream(),
)

IDENTITIES: tuple[Identity, ...] = (
    PLANNER,
    *(worker(domain) for domain in DOMAINS),
    LLM_WORKER_IDENTITY,
    INVENTORY,
    REGISTRY,
    *(client(name) for name in DEFAULT_CLIENTS),
    OPERATOR,
    FLYWHEEL,
    ADMIN,
)
BY_NAME: dict[str, Identity] = {identity.name: identity for identity in IDENTITIES}


def password_variable(name: str) -> str:
    """The environment variable holding an identity's password: `SKIFF_NATS_PASSWORD_PLANNER`."""
    return PASSWORD_ENV_PREFIX + name.upper().replace("-", "_")


def generate_password(length: int = 32) -> str:
    """A random password that survives every place it goes (about 190 bits).

    Letters and digits only, starting with a letter: nats-server parses an environment
    variable's value as a config value, so "-Yx…" or "12ab…" would be read as a malformed
    number; and it fits unescaped in a `nats://user:password@host` URL.
    """
    first = secrets.choice(string.ascii_letters)
    return first + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length - 1))


def generate_passwords(names: Iterable[str]) -> dict[str, str]:
    """A fresh random password per identity."""
    return {name: generate_password() for name in names}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), whatever umask says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def _quote(text: str) -> str:
    return json.dumps(text)


def _subjects(values: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(value) for value in values) + "]"


def render_config(
    passwords: Mapping[str, str] | None = None,
    *,
    identities: Sequence[Identity] = IDENTITIES,
    store_dir: str | None = "/data",
    http_port: int | None = None,
    private_inboxes: bool = True,
) -> str:
    """A nats-server config: JetStream on `store_dir`, one user per identity with its permissions.

    `passwords` maps identity names to literal passwords (write the result with
    `write_private`); without it each password is the environment variable
    `password_variable(name)`, which nats-server resolves at start-up (compose, Helm).
    `store_dir=None` leaves the store directory to the command line (`NatsServer` passes it).
    Every connection must authenticate: there is no `no_auth_user`, so a connection without
    credentials is refused.
    """
    lines = [
        "# Generated from skiff_runtime/permissions.py"
        " (`python -m skiff_runtime.permissions`): do not edit."
    ]
    if store_dir is None:
        lines.append("jetstream: enabled")
    else:
        lines += ["jetstream {", f"  store_dir: {_quote(store_dir)}", "}"]
    if http_port is not None:
        lines.append(f"http_port: {http_port}")
    lines += ["authorization {", "  users: ["]
    for identity in identities:
        granted = identity.permissions(private_inbox=private_inboxes)
        password = (
            _quote(passwords[identity.name])
            if passwords is not None
            else f"${password_variable(identity.name)}"
        )
        lines += [
            "    {",
            f"      # {identity.does}",
            f"      user: {_quote(identity.name)}",
            f"      password: {password}",
            "      permissions: {",
            f"        publish: {{ allow: {_subjects(granted.publish)} }}",
            f"        subscribe: {{ allow: {_subjects(granted.subscribe)} }}",
        ]
        if granted.allow_responses:
            lines.append("        allow_responses: true")
        lines += ["      }", "    }"]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def permission_table(*, private_inboxes: bool = True) -> list[dict[str, object]]:
    """The table as data: what the Helm chart renders its NATS users from."""
    table: list[dict[str, object]] = []
    for identity in IDENTITIES:
        granted = identity.permissions(private_inbox=private_inboxes)
        table.append(
            {
                "name": identity.name,
                "does": identity.does,
                "passwordVariable": password_variable(identity.name),
                "publish": list(granted.publish),
                "subscribe": list(granted.subscribe),
                "allowResponses": granted.allow_responses,
            }
        )
    return table


def chart_data(*, private_inboxes: bool = True) -> dict[str, object]:
    """What the Helm chart reads: the identities, and which consumer each worker's lag is on."""
    consumers = {
        domain: {"stream": spec.stream, "durable": spec.durable}
        for domain, spec in WORKER_CONSUMERS.items()
    }
    return {
        "identities": permission_table(private_inboxes=private_inboxes),
        "workerConsumers": consumers,
    }


def markdown_table(*, private_inboxes: bool = True) -> str:
    """The full table for people: every subject of every identity."""
    rows = [
        "| identity | may publish | may subscribe | answers requests |",
        "|---|---|---|---|",
    ]
    for identity in IDENTITIES:
        granted = identity.permissions(private_inbox=private_inboxes)
        publish = "<br>".join(f"`{s}`" for s in granted.publish) or "—"
        subscribe = "<br>".join(f"`{s}`" for s in granted.subscribe) or "—"
        answers = "yes" if granted.allow_responses else "no"
        rows.append(f"| `{identity.name}` | {publish} | {subscribe} | {answers} |")
    return "\n".join(rows) + "\n"


def _write_or_check(path: Path, text: str, check: bool) -> int:
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: regenerate it", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The generator's command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m skiff_runtime.permissions", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--shared-inboxes",
        action="store_true",
        help="allow `_INBOX.>` instead of `_INBOX.<identity>.>` (clients without inbox_prefix)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="nats.conf with passwords from the environment")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--store-dir", default="/data")
    render.add_argument("--http-port", type=int, default=8222)
    render.add_argument("--check", action="store_true", help="fail if --out differs")
    as_json = commands.add_parser("json", help="the table as JSON (the Helm chart's input)")
    as_json.add_argument("--out", type=Path, required=True)
    as_json.add_argument("--check", action="store_true", help="fail if --out differs")
    env = commands.add_parser("env", help="a .env file with a fresh password per identity")
    env.add_argument("--out", type=Path, required=True)
    env.add_argument("--force", action="store_true", help="replace an existing file")
    commands.add_parser("table", help="the Markdown table")
    args = parser.parse_args(argv)
    private = not args.shared_inboxes

    if args.command == "render":
        text = render_config(
            store_dir=args.store_dir, http_port=args.http_port, private_inboxes=private
        )
        return _write_or_check(args.out, text, args.check)
    if args.command == "json":
        text = json.dumps(chart_data(private_inboxes=private), indent=2) + "\n"
        return _write_or_check(args.out, text, args.check)
    if args.command == "env":
        if args.out.exists() and not args.force:
            print(f"{args.out} exists; keeping its passwords (--force replaces them)")
            return 0
        passwords = generate_passwords(BY_NAME)
        text = "".join(f"{password_variable(n)}={p}\n" for n, p in passwords.items())
        write_private(args.out, text)
        print(f"wrote {args.out} (0600)")
        return 0
    print(markdown_table(private_inboxes=private), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
