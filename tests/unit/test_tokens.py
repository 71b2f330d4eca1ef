"""The token verifier on its own (processor.identity.tokens): key rotation and the JWKS cache,
Cognito access tokens, leeway, the algorithm allow-list. The HTTP matrix of forged tokens
against the running system is tests/e2e/test_identity_http.py."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from processor.identity.tokens import (
    InvalidToken,
    KeySet,
    TokenSettings,
    TokenVerifier,
    fetch_jwks,
)

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_test"
AUDIENCE = "client-123"


def _settings(**changes: Any) -> TokenSettings:
    base = TokenSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=f"{ISSUER}/.well-known/jwks.json",
        algorithms=("RS256", "ES256"), leeway_seconds=60, admin_group="admins",
        groups_claim="cognito:groups", refetch_seconds=30,
    )
    return TokenSettings(**{**base.__dict__, **changes})


class Issuer:
    """A key set that can rotate, and a counter of the verifier's fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"k1": ec.generate_private_key(ec.SECP256R1())}
        self.now = 1000.0

    def jwks(self, url: str) -> dict[str, Any]:
        published = []
        for kid, key in self.keys.items():
            algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
            entry = algorithm.to_jwk(key.public_key(), as_dict=True)
            published.append({**entry, "kid": kid, "use": "sig"})
        return {"keys": published}

    def token(self, kid: str = "k1", signer: str | None = None, **claims: Any) -> str:
        """Signed by the key `signer` (default: `kid`'s), naming `kid`; a claim given as
        None is left out."""
        key = self.keys[signer or kid]
        algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        now = int(time.time())
        body = {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": now + 600, **claims}
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})

    def verifier(self, **changes: Any) -> TokenVerifier:
        settings = _settings(**changes)
        keys = KeySet(settings.jwks_url, settings.refetch_seconds, self.jwks, lambda: self.now)
        return TokenVerifier(settings, keys)


def test_a_rotated_key_is_fetched_once_and_then_served_from_the_cache() -> None:
    issuer = Issuer()
    verifier = issuer.verifier()
    assert verifier.verify(issuer.token()).subject == "user-1"
    issuer.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.now += 31
    assert verifier.verify(issuer.token("k2")).subject == "user-1"
    assert verifier.verify(issuer.token("k2")).subject == "user-1"
    assert verifier.keys.fetches == 2


def test_unknown_kids_refetch_at_most_once_per_interval() -> None:
    issuer = Issuer()
    verifier = issuer.verifier()
    verifier.verify(issuer.token())
    issuer.now += 31
    for _ in range(5):
        with pytest.raises(InvalidToken, match="unknown key id"):
            verifier.verify(issuer.token(kid="made-up", signer="k1"))
    assert verifier.keys.fetches == 2


def test_cognito_access_tokens_are_checked_by_client_id_instead_of_aud() -> None:
    issuer = Issuer()
    verifier = issuer.verifier()
    access = issuer.token(aud=None, client_id=AUDIENCE, token_use="access")
    assert verifier.verify(access).subject == "user-1"
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(issuer.token(aud=None, client_id="another-client"))
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(issuer.token(aud="another-client", client_id=AUDIENCE))


def test_expiry_allows_the_leeway_and_no_more() -> None:
    issuer = Issuer()
    verifier = issuer.verifier()
    now = int(time.time())
    assert verifier.verify(issuer.token(exp=now - 30)).subject == "user-1"
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(issuer.token(exp=now - 120))
    with pytest.raises(InvalidToken, match="not yet valid"):
        verifier.verify(issuer.token(nbf=now + 120))


def test_email_counts_only_when_verified_and_admin_only_with_the_group() -> None:
    issuer = Issuer()
    verifier = issuer.verifier()
    verified = verifier.verify(issuer.token(email="a@example.com", email_verified=True))
    assert (verified.email, verified.admin) == ("a@example.com", False)
    unverified = verifier.verify(issuer.token(email="a@example.com", email_verified=False))
    assert unverified.email is None
    assert verifier.verify(issuer.token(**{"cognito:groups": ["admins"]})).admin is True
    assert verifier.verify(issuer.token(**{"cognito:groups": ["staff"]})).admin is False


def test_an_algorithm_outside_the_allow_list_is_refused_even_with_a_valid_signature() -> None:
    issuer = Issuer()
    with pytest.raises(InvalidToken, match="not allowed"):
        issuer.verifier(algorithms=("RS256",)).verify(issuer.token())


def test_symmetric_algorithms_cannot_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256,HS256")
    with pytest.raises(ValueError, match="HS256"):
        TokenSettings.from_env()


def test_keys_are_fetched_over_https_or_from_the_loopback_only() -> None:
    with pytest.raises(InvalidToken, match="non-https"):
        fetch_jwks("http://issuer.example.com/.well-known/jwks.json")
