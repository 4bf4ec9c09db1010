"""The full call record a worker publishes: every new field filled, no PII in what leaves."""

from __future__ import annotations

from datetime import date

from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import Extracted, ExtractTask, ModelCall, NeedsEscalation
from skiff_contracts.problems import Problem
from skiff_contracts.registry import CallRecord
from skiff_extraction.prompts import PROMPT_VERSION
from skiff_flywheel.call_records import call_record

TEXT = (
    "Hi, my name is Jane Porter, email jane.porter@example.com. Book a flight from Boston "
    "to Denver on March 12th, charge 4111 1111 1111 1111."
)
PII = ("Jane", "Porter", "jane.porter@example.com", "4111 1111 1111 1111", "4111111111111111")
CALL = ModelCall(tier="slm", engine="llamacpp", model="smollm2", version="1", tokens_in=320,
                 tokens_out=40, latency_ms=210.0)  # fmt: skip


def _task() -> ExtractTask:
    return ExtractTask(
        trip_id="trip-1",
        step="flights.extract",
        domain="flights",
        text=TEXT,
        reference_date=date(2026, 3, 1),
    )


def test_an_extracted_call_is_recorded_whole_and_redacted() -> None:
    params = FlightsRequest(
        origin="Boston",
        origin_iata="BOS",
        destination="Denver",
        destination_iata="DEN",
        departure_date=date(2026, 3, 12),
    )
    reply = Extracted(trip_id="trip-1", step="flights.extract", domain="flights",
                      params=params, call=CALL)  # fmt: skip
    record = call_record(_task(), reply, "flights.extract/smollm2@1")
    assert record is not None
    dumped = record.model_dump_json()
    for value in PII:
        assert value not in dumped
    assert "Boston" in dumped and "Denver" in dumped and "March 12th" in dumped
    assert "2026-03-12" in dumped
    assert record.input_text is not None and "[NAME]" in record.input_text
    assert "[EMAIL]" in record.input_text and "[CARD]" in record.input_text
    assert record.output is not None and record.output["destination_iata"] == "DEN"
    assert record.prompt_version == PROMPT_VERSION
    assert record.grounded is True and record.valid
    assert record.final_answer is None and record.answered_by is None
    assert record.output_digest is not None
    assert CallRecord.model_validate_json(dumped) == record


def test_an_escalated_call_keeps_its_draft_and_errors_redacted() -> None:
    reply = NeedsEscalation(
        trip_id="trip-1",
        step="flights.extract",
        domain="flights",
        reason="ungrounded",
        attempt={"origin": "Boston", "destination": "call 415-555-0132"},
        errors=(
            Problem(
                code="unknown_city", message="no city 'call 415-555-0132'", field="destination"
            ),
        ),
        call=CALL,
    )
    record = call_record(_task(), reply, "flights.extract/smollm2@1")
    assert record is not None
    dumped = record.model_dump_json()
    for value in (*PII, "415-555-0132"):
        assert value not in dumped
    assert record.output == {"origin": "Boston", "destination": "call [PHONE]"}
    assert record.errors == ("unknown_city (destination): no city 'call [PHONE]'",)
    assert record.grounded is False and not record.valid and record.reason == "ungrounded"


def test_a_reply_without_a_model_call_has_no_record() -> None:
    reply = NeedsEscalation(trip_id="trip-1", step="flights.extract", domain="flights",
                            reason="timeout")  # fmt: skip
    assert call_record(_task(), reply, "flights.extract/smollm2@1") is None


def test_compact_producers_still_validate() -> None:
    record = CallRecord(model_id="m", task="flights.extract", tier="llm", trip_id="t",
                        step="flights.extract", valid=True, latency_ms=1.0, tokens_in=1,
                        tokens_out=1)  # fmt: skip
    assert record.input_text is None and record.errors == () and record.output is None
