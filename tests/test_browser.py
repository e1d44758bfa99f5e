"""End to end in a real browser: `streamlit run` + Debian's chromium driven by Playwright, at 1440x900.

An operator's afternoon: upload a zip with good and bad photos, see what was left out, start a short
training and watch it live (the panel in view without scrolling, with a percentage), see the results,
fix a wrong label, read a zip of photos and download the CSV, choose a threshold, download the model
bundle. Every wait is on something visible (no fixed sleeps), with timeouts long enough for a busy
machine. Screenshots of every view go to test-artifacts/.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from browser_helpers import dashboard, plate_jpeg, zip_is_valid, zip_with_bad_files

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("PLATE_STUDIO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1440, "height": 900}
WAIT = 120_000  # ms: a page run, a model load or an export on a busy 2-core machine
TRAINING_WAIT = 600_000  # ms: a whole tiny training, evaluation and bundle while something else eats the CPU
HOSTILE = "127.0.0.1:9/t.png"  # nothing listens there: a browser that fetched it would only show in the DOM
RUN_NAME = f"browser run ![t](http://{HOSTILE})"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"chromium not found at {CHROMIUM} (install it: `make browser` or apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The dashboard with an empty data folder, for the operator's flow."""
    home = tmp_path_factory.mktemp("browser_home")
    with dashboard(home) as url:
        yield {"url": url, "home": home}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=WAIT)  # expect() has its own default of 5 s: far too short on a busy machine
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(WAIT)
    try:
        yield pg
    finally:
        context.close()


def idle(page, timeout: float = WAIT) -> None:
    """Until Streamlit has finished running the page's script (its 'running' widget is gone)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def shot(page, name: str, *, whole: bool = True) -> None:
    """Screenshot: what the operator sees at 1440x900, or the whole page (Streamlit scrolls inside its
    main area, so the viewport grows to fit and is put back)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no tooltip of whatever was clicked last
    idle(page)
    page.evaluate("document.fonts.ready")
    if not whole:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        return
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer], body')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(VIEWPORT["height"], int(height) + 40), 8000)})
    idle(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def goto_page(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    idle(page)


def no_hostile_markup(page) -> None:
    """The run name is shown as text: no image or link to the address in it anywhere on the page."""
    from playwright.sync_api import expect

    expect(page.locator(f'img[src*="{HOSTILE}"], a[href*="{HOSTILE}"]')).to_have_count(0)


def shown_as_text(text: str) -> re.Pattern:
    """`text` as the page shows it (dashboard.text.plain puts invisible word joiners after ':' and '@')."""
    escaped = (re.escape(c).replace("/", "\\/") + ("\u2060?" if c in ":@" else "") for c in text)
    return re.compile("^" + "".join(escaped) + "$")  # ('/' escaped too: Playwright sends the pattern as /.../)


def choose(page, label: str, option: str | re.Pattern) -> None:
    """Pick an option of a Streamlit selectbox."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()
    idle(page)


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    idle(page)


def test_operator_flow(server, page, tmp_path: Path):
    from playwright.sync_api import expect

    from engine.data.sample import make_sample_zip

    url = server["url"]
    # the very first visit of a fresh server is a deep link: it must still go through the router
    page.goto(url + "/runs")
    page.get_by_role("heading", name="Runs", level=1).wait_for()
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("streamlit app")).to_have_count(0)
    goto_page(page, "Data")
    expect(page.get_by_text("No datasets yet")).to_be_visible()

    # 1. Data: 60 good photos, 3 bad files, and one photo whose name is not its plate ---------------
    plates = make_sample_zip(tmp_path / "plates.zip", count=60, seed=3)
    mixed = zip_with_bad_files(plates, tmp_path / "fleet photos.zip")
    with zipfile.ZipFile(mixed, "a") as zf:
        zf.writestr("Q1.jpg", plate_jpeg("AB123CD"))  # a wrong label: two characters where plates have 6 to 8
    page.locator("input[type=file]").first.set_input_files(str(mixed))
    expect(page.get_by_label("Dataset name", exact=True)).to_have_value("fleet-photos")
    idle(page)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text(re.compile(r"Imported 61 photos into “fleet-photos”\. 3 files were left out: why is listed below\."))).to_be_visible()
    expect(page.get_by_text("Files left out, and why")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Left out")).to_contain_text("3")
    expect(page.get_by_test_id("stImage").first).to_be_visible()  # thumbnails: as long as the page needs
    expect(page.get_by_test_id("stImage")).to_have_count(12)
    shot(page, "1-data")

    # 2. Train: from scratch, 40 steps; the live panel is where the eye is --------------------------
    goto_page(page, "Train")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value(re.compile("^fleet-photos"))
    choose(page, "Start from", re.compile("^Nothing: learn from scratch"))
    page.get_by_text("Advanced settings").click()
    fill(page, "Training steps", "40")
    fill(page, "Photos per step", "16")
    fill(page, "Run name (optional)", RUN_NAME)
    page.get_by_role("button", name="Start training").click()
    stop = page.get_by_test_id("stMain").get_by_role("button", name="Stop", exact=True)
    expect(stop).to_be_in_viewport()
    progress = page.get_by_test_id("stProgress").filter(has_text=re.compile(r"\d+ %"))
    expect(progress).to_be_in_viewport()  # a percentage from the first seconds, without scrolling
    expect(page.get_by_role("heading", name=shown_as_text(RUN_NAME))).to_be_in_viewport()
    step = page.get_by_test_id("stMetric").filter(has_text="Step (of about 40)").get_by_test_id("stMetricValue")
    expect(step).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=TRAINING_WAIT)
    expect(page.get_by_role("button", name="Start training")).to_be_hidden()  # folded away while it trains
    no_hostile_markup(page)
    shot(page, "2-train-live", whole=False)
    expect(page.get_by_text("Poor model: do not rely on it yet.")).to_be_visible(timeout=TRAINING_WAIT)
    expect(page.get_by_role("button", name="See results")).to_be_visible()
    # the page follows the end too: no "is running now" left over, a new training can start
    expect(page.get_by_text(re.compile("is running now"))).to_be_hidden()
    page.get_by_text("Start a new training").click()
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    expect(page.get_by_role("textbox", name="Run name (optional)")).to_have_value("")  # that name was the last run's
    idle(page)
    shot(page, "3-train-finished")

    # 3. Results: the verdict, the table, a photo and its attention GIF ------------------------------
    page.get_by_role("button", name="See results").click()
    page.get_by_role("heading", name="Results", level=1).wait_for()
    expect(page.get_by_text("Poor model: do not rely on it yet.")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Plate accuracy")).to_contain_text("%")
    gif = page.get_by_test_id("stImage").filter(has_text="Where the model looks")
    expect(gif).to_be_visible()
    src = gif.locator("img").get_attribute("src")
    assert page.request.get(src if src.startswith("http") else url + src).body()[:6] in (b"GIF89a", b"GIF87a")
    no_hostile_markup(page)
    shot(page, "4-results")
    # the scores come before the zip: its button appears by itself once the trainer has made it
    expect(page.get_by_role("button", name=re.compile(r"^Download the model \("))).to_be_visible(timeout=TRAINING_WAIT)

    # 4. the wrong label: listed first, fixed right there, and the change listed -------------------
    expect(page.get_by_role("heading", name="Label Q1, read as (nothing)")).to_be_visible()
    fill(page, "Correct label", "AB123CD")
    page.get_by_role("button", name="Save label").click()
    expect(page.get_by_text("No label looks wrong.")).to_be_visible()
    expect(page.get_by_text("Changes made to the labels (1)")).to_be_visible()
    shot(page, "5-results-label-fixed")

    # 5. Try it: a zip of photos, read in batches; the CSV ----------------------------------------
    goto_page(page, "Try it")
    page.locator("input[type=file]").first.set_input_files(str(plates))
    expect(page.get_by_text(re.compile(r"of 60 photos read"))).to_be_visible()
    idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the readings (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 60 and set(rows[0]) == {"file", "reading", "confidence", "accepted", "name_says",
                                                "matches_name", "problem"}
    expect(page.get_by_test_id("stImage").filter(has_text="Where the model looks")).to_be_visible()
    shot(page, "6-try-it")

    # 6. Results again (the same run, remembered): choose a threshold, download the bundle ---------
    goto_page(page, "Results")
    expect(page.get_by_role("combobox", name="Run")).to_have_value(re.compile("^browser run"))
    thumb = page.get_by_role("slider", name="Accept readings with a confidence of at least")
    thumb.focus()
    thumb.press("End")  # the highest threshold on the curve
    idle(page)
    page.get_by_role("button", name="Save this threshold").click()
    expect(page.get_by_text(re.compile("^Saved now: readings with a confidence of at least"))).to_be_visible()
    idle(page, TRAINING_WAIT)  # the bundle is made again with the threshold (a spinner meanwhile)
    download = page.get_by_role("button", name=re.compile(r"^Download the model \("))
    expect(download).to_be_visible()
    with page.expect_download() as info:
        download.click()
    names = zip_is_valid(Path(info.value.path()).read_bytes())
    assert "threshold.json" in names and "read_plates.py" in names and "export/model.tflite" in names, names
    shot(page, "7-results-threshold")

    # 7. Runs, then a reload: everything comes back from disk and the address ---------------------
    goto_page(page, "Runs")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_role("heading", name=shown_as_text(RUN_NAME))).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()  # how the runs learned, side by side
    no_hostile_markup(page)
    shot(page, "8-runs")
    page.reload()
    page.get_by_role("heading", name="Runs", level=1).wait_for()
    expect(page.get_by_role("heading", name=shown_as_text(RUN_NAME))).to_be_visible()
    assert not page.get_by_test_id("stException").count()


def test_password_protects_every_page_even_a_deep_link(browser, tmp_path: Path):
    from playwright.sync_api import expect

    home = tmp_path / "home"
    home.mkdir()
    with dashboard(home, PLATE_STUDIO_PASSWORD="open sesame") as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(WAIT)
        try:
            page.goto(url + "/results")  # first visit of a fresh server, straight to a page
            expect(page.get_by_text("This dashboard is protected")).to_be_visible()
            idle(page)
            expect(page.get_by_role("heading", name="Results")).to_have_count(0)
            expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
            shot(page, "0-sign-in")
            box = page.get_by_label("Password", exact=True)
            box.fill("wrong")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("That password is not right")).to_be_visible()
            box.fill("open sesame")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_test_id("stSidebarNav").wait_for()
            expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Results|Data"))
        finally:
            context.close()
