"""The web panel in a real headless Chromium (Debian chromium + chromium-driver, Selenium).

It adds a destination through the form, sees it listed with its live state, disables
it, an invalid URI shows the API's message next to the form, edits and removes it, and a
reload reports the rows it skipped; with a token the panel asks for it first. During a
SIPp run its plots move, a callee that dies turns its state band, a row the reload
skipped and the store's table-version problem (health degraded) show; a destination given by
DNS name shows its address, and that its name stopped resolving.
FASTDS_PANEL_SCREENSHOTS=folder saves pictures of the live panel there, panel.png and
panel-200.png (docs/ has them, made that way).
"""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from dnslib import A

from tests.dns_zone import start
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
                 "--window-size=1400,1900"):
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


def band_colour(browser, dest_id):
    """[r, g, b] at the right end (the newest sample) of a destination's state band."""
    return browser.execute_script(
        "const canvas = document.getElementById('bands');"
        "const ids = [...document.querySelectorAll('tr.destination')].map(r => r.dataset.id);"
        "const row = ids.indexOf(String(arguments[0])); if (row < 0) return null;"
        "const height = canvas.height / ids.length;"
        "return [...canvas.getContext('2d').getImageData(canvas.width - 2, row * height + height / 2, 1, 1).data]"
        ".slice(0, 3);", dest_id)


def screenshot(browser, name):
    if os.environ.get("FASTDS_PANEL_SCREENSHOTS"):
        browser.save_screenshot(str(Path(os.environ["FASTDS_PANEL_SCREENSHOTS"]) / name))


GREEN, RED, ORANGE = [0x5c, 0xb8, 0x5c], [0xd9, 0x53, 0x4f], [0xf0, 0xad, 0x4e]  # panel.html STATE_COLOURS


def test_panel_plots_a_call_run_a_dead_destination_a_skipped_row_and_a_degraded_store(harness, browser):
    from selenium.webdriver.common.by import By

    live_port, dying_port = free_udp_port(), free_udp_port()
    harness.add_destination(live_port)
    harness.add_destination(dying_port)
    harness.uas("uas.xml", live_port)
    dying = harness.uas("uas.xml", dying_port)
    harness.start_fastds(probing_mode=1, ping_interval_s=1, probing_threshold=1)
    caller = harness.start_uac("uac.xml", 600, 10, 120)  # 60 s of calls at most; the test ends it sooner
    browser.get(harness.api_url + "/")

    def plotted(series: str, minimum: float) -> bool:
        return browser.execute_script(
            "const chart = window.fastdsPanel.charts[arguments[0]];"
            "return chart.data[0].length >= 2 && chart.data[1].some(v => v !== null && v >= arguments[1]);",
            series, minimum)

    wait_for(lambda: plotted("calls", 1) and plotted("destinations", 1), 30, "the calls plotted")
    wait_for(lambda: plotted("setup", 0.01), 30, "setup times plotted")
    points = browser.execute_script("return window.fastdsPanel.charts.calls.data[0].length")
    wait_for(lambda: browser.execute_script("return window.fastdsPanel.charts.calls.data[0].length") > points,
             30, "the plot to move on")
    assert band_colour(browser, 2) == GREEN

    dying.stop()  # the second callee dies: probes and calls get no answer
    wait_for(lambda: band_colour(browser, 2) in (RED, ORANGE), 40, "the dead destination's band to turn")
    assert band_colour(browser, 1) == GREEN
    dead = next(d for s in harness.api("GET", "/api/v1/sets")[1]["sets"] for d in s["destinations"] if d["id"] == 2)
    assert dead["timeouts"] >= 1 and dead["replies"]["2xx"] >= 1  # it answered until it died, then timed out
    row_text = browser.find_element(By.CSS_SELECTOR, 'tr.destination[data-id="2"]').text
    assert "→" in row_text  # its last transition is listed (active→inactive or →probing)

    with sqlite3.connect(harness.db) as db:  # a row written by hand that fastds cannot use, reloaded
        db.execute("INSERT INTO dispatcher (setid, destination) VALUES (1, 'sip:')")
    assert harness.api("POST", "/api/v1/reload", {})[0] == 200
    wait_for(lambda: browser.find_element(By.ID, "skipped-box").is_displayed(), 20, "the skipped rows")
    skipped = browser.find_element(By.CSS_SELECTOR, "#skipped .skipped-row").text
    assert skipped.startswith("3 ") and "'sip:'" in skipped

    with sqlite3.connect(harness.db) as db:  # the dispatcher table's version is not the one fastds reads
        db.execute("UPDATE version SET table_version = 7 WHERE table_name = 'dispatcher'")
    wait_for(lambda: browser.find_element(By.ID, "health").text == "degraded", 20, "health degraded")
    assert "version" in browser.find_element(By.ID, "health-why").text
    wait_for(lambda: "worker 0" in browser.find_element(By.ID, "processes").text, 10, "the processes' CPU and RSS")
    screenshot(browser, "panel.png")
    png = Path(harness.directory / "panel-live.png")
    browser.save_screenshot(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    caller.stop()


def test_panel_stays_usable_at_200_destinations(harness, browser):
    from selenium.webdriver.common.by import By

    with sqlite3.connect(harness.db) as db:  # 200 destinations in 4 sets, every fifth one inactive
        db.executemany("INSERT INTO dispatcher (setid, destination, state, weight) VALUES (?, ?, ?, 1)",
                       [(1 + n % 4, f"sip:127.0.0.{1 + n // 250}:{20000 + n}", 1 if n % 5 == 0 else 0)
                        for n in range(200)])
    harness.start_fastds()
    caller = harness.start_uac("uac.xml", 200, 20, 60)
    browser.get(harness.api_url + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "tr.destination")) == 200, 30, "200 rows listed")
    wait_for(lambda: browser.execute_script("return window.fastdsPanel.samples().length") >= 3, 30, "samples")
    shape = browser.execute_script(
        "const canvas = document.getElementById('bands');"
        "return [canvas.height, window.fastdsPanel.charts.destinations.series.length,"
        "        document.getElementById('top-note').textContent];")
    assert 200 * 2 <= shape[0] <= 600  # a band per destination, the whole picture within a screen's height
    assert shape[1] == 1 + 8 and shape[2] == "(the 8 busiest of 200)"
    first_inactive = browser.execute_script(
        "return [...document.querySelectorAll('tr.destination')].findIndex(r => r.textContent.includes('inactive'))")
    assert first_inactive >= 0
    screenshot(browser, "panel-200.png")
    caller.stop()


def test_panel_shows_a_destinations_address_by_dns_and_a_name_that_stopped_resolving(harness, browser, zone):
    port = free_udp_port()
    zone.set("gw.panel.test", "A", [A("127.0.0.1")])
    harness.uas("uas.xml", port)
    start(harness, zone, f"sip:gw.panel.test:{port}")
    browser.get(harness.api_url + "/")

    def uri_cell() -> str:
        return browser.execute_script(
            "const row = document.querySelector('tr.destination'); return row ? row.cells[1].textContent : ''")

    wait_for(lambda: uri_cell() == f"sip:gw.panel.test:{port} → 127.0.0.1:{port}", 20, "the address it resolved to")
    zone.set("gw.panel.test", "A", [])  # NXDOMAIN from now on
    wait_for(lambda: "DNS: not resolving, kept" in uri_cell(), 20, "the name shown as not resolving")
    assert "NXDOMAIN" in uri_cell() and row_state(browser, f"sip:gw.panel.test:{port}") == "active"
