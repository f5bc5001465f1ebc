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
