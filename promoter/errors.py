"""One error family for every layer: services and selectors raise these, edges map them.

Pages turn them into a banner or an error page, the API into its error answer, the Django
admin into a form error. `message` is always a sentence a person can act on.
"""

from __future__ import annotations


class DomainError(Exception):
    """Something that cannot be done, with a message a person can act on."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The input breaks a rule (a name, a value, a state that does not allow it)."""

    status = 400


class NotFound(DomainError):
    """There is no such thing, or the principal may not know that there is."""

    status = 404


class Forbidden(DomainError):
    """The principal is known and may not do this."""

    status = 403


class Conflict(DomainError):
    """The thing exists in a state that conflicts with the request (e.g. already running)."""

    status = 409


class Unauthenticated(DomainError):
    """Credentials are missing or wrong (only the API and the token service raise it)."""

    status = 401


class TooLarge(Invalid):
    """A request body or a value over its size limit."""

    status = 413


class LengthRequired(Invalid):
    """A request body without a length this server can read (chunked, where not de-chunked)."""

    status = 411


class UnsupportedMediaType(Invalid):
    """A request body in a format the endpoint does not read."""

    status = 415


class PolicyUnmet(Conflict):
    """A promotion the target's policy does not allow yet; carries the checklist.

    `checklist` is a registries.services.policies.Checklist: pages show it as ✓/✗ lines,
    the API answers it as JSON with 409.
    """

    def __init__(self, message: str, checklist) -> None:
        super().__init__(message)
        self.checklist = checklist


class TooManyRequests(Invalid):
    """The principal asked too often; wait and try again (pages show it as a 400)."""

    status = 429
