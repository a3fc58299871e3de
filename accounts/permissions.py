"""The one place that decides what a principal may do (pages, API and token service ask it)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from django.db.models import Q

from accounts.models import ApiKey, Permission, Privilege

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from registries.models import Registry

ALL = None  # registry id key for privileges on all registries
# Names that mean the portal itself or a fixed identity somewhere (History's actor, the
# Basic user name that carries API keys, the sync actor): no person may be called that.
RESERVED_USERNAMES = frozenset({"promoter", "system", "api", "anonymous", "sync"})
SYSTEM_SUBJECT = "system:promoter"
FEED_KEY_PERMISSIONS = {Permission.VIEW, Permission.PUBLISH, Permission.PROMOTE, Permission.DELETE}


def validate_username(username: str) -> str:
    """`username` when a person may have it; Invalid for a reserved name (promoter, api, …).

    For accounts.services.user_create (and any other way a user is named).
    """
    from promoter.errors import Invalid

    if username.strip().lower() in RESERVED_USERNAMES:
        raise Invalid(
            f"{username.strip()!r} is reserved for the portal itself; choose another user name."
        )
    return username


@dataclass
class Principal:
    """Who is acting: a user, an API key, Anonymous, or the portal's own promotion identity."""

    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None
    system: bool = False
    # The API area (accounts.models.ApiArea) the request acts in; None outside the API
    # (pages, the docker token service). Only system keys limited to areas care.
    api_area: str | None = None
    _grants: dict | None = field(default=None, repr=False, compare=False)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls()

    @classmethod
    def promoter(cls) -> Principal:
        """The portal's own identity: the only one that writes into Validated registries."""
        return cls(system=True)

    @classmethod
    def from_request(cls, request) -> Principal:
        principal = getattr(request, "principal", None)
        if principal is not None:
            return principal
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls(user=user)
        return cls()

    @property
    def is_anonymous(self) -> bool:
        return not self.system and self.user is None and self.api_key is None

    @property
    def name(self) -> str:
        """How History names the actor."""
        if self.system:
            return "Promoter"
        if self.api_key is not None:
            return f"API key {self.api_key.name}"
        if self.user is not None:
            return self.user.get_username()
        return "Anonymous"

    @property
    def history_user(self):
        return self.user if self.user is not None and self.user.is_authenticated else None

    @property
    def token_subject(self) -> str:
        """The `sub` of docker tokens; the registry echoes it as actor.name in notifications.

        Typed and keyed by primary key (`user:<pk>`, `apikey:<pk>`, `system:promoter`), so
        no user name can pass for another principal or for the portal itself.
        """
        if self.system:
            return SYSTEM_SUBJECT
        if self.api_key is not None:
            return f"apikey:{self.api_key.pk}"
        if self.user is not None:
            return f"user:{self.user.pk}"
        return ""

    @classmethod
    def from_token_subject(cls, subject: str) -> Principal | str:
        """The principal a token subject names (the inverse of token_subject).

        What is not one of ours (an old token, a deleted user) comes back as the subject
        text itself, for History to show; it never means the portal.
        """
        from django.contrib.auth import get_user_model

        if not subject:
            return cls.anonymous()
        if subject == SYSTEM_SUBJECT:
            return cls.promoter()
        kind, _, pk = subject.partition(":")
        if not pk.isdigit() or len(pk) > 18:
            return subject[:255]
        if kind == "user":
            user = get_user_model().objects.filter(pk=int(pk)).first()
            return cls(user=user) if user is not None else subject
        if kind == "apikey":
            key = ApiKey.objects.filter(pk=int(pk)).select_related("user").first()
            if key is None:
                return subject
            return cls(user=key.user if key.kind == ApiKey.Kind.PERSONAL else None, api_key=key)
        return subject[:255]

    # --- decisions --------------------------------------------------------
    def api_area_allowed(self, area: str | None) -> bool:
        """May this principal act in the API area `area` (None: outside the API)?

        Only a system key limited to chosen areas is ever refused: it may act in those
        areas and nowhere else; not in other API areas, not on pages and not at the docker
        token service (where it is granted nothing). Every other principal is decided by
        its privileges alone.
        """
        key = self.api_key
        if key is None or key.kind != ApiKey.Kind.SYSTEM or not key.areas:
            return True
        return area is not None and area in key.areas

    def in_api_area(self, area: str | None) -> Principal:
        """This principal acting in API area `area` (the API's choke point, api.auth, binds it)."""
        return replace(self, api_area=area)

    def _user_grants(self) -> dict:
        """{registry_id | None: (granted perms, restricted perms)} for the user part."""
        if self._grants is not None:
            return self._grants
        principal_q = Q(anonymous=True)
        user = self.user
        if user is not None and user.is_authenticated:
            principal_q |= Q(user=user) | Q(group__in=user.groups.all())
        grants: dict = {}
        for privilege in Privilege.objects.filter(principal_q).select_related("task"):
            granted, restricted = grants.setdefault(privilege.registry_id, (set(), set()))
            target = granted if privilege.effect == Privilege.Effect.GRANT else restricted
            target.update(privilege.task.permissions)
        self._grants = grants
        return grants

    def with_privilege(
        self, *, permissions: list[str], registry_id: int | None, restrict: bool = False
    ) -> Principal:
        """This principal as it would be with one more privilege (the privilege form's
        preview): the same decisions, on grants that are not stored."""
        grants = {key: (set(g), set(r)) for key, (g, r) in self._user_grants().items()}
        granted, restricted = grants.setdefault(registry_id, (set(), set()))
        (restricted if restrict else granted).update(permissions)
        return replace(self, _grants=grants)

    def _user_has(self, permission: str, registry_id: int | None) -> bool:
        user = self.user
        if user is not None and user.is_authenticated and user.is_superuser:
            return True
        if user is not None and not user.is_active:
            return False
        grants = self._user_grants()
        restricted = set(grants.get(ALL, (set(), set()))[1])
        granted = set(grants.get(ALL, (set(), set()))[0])
        if registry_id is not None:
            granted |= grants.get(registry_id, (set(), set()))[0]
            restricted |= grants.get(registry_id, (set(), set()))[1]
        if permission in restricted:
            return False  # restrict beats grant
        return permission in granted or (
            Permission.ADMINISTER in granted and Permission.ADMINISTER not in restricted
        )

    def has(self, permission: str, registry: Registry | None = None) -> bool:
        """May this principal do `permission` on `registry` (or on the portal when None)?

        A system key has full control, but one limited to API areas only while it acts in
        one of them (`api_area`, bound by the API); elsewhere it holds nothing.
        """
        if self.system:
            return True
        registry_id = registry.pk if registry is not None else None
        key = self.api_key
        if key is not None:
            if key.kind == ApiKey.Kind.SYSTEM:
                return self.api_area_allowed(self.api_area)
            if key.kind == ApiKey.Kind.FEED:
                if permission not in key.permissions or registry is None:
                    return False
                return key.registries.filter(pk=registry_id).exists()
            # Personal keys act as their user.
        return self._user_has(permission, registry_id)

    def is_administrator(self) -> bool:
        return self.has(Permission.ADMINISTER)

    def can_push(self, registry: Registry) -> bool:
        """Push: needs Publish, and never into a Validated/Promoted registry but by promotion."""
        if registry.is_validated:
            return self.system
        return self.has(Permission.PUBLISH, registry)

    def can_promote(self, source: Registry, target: Registry) -> bool:
        """Promoting needs Promote on the target and View on the source."""
        return self.has(Permission.PROMOTE, target) and self.has(Permission.VIEW, source)
