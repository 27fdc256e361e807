"""Owns the notification decision at flush time: send, hold (silenced or inhibited) or drop, and the email's id."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from safety_monitor.domain.routing import NO_INHIBITIONS, Inhibitions, Labels, Silence, silenced_by

REPEAT = "repeat"  # the kind of a reminder for an alert still open after repeat_interval
BASIS_REMOVED = "basis_removed"


class Verdict(StrEnum):
    SEND = "send"
    HOLD = "hold"  # stays pending: looked at again at every flush, sent once nothing holds it any more
    DROP = "drop"  # closed unsent, with the reason kept


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Pending:
    """What the decision needs to know about one pending notification and its alert."""

    kind: str
    alert_key: str
    labels: Labels
    alert_open: bool  # the alert's status now (a later correction may have removed its basis)
    receiver_notified: bool  # the receiver has had an email about this alert before
    was_held: bool  # a silence or inhibition held it back at an earlier flush


def decide(
    item: Pending,
    now: datetime,
    silences: Iterable[Silence] = (),
    inhibitions: Inhibitions = NO_INHIBITIONS,
) -> Decision:
    """Send, hold or drop one notification at `now`.

    `inhibitions`: the inhibit rules with the open alerts, indexed once per delivery pass (`Inhibitions.index`).

    - Silenced or inhibited now: held (recorded with the reason), not sent.
    - No longer held and the alert still open: sent; the receiver hears about it late rather than never.
    - Held while the alert's basis was removed, and the receiver never heard of the alert: dropped (nothing to
      take back); if the receiver had heard of it, the update is sent.
    - A reminder for an alert that is no longer open: dropped.
    - Otherwise sent, including a raise and its correction that fall in the same group_wait.
    """
    silence = silenced_by(silences, item.labels, now)
    if silence is not None:
        until = silence.ends_at.isoformat(timespec="minutes")
        return Decision(Verdict.HOLD, f"silenced by {silence.id} ({silence.author}: {silence.reason}) until {until}")
    inhibition = inhibitions.inhibiting(item.labels, item.alert_key)
    if inhibition is not None:
        rule, source = inhibition
        return Decision(Verdict.HOLD, f"inhibited by {rule.name} while alert {source} is open")
    if item.kind == REPEAT and not item.alert_open:
        return Decision(Verdict.DROP, "reminder for an alert that is no longer open")
    if item.was_held and not item.alert_open and not item.receiver_notified:
        return Decision(Verdict.DROP, "held until the alert's basis was removed; the receiver never heard of it")
    return Decision(Verdict.SEND)


def notification_id(change_notice_id: str, receiver: str) -> str:
    """Stable per alert change and receiver: a redelivered batch writes the same row, not a second one."""
    return hashlib.sha256(f"{change_notice_id}|{receiver}".encode()).hexdigest()[:32]


def repeat_id(receiver: str, alert_key: str, last_notified_at: datetime) -> str:
    """Stable per reminder: a re-run of the repeat job finds the reminder it already wrote."""
    basis = f"repeat|{receiver}|{alert_key}|{last_notified_at.isoformat()}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def mail_id(notification_ids: Iterable[str]) -> str:
    """One email's id (its Message-ID) from the set of notifications it carries: a retry re-sends the same id."""
    return hashlib.sha256("|".join(sorted(notification_ids)).encode()).hexdigest()[:32]
