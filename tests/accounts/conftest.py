import pytest

from tests.browser_support import browser, page  # noqa: F401


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The production hasher costs ~1 s per password here; tests sign in hundreds of times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
