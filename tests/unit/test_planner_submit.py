"""The planner's submit edge without a server: a submission no trip can come of is refused
with a typed `SubmitRejected`, before anything is stored or dispatched."""

from __future__ import annotations

import json

import pytest
from faststream.nats import TestNatsBroker

from skiff_contracts import subjects
from skiff_contracts.messages import SUBMIT_REPLY, SubmitRejected
from skiff_extraction.router import Route
from skiff_planner.app import create_app
from skiff_planner.settings import PlannerSettings
from tests.fakes.planner import FixedRouter


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # Accepted once, then every worker overflowed its date arithmetic into the DLQ.
        ({"text": "a flight to Denver", "reference_date": "9999-12-31"},
         ("invalid.reference_date_range", "reference_date")),
        ({"text": "  \n\t "}, ("invalid.blank_text", "text")),
    ],
)  # fmt: skip
async def test_a_submission_no_trip_can_come_of_is_a_typed_rejection(
    body: dict[str, str], problem: tuple[str, str]
) -> None:
    _, broker = create_app(PlannerSettings(), FixedRouter(Route(("flights",), ())))
    async with TestNatsBroker(broker) as connected:
        sent = json.dumps(body).encode()
        message = await connected.request(sent, subjects.trip_submit("alice"), timeout=3)
    reply = SUBMIT_REPLY.validate_json(message.body)
    assert isinstance(reply, SubmitRejected), reply
    assert [(p.code, p.field) for p in reply.errors] == [problem]
