"""PromQL is checked by a real parser where it is written: the mistakes bracket balancing let through
(a misspelt function, a bad regex, a dangling operator) are refused with the reason and, where it can
be found, the offset."""

from __future__ import annotations

import pytest
from walletplatform import catalog, render
from walletplatform.models import promql

from tests.conftest import DEV_EXAMPLE, PROD_EXAMPLE, ROOT, load, resolve_file


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("sum(rate(x[5m]))) by", "unbalanced ')' at offset 16"),
        ("sumx(rate(x[5m]))", "not valid PromQL at offset 0: unknown function with name 'sumx'"),
        ('x{a=~"("}', "not valid PromQL: illegal regex"),
        ("sum(rate(x[5m])) /", "not valid PromQL"),
        ("rate(x)", "not valid PromQL"),  # rate needs a range vector
        ("   ", "PromQL query is empty"),
    ],
)
def test_malformed_queries_are_refused_with_the_reason(query: str, error: str) -> None:
    with pytest.raises(ValueError) as caught:
        promql.check_promql(query)
    assert str(caught.value).startswith(error) or error in str(caught.value), str(caught.value)


def test_every_query_the_project_ships_parses() -> None:
    queries = [
        doc["spec"]["predictive"]["query"]
        for path in sorted((ROOT / "policies").glob("*/*.yaml"))
        if isinstance(doc := load(path), dict) and (doc.get("spec") or {}).get("predictive")
    ]
    assert queries
    for query in queries:
        assert promql.check_promql(query) == query.strip()


def test_every_rendered_alert_expression_parses(cat: catalog.Catalog) -> None:
    exprs = [
        rule["expr"]
        for example in (DEV_EXAMPLE, PROD_EXAMPLE)
        for obj in render.render_platform(resolve_file(example, cat))
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]  # type: ignore[index,union-attr]
        for rule in group["rules"]
    ]
    assert len(exprs) >= 21
    for expr in exprs:
        promql.check_promql(expr)
