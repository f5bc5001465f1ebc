"""The project's exceptions. The command line maps them to exit codes."""


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """The configuration is missing, unreadable or invalid; the message names the key."""


class SchemaError(ConfigError):
    """The database's schema is not the one this release works with; the message names the command that fixes it."""


class UsageError(BotError):
    """A command was used wrongly (unknown case reference, bad date...)."""


class TransitionError(UsageError):
    """A case cannot move from its status by the requested event."""


class TemplateProblem(BotError):
    """A reply template is missing or does not render."""


class MailboxError(BotError):
    """The IMAP server refused something it should not have (not a network blip)."""


class SendError(BotError):
    """Sending a message failed. `permanent` tells whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class OAuth2Error(BotError):
    """No access token could be had from the OAuth 2.0 token endpoint.

    `code` is the OAuth error (`invalid_grant`, `invalid_client`...) or one of ours (`unreachable`,
    `bad_response`); `provider_code` the provider's own (e.g. Microsoft's `AADSTS700082`). The
    message never holds a token or a secret.
    """

    def __init__(self, provider: str, code: str, detail: str = "", *, provider_code: str = "") -> None:
        self.provider = provider
        self.code = code
        self.provider_code = provider_code
        self.detail = detail
        extra = f" ({provider_code})" if provider_code and provider_code != code else ""
        super().__init__(f"oauth2: no access token from {provider}: {code}{extra}" + (f": {detail}" if detail else ""))
