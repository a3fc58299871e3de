"""The accounts builders, kept importable here; they live in tests/support/accounts.py."""

from tests.support.accounts import PASSWORD, expire, grant, make_key, pipeline, user_with

__all__ = ["PASSWORD", "expire", "grant", "make_key", "pipeline", "user_with"]
