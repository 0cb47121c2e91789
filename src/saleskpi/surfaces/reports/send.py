"""Sending digests: each computed in its recipient's own scope.

A digest is computed only for people who have a channel (a contact): nobody else
could receive it. Who is meant by a schedule's ``to`` is
``service.report_schedules.recipients``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.notices import Notice
from saleskpi.service.contacts import chosen_channels, contact
from saleskpi.service.core import SalesKpiService
from saleskpi.service.delivery import NO_CHANNEL, DeliveryOutcome, deliver
from saleskpi.service.principal import Principal
from saleskpi.service.report_schedules import recipients
from saleskpi.surfaces.reports.digest import digest_notice
from saleskpi.views.digests import DigestParams

log = logging.getLogger("saleskpi.reports")


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



def test_notice(person: Principal) -> Notice:
    """A short message that proves a channel works, in ``person``'s language."""
    import contextvars
    import datetime as dt

    from saleskpi.domain.i18n import _, set_language

    def words() -> Notice:
        set_language(person.lang)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return Notice(recipient=person.username, kind="test", key=f"test:{stamp}",
                      subject=_("saleskpi: a test message"),
                      body=_("If you read this, saleskpi's notices reach you here."), link="/")

    return contextvars.copy_context().run(words)


__all__ = ["Sent", "recipients", "send_digests", "test_notice"]
