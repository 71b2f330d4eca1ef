"""Bearer-token verification: the one implementation behind the JWT authorizer, whether it
runs as a Lambda authorizer in the cloud, under `chalice local` or under `make run`.

API Gateway's native Cognito authorizer would be simpler in the cloud, but it cannot run on a
laptop (`chalice local` only base64-decodes Cognito tokens), so forged tokens could never be
shown to be refused here. This module checks everything itself: the signature against the
issuer's JWKS (asymmetric algorithms from an allow-list only, so `alg: none` and HMAC tokens
signed with the public key are refused before any key is touched), the issuer, the audience
(or Cognito's `client_id`, since Cognito access tokens carry no `aud`), expiry and not-before
with a small leeway. It imports PyJWT and cryptography, and nothing from the rest of the
service, so the authorizer function's cold start pays for those two only (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

# Algorithms a JWKS-published public key can verify. HS* (a shared secret: a public key used
# as one would verify forgeries) and `none` are never accepted, whatever the setting says.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = "RS256,ES256"
# JWK key types of public keys; a symmetric (`oct`) entry in a key set is ignored.
PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
DEFAULT_GROUPS_CLAIM = "cognito:groups"
# A token whose `kid` is not in the cached key set makes one refetch (key rotation), but not
# more often than this: a stream of made-up kids must not turn into a stream of JWKS fetches.
DEFAULT_REFETCH_SECONDS = 30.0
JWKS_MAX_AGE_SECONDS = 3600.0
JWKS_TIMEOUT_SECONDS = 3.0
JWKS_MAX_BYTES = 256 * 1024


class InvalidToken(Exception):
    """The token is not acceptable; the message says why (logged, never returned)."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for. `email` is set only when the issuer says it is
    verified (placing an order needs it); `admin` when the token carries the admin group."""

    subject: str
    email: str | None
    admin: bool


@dataclass(frozen=True)
class TokenSettings:
    """`JWT_*` environment variables; read by the authorizer and the local issuer alike."""

    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...]
    leeway_seconds: float
    admin_group: str | None
    groups_claim: str
    refetch_seconds: float

    @classmethod
    def from_env(cls) -> TokenSettings:
        issuer = os.environ.get("JWT_ISSUER", "")  # exactly as in `iss` (Auth0's ends in "/")
        audience = os.environ.get("JWT_AUDIENCE", "")
        if not issuer or not audience:
            raise ValueError("AUTH=jwt needs JWT_ISSUER and JWT_AUDIENCE")
        algorithms = tuple(
            a.strip() for a in os.environ.get("JWT_ALGORITHMS", DEFAULT_ALGORITHMS).split(",")
        )
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused or not algorithms:
            raise ValueError(f"JWT_ALGORITHMS: not asymmetric algorithms: {', '.join(refused)}")
        return cls(
            issuer=issuer,
            audience=audience,
            # Cognito, Auth0 and Okta publish here; Keycloak under /protocol/openid-connect/certs.
            jwks_url=os.environ.get("JWT_JWKS_URL")
            or f"{issuer.rstrip('/')}/.well-known/jwks.json",
            algorithms=algorithms,
            leeway_seconds=float(os.environ.get("JWT_LEEWAY_SECONDS", "60")),
            admin_group=os.environ.get("JWT_ADMIN_GROUP") or None,
            groups_claim=os.environ.get("JWT_GROUPS_CLAIM", DEFAULT_GROUPS_CLAIM),
            refetch_seconds=float(
                os.environ.get("JWT_JWKS_REFETCH_SECONDS", DEFAULT_REFETCH_SECONDS)
            ),
        )


def fetch_jwks(url: str) -> dict[str, Any]:
    """The issuer's key set. https only, except on the loopback (the local issuer)."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidToken(f"refusing to fetch keys from a non-https URL: {url}")
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
        data = json.loads(response.read(JWKS_MAX_BYTES))
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InvalidToken("the JWKS document has no `keys` list")
    return data


class KeySet:
    """The issuer's public keys by `kid`, cached for the life of the process (a warm Lambda
    container verifies without any network call) and refetched when a token names a `kid`
    the cache lacks, at most once per `refetch_seconds`."""

    def __init__(
        self,
        url: str,
        refetch_seconds: float = DEFAULT_REFETCH_SECONDS,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url, self._refetch_seconds, self._fetch, self._clock = (
            url, refetch_seconds, fetch, clock
        )
        self._keys: dict[str, tuple[jwt.PyJWK, str | None]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> tuple[jwt.PyJWK, str | None]:
        """The key named `kid` and the algorithm its JWK declares (`alg`, if any)."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_MAX_AGE_SECONDS
            may_refetch = (
                self._fetched_at is None or now - self._fetched_at >= self._refetch_seconds
            )
            if stale or (kid not in self._keys and may_refetch):
                self._load(now)
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken(f"unknown key id {kid!r}")
        return found

    def _load(self, now: float) -> None:
        try:
            document = self._fetch(self._url)
        except (OSError, ValueError) as error:
            raise InvalidToken(f"cannot fetch the JWKS: {error}") from None
        keys: dict[str, tuple[jwt.PyJWK, str | None]] = {}
        for entry in document["keys"]:
            if (
                not isinstance(entry, dict)
                or "kid" not in entry
                or entry.get("kty") not in PUBLIC_KEY_TYPES
                or entry.get("use", "sig") != "sig"
            ):
                continue
            try:
                keys[str(entry["kid"])] = (jwt.PyJWK(entry), entry.get("alg"))
            except jwt.PyJWTError:  # a key type this build cannot use: skip it, keep the rest
                continue
        self._keys, self._fetched_at = keys, now
        self.fetches += 1


class TokenVerifier:
    """`verify(token) -> Identity`, or InvalidToken with the reason."""

    def __init__(self, settings: TokenSettings, keys: KeySet | None = None) -> None:
        self.settings = settings
        self.keys = keys or KeySet(settings.jwks_url, settings.refetch_seconds)

    def verify(self, token: str) -> Identity:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in s.algorithms:
            raise InvalidToken(f"algorithm {algorithm!r} is not allowed")
        if not isinstance(kid, str):
            raise InvalidToken("the token names no key id")
        key, declared = self.keys.key(kid)
        if declared is not None and declared != algorithm:
            raise InvalidToken(f"key {kid!r} is for {declared}, not {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        self._check_audience(claims)
        return Identity(
            subject=str(claims["sub"]),
            email=_verified_email(claims),
            admin=s.admin_group is not None and s.admin_group in _groups(claims, s.groups_claim),
        )

    def _check_audience(self, claims: dict[str, Any]) -> None:
        """`aud` (ID tokens, most issuers) or, without one, `client_id` (Cognito access
        tokens) must name this API's audience."""
        audience = claims.get("aud")
        if audience is not None:
            names = audience if isinstance(audience, list) else [audience]
        else:
            names = [claims.get("client_id")]
        if self.settings.audience not in names:
            raise InvalidToken("the token is for another audience")


def _verified_email(claims: dict[str, Any]) -> str | None:
    email, verified = claims.get("email"), claims.get("email_verified")
    if isinstance(email, str) and verified in (True, "true"):
        return email
    return None


def _groups(claims: dict[str, Any], claim: str) -> list[str]:
    groups = claims.get(claim, [])
    if isinstance(groups, str):
        return groups.split()
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
