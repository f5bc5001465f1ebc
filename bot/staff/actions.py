"""Staff actions on cases, one function each, for the command line and the console alike: load the
case, let the lifecycle decide, persist the new state with its history lines and who acted."""

from __future__ import annotations

import getpass
from datetime import datetime

from sqlalchemy import Engine

from bot.adapters.store.cases import case_by_ref, record_of, save_state, state_of
from bot.adapters.store.engine import transaction
from bot.core.lifecycle import CaseEvent, CasePolicy, KindsSet, transition
from bot.core.model import CaseRecord, Kind


def os_user() -> str:
    """Who acts on the command line when `--as` is not given."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (e.g. a container without a passwd entry)
        return "staff"


def apply(engine: Engine, ref: str, event: CaseEvent, *, now: datetime, policy: CasePolicy,
          actor: str) -> tuple[CaseRecord, str]:
    """The event applied to the case; returns the case after it and the history line(s) written.
    UsageError for an unknown reference, TransitionError when the event is not allowed."""
    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        new, notes = transition(state_of(case), event, policy)
        save_state(session, case, new, notes, now, actor)
        return record_of(case), "; ".join(n.detail for n in notes)


def set_kinds(engine: Engine, ref: str, kinds: tuple[Kind, ...], *, now: datetime, policy: CasePolicy,
              actor: str, keep_text: bool) -> tuple[CaseRecord, str]:
    """Staff sort a case: the lifecycle's KindsSet, plus the correction kept as a labelled example for
    the sorter (`sorter train --with-corrections`), with the inquiry's own words only if `keep_text`."""
    from bot.adapters.store.corrections import record_correction

    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        before = state_of(case)
        new, notes = transition(before, KindsSet(kinds), policy)
        save_state(session, case, new, notes, now, actor)
        record_correction(session, case, before=before.kinds, after=new.kinds, actor=actor, now=now,
                          keep_text=keep_text)
        return record_of(case), "; ".join(n.detail for n in notes)
