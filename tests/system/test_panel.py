"""The web panel in a real headless Chromium (Debian chromium + chromium-driver, Selenium).

It adds a destination through the form, sees it listed with its live state, disables
it, an invalid URI shows the API's message next to the form, edits and removes it, and a
reload reports the rows it skipped; with a token the panel asks for it first.
FASTDS_PANEL_SCREENSHOT=path saves a picture of the panel (the README's is made that way).
"""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.harness import free_udp_port, wait_for

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("Chromium is required: apt-get install -y chromium chromium-driver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run",
                 "--window-size=1400,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def row_state(browser, uri):
    """The state badge of a destination's row, read in one step (the listing re-renders)."""
    return browser.execute_script(
        "const row = [...document.querySelectorAll('tr.destination')].find(r => r.dataset.uri === arguments[0]);"
        "return row ? row.querySelector('.state').textContent : null;", uri)


def click(browser, css):
    """A real click, tried again if the listing re-rendered under it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def clicked():
        try:
            browser.find_element(By.CSS_SELECTOR, css).click()
            return True
        except StaleElementReferenceException:
            return False

    wait_for(clicked, 20, f"a click on {css}")


def fill(browser, **fields):
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        field = browser.find_element(By.ID, f"f-{name}")
        field.clear()
        field.send_keys(str(value))
    browser.find_element(By.ID, "f-submit").click()


def test_panel_adds_lists_disables_edits_removes_and_shows_validation_errors(harness, browser):
    from selenium.webdriver.common.by import By

    first_port, new_port = free_udp_port(), free_udp_port()
    harness.add_destination(first_port)
    harness.uas("uas.xml", new_port)  # answers the prober's OPTIONS
    harness.start_fastds(probing_mode=1, ping_interval_s=1)
    browser.get(harness.api_url + "/")
    wait_for(lambda: row_state(browser, f"sip:127.0.0.1:{first_port}") == "active", 20, "the panel's first listing")

    new_uri = f"sip:127.0.0.1:{new_port}"
    fill(browser, setid=1, destination=new_uri, weight=2, description="added from the panel")
    wait_for(lambda: row_state(browser, new_uri) == "active", 20, "the new destination, active")
    row = next(r for r in harness.api("GET", "/api/v1/destinations")[1]["destinations"] if r["destination"] == new_uri)
    assert (row["weight"], row["description"]) == (2, "added from the panel")
    wait_for(lambda: browser.execute_script(
        "const row = document.querySelector(`tr[data-uri='${arguments[0]}']`);"
        "return row !== null && row.textContent.includes(' ms');", new_uri), 20, "a probe RTT on the new destination")
    if os.environ.get("FASTDS_PANEL_SCREENSHOT"):
        browser.save_screenshot(os.environ["FASTDS_PANEL_SCREENSHOT"])

    click(browser, f'tr[data-uri="{new_uri}"] button.disable')
    wait_for(lambda: row_state(browser, new_uri) == "inactive", 20, "the destination to show inactive")
    sets = harness.api("GET", "/api/v1/sets")[1]["sets"]
    assert {d["destination"]: d["state"] for s in sets for d in s["destinations"]}[new_uri] == "inactive"


    def written_back():  # the prober writes states back to the store every 2 s
        rows = harness.api("GET", "/api/v1/destinations")[1]
        return rows if any(r["destination"] == new_uri and r["state"] == "inactive" for r in rows["destinations"]) else None

    before = wait_for(written_back, 20, "the inactive state written back to the store")
    fill(browser, setid=1, destination="sip:bad host name", weight=1, description="")
    error = browser.find_element(By.ID, "form-error")
    wait_for(lambda: error.text, 20, "the validation message")
    assert error.text.startswith("destination: 'sip:bad host name' is not valid: expected a sip: or sips: URI with a host")
    assert "invalid" in browser.find_element(By.ID, "f-destination").get_attribute("class")
    assert harness.api("GET", "/api/v1/destinations")[1] == before
    click(browser, f'tr[data-uri="{new_uri}"] button.edit')  # the form now edits it in place
    assert browser.find_element(By.ID, "f-submit").text == "Save"
    assert browser.find_element(By.ID, "f-destination").get_attribute("value") == new_uri
    fill(browser, weight=7)
    wait_for(lambda: browser.execute_script(
        "const row = document.querySelector(`tr[data-uri='${arguments[0]}']`);"
        "return row !== null && row.cells[4].textContent === '7' && row.cells[2].textContent === 'UDP';", new_uri),
        20, "the new weight listed (after the transport)")
    assert harness.api("GET", f"/api/v1/destinations/{row['id']}")[1]["weight"] == 7
    click(browser, f'tr[data-uri="{new_uri}"] button.remove')
    browser.switch_to.alert.accept()  # "Remove ... from set 1?"
    wait_for(lambda: row_state(browser, new_uri) is None, 20, "the row to go")
    assert harness.api("GET", f"/api/v1/destinations/{row['id']}")[0] == 404
    with sqlite3.connect(harness.db) as db:  # a row written by hand that fastds cannot use
        db.execute("INSERT INTO dispatcher (setid, destination) VALUES (1, 'http://not-sip')")
    click(browser, "#reload")
    shown = browser.find_element(By.ID, "action-error")
    wait_for(lambda: shown.text, 20, "the reload's report")
    assert shown.text.startswith("skipped: dispatcher row id=") and "'http://not-sip'" in shown.text
    png = Path(harness.directory / "panel.png")
    browser.save_screenshot(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panel_asks_for_the_token_when_the_api_has_one(harness, browser):
    from selenium.webdriver.common.by import By

    port = free_udp_port()
    harness.add_destination(port)
    harness.start_fastds(api_token="panel-token")
    browser.get(harness.api_url + "/")
    token_box = browser.find_element(By.ID, "token-box")
    wait_for(lambda: token_box.is_displayed(), 20, "the token prompt")
    assert row_state(browser, f"sip:127.0.0.1:{port}") is None
    browser.find_element(By.ID, "token").send_keys("panel-token")
    browser.find_element(By.ID, "token-save").click()
    wait_for(lambda: row_state(browser, f"sip:127.0.0.1:{port}") == "active", 20, "the listing with the token")
