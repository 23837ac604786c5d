"""Each guardrail passes a compliant object and fails a violating one with a readable message."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from walletplatform import catalog, render, rules
from walletplatform.models import common

from tests.conftest import DEV_EXAMPLE, PROD_EXAMPLE, resolve_file


@pytest.fixture(scope="module")
def prod(cat: catalog.Catalog) -> list[common.Manifest]:
    return render.render_platform(resolve_file(PROD_EXAMPLE, cat))


def find(objects: list[common.Manifest], kind: str, name: str) -> common.Manifest:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)  # type: ignore[index,call-overload]


def container(objects: list[common.Manifest], name: str) -> dict[str, object]:
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index,call-overload,no-any-return]


Mutation = Callable[[list[common.Manifest]], None]
VIOLATIONS: list[tuple[str, Mutation, str]] = [
    (
        "images-pinned",
        lambda o: container(o, "wallet-prod-user").update(image="ghcr.io/x/user:latest"),
        "Deployment/wallet-prod-user.spec.template.spec.containers[0].image: 'ghcr.io/x/user:latest' is not pinned",
    ),
    (
        "resources-set",
        lambda o: container(o, "wallet-prod-user")["resources"].pop("limits"),  # type: ignore[attr-defined]
        "Deployment/wallet-prod-user.spec.template.spec.containers[0].resources.limits.cpu: is not set",
    ),
    (
        "restricted-security-context",
        lambda o: container(o, "wallet-prod-user")["securityContext"].update(allowPrivilegeEscalation=True),  # type: ignore[attr-defined]
        "Deployment/wallet-prod-user.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation: "
        "True must be False",
    ),
    (
        "hpa-max-within-cap",
        lambda o: find(o, "HorizontalPodAutoscaler", "wallet-prod-user")["spec"].update(  # type: ignore[union-attr]
            maxReplicas=500
        ),
        "HorizontalPodAutoscaler/wallet-prod-user.spec.maxReplicas: 500 is above the prod cap of 200",
    ),
    (
        "pdb-for-multi-replica",
        lambda o: o.remove(find(o, "PodDisruptionBudget", "wallet-prod-user")),
        "Deployment/wallet-prod-user: runs up to 10 replicas but has no PodDisruptionBudget",
    ),
    (
        "prod-data-ha",
        lambda o: find(o, "RedisCluster", "wallet-prod-redis")["spec"]["redisFollower"].update(  # type: ignore[index,call-overload]
            replicas=0
        ),
        "RedisCluster/wallet-prod-redis.spec.redisFollower.replicas: 0 leaves a leader without a follower",
    ),
]


@pytest.mark.parametrize("rule", sorted(rules.RULES), ids=str)
def test_compliant_platform_passes(rule: str, prod: list[common.Manifest]) -> None:
    assert rules.RULES[rule](prod, "prod") == []


@pytest.mark.parametrize(("rule", "mutate", "message"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_violation_is_reported(rule: str, mutate: Mutation, message: str, prod: list[common.Manifest]) -> None:
    objects = copy.deepcopy(prod)
    mutate(objects)
    problems = [str(p) for p in rules.RULES[rule](objects, "prod")]
    assert problems and problems[0].startswith(message), problems


def test_dev_platform_may_run_redis_without_followers(cat: catalog.Catalog) -> None:
    objects = render.render_platform(resolve_file(DEV_EXAMPLE, cat))
    assert rules.check_objects(objects, "dev") == []
    assert [str(p) for p in rules.rule_prod_data_ha(objects, "prod")] == [
        "RedisCluster/wallet-dev-redis.spec.redisFollower.replicas: 0 leaves a leader without a follower in prod"
    ]
