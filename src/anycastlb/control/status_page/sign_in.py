"""The status page's sign-in, without HTTP: cookie values, their attributes and the CSRF check.

The browser keeps the token itself (the page signs in with the same tokens as the API): in an
``HttpOnly`` cookie (no script reads it), ``SameSite=Strict`` (no other site's page or link sends
it), ``Path=/status`` (the API never reads it: a cookie can never call ``/v1``), ``Secure`` when
the page is served over https. No expiry: it goes when the browser closes, or on sign-out.

The sign-in form is protected against login CSRF (another site signing the browser in with the
attacker's token) by a double-submit token: the form's page sets a random value in a second
cookie and in a hidden field; a sign-in or sign-out is taken only when both agree, and when the
browser's ``Origin`` (if it sends one) is this very host.
"""

import base64
import binascii
import hmac
import secrets
from urllib.parse import urlsplit

__all__ = [
    "COOKIE_PATH",
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "cookie_token",
    "csrf_ok",
    "new_csrf_value",
    "session_value",
]

SESSION_COOKIE = "anycastlb_status"
CSRF_COOKIE = "anycastlb_status_csrf"
COOKIE_PATH = "/status"


def session_value(token: str) -> str:
    """The cookie's value for ``token``: base64url, so any token (the admin's is free text) fits."""
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def cookie_token(value: str | None) -> str | None:
    """The token in a session cookie; None for no cookie or one that is not ours."""
    if not value:
        return None
    try:
        token = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return token or None


def new_csrf_value() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, field: str | None, origin: str | None, host: str | None) -> bool:
    """The double-submit values agree and the request came from a page of this host."""
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        return False
    if origin is None:  # older browsers send no Origin on same-origin form posts
        return True
    return host is not None and urlsplit(origin).netloc == host
