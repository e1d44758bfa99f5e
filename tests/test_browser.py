"""End to end in a real browser: `streamlit run` + Debian's chromium driven by Playwright.

An operator's whole afternoon: upload a zip with good and bad photos, see what was left out, start
a short training, watch it finish, open the results table and an attention GIF, try the model on a
new photo, download the model bundle. Screenshots of every page go to test-artifacts/.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from browser_helpers import dashboard, plate_jpeg, zip_is_valid, zip_with_bad_files

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("PLATE_STUDIO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

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
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        context.close()


def shot(page, name: str, wait: bool = True) -> None:
    """Screenshot the whole page: streamlit scrolls inside its main area, so grow the viewport to fit."""
    ARTIFACTS.mkdir(exist_ok=True)
    if wait:
        idle(page)
    size = page.viewport_size
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer], body')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], int(height) + 40), 8000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def idle(page, timeout: float = 120_000) -> None:
    """Wait until streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(300)


def goto_page(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    idle(page)


def test_operator_flow_upload_train_results_download(server, page, sample_zip: Path, tmp_path: Path):
    from playwright.sync_api import expect

    url = server["url"]
    # the very first visit of a fresh server is a deep link: it must still go through the router
    page.goto(url + "/runs")
    page.get_by_role("heading", name="Runs", level=1).wait_for()
    idle(page)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Data", exact=True)).to_be_visible()
    expect(nav.get_by_text("streamlit app")).to_have_count(0)
    nav.get_by_text("Data", exact=True).click()
    page.get_by_role("heading", name="Data", level=1).wait_for()
    expect(page.get_by_text("No datasets yet")).to_be_visible()

    # 1. Data: upload a zip with 40 good and 3 bad files --------------------------------------------
    mixed = zip_with_bad_files(sample_zip, tmp_path / "fleet photos.zip")
    page.locator("input[type=file]").first.set_input_files(str(mixed))
    name_box = page.get_by_label("Dataset name", exact=True)
    expect(name_box).to_have_value("fleet-photos", timeout=30_000)
    idle(page)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 40 photos into 'fleet-photos'. 3 were left out.")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Files left out, and why")).to_be_visible()
    left_out = page.get_by_test_id("stMetric").filter(has_text="Left out")
    expect(left_out).to_contain_text("3")
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    shot(page, "1-data")

    # 2. Train: quick preset, tiny advanced settings; watch it live until it finishes ---------------
    goto_page(page, "Train")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value(re.compile("^fleet-photos"))
    page.get_by_text("Advanced settings (aocr flags)").click()
    for label, value in [("Image width (px)", "64"), ("Image height (px)", "32"), ("Epochs (passes over the photos)", "4"),
                         ("Batch size (photos per step)", "16"), ("Time budget (minutes)", "0.5")]:
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        idle(page)
    page.get_by_label("Run name (optional)", exact=True).fill("browser run")
    page.get_by_label("Run name (optional)", exact=True).press("Enter")
    idle(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("is training now")).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    page.get_by_text("Epoch", exact=True).first.wait_for()
    # live: wait for the first epoch to show up in the charts, then screenshot the live panel
    expect(page.get_by_text(re.compile(r"^[1-9]\d* / 4$"))).to_be_visible(timeout=180_000)
    shot(page, "2-train-live", wait=False)
    expect(page.get_by_text("Finished. See how well it reads on the Results page.")).to_be_visible(timeout=240_000)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    shot(page, "3-train-finished")

    # 3. Results: headline numbers, table, photo and attention GIF ------------------------------------
    page.get_by_role("button", name="See results").click()
    page.get_by_role("heading", name="Results", level=1).wait_for()
    expect(page.get_by_test_id("stMetric").filter(has_text="Plate accuracy")).to_contain_text("%")
    expect(page.get_by_text("share of plates read exactly right").filter(visible=True).first).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    gif = page.get_by_test_id("stImage").filter(has_text="Where the model looks")
    expect(gif).to_be_visible(timeout=120_000)
    src = gif.locator("img").get_attribute("src")
    assert src
    assert page.request.get(src if src.startswith("http") else url + src).body()[:6] in (b"GIF89a", b"GIF87a")
    # click another row of the table (a canvas grid): the photo panel follows the selection
    heading = page.get_by_role("heading", level=4).first
    before = heading.inner_text()
    table = page.get_by_test_id("stDataFrame").first
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    grid = table.bounding_box()
    row_height = 35
    x, y = grid["x"] + 16, grid["y"] + row_height * 3 + row_height / 2  # row 3's selection box
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    expect(heading).not_to_have_text(before, timeout=60_000)
    expect(gif).to_be_visible(timeout=120_000)
    shot(page, "4-results")

    # 4. Try it: a new photo ------------------------------------------------------------------------
    goto_page(page, "Try it")
    photo = tmp_path / "34FK4522.jpg"
    photo.write_bytes(plate_jpeg("34FK4522"))
    page.locator("input[type=file]").first.set_input_files(str(photo))
    expect(page.get_by_test_id("stMetric").filter(has_text="Confidence")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stImage").filter(has_text="Where the model looks")).to_be_visible()
    shot(page, "5-try-it")

    # 5. Runs: history, curves, download the bundle --------------------------------------------------
    goto_page(page, "Runs")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    page.get_by_role("button", name="Prepare download").click()
    download_button = page.get_by_role("button", name=re.compile("Download model bundle"))
    expect(download_button).to_be_visible(timeout=240_000)
    with page.expect_download(timeout=120_000) as info:
        download_button.click()
    saved = tmp_path / "bundle.zip"
    info.value.save_as(saved)
    names = zip_is_valid(saved.read_bytes())
    assert names, "the bundle zip is empty"
    shot(page, "6-runs")

    # reload: everything comes back from disk ----------------------------------------------------------
    page.reload()
    page.get_by_role("heading", name="Runs", level=1).wait_for()
    # the run is named in the pickers (the data grid also holds it, in cells hidden behind its canvas)
    expect(page.get_by_text("browser run").filter(visible=True).first).to_be_visible(timeout=30_000)
    assert not page.get_by_test_id("stException").count()


def test_password_protects_every_page_even_a_deep_link(browser, tmp_path: Path):
    from playwright.sync_api import expect

    home = tmp_path / "home"
    home.mkdir()
    with dashboard(home, PLATE_STUDIO_PASSWORD="open sesame") as url:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.set_default_timeout(60_000)
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
