"""A light syntactic check of PromQL strings: not a parser, but it catches the mistakes people make
in YAML (empty, unbalanced brackets or quotes) before a query ever reaches Prometheus."""

from __future__ import annotations

_PAIRS = {")": "(", "]": "[", "}": "{"}


def check_promql(query: str) -> str:
    """Return the stripped query, or raise ValueError saying what is malformed and where."""
    text = query.strip()
    if not text:
        raise ValueError("PromQL query is empty")
    stack: list[tuple[str, int]] = []
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append((char, index))
        elif char in _PAIRS:
            if not stack or stack[-1][0] != _PAIRS[char]:
                raise ValueError(f"unbalanced {char!r} at offset {index} in PromQL query")
            stack.pop()
    if quote:
        raise ValueError(f"unterminated {quote} string in PromQL query")
    if stack:
        char, index = stack[-1]
        raise ValueError(f"unclosed {char!r} at offset {index} in PromQL query")
    return text
