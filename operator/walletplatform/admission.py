"""Admission: the checks ``walletctl validate`` runs, answered to the API server as a validating webhook.

What the CRD's schema and CEL rules can say is said there (crd.py); what needs the service catalog
(unknown services, maxReplicas under the catalog's floor) or the environment guardrails (rules.RULES,
e.g. prod needs three Postgres instances) is checked here, by the same code and with the same
``path: message`` lines as the CLI, so that ``kubectl apply`` refuses what the operator would refuse.

Pure: ``review`` maps an AdmissionReview (v1) to its answer; the operator's webhook server
(controller/webhook.py) is the thin HTTPS adapter around it."""

from __future__ import annotations

from collections.abc import Mapping

from walletplatform import catalog, render, rules
from walletplatform.models import common, errors, resources

PATH = "/validate"
# What one answer may say: the API server shows the message to the client whole.
MESSAGE_LIMIT = 4000


def check_document(
    data: object, cat: catalog.Catalog, platform: catalog.ResolvedPlatform | None = None
) -> list[errors.Problem]:
    """Every problem of one WalletPlatform or ScalingPolicy document: its model (strict, as the CRD),
    then the catalog and the guardrails for a platform, the services for a policy (checked against
    ``platform`` when given, against the catalog otherwise). Empty when the document is valid."""
    try:
        return check_parsed(resources.parse_document(data), cat, platform)
    except errors.SpecError as exc:
        return list(exc.problems)


def check_parsed(
    doc: resources.Document, cat: catalog.Catalog, platform: catalog.ResolvedPlatform | None = None
) -> list[errors.Problem]:
    """``check_document`` past the model: the catalog and guardrails, or the policy's services."""
    try:
        if isinstance(doc, resources.WalletPlatform):
            resolved = catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, cat)
            return rules.check_platform(resolved, render.render_platform(resolved))
        return rules.check_policy(doc.spec, platform, cat)
    except errors.SpecError as exc:
        return list(exc.problems)


def _document(request: Mapping[str, common.JsonValue], obj: Mapping[str, common.JsonValue]) -> dict[str, object]:
    """The object as a user's file has it: the API server adds metadata (uid, managedFields...) and the
    status, which are not the user's to validate."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or request.get("name") or meta.get("generateName")
    namespace = meta.get("namespace") or request.get("namespace")
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": name, "namespace": namespace},
        "spec": obj.get("spec"),
    }


def decide(request: Mapping[str, common.JsonValue], cat: catalog.Catalog) -> list[errors.Problem]:
    """The problems that refuse one admission request; empty to allow it.

    Deletes are never refused, and neither is an update that leaves the spec as it was (finalizers,
    annotations, labels): an object admitted before a stricter release must stay deletable and
    annotatable, and the operator reports its problems in its status."""
    obj = request.get("object")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, Mapping):
        return []
    old = request.get("oldObject")
    if request.get("operation") == "UPDATE" and isinstance(old, Mapping) and old.get("spec") == obj.get("spec"):
        return []
    return check_document(_document(request, obj), cat)


def review(body: object, cat: catalog.Catalog) -> dict[str, common.JsonValue]:
    """The AdmissionReview answering ``body``; a malformed review is refused (never an exception)."""
    request = body.get("request") if isinstance(body, Mapping) else None
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str):
        problems = [errors.Problem(path="request", message="is not an admission.k8s.io/v1 AdmissionReview request")]
        uid = ""
    else:
        problems = decide(request, cat)
        uid = str(request["uid"])
    response: dict[str, common.JsonValue] = {"uid": uid, "allowed": not problems}
    if problems:
        message = "\n".join(str(p) for p in problems)
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 25] + f"\n... ({len(problems)} problems)"
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
