"""Registry authentication: anonymous, Basic, and the docker Bearer token flow."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests
import urllib3.exceptions

from . import deadline as deadlines
from .constants import DEFAULT_TOKEN_TTL, TOKEN_EXPIRY_MARGIN
from .errors import (
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from .retry import NO_RETRY, RetryPolicy, retry_after_seconds

TokenProvider = Callable[[list[str]], str]

# key=value or key="quoted, value" pairs of an auth-param list (RFC 7235).
_PARAM_RE = re.compile(r'([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)")
_SEPARATORS_RE = re.compile(r"[\s,]*")
_TOKEN_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate challenge: scheme ("basic"/"bearer") and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header into its challenges (schemes lower-cased)."""
    challenges: list[Challenge] = []
    position = 0
    while True:
        position = _SEPARATORS_RE.match(header, position).end()
        if position >= len(header):
            return challenges
        param = _PARAM_RE.match(header, position)
        if param and challenges:
            quoted, bare = param.group(2), param.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            challenges[-1].params[param.group(1).lower()] = value
            position = param.end()
            continue
        scheme = _SCHEME_RE.match(header, position)
        if not scheme:
            return challenges
        challenges.append(Challenge(scheme.group(1).lower(), {}))
        position = scheme.end()


def _jwt_lifetime(token: str) -> float | None:
    """Seconds until a JWT's `exp`, read without verifying (only to schedule renewal)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        exp = json.loads(base64.urlsafe_b64decode(padded)).get("exp")
    except (ValueError, AttributeError):
        return None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    return exp - time.time()


class Authenticator:
    """Chooses the Authorization header for a request and answers 401 challenges.

    Starts anonymous; a 401 tells it which scheme the registry wants, and later requests
    send that scheme straight away. Bearer tokens are cached per (realm, service, scopes).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        token_provider: TokenProvider | None = None,
        session: requests.Session,
        timeout: tuple[float, float],
        verify_tls: bool = True,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy = NO_RETRY,
    ) -> None:
        self._credentials = (username, password or "") if username is not None else None
        self._token_provider = token_provider
        self._session = session
        self._timeout = timeout
        self._verify = verify_tls
        self._clock = clock
        self._retry = retry
        self._scheme: str | None = None
        self._bearer: Challenge | None = None
        if token_provider is not None:
            # A local minter needs no realm: send tokens from the first request on, which
            # saves a 401 round trip per new client.
            self._scheme, self._bearer = "bearer", Challenge("bearer", {})
        self._tokens: dict[tuple[str, str, frozenset[str]], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._fetching = threading.Lock()

    def _basic_header(self) -> dict[str, str]:
        if self._credentials is None:
            return {}
        user, password = self._credentials
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {encoded}"}

    def headers(self, scopes: Iterable[str]) -> dict[str, str]:
        """Authorization header to send before any challenge (from what was learned)."""
        if self._scheme == "basic":
            return self._basic_header()
        if self._scheme == "bearer" and self._bearer is not None:
            return {"Authorization": f"Bearer {self._token(self._bearer, list(scopes))}"}
        return {}

    def challenge(
        self, response: requests.Response, scopes: Iterable[str]
    ) -> dict[str, str] | None:
        """Headers for one retry after a 401, or None when retrying cannot help."""
        header = response.headers.get("WWW-Authenticate", "")
        challenges = {c.scheme: c for c in parse_challenges(header)}
        bearer = challenges.get("bearer")
        if bearer is not None and (bearer.params.get("realm") or self._token_provider):
            self._scheme, self._bearer = "bearer", bearer
            # The registry names the scopes it wants; ask for ours and its together.
            wanted = sorted(set(scopes) | set(bearer.scopes))
            # Forget the token only if it is the one refused: a request sent before the
            # token existed (another thread of a fork just fetched it) can use it.
            sent = None  # unknown: forget the token
            if response.request is not None:
                sent = response.request.headers.get("Authorization") or ""
            self._forget(bearer, wanted, refused=sent)
            return {"Authorization": f"Bearer {self._token(bearer, wanted)}"}
        if "basic" in challenges and self._credentials is not None:
            if self._scheme == "basic":
                return None  # the credentials were already sent and refused
            self._scheme = "basic"
            return self._basic_header()
        return None

    def _key(self, challenge: Challenge, scopes: list[str]) -> tuple[str, str, frozenset[str]]:
        return (
            challenge.params.get("realm", ""),
            challenge.params.get("service", ""),
            frozenset(scopes),
        )

    def _forget(self, challenge: Challenge, scopes: list[str], *, refused: str | None) -> None:
        """Drop the cached token when it is the one `refused` (None: not known which)."""
        key = self._key(challenge, scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and (refused is None or refused == f"Bearer {cached[0]}"):
                self._tokens.pop(key, None)

    def _token(self, challenge: Challenge, scopes: list[str]) -> str:
        key = self._key(challenge, scopes)
        cached = self._cached(key)
        if cached is not None:
            return cached
        # One fetch at a time: threads sharing this authenticator (RegistryClient.fork) that
        # need the same token at once wait for the first one's instead of each fetching it.
        with self._fetching:
            cached = self._cached(key)
            if cached is not None:
                return cached
            return self._new_token(key, challenge, scopes)

    def _cached(self, key: tuple[str, str, frozenset[str]]) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        return None

    def _new_token(
        self, key: tuple[str, str, frozenset[str]], challenge: Challenge, scopes: list[str]
    ) -> str:
        now = self._clock()
        if self._token_provider is not None:
            token = self._token_provider(sorted(scopes))
            lifetime = _jwt_lifetime(token)
        else:
            token, lifetime = self._fetch(challenge, scopes)
        if lifetime is not None:
            margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 2)
            with self._lock:
                self._tokens[key] = (token, now + lifetime - margin)
        return token

    def _fetch(self, challenge: Challenge, scopes: list[str]) -> tuple[str, float]:
        """Ask the token service for a token; transient failures are retried."""
        return self._retry.run(lambda: self._fetch_once(challenge, scopes))

    def _fetch_once(self, challenge: Challenge, scopes: list[str]) -> tuple[str, float]:
        realm = challenge.params["realm"]
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params.extend(("scope", scope) for scope in sorted(scopes))
        if self._credentials is not None:
            params.append(("account", self._credentials[0]))
        try:
            # No redirects (the credentials would follow them), and a bounded body.
            response = self._session.get(
                realm,
                params=params,
                headers=self._basic_header(),
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise RegistryTimeout(
                f"The token service at {realm} did not answer in time. Is it overloaded?"
            ) from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError):
            if deadlines.expired():
                raise RegistryTimeout(
                    f"The token service at {realm} did not answer in time. Is it overloaded?"
                ) from None
            raise RegistryUnreachable(
                f"The token service at {realm} is unreachable. "
                "Is it running, and is the registry's auth.token.realm right?"
            ) from None
        with response:
            return self._token_from(response, realm)

    def _token_from(self, response: requests.Response, realm: str) -> tuple[str, float]:
        if response.status_code in (401, 403):
            who = f"user {self._credentials[0]!r}" if self._credentials else "anonymous access"
            raise Unauthorized(
                f"The token service at {realm} refused {who} (HTTP {response.status_code}). "
                "Check the username and password.",
                status=response.status_code,
            )
        if response.status_code == 429 or response.status_code >= 500:
            error_type = TooManyRequests if response.status_code == 429 else ServerError
            error = error_type(
                f"The token service at {realm} answered HTTP {response.status_code}. "
                f"{error_type.hint}",
                status=response.status_code,
            )
            error.retry_after = retry_after_seconds(  # type: ignore[attr-defined]
                response.headers.get("Retry-After")
            )
            response.close()
            raise error
        try:
            raw = response.raw.read(_TOKEN_BODY_LIMIT + 1, decode_content=True) or b""
            body = json.loads(raw) if len(raw) <= _TOKEN_BODY_LIMIT else None
        except (ValueError, UnicodeDecodeError, RecursionError, OSError):
            body = None
        except urllib3.exceptions.HTTPError:
            raise RegistryUnreachable(
                f"The connection to the token service at {realm} broke. Try again."
            ) from None
        token = None
        if response.ok and isinstance(body, dict):
            token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"The token service at {realm} answered HTTP {response.status_code} without "
                "a token. Check the registry's auth.token.realm.",
                code="TOKEN_INVALID",
                status=response.status_code,
            )
        expires_in = body.get("expires_in")
        if (
            not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or expires_in <= 0
        ):
            expires_in = DEFAULT_TOKEN_TTL
        return token, float(expires_in)
