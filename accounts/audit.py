"""The audit log of configuration changes: one function every service calls."""

from __future__ import annotations

from typing import Any

from accounts.models import AuditEvent
from accounts.permissions import Principal

SECRET_FIELDS = frozenset({"password", "key_hash", "secret"})


def audit_record(
    *,
    actor: Principal,
    action: str,
    obj: Any,
    object_type: str,
    changes: dict[str, tuple[Any, Any]] | None = None,
) -> AuditEvent:
    """Append one audit event (call inside the write's transaction); secrets never stored."""
    clean = {}
    for field, (old, new) in (changes or {}).items():
        if field in SECRET_FIELDS:
            clean[field] = ["(changed)", "(changed)"] if old != new else ["", ""]
            continue
        clean[field] = [_plain(old), _plain(new)]
    return AuditEvent.objects.create(
        action=action,
        object_type=object_type,
        object_id=str(getattr(obj, "pk", "") or ""),
        object_repr=str(obj)[:255],
        changes=clean,
        actor=actor.name,
        user=actor.history_user,
    )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)
