"""Owns rendering mail and digests from the Jinja2 templates in templates/ (HTML autoescaped, text not)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from safety_monitor.service.ports import InlineImage

ALERT_TEMPLATES = ("alert_subject.txt.j2", "alert.txt.j2", "alert.html.j2")
DIGEST_TEMPLATES = ("digest_subject.txt.j2", "digest.txt.j2", "digest.html.j2")
GROUP_TEMPLATES = ("alert_group_subject.txt.j2", "alert_group.txt.j2", "alert_group.html.j2")
REPORT_TEMPLATE = "report.html.j2"  # the DSMB report as a file; report_body.html.j2 is shared with the mail


class TemplateRenderer:
    """Renders with StrictUndefined, so a template that names a missing field fails loudly, not blank."""

    def __init__(self, directory: Path, *, workspace_url: str = "http://127.0.0.1:8000") -> None:
        loader = FileSystemLoader(str(directory))
        # AE verbatim text comes from sites and is untrusted: every .html template is autoescaped.
        self._html = Environment(
            loader=loader, undefined=StrictUndefined, autoescape=select_autoescape(["html", "html.j2"])
        )
        self._text = Environment(loader=loader, undefined=StrictUndefined, autoescape=False)  # noqa: S701
        self._text.filters["oneline"] = _oneline
        self._html.filters["oneline"] = _oneline
        # Alert emails link to the alert's page in the review workspace (PUBLIC_URL).
        for environment in (self._text, self._html):
            environment.globals["workspace_url"] = workspace_url.rstrip("/")
        for name in (*ALERT_TEMPLATES, *DIGEST_TEMPLATES, *GROUP_TEMPLATES, REPORT_TEMPLATE):
            (self._html if name.endswith(".html.j2") else self._text).get_template(name)  # fail at start-up

    def _render(self, names: tuple[str, str, str], context: Mapping[str, object]) -> tuple[str, str, str]:
        subject_name, text_name, html_name = names
        subject = _oneline(self._text.get_template(subject_name).render(context))
        text = self._text.get_template(text_name).render(context)
        html = self._html.get_template(html_name).render(context)
        return subject, text, html

    def alert_mail(self, context: Mapping[str, object]) -> tuple[str, str, str]:
        return self._render(ALERT_TEMPLATES, context)

    def digest(self, context: Mapping[str, object]) -> tuple[str, str, str]:
        return self._render(DIGEST_TEMPLATES, context)

    def render(self, name: str, context: Mapping[str, object]) -> tuple[str, str, str]:
        """The template set `name`: `name_subject.txt.j2`, `name.txt.j2`, `name.html.j2` (a grouped alert
        email is "alert_group"; a digest schedule names its own set, checked when routing.yaml loads)."""
        return self._render((f"{name}_subject.txt.j2", f"{name}.txt.j2", f"{name}.html.j2"), context)

    def render_with_images(
        self, name: str, context: Mapping[str, object]
    ) -> tuple[str, str, str, tuple[InlineImage, ...]]:
        report = context.get("report")
        if not isinstance(report, Mapping):
            return (*self.render(name, context), ())
        from safety_monitor.adapters.report_charts import PNG, report_charts  # matplotlib: only for a report

        charts = report_charts(report, PNG)
        stem = f"dsmb-report-{report['data_cut']}"
        images = tuple(
            InlineImage(f"{chart.name}.{stem}@safety-monitor", "image/png", chart.png, f"{chart.name}.png")
            for chart in charts
        )
        references = {
            chart.name: {"caption": chart.caption, "src": f"cid:{image.content_id}"}
            for chart, image in zip(charts, images, strict=True)
        }
        return (*self.render(name, {**context, "charts": references}), images)

    def report_html(self, report: Mapping[str, object], generated_at: str) -> str:
        """The DSMB report as one self-contained HTML file: inline styles, charts as inline SVG, nothing fetched."""
        from safety_monitor.adapters.report_charts import report_charts  # matplotlib: loaded only for a report

        charts = {c.name: {"caption": c.caption, "svg": Markup(c.svg)} for c in report_charts(report)}  # noqa: S704
        context = {"r": report, "charts": charts, "generated_at": generated_at}
        return self._html.get_template(REPORT_TEMPLATE).render(context)


def _oneline(value: object) -> str:
    """Collapse whitespace: site text must not inject header lines into a mail subject."""
    return " ".join(str(value).split())
