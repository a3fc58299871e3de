"""Template context: who is acting, and whether they may see Administration."""

from __future__ import annotations

from accounts.permissions import Principal


def principal(request) -> dict:
    """`principal` (a Principal) and `is_administrator` (evaluated only when a template asks)."""
    current = Principal.from_request(request)
    return {"principal": current, "is_administrator": current.is_administrator}
