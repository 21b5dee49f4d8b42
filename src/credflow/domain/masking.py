"""Masking a run's output: the credential's values never reach a stored log.

A value is found wherever it occurs, inside longer text and also when the output breaks it across lines
(``\\n``, ``\\r\\n`` or ``\\r`` between any two of its characters). Each hidden stretch of a line becomes
``***``; the line breaks stay, so the log keeps its shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_BREAK = re.compile(r"(\r\n|\r|\n)")


def _needles(values: Iterable[str | None]) -> list[str]:
    out = {v.replace("\r", "").replace("\n", "") for v in values if v}
    return sorted((n for n in out if n), key=len, reverse=True)


def _hidden_spans(flat: str, needles: list[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for needle in needles:
        at = flat.find(needle)
        while at != -1:
            spans.append((at, at + len(needle)))
            at = flat.find(needle, at + 1)  # overlapping occurrences too
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def mask(text: str, values: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each value replaced by ``***``."""
    needles = _needles(values)
    if not needles or not text:
        return text
    parts = _BREAK.split(text)
    lines, breaks = parts[0::2], parts[1::2]
    spans = _hidden_spans("".join(lines), needles)
    if not spans:
        return text
    out: list[str] = []
    offset, k = 0, 0
    for i, line in enumerate(lines):
        start, end = offset, offset + len(line)
        pos = start
        pieces: list[str] = []
        while k < len(spans) and spans[k][0] < end:
            s_start, s_end = max(spans[k][0], start), min(spans[k][1], end)
            if s_start < s_end:
                pieces.append(line[pos - start:s_start - start])
                pieces.append(MASK)
                pos = s_end
            if spans[k][1] <= end:
                k += 1
            else:
                break  # the span goes on into the next line
        pieces.append(line[pos - start:])
        out.append("".join(pieces))
        if i < len(breaks):
            out.append(breaks[i])
        offset = end
    return "".join(out)


def contains_any(text: str, values: Iterable[str | None]) -> bool:
    """Whether a value occurs in ``text``, also broken across lines."""
    needles = _needles(values)
    flat = _BREAK.sub("", text)
    return any(n in flat for n in needles)
