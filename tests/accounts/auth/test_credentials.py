"""Basic-auth password checks: remembered briefly, forgotten when the password changes."""

import pytest
from django.contrib.auth import get_user_model

from accounts.auth.credentials import forget_all, user_for_password

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    forget_all()
    yield
    forget_all()


def test_right_password_is_accepted_and_wrong_ones_are_not():
    user = get_user_model().objects.create_user("dev", password="first-password")
    assert user_for_password("dev", "first-password") == user
    assert user_for_password("dev", "wrong") is None
    assert user_for_password("nobody", "first-password") is None


def test_changing_the_password_forgets_the_old_one():
    user = get_user_model().objects.create_user("dev", password="first-password")
    assert user_for_password("dev", "first-password") == user
    user.set_password("second-password")
    user.save()
    assert user_for_password("dev", "first-password") is None
    assert user_for_password("dev", "second-password") == user


def test_a_deactivated_user_is_refused_even_when_remembered():
    user = get_user_model().objects.create_user("dev", password="first-password")
    assert user_for_password("dev", "first-password") == user
    user.is_active = False
    user.save()
    assert user_for_password("dev", "first-password") is None
