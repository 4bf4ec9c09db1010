"""PII redaction: the corpus of travel requests, through the redactor and through every record
that leaves a process for the call log (both workers' call records, the LLM tier's `no_model`
records, the planner's accepted answers), and the Luhn rule behind card numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from skiff_contracts.domains import FlightsRequest, HotelsRequest
from skiff_contracts.messages import (
    Extracted,
    ExtractTask,
    ModelCall,
    NeedsEscalation,
    ResolveTask,
    parts_of,
)
from skiff_contracts.problems import Problem
from skiff_contracts.registry import AnswerAccepted, CallRecord
from skiff_flywheel.call_records import (
    accepted_answer,
    call_record,
    candidate_records,
    unsupported_records,
)
from skiff_flywheel.numbers import find_numbers, luhn_valid
from skiff_flywheel.redaction import PLACEHOLDERS, redact, redact_parts, redact_value

CORPUS = Path(__file__).parents[1] / "fixtures" / "pii_corpus.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines()]


def test_the_corpus_is_large_enough_and_covers_every_kind() -> None:
    assert len(ROWS) >= 40
    found: set[str] = set()
    for row in ROWS:
        found |= set(redact(row["text"]).counts)
    assert found == set(PLACEHOLDERS)
    assert sum(1 for row in ROWS if not row["must_remove"]) >= 10


@pytest.mark.parametrize("row", ROWS, ids=[row["text"][:40] for row in ROWS])
def test_corpus_line(row: dict[str, Any]) -> None:
    redacted = redact(row["text"]).text
    for value in row["must_remove"]:
        assert value not in redacted, f"{value!r} survived: {redacted}"
    for value in row["must_keep"]:
        assert value in redacted, f"{value!r} was lost: {redacted}"
    # What is knowingly not caught is pinned too: catching it later is a change to record.
    for value in row.get("known_miss", ()):
        assert value in redacted, f"{value!r} is now caught: update the corpus"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def records_for(text: str) -> list[CallRecord | AnswerAccepted]:
    """Every kind of call-log record, built from `text` as its producer builds it: the text as
    the input, inside the params and the draft, quoted by a problem, as a failed attempt."""
    when = {"trip_id": "trip-pii", "domain": "flights"}
    call = ModelCall(tier="slm", engine="llamacpp", model="smol", version="1")
    params = FlightsRequest(origin="Boston", origin_iata="BOS", airline=text)
    draft = {"origin": "Boston", "airline": text}
    answer = Extracted(step="flights.extract", params=params, draft=draft, call=call, **when)
    failed = NeedsEscalation(
        step="flights.extract", reason="ungrounded", attempt={"destination": text},
        errors=(Problem(code="unknown_city", message=f"no city '{text}'", field="destination"),),
        call=call, **when,
    )  # fmt: skip
    extract = ExtractTask(step="flights.extract", text=text, reference_date="2026-03-01", **when)
    resolve = ResolveTask(step="flights.resolve", text=text, reference_date="2026-03-01",
                          reason="ungrounded", **when)  # fmt: skip
    unsupported = resolve.model_copy(
        update={"domain": None, "step": "unsupported.resolve", "unsupported": ("trains",)}
    )
    llm = call.model_copy(update={"tier": "llm"})
    candidates = [failed.model_copy(update={"call": llm}), answer.model_copy(update={"call": llm})]
    records: list[CallRecord | AnswerAccepted] = [
        record
        for record in (call_record(extract, answer, "m"), call_record(extract, failed, "m"))
        if record is not None
    ]
    context = "The trip's flight goes from Boston to Denver."
    records += candidate_records(resolve, candidates, (text, context), "l")
    records += unsupported_records(unsupported, "l")
    for by, parts in (("slm", (text,)), ("llm", (text, context)),
                      ("user", (text, "From Boston.", context))):  # fmt: skip
        records.append(
            accepted_answer(
                trip_id="trip-pii",
                domain="flights",
                answer=answer,
                answered_by=by,  # type: ignore[arg-type]
                model_id="m",
                call_record_id="c",
                text_parts=parts,
            )
        )
    return records


@pytest.mark.parametrize("row", ROWS, ids=[row["text"][:40] for row in ROWS])
def test_no_corpus_value_leaves_in_any_call_log_record(row: dict[str, Any]) -> None:
    records = records_for(row["text"])
    assert len(records) == 8
    for record in records:
        strings = _strings(record.model_dump(mode="json"))
        for value in row["must_remove"]:
            leaked = [s for s in strings if value in s]
            assert not leaked, f"{type(record).__name__} carries {value!r}: {leaked}"


def test_a_sign_off_before_the_users_answer_is_caught_in_every_record_of_the_step() -> None:
    """A worker gets the request and the user's answers joined in one text, so a sign-off
    that ended the request no longer ends the text; the task also carries the parts, and
    every record redacts each part on its own (the worker's and the LLM tier's call, the
    accepted answer)."""
    text = "Need a hotel in Sacramento from the 3rd to the 6th. Thanks, Rachel"
    joined = f"{text} In March."
    assert "Rachel" in redact(joined).text  # what one text would leak
    task = ExtractTask(trip_id="t", step="hotels.extract", domain="hotels", text=joined,
                       text_parts=(text, "In March."), reference_date="2026-03-01")  # fmt: skip
    call = ModelCall(tier="slm", engine="e", model="m", version="1")
    reply = NeedsEscalation(
        trip_id="t", step=task.step, domain="hotels", reason="ungrounded", call=call
    )
    record = call_record(task, reply, "m")
    assert record is not None and record.input_text is not None
    assert "Rachel" not in record.input_text and record.input_text.endswith("In March.")
    resolve = ResolveTask(trip_id="t", step="hotels.resolve", domain="hotels", text=joined,
                          text_parts=task.text_parts, reference_date="2026-03-01",
                          reason="ungrounded")  # fmt: skip
    (llm,) = candidate_records(resolve, [reply], parts_of(resolve), "llm/big@1")
    assert llm.input_text is not None and "Rachel" not in llm.input_text
    answer = Extracted(
        trip_id="t", step=task.step, domain="hotels", params=HotelsRequest(location="Sacramento"),
        call=reply.call,
    )  # fmt: skip
    accepted = accepted_answer(trip_id="t", domain="hotels", answer=answer, answered_by="user",
                               model_id="m", call_record_id="c",
                               text_parts=(text, "In March."))  # fmt: skip
    assert "Rachel" not in accepted.input_text and accepted.input_text.endswith("In March.")


@pytest.mark.parametrize(
    ("parts", "secret"),
    [
        (("Two seats to Denver for me and my wife", "Jane Doe. From Boston."), "Jane Doe"),
        (("Book it. My passport number is", "X1234567"), "X1234567"),
        (("Hotel in Reno, my name is", "john smith"), "john smith"),
        (("A room in Austin on the 3rd. Thanks, Rachel", "From Boston."), "Rachel"),
    ],
)
def test_pii_split_across_a_request_and_its_answer_is_caught(
    parts: tuple[str, str], secret: str
) -> None:
    redacted = redact_parts(parts)
    assert secret not in redacted, redacted
    assert all(city in redacted for city in ("Boston", "Denver", "Reno", "Austin") if
               any(city in part for part in parts))  # fmt: skip


def test_counts_are_per_kind() -> None:
    result = redact("Mr. Ann Lee, ann@example.com, 4111 1111 1111 1111, (415) 555-0132")
    assert result.counts == {"name": 1, "email": 1, "card": 1, "phone": 1}
    assert result.total == 4


def test_redact_value_walks_json_and_keeps_keys_and_scalars() -> None:
    value = {
        "origin": "New York",
        "notes": ["call 415-555-0198", {"email": "a.b@example.org"}],
        "passengers": 2,
        "nonstop": True,
        "airline": None,
    }
    assert redact_value(value) == {
        "origin": "New York",
        "notes": ["call [PHONE]", {"email": "[EMAIL]"}],
        "passengers": 2,
        "nonstop": True,
        "airline": None,
    }


def test_text_without_pii_is_returned_unchanged() -> None:
    text = "Flight UA 1234 from Boston on 2026-03-12 at 10:30, back 12/03, $1,250.00, 2 adults"
    result = redact(text)
    assert result.text == text
    assert result.total == 0


# --- the Luhn rule, property style -------------------------------------------------------------


def _with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("some check digit always completes a Luhn number")


def _grouped(digits: str, separator: str) -> str:
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@pytest.mark.parametrize("seed", range(5))
def test_every_luhn_valid_number_of_13_to_19_digits_is_a_card(seed: int) -> None:
    rng = random.Random(seed)
    for length in range(13, 20):
        body = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(length - 2))
        card = _with_check_digit(body)
        for separator in ("", " ", "-"):
            written = _grouped(card, separator)
            result = redact(f"pay with {written} for the flight to Denver on March 3")
            assert result.counts == {"card": 1}, written
            assert "Denver" in result.text and "March 3" in result.text


@pytest.mark.parametrize("seed", range(5))
def test_a_luhn_invalid_number_is_never_a_card_and_never_a_phone(seed: int) -> None:
    rng = random.Random(seed)
    for length in (13, 14, 15, 16, 17, 18, 19):
        body = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(length - 2))
        valid = _with_check_digit(body)
        invalid = valid[:-1] + str((int(valid[-1]) + rng.randint(1, 9)) % 10)
        assert not luhn_valid(invalid)
        # Grouped, a 17-19 digit run holds 16-digit windows, and one of those passes the
        # check one time in ten: it is then redacted as a card, erring on the safe side.
        separators = ("", " ", "-") if length <= 16 else ("",)
        for separator in separators:
            written = _grouped(invalid, separator)
            assert redact(f"reference {written} for the hotel").text.count(written) == 1


def test_one_changed_digit_breaks_the_luhn_check() -> None:
    card = "4111111111111111"
    assert luhn_valid(card)
    for position in range(len(card)):
        for digit in "0123456789":
            if digit != card[position]:
                assert not luhn_valid(card[:position] + digit + card[position + 1 :])


def test_known_test_cards() -> None:
    for card in ("4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"):
        assert luhn_valid(card)
    assert not luhn_valid("")
    assert not luhn_valid("4111 1111")


@pytest.mark.parametrize(
    "text",
    ["2026-03-12 2026-03-19", "12.03.2026 26.03.2026", "10:30 11:45", "UA 1234 DL 5678", "12/03"],
)
def test_dates_times_and_flights_are_not_numbers(text: str) -> None:
    assert find_numbers(text) == []
