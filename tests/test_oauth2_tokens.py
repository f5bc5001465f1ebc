"""OAuth 2.0 token sources (bot/adapters/oauth2.py): the cache's arithmetic with time passed in, and
each provider's fetcher against the real token server of tests/oauth_server.py over HTTPS."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.oauth2 import Token, TokenSource, cooldown, renew_at, token_source
from bot.core.errors import OAuth2Error
from bot.settings import OAuth2Settings
from tests.oauth_server import JWT_BEARER, OAuthServer

# -- the cache, with a clock and a fetcher of our own ---------------------------------------------------


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Hands out t1, t2 ... living `life` seconds; raises the queued errors first."""

    provider = "test"

    def __init__(self, life: float = 3600.0) -> None:
        self.life = life
        self.calls = 0
        self.errors: list[OAuth2Error] = []

    def fetch(self, now: float) -> Token:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Token(f"t{self.calls}", now + self.life, now)


@pytest.mark.parametrize(
    ("issued", "expires", "margin", "renew"),
    [
        (0, 3600, 300, 3300),  # an hour's token is renewed five minutes before it ends
        (0, 3600, 0, 3600),  # no margin: at expiry
        (0, 60, 300, 30),  # a short-lived token: at half its life, never after it ended
        (100, 100, 300, 100),  # already expired when issued
        (0, 4, 1, 3),
    ],
)
def test_renewal_time(issued: float, expires: float, margin: float, renew: float) -> None:
    assert renew_at(Token("x", expires, issued), margin) == renew


@pytest.mark.parametrize(("failures", "wait"), [(0, 0), (1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60)])
def test_cooldown_after_failures(failures: int, wait: float) -> None:
    assert cooldown(failures) == wait


def test_token_is_cached_and_renewed_before_it_expires() -> None:
    clock, fetcher = Clock(), Fetcher(life=3600)
    source = TokenSource(fetcher, margin=300, clock=clock)
    assert source.token() == "t1"
    clock.now += 3299  # one second before the renewal time
    assert source.token() == "t1" and fetcher.calls == 1
    clock.now += 1  # five minutes before it expires: a new one, while the old one still works
    assert source.token() == "t2" and fetcher.calls == 2
    clock.now += 10
    assert source.token() == "t2" and fetcher.calls == 2
    assert source.status.ok is True and source.status.fetched == 2


def test_invalidate_drops_only_the_refused_token() -> None:
    clock, fetcher = Clock(), Fetcher()
    source = TokenSource(fetcher, clock=clock)
    assert source.token() == "t1"
    source.invalidate("some older token")  # another thread already renewed it: keep the new one
    assert source.token() == "t1"
    source.invalidate("t1")
    assert source.token() == "t2"
    source.invalidate()
    assert source.token() == "t3"


def test_a_failure_is_kept_for_a_cooldown_then_the_endpoint_is_asked_again() -> None:
    clock, fetcher = Clock(), Fetcher()
    fetcher.errors = [OAuth2Error("test", "invalid_grant"), OAuth2Error("test", "invalid_grant")]
    source = TokenSource(fetcher, clock=clock)
    with pytest.raises(OAuth2Error, match="invalid_grant"):
        source.token()
    with pytest.raises(OAuth2Error):  # within the cooldown: not asked again
        source.token()
    assert fetcher.calls == 1
    assert source.status.ok is False and source.status.errors == {"invalid_grant": 1}
    clock.now += 1
    with pytest.raises(OAuth2Error):
        source.token()
    assert fetcher.calls == 2
    clock.now += 1.5  # the second failure waits 2 s
    assert fetcher.calls == 2
    clock.now += 0.5
    assert source.token() == "t3"
    status = source.status
    assert status.ok is True and status.error is None and status.errors == {"invalid_grant": 2}


def test_threads_share_one_fetch() -> None:
    fetcher = Fetcher()
    started = threading.Barrier(8)
    source = TokenSource(fetcher)
    got: list[str] = []

    def take() -> None:
        started.wait()
        got.append(source.token())

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["t1"] * 8 and fetcher.calls == 1


# -- the providers, against the real token server --------------------------------------------------


def settings(oauth: OAuthServer, ca: Path, **values: Any) -> OAuth2Settings:
    values.setdefault("ca_file", str(ca))
    return OAuth2Settings(**values)


def test_generic_client_credentials(oauth: OAuthServer, test_ca) -> None:
    oauth.add_client("bot-app", "app-secret", user="bot")
    source = token_source(settings(oauth, test_ca.cert, token_url=oauth.token_url, client_id="bot-app",
                                   client_secret="app-secret", scope="mail"), user="bot")
    token = source.token()
    assert oauth.valid(token, "bot") and oauth.grants == {"client_credentials": 1}
    assert oauth.last_form == {"grant_type": "client_credentials", "client_id": "bot-app", "scope": "mail"}
    assert source.token() == token  # cached


def test_generic_refresh_token(oauth: OAuthServer, test_ca) -> None:
    oauth.add_client("bot-app", "app-secret")
    rt = oauth.issue_refresh_token("bot-app", "bot")
    source = token_source(settings(oauth, test_ca.cert, token_url=oauth.token_url, client_id="bot-app",
                                   client_secret="app-secret", refresh_token=rt), user="bot")
    assert oauth.valid(source.token(), "bot") and oauth.grants == {"refresh_token": 1}


def test_untrusted_token_endpoint_is_refused(oauth: OAuthServer) -> None:
    oauth.add_client("bot-app", "app-secret", user="bot")
    source = token_source(OAuth2Settings(token_url=oauth.token_url, client_id="bot-app", client_secret="app-secret"),
                          user="bot")  # no ca_file: the test CA is not trusted
    with pytest.raises(OAuth2Error, match="unreachable") as err:
        source.token()
    assert "app-secret" not in str(err.value) and oauth.grants == {}


@pytest.mark.parametrize(("provider", "code", "provider_code"), [
    ("generic", "invalid_client", ""), ("microsoft", "invalid_client", "AADSTS7000215")])
def test_wrong_secret_names_the_providers_code_and_never_the_secret(oauth: OAuthServer, test_ca, provider: str,
                                                                    code: str, provider_code: str) -> None:
    oauth.add_client("bot-app", "app-secret", user="bot")
    url = oauth.token_url if provider == "generic" else oauth.microsoft_token_url("tenant-1")
    source = token_source(settings(oauth, test_ca.cert, provider=provider, tenant="tenant-1", token_url=url,
                                   client_id="bot-app", client_secret="wrong-secret-123"), user="bot")
    with pytest.raises(OAuth2Error) as err:
        source.token()
    assert err.value.code == code and err.value.provider_code == provider_code
    assert code in str(err.value) and provider_code in str(err.value)
    assert "wrong-secret-123" not in str(err.value)
    assert source.status.errors == {code: 1} and source.status.ok is False


@pytest.mark.parametrize("provider", ["generic", "microsoft", "google"])
def test_revoked_refresh_token_is_invalid_grant(oauth: OAuthServer, test_ca, provider: str) -> None:
    oauth.add_client("bot-app", "app-secret")
    rt = oauth.issue_refresh_token("bot-app", "bot")
    url = oauth.microsoft_token_url("tenant-1") if provider == "microsoft" else oauth.token_url
    source = token_source(settings(oauth, test_ca.cert, provider=provider, tenant="tenant-1", token_url=url,
                                   client_id="bot-app", client_secret="app-secret", refresh_token=rt), user="bot")
    assert oauth.valid(source.token(), "bot")
    oauth.revoke(rt)
    source.invalidate()
    with pytest.raises(OAuth2Error) as err:
        source.token()
    assert err.value.code == "invalid_grant"
    if provider == "microsoft":
        assert err.value.provider_code == "AADSTS700082"
    assert rt not in str(err.value) and "app-secret" not in str(err.value)


def test_microsoft_client_credentials_through_msal(oauth: OAuthServer, test_ca) -> None:
    oauth.add_client("11111111-2222", "app-secret", user="bot")
    source = token_source(settings(oauth, test_ca.cert, provider="microsoft", tenant="contoso",
                                   token_url=oauth.microsoft_token_url("contoso"), client_id="11111111-2222",
                                   client_secret="app-secret"), user="bot")
    first = source.token()
    assert oauth.valid(first, "bot") and oauth.grants == {"client_credentials": 1}
    assert oauth.last_form["scope"].split()[0] == "https://outlook.office365.com/.default"
    source.invalidate(first)  # refused by the server: MSAL's own cache must not hand it back
    second = source.token()
    assert second != first and oauth.grants == {"client_credentials": 2}


def test_google_service_account_acts_as_the_mailbox(oauth: OAuthServer, test_ca, tmp_path: Path) -> None:
    key = oauth.service_account_key(tmp_path, subjects=frozenset({"bot"}))
    source = token_source(settings(oauth, test_ca.cert, provider="google", service_account_file=str(key)),
                          user="bot")
    token = source.token()
    assert oauth.valid(token, "bot") and oauth.grants == {JWT_BEARER: 1}
    other = token_source(settings(oauth, test_ca.cert, provider="google", service_account_file=str(key),
                                  subject="alice"), user="bot")  # no domain-wide delegation for alice
    with pytest.raises(OAuth2Error) as err:
        other.token()
    assert err.value.code == "unauthorized_client"
    assert "PRIVATE KEY" not in str(err.value)


def test_google_refresh_token(oauth: OAuthServer, test_ca) -> None:
    oauth.add_client("123.apps.googleusercontent.com", "g-secret")
    rt = oauth.issue_refresh_token("123.apps.googleusercontent.com", "bot")
    source = token_source(settings(oauth, test_ca.cert, provider="google", token_url=oauth.token_url,
                                   client_id="123.apps.googleusercontent.com", client_secret="g-secret",
                                   refresh_token=rt), user="bot")
    assert oauth.valid(source.token(), "bot") and oauth.grants == {"refresh_token": 1}
