"""PromQL checked by a real parser (``promql-parser``, the Rust parser of the same grammar as
Prometheus's), so that a misspelt function, a stray bracket or a bad matcher is refused where the
query is written (``walletctl validate``, the operator's status) instead of failing at Prometheus.

The parser says what is wrong but not where; a bracket or quote that does not match is located here
first, and a quoted token of the parser's message is located in the query, so the error names an
offset whenever it can."""

from __future__ import annotations

import re

import promql_parser

_PAIRS = {")": "(", "]": "[", "}": "{"}


def _brackets(text: str) -> None:
    """ValueError with the offset of the first bracket or quote that does not match."""
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


def check_promql(query: str) -> str:
    """Return the stripped query, or raise ValueError saying what is malformed and, when it can, where."""
    text = query.strip()
    if not text:
        raise ValueError("PromQL query is empty")
    _brackets(text)
    try:
        promql_parser.parse(text)
    except ValueError as exc:
        reason = str(exc).strip() or "not valid PromQL"
        token = re.search(r"'([^']+)'", reason)
        at = text.find(token[1]) if token else -1
        where = f" at offset {at}" if at >= 0 else ""
        raise ValueError(f"not valid PromQL{where}: {reason}") from None
    return text


def _walk(node: object, optional: bool, found: list[tuple[str, bool]]) -> None:
    """Every vector selector under ``node`` with whether it is optional: on the left of an ``or``,
    whose right side answers when it selects nothing (``errors or on() vector(0)``)."""
    if isinstance(node, promql_parser.VectorSelector):  # without its offset or @ modifier
        found.append(((node.name or "") + str(node.matchers), optional))
        return
    if isinstance(node, promql_parser.MatrixSelector):
        _walk(node.vector_selector, optional, found)
        return
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "or":
        _walk(node.lhs, True, found)
        _walk(node.rhs, optional, found)
        return
    for attribute in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            _walk(child, optional, found)
    for arg in getattr(node, "args", None) or ():
        _walk(arg, optional, found)


def selectors(query: str, *, required: bool = False) -> list[str]:
    """The series selectors a valid query reads (``name{matchers}``, without offsets), in order, each
    once; with ``required``, only those the query cannot do without (not only left of an ``or``)."""
    found: list[tuple[str, bool]] = []
    _walk(promql_parser.parse(query), False, found)
    needed = {text for text, optional in found if not optional}
    ordered: list[str] = []
    for text, _ in found:
        if text not in ordered and (not required or text in needed):
            ordered.append(text)
    return ordered
