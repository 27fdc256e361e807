"""Owns who may do what: the roles of the review workspace, the actions they take, and the one policy table."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    MEDICAL_MONITOR = "medical-monitor"
    DSMB_MEMBER = "dsmb-member"
    ADMIN = "admin"
    SITE = "site"  # a trial site's system (EDC, lab, home monitoring): publishes its own site's messages, nothing else


class Action(StrEnum):
    """What a user asks to do. The review actions carry the values of `review.ActionKind` (the same names)."""

    READ = "read"  # every page and read endpoint: alerts, subjects, incidence, eDISH, SAE clocks
    ACKNOWLEDGE = "acknowledge"
    ADJUDICATE = "adjudicate"
    CAUSALITY = "causality"
    EXPECTEDNESS = "expectedness"
    COMMENT = "comment"
    REPORT_SUBMITTED = "report-submitted"
    MANAGE_USERS = "manage-users"  # add, disable, set passwords, issue and revoke tokens
    PUBLISH_MESSAGES = "publish-messages"  # send wire messages (a site)


_REVIEW = frozenset(
    {
        Action.ACKNOWLEDGE,
        Action.ADJUDICATE,
        Action.CAUSALITY,
        Action.EXPECTEDNESS,
        Action.COMMENT,
        Action.REPORT_SUBMITTED,
    }
)

# The policy. Causality, expectedness and adjudication are the sponsor's medical judgement (ICH E2A: the sponsor
# assesses expectedness; causality is kept per drug because the overlapping toxicities of anlotinib and the
# checkpoint inhibitor need it): the medical monitor records every review action. The DSMB is independent of the
# sponsor's case handling (ICH E9 section 4.5; EMEA/CHMP/EWP/5872/03, the guideline on data monitoring
# committees): its members read everything and act on nothing, so nothing in the sponsor's trail carries a DSMB
# member's name. An admin manages accounts and records the administrative fact that an expedited report was
# submitted (with a comment), never a medical assessment. A site account is a trial site's system: it sends its own
# site's data and reads nothing (no page, no alert, no other site's subject).
POLICY: Mapping[Role, frozenset[Action]] = {
    Role.MEDICAL_MONITOR: frozenset({Action.READ, *_REVIEW}),
    Role.DSMB_MEMBER: frozenset({Action.READ}),
    Role.ADMIN: frozenset({Action.READ, Action.MANAGE_USERS, Action.COMMENT, Action.REPORT_SUBMITTED}),
    Role.SITE: frozenset({Action.PUBLISH_MESSAGES}),
}


def may(role: Role, action: Action) -> bool:
    return action in POLICY.get(role, frozenset())


def roles_allowed(action: Action) -> list[Role]:
    return [role for role in Role if may(role, action)]
