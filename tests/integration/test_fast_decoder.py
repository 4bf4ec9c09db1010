"""The fast decoder (llguidance masks, forced tokens batched) against the GBNF decoder.

Both decoders run the real bundled SmolLM2 on the real extraction prompts and decoding
schemas, greedy, one thread, on a fixed set of 20 requests (five per domain: the first
short single-domain SGD train requests, and five insurance requests written here).

What "the same output" means, measured on the full set (`test_full_set_...`, marked slow):

* With forced tokens fed one `llama_decode` each (`batch_forced_tokens=False`), the fast
  decoder reproduces the GBNF decoder exactly on all 20: the same tokens, the same text,
  log-probabilities within 2e-7. So the llguidance mask allows what the GBNF grammar allows
  wherever the model goes, the forced tokens are the ones the model would have picked, and
  end-of-generation is handled alike.
* With forced tokens batched (the default, where the speed comes from), 11 of 20 outputs are
  identical and 9 differ. llama.cpp's CPU kernels round the KV cache entries of a token
  decoded alone differently from one decoded inside a batch (logits move by up to ~0.4, token
  log-probabilities by up to ~0.15 nats). Every difference starts at a near-tie where the two
  candidates were within ~0.06 nats of each other (both at probability 0.21-0.52):

  - flights "...Atlanta, GA, and heading to Delhi": airline "Dhli Airlines" vs "Dhilani
    Airlines" (`li` -1.54 vs `il` -1.58);
  - flights "...From ATL to Los Angeles": passengers 2 vs null (` ` -0.77 vs ` null` -0.71);
  - flights "...New York City from Vancouver": origin "New York City" vs "New York"
    (` City` -0.72 vs `",` -0.66);
  - hotels "i also need two hotel rooms...": nights null vs 2 (` null` -0.72 vs ` ` -0.70);
  - hotels "...check out Tuesday next week...": review_rating null vs 2.5 and two more fields
    after it (` null` -0.73 vs ` ` -0.74);
  - hotels "...check in on the 12th...": wifi null vs true (` null` -1.36 vs ` true` -1.36);
  - cars "...Around 11 o'clock...": "11:30 am" vs "11:15" (`3` -1.07 vs `1` -1.13);
  - insurance "...whole family of 5": trip_end "the 5th" vs "the 5th of April" (`",` -0.71 vs
    ` of` -0.74).

  The GBNF decoder is no steadier there: the same request can come out differently cold and
  with the prompt prefix cached. So for a differing request the tests assert the property
  that explains it instead of equality: both outputs are schema-valid, they agree up to a
  token where neither decoder's choice had probability above 0.6, and the fast decoder with
  forced tokens fed one by one reproduces the GBNF output exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from skiff_contracts.domains import DRAFTS, Domain, FlightsDraft
from skiff_extraction.prompts import extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_inference.engine import ChatMessage, Generation
from skiff_inference.factory import EngineSettings, build_engine
from skiff_inference.llamacpp import LlamaCppEngine

pytestmark = pytest.mark.model

MAX_TOKENS = 160
NEAR_TIE = 0.6  # neither decoder's choice was more likely than this where they part

FIXED: list[tuple[Domain, str]] = [
    ("flights", "Can you find me one-way Economy class flight tickets on Delta Airlines? "
     "I'll be travelling from Paris, France to Philadelphia. I'll be departing on March 10th."),
    ("flights", "Can you find me some one-way flights leaving this Sunday? From Las Vegas. "
     "I am traveling to San Francisco."),
    ("flights", "I'm taking a trip soon and want a one way flight. Departure date is the 12th "
     "and would like to go on Delta Airlines. I will depart from Atlanta, GA, and heading to "
     "Delhi."),
    ("flights", "I need a oneway flight. Tomorrow. From ATL to Los Angeles."),
    ("flights", "I have a trip and I need a one way flight. I will be leaving on the 1st. I "
     "would like to travel with Air Canada. I am going to New York City from Vancouver."),
    ("hotels", "i also need two hotel rooms please book it on march 6th"),
    ("hotels", "How about hotels? Perfect. Let's book it with a check out on the 13th of this "
     "month and check in on the 10th of this month."),
    ("hotels", "I want to find a hotel to for two rooms. Yes, check out Tuesday next week and "
     "check in 2nd of this month."),
    ("hotels", "I want to look for hotels over there. Yes, I want to check in on the 12th of "
     "this month and check out on March 8th. I'll need two rooms."),
    ("hotels", "I would like to search for a hotel there. Yes, make me a reservation. I want to "
     "check out on the 11th of March."),
    ("cars", "find a rental car the 8th san francisco intermediate car three in the afternoon "
     "till 11th of this month yes I do"),
    ("cars", "I need a rental car. From about 10 am on March 8th until the 11th of this month. "
     "From Fremont. Okay, good to know. I'd like to reserve it."),
    ("cars", "Rent me a car from the 2nd of this month until the 7th of March. I am getting it "
     "in San Jose. I will get it at 2 in the afternoon. That is great. Book me this car."),
    ("cars", "I want to rent a car! I want the car for March 4th at 12 in the afternoon in "
     "Concord. Until the 5th of March. Sounds great. I will reserve this car."),
    ("cars", "Find me a rental car for pick up from the Concord on day after tomorrow till the "
     '9th of this month Around 11 o"clock in the morning thats good, please book it'),
    ("insurance", "Travel insurance for two adults please, premium coverage, from June 3 to "
     "June 17. We live in Canada."),
    ("insurance", "I need basic insurance for my trip next week, just me."),
    ("insurance", "Can you insure the four of us from the 5th of August until the 20th? We're "
     "UK residents."),
    ("insurance", "Add standard travel insurance for the whole family of 5."),
    ("insurance", "I'm flying to Tokyo on March 2nd and coming back March 16th, and I'd like "
     "coverage. I live in Australia."),
]  # fmt: skip

# The default run, one per domain (a cold prompt prefix costs each engine seconds): two that
# came out identical and two that did not.
SUBSET = [FIXED[i] for i in (2, 6, 14, 16)]


@pytest.fixture(scope="module")
async def fast_engine() -> AsyncIterator[LlamaCppEngine]:
    engine = LlamaCppEngine(threads=1)
    yield engine
    await engine.aclose()


@pytest.fixture(scope="module")
async def grammar_engine() -> AsyncIterator[LlamaCppEngine]:
    engine = LlamaCppEngine(threads=1, decoder="grammar")
    yield engine
    await engine.aclose()


async def extract(engine: LlamaCppEngine, domain: Domain, text: str, **kw: Any) -> Generation:
    messages = extraction_messages(domain, text)
    kw.setdefault("max_tokens", MAX_TOKENS)
    return await engine.generate_json(messages, decoding_schema(DRAFTS[domain]), **kw)


def assert_valid(domain: Domain, generation: Generation) -> None:
    assert generation.json_error is None, generation.raw
    try:
        DRAFTS[domain].model_validate(generation.value)
    except ValidationError as error:  # pragma: no cover - the message is the point
        pytest.fail(f"{domain} output is not a valid draft: {error}\n{generation.raw}")
    assert generation.tokens_out == len(generation.token_logprobs) > 0
    assert "".join(t.text for t in generation.token_logprobs) == generation.raw
    assert all(math.isfinite(t.logprob) and t.logprob <= 0.0 for t in generation.token_logprobs)


def first_difference(a: Generation, b: Generation) -> int | None:
    texts_a = [t.text for t in a.token_logprobs]
    texts_b = [t.text for t in b.token_logprobs]
    if texts_a == texts_b:
        return None
    return next(
        (i for i, (x, y) in enumerate(zip(texts_a, texts_b, strict=False)) if x != y),
        min(len(texts_a), len(texts_b)),
    )


async def compare_on(
    requests: Sequence[tuple[Domain, str]],
    fast_engine: LlamaCppEngine,
    grammar_engine: LlamaCppEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> list[int]:
    """Run both decoders on `requests`; return the indices whose outputs differ."""
    differing = []
    for index, (domain, text) in enumerate(requests):
        fast = await extract(fast_engine, domain, text)
        grammar = await extract(grammar_engine, domain, text)
        assert_valid(domain, fast)
        assert_valid(domain, grammar)
        split = first_difference(fast, grammar)
        if split is None:
            assert fast.raw == grammar.raw
            continue
        differing.append(index)
        assert split < min(fast.tokens_out, grammar.tokens_out), (fast.raw, grammar.raw)
        chosen = (fast.token_logprobs[split].logprob, grammar.token_logprobs[split].logprob)
        assert max(chosen) <= math.log(NEAR_TIE), (split, chosen, fast.raw, grammar.raw)
        # Replayed with forced tokens decoded one by one, the numbers are the GBNF decoder's
        # and so is the output. Another request first, so the replay evaluates this one's
        # user turn as a batch, as the GBNF engine did, rather than its last token alone.
        other = next(t for d, t in FIXED if d == domain and t != text)
        await extract(fast_engine, domain, other, max_tokens=1)
        with monkeypatch.context() as patch:
            patch.setattr(fast_engine._decoder, "_batch_forced", False)
            exact = await extract(fast_engine, domain, text)
        assert first_difference(exact, grammar) is None, (exact.raw, grammar.raw)
        assert all(
            abs(x.logprob - y.logprob) < 1e-4
            for x, y in zip(exact.token_logprobs, grammar.token_logprobs, strict=True)
        )
    return differing


async def test_fast_decoder_matches_the_grammar_decoder(
    fast_engine: LlamaCppEngine,
    grammar_engine: LlamaCppEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four of the 20 (see the module docstring for what is asserted where they differ)."""
    differing = await compare_on(SUBSET, fast_engine, grammar_engine, monkeypatch)
    assert len(differing) < len(SUBSET), "at least the requests without a near-tie agree"


@pytest.mark.slow
async def test_full_set_fast_decoder_matches_the_grammar_decoder(
    fast_engine: LlamaCppEngine,
    grammar_engine: LlamaCppEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All 20 (about 3 minutes on a busy 2-vCPU machine)."""
    differing = await compare_on(FIXED, fast_engine, grammar_engine, monkeypatch)
    assert len(differing) < len(FIXED) // 2


SYSTEM = "Extract the flight request as JSON. Copy values as written; null if not given."
FLIGHTS = decoding_schema(FlightsDraft)


def chat(user: str) -> list[ChatMessage]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


async def test_forced_tokens_are_fast_forwarded_with_the_models_logprobs(
    fast_engine: LlamaCppEngine,
) -> None:
    generation = await fast_engine.generate_json(chat("Boston to Denver, May 2."), FLIGHTS)
    decoded = fast_engine.last_decoded
    assert decoded is not None
    # Nine keys with their quotes, colons and commas, and the braces, are forced.
    assert decoded.forced >= generation.tokens_out // 3, (decoded.forced, generation.raw)
    assert_valid("flights", generation)
    assert set(json.loads(generation.raw)) == set(FLIGHTS["properties"])


async def test_prefix_reuse_evaluates_only_the_new_suffix_and_changes_nothing(
    fast_engine: LlamaCppEngine,
) -> None:
    await fast_engine.generate_json(chat("From Oslo to Rome."), FLIGHTS, max_tokens=4)
    warm = await fast_engine.generate_json(chat("Lima to Quito on June 3rd."), FLIGHTS)
    warm_stats = fast_engine.last_decoded
    await fast_engine.forget_prefix()
    cold = await fast_engine.generate_json(chat("Lima to Quito on June 3rd."), FLIGHTS)
    cold_stats = fast_engine.last_decoded
    assert warm_stats is not None and cold_stats is not None
    assert cold_stats.prompt_evaluated == cold.tokens_in
    assert warm_stats.prompt_evaluated < cold.tokens_in // 2
    assert warm.raw == cold.raw
    assert [t.logprob for t in warm.token_logprobs] == [t.logprob for t in cold.token_logprobs]


async def test_seeded_sampling_is_reproducible_and_stays_valid(
    fast_engine: LlamaCppEngine,
) -> None:
    user = chat("Two of us from Paris to Nice next Friday, business class.")
    first = await fast_engine.generate_json(user, FLIGHTS, temperature=0.9, seed=11)
    again = await fast_engine.generate_json(user, FLIGHTS, temperature=0.9, seed=11)
    assert first.raw == again.raw
    assert_valid("flights", first)
    other = await fast_engine.generate_json(user, FLIGHTS, temperature=0.9, seed=12)
    assert_valid("flights", other)


async def test_a_truncated_output_still_accounts_for_every_token(
    fast_engine: LlamaCppEngine,
) -> None:
    generation = await fast_engine.generate_json(chat("To Oslo."), FLIGHTS, max_tokens=5)
    assert generation.tokens_out == 5
    assert generation.value is None and generation.json_error is not None
    assert "max_tokens" in generation.json_error
    assert "".join(t.text for t in generation.token_logprobs) == generation.raw


async def test_settings_select_the_decoder() -> None:
    assert EngineSettings().decoder == "fast"
    engine = build_engine(EngineSettings(decoder="grammar"))
    assert isinstance(engine, LlamaCppEngine)
    assert engine.decoder == "grammar"
    await engine.aclose()
