"""Reading the call log: the CALLS stream itself, or a JSONL export of it, one way for both.

`read_call_log` takes a `StreamSource` (a NATS URL and credentials, by default the
`flywheel` identity, the one besides the registry's metrics consumer that may read CALLS) or
the path of an export, and returns every record in stream order, as dicts (the caller
validates them: a line that is not a JSON object is passed on as an empty record, which
curation counts as unreadable). The stream is read with an ordered consumer (ephemeral, no
acks, nothing left behind on the server) on `skiff.v1.calls.*` or on one work's subject
(`calls.flights`: both kinds of record of one domain), from the start or from a time; it
stops once it has delivered what the stream held when it started.

The same filters apply to an export, by each record's `task` and `occurred_at`, so reading
an export of the whole stream gives what reading the stream would have given, except for
lines that say neither (unreadable ones): they are kept, for curation to count, and, with a
time, for records published well after they occurred (an accepted answer sent from the
planner's outbox after a crash): the stream cuts by when the server stored a record, an
export by `occurred_at`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from skiff_contracts import subjects
from skiff_flywheel.call_records import extract_task, work_of
from skiff_runtime.permissions import inbox_prefix

FLYWHEEL_IDENTITY = "flywheel"
DEFAULT_TIMEOUT_S = 10.0


class LogUnreachable(Exception):
    """The call log could not be read: no NATS server answered, no CALLS stream, or the
    identity may not read it."""


@dataclass(frozen=True)
class StreamSource:
    """Where the CALLS stream is and who reads it. With `creds` (a `.creds` file) or `user`
    and `password`; `identity` names the inbox prefix its permissions allow."""

    url: str
    user: str | None = None
    password: str | None = None
    creds: Path | None = None
    identity: str = FLYWHEEL_IDENTITY
    timeout_s: float = DEFAULT_TIMEOUT_S


def subject_for(task: str | None) -> str:
    """The subject holding `task`'s records (calls and accepted answers), or every one."""
    return subjects.CALLS_ALL if task is None else subjects.calls(work_of(task))


async def read_call_log(
    source: StreamSource | Path, *, task: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every record of the log (of `task`, from `since`), in stream order."""
    if isinstance(source, Path):
        return list(filter_records(read_export(source), task=task, since=since))
    records = await read_stream(source, task=task, since=since)
    return list(filter_records(records, task=task, since=None))


def filter_records(
    records: Iterable[dict[str, Any]], *, task: str | None, since: datetime | None
) -> Iterator[dict[str, Any]]:
    """The records of `task` (by their `task` field) from `since` (by `occurred_at`).

    Records that cannot be told apart (no task, no readable time) are kept: curation counts
    them as unreadable rather than have them vanish."""
    wanted = extract_task(work_of(task)) if task is not None else None
    for record in records:
        if wanted is not None and record.get("task", wanted) != wanted:
            continue
        if since is not None and (at := _time(record)) is not None and at < _aware(since):
            continue
        yield record


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a JSONL export as dicts (a line that is not a JSON object: `{}`)."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield _parsed(line.encode())


def write_export(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as JSONL (one object per line, in the order given); how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


async def read_stream(
    source: StreamSource, *, task: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every record on the stream's subject for `task` (every task's when None), in order."""
    connection = await _connect(source)
    try:
        return await _read(connection, subject_for(task), since, source.timeout_s)
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as error:
        why = f"cannot read {subjects.STREAM_CALLS} at {source.url}: {error!r}"
        raise LogUnreachable(why) from error
    finally:
        await connection.close()


async def _connect(source: StreamSource) -> Client:
    options: dict[str, Any] = {}
    if source.creds is not None:
        options["user_credentials"] = str(source.creds)
    elif source.user and source.password:
        options["user"], options["password"] = source.user, source.password
    try:
        return await asyncio.wait_for(
            nats.connect(
                source.url,
                name="skiff-flywheel",
                inbox_prefix=inbox_prefix(source.identity),
                # A reader that cannot reach NATS says so instead of waiting: nats-py tries
                # the server at most twice (0 would mean forever), quietly (`_quiet`).
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                connect_timeout=source.timeout_s,
                error_cb=_quiet,
                **options,
            ),
            source.timeout_s * 2,
        )
    except (OSError, TimeoutError, nats.errors.Error) as error:
        raise LogUnreachable(f"no NATS server answers at {source.url}: {error!r}") from error


async def _quiet(error: Exception) -> None:
    """nats-py logs a traceback per failed attempt unless told where errors go."""


async def _read(
    connection: Client, subject: str, since: datetime | None, timeout_s: float
) -> list[dict[str, Any]]:
    js = connection.jetstream(timeout=timeout_s)
    config = (
        ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=_aware(since))
        if since is not None
        else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    subscription = await js.subscribe(
        subject, stream=subjects.STREAM_CALLS, ordered_consumer=True, config=config
    )
    try:
        # Each delivery says how many are left after it: the read ends at the end of the
        # stream as it then is (records still arriving are the next reader's). Whether there
        # is anything at all: what was pushed already, and what is still to come.
        info = await subscription.consumer_info()
        pending = (info.delivered.consumer_seq if info.delivered else 0) + (info.num_pending or 0)
        records = []
        while pending:
            message = await subscription.next_msg(timeout=timeout_s)
            records.append(_parsed(message.data))
            pending = message.metadata.num_pending
        return records
    finally:
        await subscription.unsubscribe()


def _parsed(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _time(record: Mapping[str, Any]) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(str(record["occurred_at"])))
    except (KeyError, ValueError):
        return None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
