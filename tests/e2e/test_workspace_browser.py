"""The review workspace in a real browser (Debian's chromium through chromium-driver, driven by Selenium): log in,
work the queue, acknowledge an alert with a reason, see it in the history and in `audit verify`'s count. These
tests fail, never skip, when the browser is missing (`make services` installs it: scripts/ensure-chromium.sh)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from safety_monitor.domain.access import Role
from tests.accounts import PASSWORD, REVIEWERS
from tests.cli_harness import invoke
from tests.conftest import ROOT
from tests.workspace import XSS, Served, Workspace, build_workspace, serve

pytestmark = pytest.mark.e2e

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path)


@pytest.fixture
def served(workspace: Workspace) -> Iterator[Served]:
    yield from serve(workspace.web())


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, 15)


def log_in(driver: WebDriver, served: Served, role: Role) -> None:
    driver.get(f"{served.url}/alerts")
    wait(driver).until(expected_conditions.url_contains("/login"))
    driver.find_element(By.ID, "username").send_keys(REVIEWERS[role])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "queue-table")))


def audit_entries(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DATABASE_URL", workspace.settings.database_url)
    monkeypatch.setenv("SAFETY_MONITOR_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("SAFETY_MONITOR_TEMPLATES_DIR", str(ROOT / "templates"))
    found = re.search(r"audit log intact: (\d+) entries", invoke("audit", "verify").output)
    assert found
    return int(found.group(1))


def csp_violations(driver: WebDriver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_a_monitor_logs_in_works_the_queue_and_acknowledges_an_alert(
    workspace: Workspace, served: Served, browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = audit_entries(workspace, monkeypatch)
    log_in(browser, served, Role.MEDICAL_MONITOR)
    assert browser.current_url == f"{served.url}/alerts"
    assert "dr.li (medical-monitor)" in browser.find_element(By.CSS_SELECTOR, ".who").text

    # Filtering by severity goes through HTMX (the table is swapped in place and the URL follows).
    rows = len(browser.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr"))
    Select(browser.find_element(By.NAME, "severity")).select_by_value("high")
    wait(browser).until(lambda d: "severity=high" in d.current_url)
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")) < rows)
    assert all(
        "sev-high" in r.get_attribute("class") for r in browser.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")
    )
    Select(browser.find_element(By.NAME, "severity")).select_by_value("critical")
    wait(browser).until(lambda d: "severity=critical" in d.current_url)
    link = wait(browser).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, f'a[href="/alerts/{workspace.alert}"]'))
    )
    link.click()

    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "form-acknowledge")))
    assert browser.find_element(By.ID, "review-status").text == "new"
    assert XSS in browser.find_element(By.CSS_SELECTOR, "#evidence .verbatim").text  # shown as text, not run
    form = browser.find_element(By.ID, "form-acknowledge")
    form.find_element(By.NAME, "reason").send_keys("taken on: bronchoscopy booked")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    wait(browser).until(expected_conditions.text_to_be_present_in_element((By.ID, "review-status"), "acknowledged"))
    history = browser.find_element(By.ID, "history").text
    assert (
        "dr.li (medical-monitor) review status: new -> acknowledged; reason: taken on: bronchoscopy booked" in history
    )
    assert csp_violations(browser) == []
    # The login and the acknowledgement are two more entries of the verified chain.
    assert audit_entries(workspace, monkeypatch) == before + 2

    browser.find_element(By.ID, "logout").click()
    wait(browser).until(expected_conditions.url_contains("/login"))
    browser.get(f"{served.url}/alerts")
    assert "/login" in browser.current_url
    assert audit_entries(workspace, monkeypatch) == before + 3


def test_a_dsmb_member_sees_the_alert_and_no_review_forms(
    workspace: Workspace, served: Served, browser: WebDriver
) -> None:
    log_in(browser, served, Role.DSMB_MEMBER)
    browser.get(f"{served.url}/alerts/{workspace.alert}")
    assert browser.find_element(By.ID, "review-status").text == "new"
    assert browser.find_elements(By.ID, "actions") == []
    browser.get(f"{served.url}/edish")
    point = browser.find_element(By.CSS_SELECTOR, "a.edish-point")
    point.click()
    wait(browser).until(expected_conditions.url_contains("/subjects/"))
    assert browser.find_element(By.CSS_SELECTOR, "#timeline svg").is_displayed()
    assert csp_violations(browser) == []
