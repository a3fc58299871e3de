"""Django admin permissions follow the portal's: administrators may use every admin page."""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend

from accounts.permissions import Principal


class AdministratorBackend(BaseBackend):
    """Grants every Django model permission to users holding Administer (authenticates nobody)."""

    def _is_administrator(self, user_obj) -> bool:
        if not user_obj.is_active or not user_obj.is_authenticated:
            return False
        cached = getattr(user_obj, "_promoter_is_administrator", None)
        if cached is None:
            cached = Principal(user=user_obj).is_administrator()
            user_obj._promoter_is_administrator = cached
        return cached

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return self._is_administrator(user_obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return self._is_administrator(user_obj)
