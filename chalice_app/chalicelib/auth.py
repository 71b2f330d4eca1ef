"""Who is calling: the JWT authorizer (AUTH=jwt) and what the views make of its verdict.

The authorizer is a Chalice built-in authorizer: API Gateway runs it as a Lambda authorizer
(caching its verdict per token), and `chalice local` and `make run` run the very same function
before the view. It accepts `Authorization: Bearer <JWT>` (processor.identity.tokens checks
it) and, where the authorizer is given `API_KEY`, the operator key as `Authorization: ApiKey
<key>`. A TOKEN authorizer sees only the `Authorization` header, so that is where the key goes
in `jwt` mode. Its verdict reaches the view as `request.context["authorizer"]`.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import TYPE_CHECKING, NoReturn

from chalice.app import AuthRequest, AuthResponse, Request

from processor.config import auth_mode
from processor.domain.errors import Unauthorized
from processor.domain.model import Customer
from processor.jsonutil import dumps

if TYPE_CHECKING:
    from processor.identity.tokens import TokenVerifier

log = logging.getLogger("orderflow.auth")
REALM = 'Bearer realm="orderflow"'
OPERATOR = "operator"
_verifier: TokenVerifier | None = None


def challenge(error: str | None = None) -> dict[str, str]:
    """RFC 6750's `WWW-Authenticate` for a 401 (with `error="invalid_token"` when one was sent)."""
    return {"WWW-Authenticate": f'{REALM}, error="{error}"' if error else REALM}


def verifier() -> TokenVerifier:
    """One verifier per process: its key set stays cached across warm invocations."""
    global _verifier
    if _verifier is None:
        from processor.identity.tokens import TokenSettings, TokenVerifier

        _verifier = TokenVerifier(TokenSettings.from_env())
    return _verifier


def authorize(request: AuthRequest) -> AuthResponse:
    """The authorizer's verdict on `Authorization`; raises (401) for anything not accepted."""
    from processor.identity.tokens import InvalidToken

    scheme, _, credential = (request.token or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() == "apikey" and _is_operator_key(credential):
        return AuthResponse(routes=["*"], principal_id=OPERATOR, context={"role": OPERATOR})
    if scheme.lower() != "bearer" or not credential:
        _reject("expected Authorization: Bearer <token>")
    try:
        identity = verifier().verify(credential)
    except InvalidToken as error:
        _reject(str(error))
    context = {
        "role": "admin" if identity.admin else "customer",
        "email": identity.email or "",
    }
    return AuthResponse(routes=["*"], principal_id=identity.subject, context=context)


def _is_operator_key(given: str) -> bool:
    expected = os.environ.get("API_KEY")
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def _reject(reason: str) -> NoReturn:
    """401. API Gateway turns an authorizer that raises "Unauthorized" into its UNAUTHORIZED
    gateway response (the stack gives it our JSON shape and WWW-Authenticate); Chalice's local
    gateway, which the Lambda bundle does not carry, takes its own exception instead."""
    log.info("token refused: %s", reason)
    try:
        from chalice.local import NotAuthorizedError
    except ImportError:
        raise Exception("Unauthorized") from None  # API Gateway's contract
    body = Unauthorized("missing, invalid or expired bearer token").body()
    raise NotAuthorizedError(
        {"Content-Type": "application/json", **challenge("invalid_token")}, dumps(body).encode()
    )


def caller(request: Request) -> Customer | None:
    """The customer a request acts for, or None for the operator (every order).

    `api_key` mode: the operator key, as before (chalicelib.http.require_api_key). `jwt` mode:
    the authorizer's verdict; a request that reached the view without one (a gateway set up
    without the authorizer) is refused rather than trusted.
    """
    from chalicelib.http import require_api_key

    if auth_mode() != "jwt":
        require_api_key(request)
        return None
    verdict = (request.context or {}).get("authorizer") or {}
    role, subject = verdict.get("role"), verdict.get("principalId")
    if role in (OPERATOR, "admin") and subject:
        return None
    if role != "customer" or not subject:
        raise Unauthorized("missing or invalid bearer token", headers=challenge())
    return Customer(subject=str(subject), email=verdict.get("email") or None)
