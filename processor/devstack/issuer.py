"""A local OpenID issuer for `make run AUTH=jwt`: an ES256 signing key kept under `.local/`
and its JWKS served on a loopback port, so the JWT authorizer verifies locally exactly as it
verifies Cognito's or Auth0's tokens in the cloud (it fetches the key set over HTTP).

`python -m processor admin token --email E [--admin]` signs a token with the same key; the
running system's issuer URL and audience are read from `.local/issuer/issuer.json`, which the
running system writes, so no environment variables need exporting. Development only.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

AUDIENCE = "orderflow-local"
ADMIN_GROUP = "orderflow-admins"
GROUPS_CLAIM = "cognito:groups"
ALGORITHM = "ES256"
JWKS_PATH = "/.well-known/jwks.json"
# Stable subjects per email, as an identity provider keeps one `sub` per user.
SUBJECT_NAMESPACE = uuid.UUID("6c1d5b8e-3f0a-4c8e-9d2b-7a4f1e0c5b21")


def issuer_dir(data_dir: Path) -> Path:
    return data_dir / "issuer"


def signing_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The issuer's private key, created on first use (mode 0600, git-ignored `.local/`)."""
    path = issuer_dir(data_dir) / "signing-key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return loaded


def key_id(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def jwks(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    public: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update({"kid": key_id(key), "alg": ALGORITHM, "use": "sig"})
    return {"keys": [public]}


def sign(
    key: ec.EllipticCurvePrivateKey, issuer: str, claims: dict[str, Any], kid: str | None = None
) -> str:
    return jwt.encode(
        {"iss": issuer, **claims}, key, algorithm=ALGORITHM, headers={"kid": kid or key_id(key)}
    )


def customer_claims(
    email: str, admin: bool = False, audience: str = AUDIENCE, lifetime_seconds: int = 3600
) -> dict[str, Any]:
    """The claims of a Cognito ID token for a user with a verified `email`."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid5(SUBJECT_NAMESPACE, email.lower())),
        "aud": audience,
        "email": email,
        "email_verified": True,
        "token_use": "id",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
    }
    if admin:
        claims[GROUPS_CLAIM] = [ADMIN_GROUP]
    return claims


@dataclass
class LocalIssuer:
    """The JWKS server on a loopback port; `env` points the authorizer at it."""

    server: ThreadingHTTPServer
    issuer: str
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "AUTH": "jwt",
            "JWT_ISSUER": self.issuer,
            "JWT_AUDIENCE": AUDIENCE,
            "JWT_JWKS_URL": f"{self.issuer}{JWKS_PATH}",
            "JWT_ADMIN_GROUP": ADMIN_GROUP,
            "JWT_ALGORITHMS": ALGORITHM,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        (issuer_dir(self.data_dir) / "issuer.json").unlink(missing_ok=True)


def start_issuer(data_dir: Path, port: int = 0) -> LocalIssuer:
    """Serve the key set (and a discovery document) and record where, for `admin token`."""
    key = signing_key(data_dir)
    document = json.dumps(jwks(key)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == JWKS_PATH:
                body = document
            elif path == "/.well-known/openid-configuration":
                body = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}{JWKS_PATH}"}).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the authorizer fetches the key set rarely, nobody reads these lines."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="issuer", daemon=True).start()
    running = LocalIssuer(server, issuer, data_dir)
    state = issuer_dir(data_dir) / "issuer.json"
    state.write_text(json.dumps({"issuer": issuer, "audience": AUDIENCE}))
    return running


def local_token(data_dir: Path, email: str, admin: bool = False) -> str:
    """A token the running local system accepts (`python -m processor admin token`)."""
    state = issuer_dir(data_dir) / "issuer.json"
    if not state.exists():
        raise RuntimeError(
            f"{state} not found: start the local system with `make run AUTH=jwt` first"
        )
    recorded = json.loads(state.read_text())
    claims = customer_claims(email, admin, audience=recorded["audience"])
    return sign(signing_key(data_dir), recorded["issuer"], claims)
