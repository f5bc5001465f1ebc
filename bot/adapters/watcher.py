"""A second IMAP connection that stays in IDLE and says when new mail may have arrived.

The connection that takes mail in leaves IDLE to search, fetch and flag; a mail that lands then is
announced in an answer to one of its commands or, with Dovecot, sometimes not at all (seen as a
mail answered only with the next one). The watcher never leaves IDLE but to renew it, so every
mail is announced to it; it sets `wake`, and the pass runs on the other connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.adapters.imap import NETWORK_ERRORS, Mailbox
from bot.adapters.oauth2 import TokenSource
from bot.core.errors import MailboxError
from bot.settings import MailboxSettings

log = logging.getLogger(__name__)
TROUBLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, MailboxError)


class Watcher:
    def __init__(self, settings: MailboxSettings, wake: threading.Event, *,
                 keep_going: Callable[[], bool], tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.tokens = tokens  # mailbox.auth = "oauth2": the bot's one token source
        self.wake = wake
        self._keep_going = keep_going
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imap-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.timeout_seconds + 5)

    def _running(self) -> bool:
        return not self._stopped.is_set() and self._keep_going()

    def _run(self) -> None:
        delay = 1.0
        while self._running():
            box = Mailbox(self.settings, tokens=self.tokens)
            try:
                box.connect()
                box.client.select_folder(self.settings.folder, readonly=True)  # watching changes no flag
                self.wake.set()  # (re)connected: a pass catches up on anything announced meanwhile
                delay = 1.0
                while self._running():
                    # Returns on news, or when IDLE is renewed: either way the pass looks again, which
                    # bounds the wait for a notification the server never sent.
                    box.wait_for_mail(self.settings.idle_renew_seconds, lambda: not self._running())
                    self.wake.set()
            except TROUBLE as exc:
                box.after_trouble()  # a BYE about the token: the reconnect signs in with a new one
                log.warning("watcher connection trouble (%s); reconnecting in %.0f s", type(exc).__name__, delay)
                self.wake.set()  # the pass connection may still work: let it look
                self._stopped.wait(delay)
                delay = min(delay * 2, self.settings.reconnect_max_seconds)
            except Exception as exc:  # anything else must not end the thread: passes would wait for the renewal
                log.error("watcher failed (%s); reconnecting in %.0f s", type(exc).__name__, delay)
                self.wake.set()
                self._stopped.wait(delay)
                delay = min(delay * 2, self.settings.reconnect_max_seconds)
            finally:
                box.close()
