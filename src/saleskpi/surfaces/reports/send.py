"""Who gets a digest, and sending it: each computed in its recipient's own scope.

Recipients are usernames or roles (``head``, ``team_lead``, ``rep``, ``admin``; ``all``
for everybody); disabled users get nothing. A digest is computed only for people
who have a channel (a contact): nobody else could receive it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from saleskpi.domain.errors import NotFound, SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.service.auth import ROLES, disabled_ids, list_users
from saleskpi.service.contacts import chosen_channels, contact
from saleskpi.service.core import SalesKpiService
from saleskpi.service.delivery import NO_CHANNEL, DeliveryOutcome, deliver
from saleskpi.service.principal import Principal
from saleskpi.surfaces.reports.digest import digest_notice
from saleskpi.views.digests import DigestParams

log = logging.getLogger("saleskpi.reports")
EVERYBODY = "all"


def recipients(service: SalesKpiService, names: Sequence[str]) -> list[Principal]:
    """The enabled users named or having one of the roles named, each once, by username."""
    people = list_users(service.settings)
    disabled = disabled_ids(service.settings)
    chosen: dict[str, Principal] = {}
    for name in names:
        key = name.strip()
        matched = [p for p in people if key in (EVERYBODY, p.role, p.username)]
        if not matched and key not in ROLES:
            raise NotFound(_("no user or role {name!r}; use a username or one of {roles}",
                             name=key, roles=", ".join((*ROLES, EVERYBODY))),
                           code="unknown_recipient")
        chosen |= {p.username: p for p in matched if p.user_id not in disabled}
    return [chosen[k] for k in sorted(chosen)]


@dataclass(frozen=True)
class Sent:
    recipient: str
    outcomes: list[DeliveryOutcome]
    error: str | None = None  # the digest could not be computed


def send_digests(service: SalesKpiService, people: Sequence[Principal], params: DigestParams,
                 key: str) -> list[Sent]:
    """Each person's digest under ``key`` (the same key: sent once per person and channel)."""
    done: list[Sent] = []
    for person in people:
        if not chosen_channels(contact(service.settings, person.user_id)):
            done.append(Sent(person.username, [DeliveryOutcome(key, person.username, None,
                                                               NO_CHANNEL)]))
            continue
        try:
            notice = digest_notice(service, person, params, key)
        except SalesKpiError as exc:  # e.g. the store busy: the others still get theirs
            log.error("digest %s for %s not computed: %s", key, person.username, exc)
            done.append(Sent(person.username, [], exc.message))
            continue
        done.append(Sent(person.username, deliver(service.settings, [notice])))
    return done
