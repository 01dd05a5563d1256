"""An HTTP client of the control plane API whose failures are :mod:`errors` that say what to do."""

import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from anycastlb import __version__
from anycastlb.control.cli.errors import InputError, RefusedError, UnreachableError
from anycastlb.control.cli.options import ADMIN_TOKEN_ENV, TOKEN_ENV, URL_ENV

__all__ = ["Answer", "ControlClient"]

_TIMEOUT = 30.0  # seconds; longer than any API call but the PoP long poll, which the CLI never uses
_UNAUTHORIZED, _FIRST_ERROR, _SERVER_ERROR = 401, 400, 500


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, None for an empty answer (204)


class ControlClient:
    """Bearer-token requests to one control plane; a 4xx/5xx raises :class:`RefusedError` with the API's
    ``detail``, a transport failure :class:`UnreachableError`."""

    def __init__(self, url: str, token: str | None, token_source: str | None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--url {url!r} must be an http:// or https:// URL of the control plane")
        self.url = url.rstrip("/")
        self._token_source = token_source
        headers = {"User-Agent": f"anycastlb-cli/{__version__}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=_TIMEOUT)

    def send(
        self, method: str, path: str, body: object = None, params: dict[str, str] | None = None
    ) -> Answer:
        # Our own request id (the API echoes it, stores it in the audit row of the change and logs
        # it): a refusal names it, so an operator can find the request in the control plane's log.
        request_id = f"cli-{uuid.uuid4().hex[:16]}"
        try:
            response = self._http.request(
                method, path, json=body, params=params, headers={"X-Request-Id": request_id}
            )
        except httpx.ConnectError as error:
            raise UnreachableError(
                f"cannot reach the control plane at {self.url}: {error}; is `anycastlb control` running? "
                f"(set {URL_ENV} or --url to where it listens)"
            ) from None
        except httpx.TimeoutException:
            raise UnreachableError(
                f"the control plane at {self.url} did not answer within {_TIMEOUT:.0f}s"
            ) from None
        except httpx.HTTPError as error:
            raise UnreachableError(f"talking to the control plane at {self.url} failed: {error}") from None
        if response.status_code >= _SERVER_ERROR:
            detail = _detail(response)
            raise RefusedError(
                response.status_code, f"{detail} (HTTP {response.status_code}, request id {request_id})"
            )
        if response.status_code >= _FIRST_ERROR:
            raise self._refusal(response)
        if not response.content:
            return Answer(response.status_code, None)
        try:
            return Answer(response.status_code, response.json())
        except ValueError:
            raise UnreachableError(
                f"{self.url}{path} answered {response.status_code} without JSON: is {self.url} the "
                "control plane (`anycastlb control`)?"
            ) from None

    def _refusal(self, response: httpx.Response) -> RefusedError:
        detail = _detail(response)
        if response.status_code != _UNAUTHORIZED:
            return RefusedError(response.status_code, f"{detail} (HTTP {response.status_code})")
        fix = (
            f"set {TOKEN_ENV} to a tenant's API token or {ADMIN_TOKEN_ENV} to the admin token, "
            "or pass --token"
        )
        if self._token_source is None:
            return RefusedError(response.status_code, f"the control plane at {self.url} needs a token: {fix}")
        return RefusedError(
            response.status_code,
            f"the control plane at {self.url} refused the token from {self._token_source} ({detail}): {fix}",
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _detail(response: httpx.Response) -> str:
    """The API's ``{"detail": ...}``, or the start of whatever a proxy in between answered."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if detail is not None:
        return str(detail)
    return response.text.strip()[:200] or response.reason_phrase
