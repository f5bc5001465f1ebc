"""The evidence pack of a case (SPEC section 6): a zip a regulator or the customer can be given.

    case.json          the case, every message's record and every event with its actor
    messages/NN-in.eml  the customer's mail, fetched from the mailbox by UID, byte for byte
    messages/NN-out.eml what the bot sent, exactly as sent (the PDF form inside)
    MANIFEST.txt        "<sha256>  <path>" per file; for a message the bot wrote, followed by the
                        template's name and version ("  ack_rights.ja@3f2a9c1")

NN counts the messages in time order. A customer mail the mailbox no longer holds is listed in
case.json and MANIFEST.txt as missing rather than silently left out.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bot.adapters.originals import Wanted
from bot.adapters.store.cases import load_case
from bot.adapters.store.console import StoredMail, case_mail
from bot.staff.views import case_detail_json

Fetch = Callable[[Sequence[Wanted]], dict[str, bytes]]
# zip entries get this fixed time, so the same case gives the same bytes (the export time is in case.json)
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Pack:
    data: bytes
    files: int
    missing: tuple[str, ...]  # messages/NN-in.eml paths the mailbox no longer holds


def message_files(mails: Sequence[StoredMail], originals: dict[str, bytes]) -> list[tuple[str, bytes | None, str]]:
    """(path, bytes or None when missing, template label) of each message, in time order."""
    width = max(2, len(str(len(mails))))
    out = []
    for n, m in enumerate(mails, 1):
        path = f"messages/{n:0{width}d}-{'in' if m.direction == 'in' else 'out'}.eml"
        raw = originals.get(m.message_id) if m.direction == "in" else m.raw
        out.append((path, raw, m.template if m.direction == "out" else ""))
    return out


def build_pack(engine: Engine, ref: str, fetch: Fetch, *, now: datetime, zone: ZoneInfo, exported_by: str) -> Pack:
    """The pack as zip bytes. UsageError for an unknown reference; MailboxError when the mailbox
    cannot be reached (nothing is built then: a pack without the customer's mail would mislead)."""
    case, messages, events = load_case(engine, ref)
    mails = case_mail(engine, case.ref)
    wanted = [Wanted(m.message_id, m.mailbox_uid) for m in mails if m.direction == "in"]
    originals = fetch(wanted) if wanted else {}
    files = message_files(mails, originals)
    detail = case_detail_json(case, messages, events, now, zone)
    detail["exported_at"] = now.astimezone(zone).isoformat()
    detail["exported_by"] = exported_by
    by_id = {m.message_id: path for m, (path, _, _) in zip(mails, files, strict=True)}
    for item in detail["messages"]:
        item["file"] = by_id.get(item["message_id"])
    missing = tuple(path for path, raw, _ in files if raw is None)
    detail["missing_files"] = list(missing)
    entries: list[tuple[str, bytes, str]] = [
        ("case.json", (json.dumps(detail, ensure_ascii=False, indent=2) + "\n").encode(), "")]
    entries += [(path, raw, label) for path, raw, label in files if raw is not None]
    manifest = []
    for path, data, label in entries:
        line = f"{hashlib.sha256(data).hexdigest()}  {path}"
        manifest.append(line + (f"  {label}" if label else ""))
    manifest += [f"{'-' * 64}  {path}  missing: no longer in the mailbox" for path in missing]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in [(p, d) for p, d, _ in entries] + [("MANIFEST.txt", ("\n".join(manifest) + "\n").encode())]:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return Pack(buffer.getvalue(), len(entries) + 1, missing)


def verify_manifest(data: bytes) -> list[str]:
    """What is wrong with a pack's MANIFEST.txt against its files ([] when every hash checks out and
    every file is listed): the check a recipient can make with `sha256sum`."""
    problems = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        listed = set()
        for line in zf.read("MANIFEST.txt").decode().splitlines():
            digest, _, rest = line.partition("  ")
            path = rest.split("  ", 1)[0]
            if rest.endswith("missing: no longer in the mailbox"):
                continue
            listed.add(path)
            if path not in names:
                problems.append(f"{path}: listed, not in the zip")
            elif hashlib.sha256(zf.read(path)).hexdigest() != digest:
                problems.append(f"{path}: SHA-256 differs")
        problems += [f"{n}: in the zip, not listed" for n in sorted(names - listed - {"MANIFEST.txt"})]
    return problems
