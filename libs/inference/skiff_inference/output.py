"""Turning what an engine produced into `Generation` fields: parsed JSON and token texts.

Token texts must concatenate to the raw output so callers can map log-probabilities
onto spans of the JSON. Byte pieces (in-process) are decoded incrementally, so a
character split across tokens goes to the token that completes it. Texts reported by
a server are reconciled with the raw output, because servers decode each token on
its own (a split character shows up as U+FFFD or as nothing) and some include the
end-of-generation token.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Sequence

# How far ahead a server-reported token text may be found after a gap of characters
# that earlier tokens failed to show (a split multi-byte character is at most a few).
_RESYNC_WINDOW = 8


def parse_json_output(
    raw: str, *, hit_token_limit: bool = False
) -> tuple[object | None, str | None]:
    """Parse `raw` as JSON: `(value, None)` on success, `(None, reason)` otherwise."""
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON: {exc}"
        if hit_token_limit:
            reason += " (generation stopped at max_tokens)"
        return None, reason


def texts_from_pieces(pieces: Iterable[bytes]) -> list[str]:
    """Decode per-token byte pieces so that the texts concatenate to the decoded whole."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    texts = [decoder.decode(piece) for piece in pieces]
    tail = decoder.decode(b"", final=True)
    if tail:
        if texts:
            texts[-1] += tail
        else:
            texts.append(tail)
    return texts


def align_token_texts(raw: str, reported: Sequence[str]) -> list[str]:
    """Give each reported token the slice of `raw` it produced; the slices concatenate to `raw`.

    Tokens whose text matches at the current position keep it. A token that does not
    match (part of a split character) is given the characters up to where the next
    token resynchronises; tokens after the end of `raw` (end-of-generation, stop
    strings) get "". Whatever is left unassigned goes to the last token.
    """
    if not reported:
        return []
    out: list[str] = []
    pos = 0
    for text in reported:
        if pos >= len(raw):
            out.append("")
            continue
        if text and raw.startswith(text, pos):
            out.append(text)
            pos += len(text)
            continue
        clean = text.replace("\ufffd", "")
        found = raw.find(clean, pos, pos + len(clean) + _RESYNC_WINDOW) if clean else -1
        if found < 0:
            out.append("")
            continue
        gap = raw[pos:found]
        if out:
            out[-1] += gap
            out.append(clean)
        else:
            out.append(gap + clean)
        pos = found + len(clean)
    if pos < len(raw):
        out[-1] += raw[pos:]
    return out
