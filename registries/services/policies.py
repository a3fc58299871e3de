"""Policies before production: what an image must satisfy before it enters a registry.

`policy_evaluate` is the one place the rules are decided. `promotion_request` (pages, the
API, bulk actions) and `promotion_retry` call it, the approval services call it before
asking people, and a failing checklist raises `PolicyUnmet` (409): pages show the checklist,
the API answers it as JSON. `policy_update` is the one write of a policy (Manage Feed, the
API and the Django admin).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid, PolicyUnmet
from registries.connections import client_for
from registries.models import (
    LABEL_PATTERN_MAX,
    LABEL_RULES_MAX,
    Approval,
    ApprovalRequest,
    HistoryEvent,
    PromotionPolicy,
    Registry,
    Tag,
)
from registries.oci import manifest as oci_manifest
from registries.oci.constants import SIGNATURE_ARTIFACT_TYPES
from registries.oci.errors import RegistryError
from registries.oci.inspect import image_details

APPROVALS_MAX = 20
SOAK_MAX_SECONDS = 365 * 24 * 3600
TTL_MIN_SECONDS = 60
LABEL_VALUE_MAX = 1024  # characters of a label value a pattern is matched against
SIGNATURES_READ_MAX = 8  # signature manifests read to find a key identity

RULES = ("approvals", "soak", "signed", "labels", "immutable")


@dataclass(frozen=True)
class Check:
    """One rule's verdict: `rule` (one of RULES), met or not, and a line a person reads."""

    rule: str
    ok: bool
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "ok": self.ok, "message": self.message}


@dataclass
class Checklist:
    """The verdict of a target's policy on one image: ✓ soaked 3 days, ✗ not signed, …"""

    target: str
    checks: list[Check] = field(default_factory=list)
    approvals_required: int = 0
    approvals: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def unmet(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def ok_except(self, *rules: str) -> bool:
        """Every rule but `rules` is met (e.g. all but approvals: ask for approval)."""
        return all(c.ok for c in self.checks if c.rule not in rules)

    @property
    def needs_approval(self) -> bool:
        """Approvals are what is missing, and all else is met: "Request promotion"."""
        return bool(self.unmet) and self.ok_except("approvals")

    def summary(self) -> str:
        unmet = "; ".join(c.message for c in self.unmet)
        return f"The policy of {self.target} is not met: {unmet}."

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "approvalsRequired": self.approvals_required,
            "approvals": self.approvals,
            "rules": [c.as_json() for c in self.checks],
            "unmet": [c.rule for c in self.unmet],
        }


def duration_text(seconds: float) -> str:
    """3 days, 2 hours, 5 minutes, 40 seconds: the largest whole unit."""
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def policy_of(registry: Registry) -> PromotionPolicy | None:
    """The registry's policy, None when it has none (or only an empty one)."""
    policy = PromotionPolicy.objects.filter(registry=registry).first()
    return None if policy is None or policy.is_empty else policy


# --- evaluation -------------------------------------------------------------------------------
def policy_evaluate(
    *,
    source: Registry,
    target: Registry,
    repository: str,
    tag: str,
    digest: str,
    actor: Principal,
    by_digest: bool = False,
) -> Checklist:
    """The checklist of `target`'s policy for promoting `digest` (tag `tag`) from `source`.

    Reads the index and History; signatures and labels may need the source registry, read
    with a short deadline (PROMOTER_POLICY_READ_TIMEOUT). Never raises for an unmet rule.
    """
    checklist = Checklist(target=target.name)
    policy = policy_of(target)
    if policy is None:
        return checklist
    if policy.approvals_required:
        checklist.approvals_required = policy.approvals_required
        checklist.approvals = approvals_count(
            target=target, repository=repository, digest=digest, requester=actor
        )
        met = checklist.approvals >= policy.approvals_required
        checklist.checks.append(
            Check(
                "approvals",
                met,
                f"{checklist.approvals} of {policy.approvals_required} approvals",
            )
        )
    if policy.soak_seconds:
        checklist.checks.append(_soak(policy, source, repository, digest))
    source_reader = _Reader(source, repository)
    if policy.require_signature:
        checklist.checks.append(_signed(policy, source, repository, digest, source_reader))
    for rule in policy.required_labels or []:
        checklist.checks.append(_label(rule, digest, source_reader))
    if policy.immutable_tags:
        tags = _tags_moved(source, repository, tag, digest, by_digest)
        checklist.checks.append(_immutable(target, repository, tags, digest, actor))
    return checklist


def policy_require(**kwargs) -> Checklist:
    """policy_evaluate, raising PolicyUnmet (409, with the checklist) unless every rule is met."""
    checklist = policy_evaluate(**kwargs)
    if not checklist.ok:
        raise PolicyUnmet(checklist.summary(), checklist)
    return checklist


def approvals_count(
    *, target: Registry, repository: str, digest: str, requester: Principal | None
) -> int:
    """Distinct people who approved `digest` for `target`, still holding Approve Promotions
    there, never counting the requester; rejected or expired requests count for nothing."""
    approvals = Approval.objects.filter(
        approved=True,
        user__isnull=False,
        request__target=target,
        request__repository=repository,
        request__digest=digest,
        request__status__in=[ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED],
    ).select_related("user")
    own = requester.history_user if requester is not None else None
    people = {}
    for approval in approvals:
        if own is not None and approval.user_id == own.pk:
            continue
        people[approval.user_id] = approval.user
    return sum(
        1 for user in people.values() if Principal(user=user).has(Permission.APPROVE, target)
    )


def _arrived_at(source: Registry, repository: str, digest: str):
    """When `digest` arrived in the source (pushed or promoted there), after any deletion."""
    events = HistoryEvent.objects.filter(registry=source.name, repository=repository, digest=digest)
    deleted = events.filter(action=HistoryEvent.Action.DELETED).order_by("-created_at").first()
    arrivals = events.filter(action__in=[HistoryEvent.Action.PUSHED, HistoryEvent.Action.PROMOTED])
    if deleted is not None:
        arrivals = arrivals.filter(created_at__gt=deleted.created_at)
    first = arrivals.order_by("created_at").first()
    return first.created_at if first else None


def _soak(policy: PromotionPolicy, source: Registry, repository: str, digest: str) -> Check:
    needed = duration_text(policy.soak_seconds)
    arrived = _arrived_at(source, repository, digest)
    if arrived is None:
        return Check("soak", False, f"no record of when it arrived in {source.name}; soak {needed}")
    age = (timezone.now() - arrived).total_seconds()
    if age >= policy.soak_seconds:
        return Check("soak", True, f"soaked {duration_text(age)} in {source.name}")
    return Check(
        "soak",
        False,
        f"in {source.name} for {duration_text(max(age, 0))}; needs {needed} "
        f"(ready in {duration_text(policy.soak_seconds - age + 59)})",
    )


class _Reader:
    """Reads the source for signatures and labels, once each, with a short deadline."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry = registry
        self.path = registry.backing_path(repository)
        self._client = None
        self._details: dict = {}

    @property
    def client(self):
        if self._client is None:
            self._client = client_for(
                self.registry, deadline=float(settings.PROMOTER_POLICY_READ_TIMEOUT)
            )
        return self._client

    def manifest(self, reference: str) -> dict:
        got = self.client.get_manifest(self.path, reference)
        return oci_manifest.parse(got.body, got.media_type)

    def details(self, digest: str):
        if digest not in self._details:
            self._details[digest] = image_details(self.client, self.path, digest)
        return self._details[digest]


def _signed(
    policy: PromotionPolicy, source: Registry, repository: str, digest: str, reader: _Reader
) -> Check:
    """A cosign `.sig` tag, or a referrer of a signature type in the referrers tag, in the
    source (the index knows pushed tags; the registry is asked about copied ones, and read
    to look inside)."""
    hexpart = digest.split(":", 1)[-1]
    names = set(
        Tag.objects.filter(
            repository__registry=source,
            repository__name=repository,
            name__in=[f"sha256-{hexpart}.sig", f"sha256-{hexpart}"],
        ).values_list("name", flat=True)
    )
    identity = policy.signature_identity.strip()
    try:
        if not names:
            # Tags the portal itself copied (a promotion's signatures) reach the index only
            # with the next sync: ask the registry, with the short deadline.
            names = {
                name
                for name in (f"sha256-{hexpart}.sig", f"sha256-{hexpart}")
                if reader.client.head_manifest(reader.path, name) is not None
            }
        manifests = []
        if f"sha256-{hexpart}.sig" in names:
            if not identity:
                return Check("signed", True, "signed (cosign)")
            manifests.append(reader.manifest(f"sha256-{hexpart}.sig"))
        if f"sha256-{hexpart}" in names:
            index = reader.manifest(f"sha256-{hexpart}")
            signatures = [
                d
                for d in index.get("manifests") or []
                if isinstance(d, dict) and d.get("artifactType") in SIGNATURE_ARTIFACT_TYPES
            ]
            if signatures and not identity:
                return Check("signed", True, f"signed ({signatures[0]['artifactType']})")
            for descriptor in signatures[:SIGNATURES_READ_MAX]:
                if _identity_in(descriptor.get("annotations"), identity):
                    return Check("signed", True, f"signed by {identity}")
                if isinstance(descriptor.get("digest"), str):
                    manifests.append(reader.manifest(descriptor["digest"]))
    except (RegistryError, oci_manifest.ManifestInvalid) as exc:
        message = getattr(exc, "message", str(exc))
        return Check("signed", False, f"signature could not be read from {source.name}: {message}")
    if not manifests:
        return Check("signed", False, f"not signed (no signature in {source.name})")
    for parsed in manifests:
        annotated = [parsed.get("annotations")] + [
            layer.get("annotations")
            for layer in parsed.get("layers") or []
            if isinstance(layer, dict)
        ]
        if any(_identity_in(a, identity) for a in annotated):
            return Check("signed", True, f"signed by {identity}")
    return Check("signed", False, f"not signed by {identity}")


def _identity_in(annotations: Any, identity: str) -> bool:
    """Does an annotation name `identity`: a value, a JSON list holding it (notation's
    certificate thumbprints), or a PEM certificate (cosign keyless) for that subject?"""
    if not isinstance(annotations, dict):
        return False
    for value in annotations.values():
        if not isinstance(value, str):
            continue
        if value == identity:
            return True
        if value.startswith("[") and len(value) < 65536:
            try:
                listed = json.loads(value)
            except ValueError:
                listed = []
            if isinstance(listed, list) and identity in listed:
                return True
        if "-----BEGIN CERTIFICATE-----" in value and identity in _certificate_names(value):
            return True
    return False


def _certificate_names(pem: str) -> set[str]:
    """Subject common names and SAN e-mails/URIs of the first certificate in `pem`."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return set()
    names = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {str(n) for n in names}
    names.update(san.get_values_for_type(x509.RFC822Name))
    names.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    return {str(n) for n in names}


def _label(rule: dict, digest: str, reader: _Reader) -> Check:
    """A label of every image (or an annotation of the manifest) present, matching the pattern."""
    key = str(rule.get("key", ""))
    pattern = str(rule.get("pattern", "") or "")
    what = f"{key} matching {pattern}" if pattern else key
    try:
        details = reader.details(digest)
    except (RegistryError, oci_manifest.ManifestInvalid) as exc:
        message = getattr(exc, "message", str(exc))
        return Check("labels", False, f"{key}: labels could not be read: {message}")
    try:
        annotations = json.loads(details.raw_manifest).get("annotations") or {}
    except (ValueError, AttributeError):
        annotations = {}
    values = []
    if isinstance(annotations, dict) and key in annotations:
        values = [annotations[key]]
    elif details.images and all(key in image.labels for image in details.images):
        values = [image.labels[key] for image in details.images]
    if not values:
        return Check("labels", False, f"label {key} missing")
    if pattern:
        regex = re.compile(pattern)
        for value in values:
            if not isinstance(value, str) or not regex.fullmatch(value[:LABEL_VALUE_MAX]):
                return Check(
                    "labels", False, f"label {key}={str(value)[:80]!r} does not match {pattern}"
                )
    return Check("labels", True, f"label {what}")


def _tags_moved(
    source: Registry, repository: str, tag: str, digest: str, by_digest: bool
) -> list[str]:
    if not by_digest:
        return [tag] if tag else []
    return list(
        Tag.objects.filter(
            repository__registry=source, repository__name=repository, digest=digest
        ).values_list("name", flat=True)
    )


def _immutable(
    target: Registry, repository: str, tags: list[str], digest: str, actor: Principal
) -> Check:
    taken = list(
        Tag.objects.filter(repository__registry=target, repository__name=repository, name__in=tags)
        .exclude(digest=digest)
        .values_list("name", "digest")
    )
    if not taken:
        return Check("immutable", True, f"no existing tag in {target.name} is moved")
    name, old = taken[0]
    if actor.has(Permission.OVERWRITE_TAGS, target):
        return Check(
            "immutable", True, f"tag {name} moves from {old[:19]}… (you hold Overwrite Tags)"
        )
    return Check(
        "immutable",
        False,
        f"tag {name} exists in {target.name} at {old[:19]}…; moving it needs Overwrite Tags",
    )


def policy_check_roll_back(*, registry: Registry, tag: str, actor: Principal) -> None:
    """Rolling a tag back moves it: with immutable tags that needs Overwrite Tags."""
    policy = policy_of(registry)
    if policy is None or not policy.immutable_tags:
        return
    if actor.has(Permission.OVERWRITE_TAGS, registry):
        return
    checklist = Checklist(
        target=registry.name,
        checks=[
            Check(
                "immutable",
                False,
                f"tags in {registry.name} are immutable; rolling {tag} back needs Overwrite Tags",
            )
        ],
    )
    raise PolicyUnmet(checklist.summary(), checklist)


# --- writing a policy -------------------------------------------------------------------------
FIELDS = (
    "approvals_required",
    "soak_seconds",
    "require_signature",
    "signature_identity",
    "required_labels",
    "immutable_tags",
    "approval_ttl_seconds",
)


def label_rules_parse(text: str) -> list[dict[str, str]]:
    """One rule a line: `key` (present) or `key ~ pattern` (its value matches)."""
    rules = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, pattern = line.partition("~")
        rules.append({"key": key.strip(), "pattern": pattern.strip() if sep else ""})
    return rules


def label_rules_text(rules: list[dict[str, str]]) -> str:
    """The text form of label rules (label_rules_parse reads it back)."""
    lines = []
    for rule in rules or []:
        key, pattern = rule.get("key", ""), rule.get("pattern", "")
        lines.append(f"{key} ~ {pattern}" if pattern else key)
    return "\n".join(lines)


def _int(values: dict, name: str, low: int, high: int, label: str) -> int:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Invalid(f"{label} must be a whole number.")
    if not low <= int(value) <= high:
        raise Invalid(f"{label} must be between {low} and {high}.")
    return int(value)


def _clean_labels(rules: Any) -> list[dict[str, str]]:
    if isinstance(rules, str):
        rules = label_rules_parse(rules)
    if not isinstance(rules, list):
        raise Invalid("Required labels must be a list of {key, pattern}.")
    if len(rules) > LABEL_RULES_MAX:
        raise Invalid(f"At most {LABEL_RULES_MAX} required labels.")
    clean = []
    for rule in rules:
        if not isinstance(rule, dict):
            raise Invalid("Each required label is {key, pattern}.")
        key = rule.get("key")
        pattern = rule.get("pattern") or ""
        if not isinstance(key, str) or not key.strip() or len(key) > 255 or "\n" in key:
            raise Invalid("A required label needs a key (at most 255 characters).")
        if not isinstance(pattern, str) or len(pattern) > LABEL_PATTERN_MAX:
            raise Invalid(f"A label pattern has at most {LABEL_PATTERN_MAX} characters.")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Invalid(
                f"The pattern for {key.strip()} is not a regular expression: {exc}."
            ) from exc
        clean.append({"key": key.strip(), "pattern": pattern})
    return clean


def policy_update(
    *, registry: Registry, actor: Principal, values: dict[str, Any]
) -> PromotionPolicy:
    """Set `registry`'s policy from plain values (any subset of FIELDS); needs Manage Feed."""
    if not actor.has(Permission.MANAGE_FEED, registry):
        raise Forbidden(f"You may not change {registry.name}: that needs Manage Feed.")
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise Invalid(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    clean: dict[str, Any] = {}
    if "approvals_required" in values:
        clean["approvals_required"] = _int(
            values, "approvals_required", 0, APPROVALS_MAX, "Approvals"
        )
    if "soak_seconds" in values:
        clean["soak_seconds"] = _int(values, "soak_seconds", 0, SOAK_MAX_SECONDS, "Soak time")
    if "approval_ttl_seconds" in values:
        clean["approval_ttl_seconds"] = _int(
            values, "approval_ttl_seconds", TTL_MIN_SECONDS, SOAK_MAX_SECONDS, "Approval expiry"
        )
    for flag in ("require_signature", "immutable_tags"):
        if flag in values:
            if not isinstance(values[flag], bool):
                raise Invalid(f"{flag} must be true or false.")
            clean[flag] = values[flag]
    if "signature_identity" in values:
        identity = values["signature_identity"] or ""
        if not isinstance(identity, str) or len(identity) > 255:
            raise Invalid("The signature identity has at most 255 characters.")
        clean["signature_identity"] = identity.strip()
    if "required_labels" in values:
        clean["required_labels"] = _clean_labels(values["required_labels"])
    with transaction.atomic():
        policy, _ = PromotionPolicy.objects.select_for_update().get_or_create(registry=registry)
        before = {f: getattr(policy, f) for f in FIELDS}
        for name, value in clean.items():
            setattr(policy, name, value)
        policy.save()
        after = {f: getattr(policy, f) for f in FIELDS}
        changes = {f: (before[f], after[f]) for f in FIELDS if before[f] != after[f]}
        if changes:
            audit_record(
                actor=actor,
                action="policy.updated",
                obj=policy,
                object_type="policy",
                changes=changes,
            )
    return policy
