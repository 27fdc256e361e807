"""The weekly DSMB digest mails the DSMB report, its charts as inline images referenced by cid: and attached
(checked on the MIME a real SMTP server received); the monitors' daily digest stays short."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from safety_monitor.adapters.mail import SmtpMailer, SmtpSettings
from safety_monitor.adapters.statistics import ScipyStatistics
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.ruleset.routing_loader import parse_routing
from safety_monitor.service.delivery import deliver_due
from safety_monitor.service.digest_schedule import send_scheduled_digests
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.report import build_report
from tests.conftest import ROOT, SmtpServer
from tests.factories import ae, enrolled_and_dosed, inbound, rs, subject_event, subject_id
from tests.harness import run

pytestmark = pytest.mark.smtp

ROUTING = """\
receivers:
  monitors: {email: [mm@example.org]}
  dsmb: {email: [dsmb@example.org]}
route:
  receiver: monitors
digests:
  - {name: mm-daily, kind: daily, receivers: [monitors], schedule: "0 8 * * *", time_zone: Asia/Shanghai, template: digest}
  - {name: dsmb-weekly, kind: weekly, receivers: [dsmb], schedule: "0 9 * * mon", time_zone: Asia/Shanghai, template: dsmb_report}
"""
MONDAY_0930_SHANGHAI = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)


def _routing() -> Any:
    errors: list[Any] = []
    routing = parse_routing("routing.yaml", ROUTING, errors, ROOT / "templates")
    assert not errors and routing is not None, errors
    return routing


async def _trial(store: UnitOfWorkFactory, ruleset: Ruleset) -> None:
    config = PipelineConfig(ruleset=ruleset, grader=BloodPressureGrader(), alert_recipients=("mm@example.org",))
    messages: list[dict[str, Any]] = []
    for n in (1, 2, 3):
        s = subject_id(n)
        messages += [*enrolled_and_dosed(s), subject_event(s, "RANDOMIZED", "2026-02-28", drug=None)]
        messages.append(rs(s, "PR" if n == 1 else "SD", "2026-04-13"))
    messages.append(ae(subject_id(2), "AE-1", "Haemoptysis", 3, onset="2026-04-29"))
    messages.append(subject_event(subject_id(3), "DIED", "2026-05-01", drug=None) | {"REASON": "PROGRESSIVE DISEASE"})
    await run(store, config, MONDAY_0930_SHANGHAI, inbound(*messages))


def _parts(message: EmailMessage) -> list[EmailMessage]:
    return [p for p in message.walk() if isinstance(p, EmailMessage)]


async def test_weekly_dsmb_digest_carries_the_report_with_cid_images_and_the_daily_stays_short(
    store: UnitOfWorkFactory, catalogue: Ruleset, smtp_server: SmtpServer
) -> None:
    await _trial(store, catalogue)
    routing = _routing()

    async def report(cut: date, since: date | None) -> dict[str, Any]:
        assert since is None  # the schedule's first run
        return await build_report(store, catalogue, ScipyStatistics(), as_of=cut, since=since)

    written = await send_scheduled_digests(store, routing, MONDAY_0930_SHANGHAI, report=report)
    assert written == ["mm-daily", "dsmb-weekly"]
    mailer = SmtpMailer(SmtpSettings(smtp_server.host, smtp_server.port))
    renderer = TemplateRenderer(ROOT / "templates")
    await deliver_due(
        store,
        mailer,
        renderer,
        sender="sm@example.org",
        mail_domain="example.org",
        now=MONDAY_0930_SHANGHAI,
        routing=routing,
        ignore_waits=True,
    )
    by_to = {
        str(m["To"]): m
        for m in smtp_server.inbox.messages
        if "digest" in str(m["Subject"]).lower() or "DSMB" in str(m["Subject"])
    }
    weekly, daily = by_to["dsmb@example.org"], by_to["mm@example.org"]

    assert str(weekly["Subject"]).strip().startswith("DSMB safety report, data cut 2026-05-04")
    html = weekly.get_body(("html",))
    assert html is not None and html.get_content_type() == "text/html"
    related = [p for p in _parts(weekly) if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    images = [p for p in _parts(weekly) if p.get_content_maintype() == "image"]
    attached = {str(p["Content-ID"]).strip("<>") for p in images}
    referenced = set(re.findall(r'src="cid:([^"]+)"', html.get_content()))
    assert referenced == attached and len(attached) == 4  # OS, PFS, the cohort boundary, EAIR
    for image in images:
        assert image.get_content_type() == "image/png" and image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
        assert str(image["Content-Disposition"]).startswith("inline")
    content = html.get_content()
    assert "Progression-free survival" in content and "Methods" in content and "PROGRESSIVE DISEASE" in content
    assert "<svg" not in content  # the mail shows the charts as images, which mail clients display

    assert not [p for p in _parts(daily) if p.get_content_maintype() == "image"]
    daily_html = daily.get_body(("html",)).get_content()
    assert "Kaplan" not in daily_html and "Progression-free" not in daily_html
    assert len(daily_html) < len(content) / 3  # short: incidence and alert changes only


def test_the_shipped_routing_mails_the_dsmb_report_weekly_and_a_short_digest_daily() -> None:
    shipped = yaml.safe_load((ROOT / "rules" / "routing.yaml").read_text(encoding="utf-8"))
    templates = {d["name"]: d["template"] for d in shipped["digests"]}
    assert templates == {"medical-monitors-daily": "digest", "dsmb-weekly": "dsmb_report"}


async def test_a_dsmb_report_schedule_without_a_report_source_refuses_to_write(store: UnitOfWorkFactory) -> None:
    with pytest.raises(RuntimeError, match="no report source"):
        await send_scheduled_digests(store, _routing(), MONDAY_0930_SHANGHAI)


def test_templates_exist_for_the_report(tmp_path: Path) -> None:
    for name in ("dsmb_report_subject.txt.j2", "dsmb_report.txt.j2", "dsmb_report.html.j2", "report.html.j2"):
        assert (ROOT / "templates" / name).is_file()


async def test_the_next_weekly_report_counts_new_events_since_the_previous_one(store: UnitOfWorkFactory) -> None:
    asked: list[tuple[date, date | None]] = []

    async def report(cut: date, since: date | None) -> dict[str, Any]:
        asked.append((cut, since))
        return {"data_cut": cut.isoformat()}

    routing = _routing()
    await send_scheduled_digests(store, routing, MONDAY_0930_SHANGHAI, report=report)
    await send_scheduled_digests(store, routing, MONDAY_0930_SHANGHAI + timedelta(days=7), report=report)
    assert asked == [(date(2026, 5, 4), None), (date(2026, 5, 11), date(2026, 5, 4))]
