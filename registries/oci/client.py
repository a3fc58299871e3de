"""RegistryClient: the OCI distribution API calls Promoter needs, with typed errors."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.cookies import extract_cookies_to_jar, get_cookie_header
from requests.structures import CaseInsensitiveDict

from . import deadline as deadlines
from .auth import Authenticator, TokenProvider, parse_challenges
from .constants import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    LIST_BUDGET_SECONDS,
    MANIFEST_ACCEPT,
    MANIFEST_TYPES,
    MAX_LIST_ITEMS,
    MAX_LIST_PAGE_BYTES,
    MAX_LIST_PAGES,
    MAX_MANIFEST_BYTES,
    MAX_REFERRERS_LISTED,
    OCI_INDEX,
    STREAM_CHUNK_BYTES,
)
from .errors import (
    BlobTooLarge,
    BlobUnknown,
    BlobUploadInvalid,
    Denied,
    DigestMismatch,
    LimitExceeded,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    SizeInvalid,
    error_from_response,
)
from .manifest import (
    Descriptor,
    Manifest,
    compute_digest,
    is_digest,
    new_hasher,
    validate_digest,
    validate_name,
    validate_reference,
)
from .retry import NO_RETRY, TRANSIENT_STATUSES, RetryPolicy, retry_after_seconds

_ERROR_BODY_LIMIT = 64 * 1024
# Bodies nobody needs (PUT, POST, DELETE answers) are read this far so the connection can
# be reused; a longer one is dropped with its connection.
_DISCARD_LIMIT = 64 * 1024
# Cancelling an upload: DELETE, then check it is gone, at most this often, each so fast.
_CANCEL_TRIES = 5
_CANCEL_SECONDS = 10.0
# Connections kept per registry host: a copy makes up to 8 checks or mounts and 4 streams at
# once (registries.oci.copy), plus the reads of its main thread.
POOL_CONNECTIONS = 16
log = logging.getLogger(__name__)


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _ref(repository: str, reference: str) -> str:
    return f"{repository}@{reference}" if is_digest(reference) else f"{repository}:{reference}"


def _describe(exc: BaseException) -> str:
    """A short reason for a connection failure, for the logs only: users get one generic
    message, so an endpoint cannot be used to tell closed ports from silent ones."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (is the certificate trusted?)"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "NameResolution" in text or "Name or service not known" in text:
        return "its host name does not resolve"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text:
        return "the connection was closed by the other side"
    return type(exc).__name__


def _timed_out(exc: BaseException) -> bool:
    """A urllib3 timeout (a refused connection is urllib3's NewConnectionError, which
    derives from its connect timeout: requests calls that a connection error, and so do we)."""
    return isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    )


def _ending_cleanly(
    chunks: Iterable[bytes], size: int | None, failed: list[Exception]
) -> Iterator[bytes]:
    """The stream as a request body that ends early (never raises) when the source fails;
    the failure goes into `failed` for the caller to raise once the request completed."""
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            if size is not None and sent > size:
                raise SizeInvalid(f"The blob is longer than the declared {size} bytes.")
            yield chunk
        if size is not None and sent != size:
            raise SizeInvalid(f"The blob has {sent} bytes, not the declared {size}.")
    except Exception as exc:
        failed.append(exc)


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a byte stream into pieces of exactly `size` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = size - len(buffer)
            buffer += view[:take]
            view = view[take:]
            if len(buffer) == size:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


class RegistryClient:
    """Client for one registry (OCI distribution API v2); the only code that speaks HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token_provider: TokenProvider | None = None,
        timeout: tuple[float, float] | float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        verify_tls: bool = True,
        retries: int = 3,
        backoff: float = 0.2,
        min_rate: float = 0.0,
        deadline: float | None = DEFAULT_DEADLINE,
        max_blob_bytes: int | None = None,
        forbid_private: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Registry URL {base_url!r} must look like https://host[:port]")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self.timeout = timeout
        # Wall-clock limit of one call (all of it: connect, headers, and the body of
        # everything but blobs, whose transfer the rate floor bounds instead). requests'
        # timeout alone bounds each read, so one byte every few seconds would never end.
        self.deadline = deadline
        # Blobs above this many bytes are refused before a byte moves (None: no limit).
        self.max_blob_bytes = max_blob_bytes
        # A body that arrives slower than `min_rate` bytes/s on average, once the read
        # timeout has passed, is given up on: a registry trickling bytes would otherwise
        # hold a copy forever (each byte resets the read timeout). 0 disables the check.
        self.min_rate = min_rate
        self._rate_grace = timeout[1] if isinstance(timeout, tuple) else float(timeout)
        self.verify_tls = verify_tls
        self._own_session = session is None
        self._session = session or requests.Session()
        # Every connection is watched by the deadlines (and refuses private peers if asked).
        # The pool holds enough connections for a copy's parallel calls (see fork()).
        self._adapter = deadlines.WatchedAdapter(
            forbid_private=forbid_private, pool_maxsize=POOL_CONNECTIONS
        )
        self._session.mount("http://", self._adapter)
        self._session.mount("https://", self._adapter)
        # Calls to a plain-HTTP registry (the bundled one, on this host or the next) go
        # straight to the pool: nothing of what requests adds per call (proxies and CA
        # bundles from the environment, cookies policy, redirects) applies to them.
        # A session passed in, or a proxy for this registry, keeps requests in charge.
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._pool_timeout = urllib3.Timeout(connect=connect, read=read)
        self._prefix = self.base_url + "/"
        self._direct = (
            self._own_session
            and parts.scheme == "http"
            and not requests.utils.get_environ_proxies(self.base_url)
        )
        # Idempotent calls are tried `retries` times in all on transient failures.
        self.retry = RetryPolicy(attempts=max(1, retries), backoff=backoff)
        # Tokens are fetched with a session of their own over the same pool, so that the
        # clients fork() makes for other threads can share the token cache.
        self._auth = Authenticator(
            username=username,
            password=password,
            token_provider=token_provider,
            session=session or self._pooled_session(),
            timeout=timeout if isinstance(timeout, tuple) else (timeout, timeout),
            verify_tls=verify_tls,
            retry=self.retry,
        )

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    def _pooled_session(self) -> requests.Session:
        session = requests.Session()
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        return session

    def fork(self) -> RegistryClient:
        """The same client for another thread: a session object of its own (requests
        sessions are not shared across threads) over this client's connection pool, with
        its token cache, so parallel calls reuse connections and tokens."""
        twin = copy.copy(self)
        twin._session = self._pooled_session()
        twin._own_session = False  # the pool is closed with the client it was forked from
        return twin

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session:
            self._session.close()

    # -- plumbing -------------------------------------------------------------------------

    @property
    def _read_timeout(self) -> float:
        return float(self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout)

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _raw(
        self, method: str, url: str, *, follow_redirects: bool = False, **kwargs: Any
    ) -> requests.Response:
        # Redirects are followed for blob downloads only (storage backends answer those
        # with one); a manifest or a listing that redirects is an error, not a new source.
        # Bodies are always streamed: they are read with limits, never whole by requests.
        try:
            if self._direct and not follow_redirects and self._plain(url, kwargs):
                return self._send_direct(method, url, **kwargs)
            return self._session.request(
                method,
                url,
                timeout=self.timeout,
                verify=self.verify_tls,
                allow_redirects=follow_redirects,
                stream=True,
                **kwargs,
            )
        except requests.Timeout:
            raise self._timeout_error(method, url, self._read_timeout) from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as exc:
            if _timed_out(exc):  # the direct path's timeouts, as requests would say them
                raise self._timeout_error(method, url, self._read_timeout) from None
            if deadlines.expired():
                raise self._timeout_error(method, url, deadlines.expired_seconds()) from None
            if isinstance(exc, deadlines.PrivateAddress):
                raise RegistryUnreachable(
                    f"Registry at {self.base_url} is on a loopback, private or link-local "
                    "address, which this portal may not connect to."
                ) from None
            log.info("registry %s: %s %s failed: %s", self.base_url, method, url, _describe(exc))
            raise RegistryUnreachable(
                f"Registry at {self.base_url} is unreachable. Is it running, and is its "
                "address right?"
            ) from None

    def _plain(self, url: str, kwargs: dict[str, Any]) -> bool:
        """A call the direct path takes: to this registry, with no body or a bytes body."""
        data = kwargs.get("data")
        return (data is None or isinstance(data, bytes)) and url.startswith(self._prefix)

    def _send_direct(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        """The call through this client's connection pool without requests' per-call work
        (environment, hooks, redirects; half the CPU of a call), answered as requests would.

        Only for plain-HTTP registries without a proxy, whose calls need nothing of that
        (see __init__); the pool's connections obey the deadlines as every other call."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        request = requests.PreparedRequest()
        request.method = method
        request.url = url
        request.headers = CaseInsensitiveDict(self._session.headers)
        request.headers.update(headers)
        if data is None and method not in ("GET", "HEAD"):
            request.headers.setdefault("Content-Length", "0")  # as requests sends it
        if self._session.cookies:
            cookie = get_cookie_header(self._session.cookies, request)
            if cookie:
                request.headers["Cookie"] = cookie
        request.body = data
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        pool = self._adapter.poolmanager.connection_from_url(url)
        raw = pool.urlopen(
            method,
            target,
            body=data,
            headers=request.headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            retries=False,
            timeout=self._pool_timeout,
            chunked=False,
        )
        response = self._adapter.build_response(request, raw)
        extract_cookies_to_jar(self._session.cookies, request, raw)
        return response

    def _timeout_error(self, method: str, url: str, seconds: float | None) -> RegistryTimeout:
        within = f"within {seconds:g}s" if seconds else "in time"
        return RegistryTimeout(
            f"Registry at {self.base_url} did not answer {method} {urlsplit(url).path} "
            f"{within} (timeout). Is it overloaded or stuck?"
        )

    def _call_deadline(self):  # type: ignore[no-untyped-def]
        """A deadline for one call (a context manager)."""
        return deadlines.deadline(self.deadline)

    def _send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        scopes: list[str],
        ok: tuple[int, ...] = (200,),
        not_found: type[RegistryError] | None = None,
        headers: dict[str, str] | None = None,
        replayable: bool = True,
        retry: bool | None = None,
        keep_body: bool = False,
        seconds: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request with auth; retry transient failures when it is safe; raise on errors.

        `retry` defaults to True for GET, HEAD, PUT and DELETE (idempotent; callers pass
        False for a streamed upload, which cannot be sent twice). Each try has a wall-clock
        deadline (`seconds`, default the client's). The answer's body is read (bounded)
        and dropped unless `keep_body`: then the caller reads it and closes the response.
        """
        if retry is None:
            retry = method in ("GET", "HEAD", "PUT", "DELETE") and replayable
        policy = self.retry if retry else NO_RETRY
        return policy.run(
            lambda: self._send_once(
                method,
                url,
                action=action,
                scopes=scopes,
                ok=ok,
                not_found=not_found,
                headers=headers,
                replayable=replayable,
                keep_body=keep_body,
                seconds=self.deadline if seconds is None else seconds,
                **kwargs,
            )
        )

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        action: str,
        scopes: list[str],
        ok: tuple[int, ...],
        not_found: type[RegistryError] | None,
        headers: dict[str, str] | None,
        replayable: bool,
        keep_body: bool,
        seconds: float | None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request (and one replay after a 401 challenge), within `seconds`."""
        with deadlines.deadline(seconds):
            response = self._send_within(
                method,
                url,
                action=action,
                scopes=scopes,
                headers=headers,
                replayable=replayable,
                **kwargs,
            )
            if response.status_code in ok:
                if not keep_body:
                    self._discard(response)
                return response
            try:
                raise self._error(response, action=action, not_found=not_found)
            finally:
                response.close()

    def _send_within(
        self,
        method: str,
        url: str,
        *,
        action: str,
        scopes: list[str],
        headers: dict[str, str] | None,
        replayable: bool,
        **kwargs: Any,
    ) -> requests.Response:
        base_headers = dict(headers or {})
        response = self._raw(
            method, url, headers={**base_headers, **self._auth.headers(scopes)}, **kwargs
        )
        if response.status_code == 401 and replayable:
            try:
                retry_headers = self._auth.challenge(response, scopes)
            except BaseException:
                response.close()
                raise
            if retry_headers is not None:
                response.close()
                response = self._raw(
                    method, url, headers={**base_headers, **retry_headers}, **kwargs
                )
        return response

    def _discard(self, response: requests.Response) -> None:
        """Read a small unneeded body so the connection is reused; drop a large one."""
        try:
            # Read even a HEAD answer (nothing to read): that ends it, so the connection goes
            # back to the pool ready for its next request. An answer left open makes that
            # request fail (ResponseNotReady) when another thread takes the connection first.
            data = response.raw.read(_DISCARD_LIMIT + 1, decode_content=False) or b""
            if len(data) <= _DISCARD_LIMIT:
                response._content = data
                response._content_consumed = True
        except (urllib3.exceptions.HTTPError, OSError):
            pass
        response.close()

    def _error(
        self, response: requests.Response, *, action: str, not_found: type[RegistryError] | None
    ) -> RegistryError:
        # Error bodies are small; never read an unbounded (possibly streamed) body for one.
        body = b""
        if response.request.method != "HEAD":
            try:
                # requests keeps `_content` False until a streamed body has been read.
                if response._content is False:
                    body = response.raw.read(_ERROR_BODY_LIMIT, decode_content=True) or b""
                else:
                    body = (response.content or b"")[:_ERROR_BODY_LIMIT]
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                body = b""
        error = error_from_response(response, action=action, not_found=not_found, body=body)
        if response.status_code in TRANSIENT_STATUSES:
            error.retry_after = retry_after_seconds(  # type: ignore[attr-defined]
                response.headers.get("Retry-After")
            )
        if response.status_code == 401:
            # A token that authenticated but lacks the scope: the principal is known, so
            # this is a permission problem rather than bad credentials.
            for challenge in parse_challenges(response.headers.get("WWW-Authenticate", "")):
                if challenge.params.get("error") == "insufficient_scope":
                    return Denied(
                        f"Could not {action}: the credentials lack permission "
                        f"({challenge.params.get('scope', 'unknown scope')}). {Denied.hint}",
                        status=401,
                        detail=error.detail,
                    )
        return error

    def _location(self, response: requests.Response, action: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise BlobUploadInvalid(
                f"Could not {action}: the registry answered {response.status_code} without a "
                "Location header."
            )
        # Distribution answers with absolute URLs, others with paths; resolve both.
        return urljoin(response.url, location)

    def _stream(
        self,
        response: requests.Response,
        *,
        expected: str | None,
        limit: int | None = None,
        too_large: type[RegistryError] = BlobTooLarge,
        decode: bool = False,
        what: str,
    ) -> Iterator[bytes]:
        """Yield a response body in chunks, enforce `limit`, verify the digest.

        With an `expected` digest the last chunk is held back until the digest is verified,
        so a consumer streaming it onwards (an upload) never sends a complete wrong blob.
        """
        hasher = new_hasher(expected) if expected else None
        seen = 0
        started = time.monotonic()
        held: bytes | None = None
        try:
            while True:
                # read1: at most one read from the socket, so a trickle is noticed.
                chunk = response.raw.read1(STREAM_CHUNK_BYTES, decode_content=decode)
                if not chunk:
                    break
                seen += len(chunk)
                self._check_rate(seen, started, what)
                if limit is not None and seen > limit:
                    raise too_large(
                        f"The {what} from {self.base_url} is larger than {limit} bytes; refusing "
                        "to read it."
                    )
                if hasher is None:
                    yield chunk
                    continue
                hasher.update(chunk)
                if held is not None:
                    yield held
                held = chunk
        except urllib3.exceptions.ReadTimeoutError:
            raise RegistryTimeout(
                f"Registry at {self.base_url} stopped sending the {what}. Is it overloaded?"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadlines.expired():
                raise RegistryTimeout(
                    f"Registry at {self.base_url} did not send the {what} within "
                    f"{deadlines.expired_seconds():g}s (timeout)."
                ) from None
            log.info("registry %s: reading the %s failed: %s", self.base_url, what, _describe(exc))
            raise RegistryUnreachable(
                f"The connection to {self.base_url} broke while reading the {what}. Try again."
            ) from None
        response._content_consumed = True  # read to the end: the connection can be reused
        if hasher is not None and expected is not None:
            actual = f"{expected.split(':', 1)[0]}:{hasher.hexdigest()}"
            if actual != expected:
                raise DigestMismatch(
                    f"The {what} from {self.base_url} hashes to {actual}, not {expected}. "
                    f"{DigestMismatch.hint}",
                    detail={"expected": expected, "actual": actual},
                )
        if held is not None:
            yield held

    def _read_body(self, response: requests.Response, *, limit: int, what: str) -> bytes:
        """The whole (small) body of a response, refused above `limit` bytes."""
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise ManifestInvalid(
                f"The {what} from {self.base_url} is larger than {limit} bytes; refusing to "
                "read it."
            )
        return b"".join(
            self._stream(
                response,
                expected=None,
                limit=limit,
                too_large=ManifestInvalid,
                decode=True,
                what=what,
            )
        )

    def _check_rate(self, seen: int, started: float, what: str) -> None:
        if not self.min_rate:
            return
        elapsed = time.monotonic() - started
        if elapsed > self._rate_grace and seen < self.min_rate * elapsed:
            raise RegistryTimeout(
                f"Registry at {self.base_url} is sending the {what} at "
                f"{seen / elapsed:.0f} bytes/s, below the minimum of {self.min_rate:.0f}; "
                "giving up. Is it overloaded?"
            )

    def cancel_upload(self, location: str, repository: str) -> None:
        """Free an upload session the registry would otherwise keep (and its bytes) for days.

        Best effort, but checked: the registry may still be writing the body of a PUT that
        was just abandoned and recreate the session after a DELETE, so the session is
        deleted again until the registry says it is gone (a bounded number of times).
        """
        action = f"cancel an upload to {repository}"
        for attempt in range(_CANCEL_TRIES):
            try:
                self._send(
                    "DELETE",
                    location,
                    action=action,
                    scopes=[_push(repository)],
                    ok=(200, 202, 204, 404),
                    retry=False,  # best effort; never delay the real error much
                    seconds=_CANCEL_SECONDS,
                )
                status = self._send(
                    "GET",
                    location,
                    action=action,
                    scopes=[_pull(repository), _push(repository)],
                    ok=(200, 204, 404),
                    retry=False,
                    seconds=_CANCEL_SECONDS,
                ).status_code
            except RegistryError:
                return
            if status == 404:
                return
            time.sleep(0.1 * (attempt + 1))
        log.warning(
            "registry %s kept an upload to %s after cancelling it", self.base_url, repository
        )

    # -- API --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers the v2 API and accepts our credentials."""
        self._send(
            "GET", self._url("/v2/"), action=f"log in to the registry at {self.base_url}", scopes=[]
        ).close()

    def catalog(self, page_size: int = 1000) -> Iterator[str]:
        """Yield every repository name, following `n`/`last` paging via the Link header."""
        yield from self._list(
            self._url("/v2/_catalog"),
            params={"n": page_size},
            key="repositories",
            what="catalog",
            action=f"list the repositories of {self.base_url}",
            scopes=["registry:catalog:*"],
        )

    def tags(self, repository: str) -> list[str]:
        """All tags of a repository; NameUnknown when the repository does not exist."""
        validate_name(repository)
        return list(
            self._list(
                self._url(f"/v2/{repository}/tags/list"),
                params=None,
                key="tags",
                what="tag list",
                action=f"list the tags of {repository} at {self.base_url}",
                scopes=[_pull(repository)],
                not_found=NameUnknown,
            )
        )

    def _list(
        self,
        url: str,
        *,
        params: dict[str, Any] | None,
        key: str,
        what: str,
        action: str,
        scopes: list[str],
        not_found: type[RegistryError] | None = None,
    ) -> Iterator[str]:
        """The strings of `key` across the pages of a listing, within bounds: pages, items,
        bytes per page and time in all (a registry can answer `rel="next"` forever)."""
        started = time.monotonic()
        visited: set[str] = set()
        items = 0
        next_url: str | None = url
        while next_url:
            if len(visited) >= MAX_LIST_PAGES or next_url in visited:
                raise LimitExceeded(
                    f"Could not {action}: the registry sent more than {len(visited)} pages "
                    "(or the same page again); giving up."
                )
            if time.monotonic() - started > LIST_BUDGET_SECONDS:
                raise RegistryTimeout(
                    f"Could not {action}: still paging after {LIST_BUDGET_SECONDS:g}s; giving up."
                )
            visited.add(next_url)
            with self._call_deadline():
                response = self._send(
                    "GET",
                    next_url,
                    params=params,
                    action=action,
                    scopes=scopes,
                    not_found=not_found,
                    keep_body=True,
                )
                with response:
                    body = self._read_body(response, limit=MAX_LIST_PAGE_BYTES, what=what)
                    next_url = self._next_link(response)
            params = None  # the Link URL carries n and last
            values = self._json(body, response.status_code, what).get(key) or []
            if not isinstance(values, list):
                values = []
            for value in values:
                if not isinstance(value, str):
                    continue
                items += 1
                if items > MAX_LIST_ITEMS:
                    raise LimitExceeded(
                        f"Could not {action}: the registry listed more than {MAX_LIST_ITEMS} "
                        "names; giving up."
                    )
                yield value

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """Fetch a manifest's exact bytes by tag or digest, verifying its digest."""
        validate_name(repository)
        validate_reference(reference)
        # The whole read is retried: the body can break after the status line.
        return self.retry.run(lambda: self._get_manifest_once(repository, reference))

    def _get_manifest_once(self, repository: str, reference: str) -> Manifest:
        action = f"get manifest {_ref(repository, reference)} from {self.base_url}"
        with self._call_deadline():
            response = self._send(
                "GET",
                self._url(f"/v2/{repository}/manifests/{reference}"),
                action=action,
                scopes=[_pull(repository)],
                not_found=ManifestUnknown,
                headers={"Accept": MANIFEST_ACCEPT},
                keep_body=True,
                retry=False,
            )
            with response:
                body = self._read_body(response, limit=MAX_MANIFEST_BYTES, what="manifest")
                header_digest = response.headers.get("Docker-Content-Digest", "").strip()
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            media_type = self._media_type_from_body(body) or media_type
        if media_type not in MANIFEST_TYPES:
            # E.g. an HTML page from a proxy or a login portal: never a manifest to copy.
            raise ManifestInvalid(
                f"Could not {action}: the answer is not a manifest "
                f"(Content-Type {media_type[:80] or 'missing'})."
            )
        expected = [d for d in (reference if is_digest(reference) else None, header_digest) if d]
        digest = compute_digest(body)
        for claimed in expected:
            actual = compute_digest(body, claimed.split(":", 1)[0]) if ":" in claimed else ""
            if actual != claimed:
                raise DigestMismatch(
                    f"Manifest {_ref(repository, reference)} from {self.base_url} hashes to "
                    f"{actual or digest}, but {claimed} was expected. {DigestMismatch.hint}",
                    detail={"expected": claimed, "actual": actual or digest},
                )
        if is_digest(reference):
            digest = reference
        return Manifest(digest=digest, media_type=media_type, body=body)

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        validate_name(repository)
        validate_reference(reference)
        response = self._send(
            "HEAD",
            self._url(f"/v2/{repository}/manifests/{reference}"),
            action=f"check manifest {_ref(repository, reference)} at {self.base_url}",
            scopes=[_pull(repository)],
            ok=(200, 404),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with response:
            if response.status_code == 404:
                return None
            digest = response.headers.get("Docker-Content-Digest", "").strip()
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            length = response.headers.get("Content-Length", "")
        if is_digest(reference) and digest and digest != reference:
            raise DigestMismatch(
                f"Registry {self.base_url} answered digest {digest} for "
                f"{_ref(repository, reference)}. {DigestMismatch.hint}",
                detail={"expected": reference, "actual": digest},
            )
        if not digest or not length.isdigit() or media_type not in MANIFEST_TYPES:
            # Some registries omit headers on HEAD; the GET answers with certainty.
            manifest = self.get_manifest(repository, reference)
            return Descriptor(manifest.digest, manifest.media_type, len(manifest.body))
        return Descriptor(digest=digest, media_type=media_type, size=int(length))

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store the exact manifest bytes under a tag or digest; return the digest."""
        validate_name(repository)
        validate_reference(reference)
        digest = compute_digest(body)
        if is_digest(reference):
            local = compute_digest(body, reference.split(":", 1)[0])
            if local != reference:
                raise DigestMismatch(
                    f"Refusing to put manifest {_ref(repository, reference)}: the bytes hash "
                    f"to {local}.",
                    detail={"expected": reference, "actual": local},
                )
        response = self._send(
            "PUT",
            self._url(f"/v2/{repository}/manifests/{reference}"),
            action=f"put manifest {_ref(repository, reference)} to {self.base_url}",
            scopes=[_push(repository)],
            ok=(200, 201, 202),
            headers={"Content-Type": media_type},
            data=body,
        )
        return self._stored_as(
            response,
            digest,
            f"manifest {_ref(repository, reference)}",
        )

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (removes every tag pointing at it)."""
        validate_name(repository)
        validate_digest(digest)
        self._send(
            "DELETE",
            self._url(f"/v2/{repository}/manifests/{digest}"),
            action=f"delete manifest {repository}@{digest} at {self.base_url}",
            scopes=[f"repository:{repository}:delete"],
            ok=(200, 202),
            not_found=ManifestUnknown,
        ).close()

    def blob_size(self, repository: str, digest: str) -> int | None:
        """Size of a blob in a repository, or None when the repository lacks it."""
        validate_name(repository)
        validate_digest(digest)
        response = self._send(
            "HEAD",
            self._url(f"/v2/{repository}/blobs/{digest}"),
            action=f"check blob {repository}@{digest} at {self.base_url}",
            scopes=[_pull(repository)],
            ok=(200, 404),
            headers={"Accept-Encoding": "identity"},
        )
        with response:
            if response.status_code == 404:
                return None
            length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        """Stream a blob as chunks; the digest is verified when the stream is exhausted."""
        validate_name(repository)
        validate_digest(digest)
        response = self._send(
            "GET",
            self._url(f"/v2/{repository}/blobs/{digest}"),
            action=f"get blob {repository}@{digest} from {self.base_url}",
            scopes=[_pull(repository)],
            not_found=BlobUnknown,
            # Raw bytes only: a storage backend's Content-Encoding must not be undone, or
            # the digest of a .tar.gz layer would change.
            headers={"Accept-Encoding": "identity"},
            keep_body=True,
            # Storage backends (S3, GCS) answer blob GETs with a redirect.
            follow_redirects=True,
        )
        try:
            length = response.headers.get("Content-Length", "")
            if length.isdigit():
                self._check_blob_size(int(length), f"blob {repository}@{digest}")
            yield self._stream(
                response, expected=digest, limit=self.max_blob_bytes, what=f"blob {digest}"
            )
        finally:
            response.close()

    def _check_blob_size(self, size: int, what: str) -> None:
        if self.max_blob_bytes is not None and size > self.max_blob_bytes:
            raise BlobTooLarge(
                f"The {what} at {self.base_url} has {size} bytes, more than the limit of "
                f"{self.max_blob_bytes}; refused before copying."
            )

    def read_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        """Read a small blob (e.g. an image config) whole; BlobTooLarge above max_bytes."""
        with self.open_blob(repository, digest) as chunks:
            data = bytearray()
            for chunk in chunks:
                data += chunk
                if len(data) > max_bytes:
                    raise BlobTooLarge(
                        f"Blob {repository}@{digest} at {self.base_url} is larger than "
                        f"{max_bytes} bytes; refusing to read it into memory."
                    )
        return bytes(data)

    def upload_blob(
        self,
        repository: str,
        digest: str,
        chunks: Iterable[bytes],
        *,
        size: int | None = None,
        chunk_size: int | None = None,
        location: str | None = None,
    ) -> str:
        """Upload a blob from a stream; return its digest.

        `location`: an upload session the registry opened already (a mount it answered
        with 202, see mount_or_open_upload); the upload goes there instead of a new one.

        Without `chunk_size` the stream goes in one streamed PATCH (chunked transfer, as
        docker push does), then an empty PUT commits it; with `chunk_size`, in PATCHes of
        that size. Either way a failing source (wrong digest, wrong size, over the limit,
        a broken download) only ends the body early: the PATCH completes, its answer
        carries the session's current state, and the session is deleted with it. A PUT
        aborted mid-body would leave the session's bytes in the registry's _uploads (its
        state no longer matches, so distribution refuses to delete it).
        """
        validate_name(repository)
        validate_digest(digest)
        action = f"upload blob {repository}@{digest} to {self.base_url}"
        try:
            if size is not None:
                self._check_blob_size(size, f"blob {digest} for {repository}")
        except BaseException:
            if location is not None:
                self.cancel_upload(location, repository)
            raise
        if self.max_blob_bytes is not None:
            chunks = self._capped(chunks, self.max_blob_bytes, f"blob {digest}")
        if location is None:
            location = self._start_upload(repository, action)
        try:
            if chunk_size is None:
                failed: list[Exception] = []
                if size != 0:
                    response = self._send(
                        "PATCH",
                        location,
                        action=action,
                        scopes=[_push(repository)],
                        ok=(202,),
                        headers={"Content-Type": "application/octet-stream"},
                        data=_ending_cleanly(chunks, size, failed),
                        replayable=False,  # a stream cannot be sent twice
                        seconds=self._transfer_seconds(size),
                    )
                    with response:
                        location = self._location(response, action)
                if failed:
                    raise failed[0]
                response = self._send(
                    "PUT",
                    location,
                    action=action,
                    scopes=[_push(repository)],
                    ok=(201,),
                    params={"digest": digest},
                    data=b"",
                    retry=False,
                )
            else:
                offset = 0
                for piece in _rechunk(chunks, chunk_size):
                    response = self._send(
                        "PATCH",
                        location,
                        action=action,
                        scopes=[_push(repository)],
                        ok=(202,),
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                        },
                        data=piece,
                        retry=False,  # the session may have moved on; the caller retries
                    )
                    with response:
                        location = self._location(response, action)
                    offset += len(piece)
                if size is not None and offset != size:
                    raise SizeInvalid(f"Could not {action}: got {offset} bytes, not {size}.")
                response = self._send(
                    "PUT",
                    location,
                    action=action,
                    scopes=[_push(repository)],
                    ok=(201,),
                    params={"digest": digest},
                    data=b"",
                    retry=False,
                )
        except BaseException:
            self.cancel_upload(location, repository)
            raise
        return self._stored_as(response, digest, f"blob {digest}")

    def _transfer_seconds(self, size: int | None) -> float | None:
        """The deadline of a call that carries a blob: the usual one, plus the time the
        bytes may take at the minimum transfer rate (a stream is paced by its source)."""
        if self.deadline is None:
            return None
        if size is None:
            size = self.max_blob_bytes or 0
        return self.deadline + size / max(self.min_rate, 1024.0)

    def _capped(self, chunks: Iterable[bytes], limit: int, what: str) -> Iterator[bytes]:
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > limit:
                raise BlobTooLarge(
                    f"The {what} is larger than the limit of {limit} bytes; upload refused."
                )
            yield chunk

    def _stored_as(self, response: requests.Response, digest: str, what: str) -> str:
        """`digest`, after checking the registry's Docker-Content-Digest agrees with it."""
        with response:
            returned = response.headers.get("Docker-Content-Digest", "").strip()
        if returned and returned != digest:
            raise DigestMismatch(
                f"Registry {self.base_url} stored {what} as {returned}, but its bytes hash "
                f"to {digest}. {DigestMismatch.hint}",
                detail={"expected": digest, "actual": returned},
            )
        return digest

    def _start_upload(self, repository: str, action: str) -> str:
        response = self._send(
            "POST",
            self._url(f"/v2/{repository}/blobs/uploads/"),
            action=action,
            scopes=[_push(repository)],
            ok=(202,),
            headers={"Content-Length": "0"},
            # Safe to repeat: a lost answer leaves at most an idle session, which expires.
            retry=True,
        )
        with response:
            return self._location(response, action)

    def mount_blob(self, repository: str, digest: str, from_repo: str) -> bool:
        """Mount a blob from another repository of this registry; False if it cannot."""
        location = self.mount_or_open_upload(repository, digest, from_repo)
        if location is None:
            return True
        # 202 opened an ordinary upload session instead; close it, the caller uploads.
        self.cancel_upload(location, repository)
        return False

    def mount_or_open_upload(self, repository: str, digest: str, from_repo: str) -> str | None:
        """Mount a blob from another repository of this registry: None when mounted (201,
        whether or not `repository` had it already), else the Location of the upload
        session the registry opened instead (202): upload_blob(location=...) or
        cancel_upload() it."""
        validate_name(repository)
        validate_name(from_repo)
        validate_digest(digest)
        action = f"mount blob {digest} from {from_repo} into {repository} at {self.base_url}"
        response = self._send(
            "POST",
            self._url(f"/v2/{repository}/blobs/uploads/"),
            action=action,
            # Both scopes in one token, or distribution answers 401.
            scopes=[_push(repository), _pull(from_repo)],
            ok=(201, 202),
            params={"mount": digest, "from": from_repo},
            headers={"Content-Length": "0"},
            retry=True,  # mounting twice is harmless
        )
        with response:
            if response.status_code == 201:
                return None
            return self._location(response, action)

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors of manifests whose subject is `digest`; None without referrers API."""
        validate_name(repository)
        validate_digest(digest)
        # The whole read is retried: the body can break after the status line.
        return self.retry.run(lambda: self._referrers_once(repository, digest))

    def _referrers_once(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        action = f"list referrers of {repository}@{digest} at {self.base_url}"
        with self._call_deadline():
            response = self._send(
                "GET",
                self._url(f"/v2/{repository}/referrers/{digest}"),
                action=action,
                scopes=[_pull(repository)],
                ok=(200, 404, 405),
                headers={"Accept": OCI_INDEX},
                keep_body=True,
                retry=False,
            )
            if response.status_code != 200:
                self._discard(response)  # no referrers API: keep the connection for the next call
                return None
            with response:
                body = self._read_body(response, limit=MAX_MANIFEST_BYTES, what="referrers index")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None  # not the referrers API (e.g. an HTML 200 from a proxy)
        manifests = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(manifests, list):
            return None
        found = [m for m in manifests if isinstance(m, dict)]
        if len(found) > MAX_REFERRERS_LISTED:
            raise LimitExceeded(
                f"Could not {action}: more than {MAX_REFERRERS_LISTED} referrers; giving up."
            )
        return found

    # -- helpers --------------------------------------------------------------------------

    def _json(self, body: bytes, status: int, what: str) -> dict[str, Any]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            document = None
        if not isinstance(document, dict):
            raise RegistryError(
                f"Registry at {self.base_url} sent a {what} that is not a JSON object.",
                code="INVALID_RESPONSE",
                status=status,
            )
        return document

    def _next_link(self, response: requests.Response) -> str | None:
        target = response.links.get("next", {}).get("url")
        if not target:
            return None
        url = urljoin(response.url, target)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            # Credentials go with every page: never to another host.
            raise RegistryError(
                f"Registry at {self.base_url} sent its next page to another host; refused.",
                code="INVALID_RESPONSE",
            )
        return url

    @staticmethod
    def _media_type_from_body(body: bytes) -> str | None:
        try:
            declared = json.loads(body).get("mediaType")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return None
        return declared if isinstance(declared, str) else None
