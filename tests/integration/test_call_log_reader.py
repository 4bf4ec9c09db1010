"""Reading the call log (`skiff_flywheel.call_log`) from a real CALLS stream and from an export:
the same records, in stream order, filtered alike by task and time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client

from skiff_contracts import subjects
from skiff_flywheel.call_log import (
    LogUnreachable,
    StreamSource,
    read_call_log,
    read_export,
    write_export,
)
from skiff_runtime.nats_server import NatsServer, free_port

pytestmark = pytest.mark.nats


def record(n: int, work: str, at: datetime) -> dict[str, object]:
    return {"kind": "call_record", "record_id": f"r{n}", "task": f"{work}.extract",
            "occurred_at": at.isoformat(), "n": n}  # fmt: skip


async def test_the_stream_and_its_export_read_the_same(
    nats_server: NatsServer, fresh_layout: Client, tmp_path: Path
) -> None:
    source = StreamSource(nats_server.url)
    assert await read_call_log(source) == []  # an empty log is read at once, not waited out
    js = fresh_layout.jetstream()
    early = datetime.now(UTC) - timedelta(hours=1)
    for n, work in enumerate(("flights", "trains", "flights")):
        body = json.dumps(record(n, work, early)).encode()
        await js.publish(subjects.calls(work), body, stream=subjects.STREAM_CALLS)
    await asyncio.sleep(0.05)  # stream time: the next record is stored after `since`
    since = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await js.publish(subjects.calls("flights"), json.dumps(record(3, "flights", since)).encode())
    await js.publish(subjects.calls("hotels"), b"not json")

    everything = await read_call_log(source)
    assert [r.get("n") for r in everything] == [0, 1, 2, 3, None]  # in stream order
    assert everything[-1] == {}  # unreadable: passed on empty, for curation to count
    flights = await read_call_log(source, task="flights.extract")
    assert [r["n"] for r in flights] == [0, 2, 3]
    assert [r["n"] for r in await read_call_log(source, task="flights.extract", since=since)] == [3]

    export = tmp_path / "calls.jsonl"
    assert write_export(export, everything) == 5
    assert list(read_export(export)) == everything
    # An unreadable line names no task: kept, so that curation counts it.
    assert await read_call_log(export, task="flights.extract") == [*flights, {}]
    assert [r.get("n") for r in await read_call_log(export, since=since)] == [3, None]


async def test_no_server_or_no_stream_is_unreachable(
    nats_server: NatsServer, nats_connection: Client
) -> None:
    with pytest.raises(LogUnreachable, match="no NATS server"):
        await read_call_log(StreamSource(f"nats://127.0.0.1:{free_port()}", timeout_s=1.0))
    js = nats_connection.jetstream()
    for info in await js.streams_info():
        await js.delete_stream(info.config.name)
    with pytest.raises(LogUnreachable, match="cannot read CALLS"):
        await read_call_log(StreamSource(nats_server.url, timeout_s=1.0))
