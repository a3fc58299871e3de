"""The HTTP side of the command-line client: one call to the portal's API, with a timeout,
its answer as JSON, or an error carrying the exit code a script branches on."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

# Exit codes, what a CI job branches on (README: "Many at once, a dry run first, and from
# the command line").
OK = 0  # done: promoted (or queued, without --wait), or a dry run that would go through
FAILED = 1  # a promotion failed (the copy), or an image was refused for another reason
USAGE = 2  # the command line or the input is wrong (the API's 400)
POLICY = 3  # the target's policy refused it (409, with the checklist)
NOT_FOUND = 4  # no such registry, repository, tag, promotion or batch (404)
AUTH = 5  # no key, a wrong key, or no permission (401, 403)
TIMEOUT = 6  # --wait ran out of time; the promotion goes on (poll with `promoter status`)
UNREACHABLE = 7  # the portal could not be reached or answered with a server error (5xx, 429)


class CliError(Exception):
    """Something to tell the person, and the exit code to leave with."""

    def __init__(self, message: str, code: int, answer: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.answer = answer  # the API's JSON answer, when there is one (409: the checklist)


STATUS_CODES = {400: USAGE, 401: AUTH, 403: AUTH, 404: NOT_FOUND, 409: POLICY}


class Api:
    """The portal's API: every call has a timeout; errors become CliError."""

    def __init__(self, url: str, key: str | None, *, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "promoter-cli"
        self.session.headers["Accept"] = "application/json"
        if key:
            self.session.headers["X-ApiKey"] = key

    def call(
        self, method: str, path: str, *, params: dict | None = None, body: dict | None = None
    ) -> Any:
        """The JSON answer of a 2xx; CliError for anything else."""
        try:
            response = self.session.request(
                method,
                self.url + path,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise CliError(
                f"{self.url} did not answer within {self.timeout:g} seconds.", UNREACHABLE
            ) from None
        except requests.RequestException as exc:
            found = re.search(r"\[Errno [^\]]*\][^'\")]*", str(exc))
            reason = found.group(0).strip() if found else type(exc).__name__
            raise CliError(f"{self.url} could not be reached: {reason}.", UNREACHABLE) from None
        answer = _json(response)
        if 200 <= response.status_code < 300 and answer is not None:
            return answer
        message = _message(response, answer)
        code = STATUS_CODES.get(response.status_code)
        if code is None:
            code = (
                USAGE
                if 400 <= response.status_code < 500 and response.status_code != 429
                else (UNREACHABLE)
            )
        raise CliError(message, code, answer)


def _json(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: requests.Response, answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return answer["error"]
    text = response.text.strip()
    if text and "json" not in response.headers.get("Content-Type", "") and len(text) < 2000:
        return text
    return f"The portal answered {response.status_code} {response.reason}."


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
