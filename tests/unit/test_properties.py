"""Property-based: every valid generated spec renders with complete, labelled objects; every invalid
one is rejected with a field path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from walletplatform import catalog, render
from walletplatform.models import errors, resources
from walletplatform.render import labels

CAT = catalog.load_catalog()
NAMES = sorted(CAT)


@st.composite
def services(draw: st.DrawFn) -> list[dict[str, object]]:
    chosen = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    result: list[dict[str, object]] = []
    for name in chosen:
        entry: dict[str, object] = {"name": name}
        low = draw(st.none() | st.integers(1, 10))
        if low is not None:
            entry["minReplicas"] = low
            entry["maxReplicas"] = draw(st.integers(max(low, CAT[name].min_replicas), 50))
        if draw(st.booleans()):
            entry["vpa"] = True
        result.append(entry)
    return result


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, object]:
    instances = draw(st.integers(1, 7))
    return {
        "apiVersion": resources.API,
        "kind": "WalletPlatform",
        "metadata": {"name": draw(st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)), "namespace": "ns"},
        "spec": {
            "environment": draw(st.sampled_from(["dev", "staging", "prod"])),
            "services": draw(services()),
            "networkPolicies": draw(st.booleans()),
            "retainData": draw(st.booleans()),
            "redis": {
                "leaders": draw(st.integers(3, 9)),
                "followersPerLeader": draw(st.integers(0, 2)),
                "memory": draw(st.sampled_from(["256Mi", "1Gi", "4Gi"])),
            },
            "postgres": {
                "instances": instances,
                "synchronousReplicas": draw(st.integers(0, instances - 1)),
                "memory": draw(st.sampled_from(["512Mi", "2Gi", "32Gi"])),
                "pooler": {"enabled": draw(st.booleans())},
            },
            "monitoring": {"serviceMonitor": draw(st.booleans()), "prometheusRule": draw(st.booleans())},
        },
    }


@settings(max_examples=150, deadline=None)
@given(valid_documents())
def test_valid_specs_render_complete_labelled_objects(data: dict[str, object]) -> None:
    doc = resources.parse_document(data)
    assert isinstance(doc, resources.WalletPlatform)
    platform = catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, CAT)
    objects = render.render_platform(platform)
    assert len(objects) >= 3 + 5 * len(platform.services)  # redis config + cluster, postgres; 5 per service
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"]
        meta = obj["metadata"]
        assert isinstance(meta, dict) and meta["name"] and meta["namespace"] == "ns"
        assert meta["labels"][labels.PLATFORM_LABEL] == doc.metadata.name  # type: ignore[index,call-overload]
    assert len({(o["kind"], o["metadata"]["name"]) for o in objects}) == len(objects)  # type: ignore[index,call-overload]


BREAKERS = {
    "spec.redis.leaders": lambda d: d["spec"]["redis"].update(leaders=2),
    "spec.postgres.instances": lambda d: d["spec"]["postgres"].update(instances=0),
    "spec.services[0].maxReplicas": lambda d: d["spec"]["services"][0].update(minReplicas=9, maxReplicas=3),
    "spec.services[0].name": lambda d: d["spec"]["services"][0].update(name="Not_A_Name"),
    "spec.monitoring.prometheusUrl": lambda d: d["spec"]["monitoring"].update(prometheusUrl="ftp:/x"),
    "spec.extraField": lambda d: d["spec"].update(extraField=1),
    "spec.redis.evictionPolicy": lambda d: d["spec"]["redis"].update(evictionPolicy="random"),
    "spec.postgres.storage.size": lambda d: d["spec"]["postgres"].update(storage={"size": "lots"}),
}


@settings(max_examples=100, deadline=None)
@given(valid_documents(), st.sampled_from(sorted(BREAKERS)))
def test_invalid_specs_are_rejected_with_the_path(data: dict[str, object], path: str) -> None:
    BREAKERS[path](data)
    try:
        doc = resources.parse_document(data)
        assert isinstance(doc, resources.WalletPlatform)
        catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, CAT)
    except errors.SpecError as exc:
        assert path in [p.path for p in exc.problems], exc.problems
    else:
        raise AssertionError(f"{path} was not rejected")
