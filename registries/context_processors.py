"""Template context: how many approval requests wait for the person (the top bar's count)."""

from __future__ import annotations

from accounts.permissions import Principal
from registries.selectors_policies import approval_inbox_count


def approvals(request) -> dict:
    """`approvals_waiting`: counted only when a template asks (a callable)."""
    principal = Principal.from_request(request)
    return {"approvals_waiting": lambda: approval_inbox_count(principal=principal)}
