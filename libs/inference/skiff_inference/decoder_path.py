"""The token ids the fast decoder emits for a given output text: its path through the grammar.

A fine-tuned adapter should be trained on the tokens it will produce at inference. Under the
fast decoder (`guided_decoder.py`) the schema's fixed stretches (keys, quotes, separators)
are not chosen by the model: wherever the grammar allows one continuation, the decoder
appends llguidance's forced tokens (`compute_ff_tokens`), and only the rest is the model's.

`decoder_path` replays the decoder's loop with the text as the model's choices: forced tokens
are taken as the grammar gives them, and at each free step the token is the first of the
tokenizer's own encoding of the rest of the text (the spelling a model trained on normal text
prefers), checked against the grammar; when that token is not allowed there, the longest
allowed token that spells the next bytes is taken instead. A text the decoder could not
write (other white space, another key order, a value outside the schema) is refused.

llguidance forces only tokens that the canonical encoding would produce whatever follows,
so on real data the path is usually the tokenizer's encoding of the whole JSON (all of 400
SGD flight targets); the path is computed anyway, because it is the decoder's behaviour by
construction rather than by observation, and because it validates the target.
"""

from __future__ import annotations

from collections.abc import Callable

import llguidance
import llguidance.numpy
import numpy as np

from skiff_inference.token_choice import mask_from_bitmask


class DecoderPathError(ValueError):
    """The text is not an output the decoder can produce under the grammar."""


def decoder_path(
    start: llguidance.LLMatcher,
    tokenizer: llguidance.LLTokenizer,
    text: str,
    encode: Callable[[bytes], list[int]],
) -> list[int]:
    """The tokens the decoder emits to write `text`, ending where the grammar stops.

    `start` is a matcher in its start state (it is copied, not changed); `encode` is the
    model's tokenizer without BOS or special tokens. The end-of-generation token is not part
    of the path: the decoder stops when the grammar is complete and never decodes one.
    """
    matcher = start.deep_copy()
    target = text.encode("utf-8")
    done = 0
    path: list[int] = []
    while True:
        forced = matcher.compute_ff_tokens()
        if forced:
            spelled = tokenizer.decode_bytes(forced)
            if not target.startswith(spelled, done):
                raise DecoderPathError(
                    f"the grammar forces {spelled!r} at byte {done}, where the text has "
                    f"{target[done : done + len(spelled)]!r}"
                )
            if not matcher.consume_tokens(forced):
                raise DecoderPathError(
                    f"llguidance refused its forced tokens: {matcher.get_error()}"
                )
            path += forced
            done += len(spelled)
        if matcher.is_stopped() or done == len(target):
            break
        token = _next_token(matcher, tokenizer, target[done:], encode)
        if not matcher.consume_token(token):
            raise DecoderPathError(f"llguidance refused token {token}: {matcher.get_error()}")
        path.append(token)
        done += len(tokenizer.decode_bytes([token]))
    if done != len(target):
        raise DecoderPathError(f"the grammar stops after byte {done} of {len(target)}")
    if not matcher.is_accepting():
        raise DecoderPathError("the text ends before the grammar is complete")
    return path


def _next_token(
    matcher: llguidance.LLMatcher,
    tokenizer: llguidance.LLTokenizer,
    rest: bytes,
    encode: Callable[[bytes], list[int]],
) -> int:
    if _starts_a_character(rest):
        encoded = encode(rest)
        if encoded:
            first = encoded[0]
            if rest.startswith(tokenizer.decode_bytes([first])) and matcher.validate_tokens(
                [first]
            ):
                return first
    return _longest_allowed(matcher, tokenizer, rest)


def _longest_allowed(
    matcher: llguidance.LLMatcher, tokenizer: llguidance.LLTokenizer, rest: bytes
) -> int:
    bitmask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)
    llguidance.numpy.fill_next_token_bitmask(matcher, bitmask)
    allowed = np.flatnonzero(mask_from_bitmask(bitmask, tokenizer.vocab_size))
    best, best_length = -1, 0
    for token in allowed.tolist():
        if tokenizer.is_special_token(token):
            continue
        spelled = tokenizer.decode_bytes([token])
        if len(spelled) > best_length and rest.startswith(spelled):
            best, best_length = token, len(spelled)
    if best < 0:
        raise DecoderPathError(f"no token the grammar allows spells {rest[:16]!r}")
    return best


def _starts_a_character(data: bytes) -> bool:
    # A UTF-8 continuation byte (10xxxxxx) cannot start text the tokenizer can encode.
    return not data or data[0] & 0xC0 != 0x80
