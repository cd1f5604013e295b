"""Mission Control, the web dashboard, in a real browser: Debian's Chromium
driven by Selenium through /usr/bin/chromedriver (never Selenium Manager,
which would go to the network).

A chat reply streams into the page; a change a model asks for appears live
on an Approvals page that is already open, is approved there, and Home then
shows the new state; a snapshot is saved and restored from the Snapshots
page; a server with API keys shows a login page first.

With STEWARD_SCREENSHOTS_DIR set, a PNG of every view is saved there.
The tests skip when Chromium or chromedriver is missing, unless
STEWARD_REQUIRE_BROWSER is set (scripts/test.sh sets it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest

from helpers import CLIENT_KEY, UPSTREAM_KEY, text, tool_call
from processes import ScriptedLlm, Steward, start_steward

CHROMIUM = os.environ.get("STEWARD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STEWARD_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20  # seconds an explicit wait gives the page

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_SELENIUM = False


def _browser_missing() -> str | None:
    if not HAVE_SELENIUM:
        return "the selenium package is not installed (pip install -r tests/e2e/requirements.txt)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


_MISSING = _browser_missing()
if _MISSING and not os.environ.get("STEWARD_REQUIRE_BROWSER"):
    pytest.skip(f"no browser: {_MISSING}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator["webdriver.Chrome"]:
    if _MISSING:
        pytest.fail(f"STEWARD_REQUIRE_BROWSER is set but {_MISSING}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    # Local servers only: no proxy, no first-run chatter.
    options.add_argument("--no-proxy-server")
    options.add_argument("--no-first-run")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def dashboard_steward(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """A Steward of this module's own: restoring a snapshot changes its
    state, which no other test should see."""
    server = start_steward(
        "steward-dashboard", workdir, {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    )
    yield server
    server.http.close()
    server.proc.stop()


def wait(driver, timeout: float = WAIT) -> "WebDriverWait":
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def css(driver, selector: str):
    return wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))


def open_live(driver, url: str) -> None:
    """Opens a page that follows /api/events and waits until it does."""
    driver.get(url)
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-live-status]"), "live"))


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("STEWARD_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(Path(folder) / f"dashboard-{name}.png"))


def entity(steward: Steward, entity_id: str) -> dict:
    r = steward.http.get("/api/entities", params={"q": entity_id})
    assert r.status_code == 200, r.text
    [found] = [e for e in r.json()["entities"] if e["entity_id"] == entity_id]
    return found


def test_a_chat_reply_streams_into_the_page(browser, dashboard_steward, llm):
    llm.script(text("Good evening! The house is quiet and everything is in order."))
    browser.get(dashboard_steward.url + "/")
    assert "Chat" in browser.title
    css(browser, "#agent option[value='architect']")
    box = css(browser, "#message")
    box.send_keys("how is the house doing tonight?")
    browser.find_element(By.ID, "send").click()
    wait(browser).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".msg.assistant.done .text"), "everything is in order")
    )
    # The conversation now has an address, and is stored with both messages.
    wait(browser).until(EC.url_contains("/?c="))
    conversation_id = browser.current_url.split("/?c=")[1]
    stored = dashboard_steward.conversation(conversation_id)
    contents = [m["content"] for m in stored["messages"]]
    assert "how is the house doing tonight?" in contents, contents
    # A reload renders the same conversation from the server.
    browser.refresh()
    css(browser, ".msg.user .text")
    assert "everything is in order" in browser.find_element(By.ID, "messages").text


def test_an_approval_appears_live_is_approved_and_home_shows_the_change(browser, dashboard_steward, llm):
    light = entity(dashboard_steward, "light.hallway")
    action, expected = ("turn_off", "off") if light["state"] == "on" else ("turn_on", "on")
    open_live(browser, dashboard_steward.url + "/ui/approvals")

    # A model asks for the change in a conversation, through the API.
    llm.script(tool_call("control_entity", json.dumps({"entity_id": "light.hallway", "action": action})))
    r = dashboard_steward.http.post("/api/conversations", json={"title": "Hallway light"})
    conversation_id = r.json()["id"]
    r = dashboard_steward.http.post(
        f"/api/conversations/{conversation_id}/messages", json={"content": "could you see to the hallway?"}
    )
    assert r.status_code == 200, r.text
    r = dashboard_steward.http.get("/api/proposals", params={"status": "pending", "conversation_id": conversation_id})
    [approval] = r.json()["proposals"]

    # It appears on the page already open, without a reload.
    card = css(browser, f"#pending [data-approval-id='{approval['id']}']")
    assert f"light.{action} on Hallway" in card.text, card.text
    assert "light.hallway" in card.text
    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, f"#history [data-approval-id='{approval['id']}']"))
    )
    wait(browser).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"#history [data-approval-id='{approval['id']}']"), "executed")
    )
    assert not browser.find_elements(By.CSS_SELECTOR, f"#pending [data-approval-id='{approval['id']}']")
    decided = dashboard_steward.http.get(f"/api/proposals/{approval['id']}").json()
    assert decided["status"] == "executed", decided

    # Home shows the new state.
    browser.get(dashboard_steward.url + "/ui/home?q=hallway")
    row = css(browser, "tr[data-entity-id='light.hallway']")
    assert row.find_element(By.CSS_SELECTOR, "td.state").text == expected, row.text


def test_a_snapshot_is_saved_and_restored_from_the_page(browser, dashboard_steward):
    if dashboard_steward.http.get("/api/state").status_code == 404:
        pytest.skip("GET /api/state is not on this server yet (the snapshots API)")
    name = "e2e-dashboard-snapshot"
    dashboard_steward.http.post("/api/conversations", json={"title": "kept in the snapshot"})
    browser.get(dashboard_steward.url + "/ui/snapshots")
    css(browser, "#snapshot-name").send_keys(name)
    browser.find_element(By.ID, "snapshot-replace").click()
    browser.find_element(By.CSS_SELECTOR, "#snapshot-save button[type='submit']").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "snapshot-status"), f"Saved '{name}'"))
    row = css(browser, f"#snapshots tr[data-snapshot='{name}']")
    saved = next(s for s in dashboard_steward.http.get("/api/state").json()["snapshots"] if s["name"] == name)

    # Something new, then back to the snapshot.
    dashboard_steward.http.post("/api/conversations", json={"title": "made after the snapshot"})
    assert dashboard_steward.http.get("/api/state").json()["current"]["conversations"] == saved["conversations"] + 1
    row.find_element(By.CSS_SELECTOR, "button[data-restore]").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "snapshot-status"), f"Restored '{name}'"))
    current = dashboard_steward.http.get("/api/state").json()["current"]
    assert current["conversations"] == saved["conversations"], current
    titles = [c.get("title") for c in dashboard_steward.http.get("/api/conversations").json()["conversations"]]
    assert "made after the snapshot" not in titles and "kept in the snapshot" in titles, titles


def test_with_keys_the_dashboard_asks_for_a_key_first(browser, steward_auth):
    browser.delete_all_cookies()
    browser.get(steward_auth.url + "/ui/approvals")
    wait(browser).until(EC.url_contains("/ui/login"))
    css(browser, "#key").send_keys("sk-not-the-key")
    browser.find_element(By.CSS_SELECTOR, "form.login-form button[type='submit']").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), "not one of"))

    css(browser, "#key").send_keys(CLIENT_KEY)
    browser.find_element(By.CSS_SELECTOR, "form.login-form button[type='submit']").click()
    wait(browser).until(EC.url_contains("/ui/approvals"))
    # The page's own calls to the API work with the session cookie.
    wait(browser).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-live-status]"), "live"))
    cookie = browser.get_cookie("steward_session")
    assert cookie is not None and cookie["httpOnly"], cookie
    assert cookie.get("sameSite") == "Strict", cookie
    assert "expiry" not in cookie, "a session cookie"
    assert CLIENT_KEY not in cookie["value"]
    assert CLIENT_KEY not in browser.page_source
    assert browser.execute_script("return document.cookie") == "", "scripts cannot read the session"

    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait(browser).until(EC.url_contains("/ui/login"))
    browser.get(steward_auth.url + "/ui/home")
    wait(browser).until(EC.url_contains("/ui/login"))


def test_every_view_with_content(browser, dashboard_steward, llm):
    """Fills each view with something real, checks it renders in the
    browser, and saves the screenshots when asked to."""
    http = dashboard_steward.http
    browser.get_log("browser")  # what earlier tests left
    r = http.post("/api/insights/analyze", json={"hours": 48})
    assert r.status_code == 201, r.text
    # A plan that waits for approval, for Tasks.
    plan = {
        "summary": "Check the living room, then dim its lights for the evening",
        "steps": [
            {"id": "s1", "agent": "librarian", "tool": "get_state", "arguments": {"entity_id": "light.living_room"},
             "description": "Read the living room lights", "depends_on": [], "estimated_cost_usd": 0.0},
            {"id": "s2", "agent": "architect", "tool": "control_entity",
             "arguments": {"entity_id": "light.living_room", "action": "turn_on", "data": {"brightness_pct": 30}},
             "description": "Dim the living room lights to 30%", "depends_on": ["s1"], "estimated_cost_usd": 0.0},
        ],
    }
    llm.script(text(json.dumps(plan)))
    http.post("/api/requests", json={"request": "get the living room ready for a film"})
    # A chat with a tool call and a pending approval, for Chat and Approvals.
    llm.script(
        tool_call("get_state", json.dumps({"entity_id": "lock.front_door"})),
        tool_call("control_entity", json.dumps({"entity_id": "lock.front_door", "action": "unlock"})),
    )
    browser.get(dashboard_steward.url + "/")
    css(browser, "#message").send_keys("the plumber is at the front door, can you let him in?")
    browser.find_element(By.ID, "send").click()
    card = css(browser, ".msg.assistant .approval button.approve")
    assert card.is_displayed()
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".msg.assistant.done")))
    screenshot(browser, "chat")

    checks = {
        "activity": ("/ui/activity", "#activity .entry"),
        "approvals": ("/ui/approvals", "#pending [data-approval-id]"),
        "tasks": ("/ui/tasks", "#tasks .step[data-step-id='s2']"),
        "home": ("/ui/home", "svg.sparkline"),
        "usage": ("/ui/usage", "#usage-requests"),
        "audit": ("/ui/audit", "#chain"),
        "snapshots": ("/ui/snapshots", "#snapshots tbody tr"),
    }
    for name, (path, selector) in checks.items():
        browser.get(dashboard_steward.url + path)
        css(browser, selector)
        if name == "snapshots":
            wait(browser).until(lambda d: "Loading" not in d.find_element(By.ID, "snapshots").text)
        # A Content-Security-Policy violation or a script error shows here.
        errors = [
            e["message"]
            for e in browser.get_log("browser")
            if e["level"] == "SEVERE" and "/api/state" not in e["message"]
        ]
        assert not errors, f"{name}: {errors}"
        if name == "tasks":
            step = browser.find_element(By.CSS_SELECTOR, "#tasks .step[data-step-id='s2']")
            assert "after: s1" in step.text and "Dim the living room lights" in step.text, step.text
        if name == "home":
            # The insight's chart (served as SVG by the API) loads; it is
            # lazy, so it loads once scrolled to.
            chart = css(browser, "img.chart")
            browser.execute_script("arguments[0].scrollIntoView()", chart)
            loaded = "return arguments[0].complete && arguments[0].naturalWidth"
            wait(browser).until(lambda d: d.execute_script(loaded, chart))
            browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, name)
    browser.get(dashboard_steward.url + "/ui/audit")
    assert "verifies" in css(browser, "#chain").text
