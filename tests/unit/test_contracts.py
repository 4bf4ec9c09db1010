"""Contracts: snapshots match the code, messages are frozen and strict, bad input is typed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from pydantic import ValidationError

from skiff_contracts import snapshots
from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import (
    EARLIEST_REFERENCE_DATE,
    LATEST_REFERENCE_DATE,
    MAX_REQUEST_CHARS,
    SUBMIT_REPLY,
    WORKER_RESULT,
    Extracted,
    ExtractTask,
    ResolveTask,
    SubmitRejected,
    TripAccepted,
    TripAnswer,
    TripRequest,
    trip_id_for,
)
from skiff_contracts.problems import validation_problems


def test_committed_schema_snapshots_match_the_code() -> None:
    assert snapshots.drifted() == [], "contracts changed: run `make snapshots` if intended"


def test_drift_is_detected(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(snapshots, "SNAPSHOT_DIR", tmp_path)
    snapshots.write()
    (tmp_path / "TripRequest.json").write_text("{}")
    assert snapshots.drifted() == ["TripRequest"]


def test_trip_request_defaults_reference_date_to_today() -> None:
    assert TripRequest(text="a flight").reference_date == date.today()


@pytest.mark.parametrize("text", ["", "x" * (MAX_REQUEST_CHARS + 1)])
def test_empty_and_oversized_requests_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TripRequest(text=text)
    (problem,) = validation_problems(caught.value)
    assert problem.field == "text"
    assert problem.code in {"invalid.string_too_short", "invalid.string_too_long"}


def test_unknown_fields_are_an_error_not_silently_dropped() -> None:
    with pytest.raises(ValidationError):
        TripRequest.model_validate({"text": "hi", "surprise": 1})


def test_messages_are_frozen() -> None:
    request = TripRequest(text="hi")
    with pytest.raises(ValidationError):
        request.text = "changed"  # type: ignore[misc]


def test_trip_id_is_a_function_of_the_client_request_id() -> None:
    assert trip_id_for("abc") == trip_id_for("abc") != trip_id_for("abd")
    assert TripRequest(text="hi", client_request_id="abc").trip_id == trip_id_for("abc")


def test_unions_parse_by_kind() -> None:
    reply = SUBMIT_REPLY.validate_json(TripAccepted(trip_id="t", duplicate=False).model_dump_json())
    assert isinstance(reply, TripAccepted)
    extracted = Extracted(
        trip_id="t",
        step="flights.extract",
        domain="flights",
        params=FlightsRequest(origin="Boston"),
    )
    parsed = WORKER_RESULT.validate_json(extracted.model_dump_json())
    assert parsed == extracted
    assert isinstance(parsed.params, FlightsRequest)


def test_party_size_is_bounded() -> None:
    with pytest.raises(ValidationError):
        FlightsRequest(passengers=10)


def test_a_tasks_text_parts_must_join_to_its_text() -> None:
    fields = {"trip_id": "t", "step": "hotels.extract", "domain": "hotels",
              "reference_date": "2026-03-01", "text": "A room in Austin. From Boston."}  # fmt: skip
    assert ExtractTask(**fields, text_parts=("A room in Austin.", "From Boston.")).text_parts
    with pytest.raises(ValidationError, match="text_parts joined by spaces must be the text"):
        ExtractTask(**fields, text_parts=("A room in Austin.", "From Denver."))
    with pytest.raises(ValidationError, match="text_parts joined by spaces must be the text"):
        ResolveTask(**fields, text_parts=("A room.",), reason="ungrounded")


# --- bad values at the edge: typed refusals, never a crash later ---------------------------------

TASK_FIELDS = {"trip_id": "t", "step": "flights.extract", "domain": "flights",
               "reference_date": "2026-03-01", "text": "a flight"}  # fmt: skip
CARRIERS: dict[str, Callable[..., object]] = {
    # as the planner's on_submit reads it: JSON off the wire
    "TripRequest": lambda **f: TripRequest.model_validate_json(
        json.dumps({"text": f["text"], "reference_date": f["reference_date"]})
    ),
    "TripAnswer": lambda **f: TripAnswer(trip_id="t", text=f["text"]),
    "ExtractTask": lambda **f: ExtractTask(**f),
    "ResolveTask": lambda **f: ResolveTask(**f, reason="ungrounded"),
}


def _refusal(carrier: str, **changed: object) -> SubmitRejected:
    """The reply the planner sends for a submission that fails validation (app.on_submit)."""
    with pytest.raises(ValidationError) as caught:
        CARRIERS[carrier](**{**TASK_FIELDS, **changed})
    return SubmitRejected(errors=validation_problems(caught.value))


@pytest.mark.parametrize("carrier", list(CARRIERS))
@pytest.mark.parametrize("text", [" ", "   \n\t ", "\u3000\u00a0", "\u200b\u200b", "\x00"])
def test_a_blank_text_is_a_typed_refusal_wherever_a_text_is_carried(
    carrier: str, text: str
) -> None:
    (problem,) = _refusal(carrier, text=text).errors
    assert (problem.code, problem.field) == ("invalid.blank_text", "text")


@pytest.mark.parametrize("carrier", ["TripRequest", "ExtractTask", "ResolveTask"])
@pytest.mark.parametrize("far", ["9999-12-31", "0001-01-01", "2100-01-01", "1999-12-31"])
def test_a_far_reference_date_is_refused_at_submit_and_in_every_command(
    carrier: str, far: str
) -> None:
    """9999-12-31 was accepted, then every worker overflowed its date arithmetic into the DLQ."""
    (problem,) = _refusal(carrier, reference_date=far).errors
    assert (problem.code, problem.field) == ("invalid.reference_date_range", "reference_date")
    assert problem.message == "reference_date must be from 2000-01-01 to 2099-12-31"


def test_the_reference_window_admits_replayed_data_and_its_own_edges() -> None:
    for day in (EARLIEST_REFERENCE_DATE, date(2019, 3, 1), LATEST_REFERENCE_DATE):
        assert TripRequest(text="a flight", reference_date=day).reference_date == day
        task = ExtractTask.model_validate({**TASK_FIELDS, "reference_date": day})
        assert task.reference_date == day
