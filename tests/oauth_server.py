"""A small OAuth 2.0 token and introspection server for the tests, over HTTPS with a test CA.

    server = OAuthServer(cert)            # cert: a TestCert (make_test_ca(...).issue(...))
    server.start()
    server.add_client("bot-app", "s3cret", user="bot")     # client credentials: tokens for "bot"
    rt = server.issue_refresh_token("bot-app", "bot")      # or a user's refresh token
    ... the bot asks server.token_url (generic), server.microsoft_token_url(tenant) (MSAL), or the
        token_uri of server.service_account_key(...) (google-auth) ...
    server.valid(token, "bot")            # what Dovecot asks at /introspect, and the SMTP sink
    server.stop()

Grants: client_credentials, refresh_token, and the JWT bearer grant of a Google service account
(the assertion is checked against the key the test registered). Errors come in the OAuth JSON
format (`{"error": "invalid_client"}`, `invalid_grant`...); on the Microsoft paths also with
Microsoft's `error_codes` (AADSTS7000215 for a wrong secret, AADSTS700082 for a refresh token that
stopped working). Tokens live `lifetime` seconds; `expire_all()` ends every token issued so far,
`revoke()` a refresh token (and the tokens it gave).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

from tests.mailservers import HOST, TestCert

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class _Issued:
    user: str
    client: str
    expires_at: float
    refresh_token: str = ""
    scope: str = ""


class OAuthServer:
    def __init__(self, cert: TestCert, *, lifetime: float = 3600.0, host: str = HOST) -> None:
        self.cert = cert
        self.host = host
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self.clients: dict[str, tuple[str, str]] = {}  # client_id -> (secret, user for client credentials)
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client_id, user)
        self.revoked: set[str] = set()
        self.service_accounts: dict[str, tuple[str, set[str]]] = {}  # email -> (public key PEM, subjects allowed)
        self.tokens: dict[str, _Issued] = {}
        self.grants: Counter[str] = Counter()  # tokens issued, by grant type
        self.refusals: list[str] = []  # error codes answered, in order
        self.introspections = 0
        self.last_form: dict[str, str] = {}
        self._server: _Quiet | None = None
        self._thread: threading.Thread | None = None

    # -- set-up --------------------------------------------------------------------------------
    def add_client(self, client_id: str, secret: str, *, user: str = "") -> None:
        with self._lock:
            self.clients[client_id] = (secret, user)

    def issue_refresh_token(self, client_id: str, user: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self.refresh_tokens[token] = (client_id, user)
        return token

    def add_service_account(self, email: str, public_key_pem: str, subjects: set[str]) -> None:
        with self._lock:
            self.service_accounts[email] = (public_key_pem, set(subjects))

    def service_account_key(self, directory: Path, email: str = "bot-sa@test-project.iam.gserviceaccount.com",
                            subjects: frozenset[str] = frozenset({"bot"})) -> Path:
        """A Google service account JSON key file whose token_uri is this server (key registered here)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.add_service_account(email, public, set(subjects))
        path = directory / "service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "test-project", "private_key_id": "k1",
            "private_key": private, "client_email": email, "client_id": "1234567890",
            "token_uri": self.token_url, "auth_uri": f"{self.url}/auth",
        }))
        path.chmod(0o600)
        return path

    def reset(self, *, lifetime: float = 3600.0) -> None:
        """Forget every client, token and count (a session-wide server, fresh for each test)."""
        with self._lock:
            self.lifetime = lifetime
            for store in (self.clients, self.refresh_tokens, self.service_accounts, self.tokens):
                store.clear()
            self.revoked.clear()
            self.grants.clear()
            self.refusals.clear()
            self.introspections = 0

    # -- faults --------------------------------------------------------------------------------
    def expire_all(self) -> None:
        """Every access token issued so far expires now (as if the clock jumped past them)."""
        with self._lock:
            for issued in self.tokens.values():
                issued.expires_at = 0.0

    def revoke(self, refresh_token: str) -> None:
        """The refresh token stops working (expired unused, consent revoked), with every token it gave."""
        with self._lock:
            self.revoked.add(refresh_token)
            for issued in self.tokens.values():
                if issued.refresh_token == refresh_token:
                    issued.expires_at = 0.0

    def reinstate(self, refresh_token: str) -> None:
        with self._lock:
            self.revoked.discard(refresh_token)

    # -- checks --------------------------------------------------------------------------------
    def valid(self, token: str, user: str | None = None) -> bool:
        with self._lock:
            issued = self.tokens.get(token)
            return issued is not None and issued.expires_at > time.time() and (user is None or issued.user == user)

    def issued(self) -> list[str]:
        """Every access token handed out (for "never in the log" checks)."""
        with self._lock:
            return list(self.tokens)

    # -- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OAuthServer was never started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    def microsoft_token_url(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        server = _Quiet((self.host, 0), _handler(self))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert.cert), str(self.cert.key))
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="oauth-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the endpoints -------------------------------------------------------------------------
    def _issue(self, user: str, client: str, grant: str, refresh_token: str = "", scope: str = "") -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = _Issued(user, client, time.time() + self.lifetime, refresh_token, scope)
            self.grants[grant] += 1
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        if scope:
            answer["scope"] = scope
        return answer

    def token(self, form: dict[str, str], basic: tuple[str, str] | None, microsoft: bool) -> tuple[int, dict[str, Any]]:
        self.last_form = {k: v for k, v in form.items() if k not in ("client_secret", "refresh_token", "assertion")}
        grant = form.get("grant_type", "")
        scope = form.get("scope", "")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""), scope)
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        with self._lock:
            known = self.clients.get(client_id)
        if known is None:
            return self._refuse(401, "invalid_client", f"Application with identifier '{client_id}' was not found",
                                700016 if microsoft else 0)
        if known[0] and secret != known[0]:
            return self._refuse(401, "invalid_client", "Invalid client secret provided.", 7000215 if microsoft else 0)
        if grant == "client_credentials":
            if not known[1]:
                return self._refuse(400, "unauthorized_client", "The client may not use this grant.",
                                    700016 if microsoft else 0)
            return 200, self._issue(known[1], client_id, grant, scope=scope)
        if grant == "refresh_token":
            rt = form.get("refresh_token", "")
            with self._lock:
                owner = self.refresh_tokens.get(rt)
                revoked = rt in self.revoked
            if owner is None or revoked or owner[0] != client_id:
                return self._refuse(400, "invalid_grant", "The refresh token has expired due to inactivity.",
                                    700082 if microsoft else 0)
            return 200, self._issue(owner[1], client_id, grant, rt, scope)
        return self._refuse(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported", 0)

    def _jwt_bearer(self, assertion: str, scope: str) -> tuple[int, dict[str, Any]]:
        import jwt

        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            with self._lock:
                account = self.service_accounts.get(str(unverified.get("iss", "")))
            if account is None:
                return self._refuse(400, "invalid_grant", "Invalid JWT: unknown service account.", 0)
            claims = jwt.decode(assertion, account[0], algorithms=["RS256"],  # google-auth always names Google's endpoint
                                audience=[self.token_url, "https://oauth2.googleapis.com/token"])
        except jwt.PyJWTError as exc:
            return self._refuse(400, "invalid_grant", f"Invalid JWT Signature. ({type(exc).__name__})", 0)
        subject = str(claims.get("sub") or "")
        if subject not in account[1]:
            return self._refuse(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens "
                                "using this method, or client not authorized for any of the scopes requested.", 0)
        return 200, self._issue(subject, str(claims["iss"]), JWT_BEARER, scope=str(claims.get("scope", scope)))

    def _refuse(self, status: int, code: str, description: str, ms_code: int) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.refusals.append(code)
        body: dict[str, Any] = {"error": code, "error_description": description}
        if ms_code:
            body["error_description"] = f"AADSTS{ms_code}: {description}"
            body["error_codes"] = [ms_code]
        return status, body

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("token", "")
        with self._lock:
            self.introspections += 1
            issued = self.tokens.get(token)
        if issued is None or issued.expires_at <= time.time():
            return {"active": False}
        return {"active": True, "username": issued.user, "client_id": issued.client, "token_type": "Bearer",
                "exp": int(issued.expires_at), "scope": issued.scope}

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {"issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token", "device_authorization_endpoint":
                f"{base}/oauth2/v2.0/devicecode", "token_endpoint_auth_methods_supported": ["client_secret_post"]}


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that does not trust the test CA ends its handshake: expected in tests


def _handler(server: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                self._json(200, server.openid_configuration(parts[0]))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            path = self.path.split("?", 1)[0]
            if path == "/introspect":
                self._json(200, server.introspect(form))
            elif path == "/token" or path.endswith("/oauth2/v2.0/token"):
                status, answer = server.token(form, self._basic(), microsoft=path != "/token")
                self._json(status, answer)
            else:
                self._json(404, {"error": "not_found"})

        def _basic(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password

        def _json(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
