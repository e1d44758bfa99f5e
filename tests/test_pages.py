"""Every dashboard page through streamlit's AppTest, against the real engine on tiny generated data.

One short real training (started from the Train page, stopped, resumed, finished) is shared by the
module; the Results, Try it and Runs pages are checked on it.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from browser_helpers import (
    TINY_TRAINING,
    import_tiny_dataset,
    kill_trainers,
    plate_jpeg,
    wait_for_run_end,
    wait_until,
    zip_with_bad_files,
)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 180  # model loading and GIFs on a busy 2-core machine


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def no_trouble(at: AppTest) -> None:
    """No exception element and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("pages_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("PLATE_STUDIO_HOME", str(home))
    mp.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    yield home
    kill_trainers(home)
    mp.undo()


@pytest.fixture(scope="module")
def tiny(home: Path, sample_zip: Path) -> Path:
    return import_tiny_dataset(sample_zip, "tiny")


@pytest.fixture(scope="module")
def started_run(home: Path, tiny: Path) -> str:
    """A training started from the Train page with tiny settings (long enough to be stopped once)."""
    from engine import runs

    at = app("pages/train.py")
    at.selectbox(key="train_pick").set_value(tiny.name)
    at.text_input(key="train_name").set_value("page test")
    # a 1-minute budget (both sessions together): time to press Stop after the first epoch
    for key, value in dict(TINY_TRAINING, num_epoch=200, max_minutes=1.0).items():
        at.number_input(key=f"train_{key}").set_value(value)
    at.button(key="train_start").click().run()
    no_trouble(at)
    active = runs.active_run()
    assert active is not None and active["name"] == "page test"
    assert active["params"]["max_width"] == 64 and active["params"]["preset"] == "quick"
    return active["id"]


@pytest.fixture(scope="module")
def finished_run(started_run: str) -> str:
    run = wait_for_run_end(started_run, timeout=300)
    if run["state"] == "stopped":  # the stop/resume test was deselected after stopping: finish it
        from engine import runs

        runs.resume_run(started_run)
        run = wait_for_run_end(started_run, timeout=300)
    assert run["state"] == "finished", run["status"]
    return started_run


# empty data folder ------------------------------------------------------------------------------
def test_every_page_explains_what_to_do_when_there_is_nothing_yet(studio_home: Path, monkeypatch):
    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    expected = {
        None: "No datasets yet",
        "pages/train.py": "Import plate photos on the Data page first",
        "pages/results.py": "No finished training yet",
        "pages/try_it.py": "no trained model yet",
        "pages/runs.py": "No trainings yet",
    }
    for page, words in expected.items():
        at = app(page)
        no_trouble(at)
        assert words in texts(at), (page, texts(at))
    at = app("pages/train.py")
    assert at.button(key="train_start").disabled


def test_train_page_says_so_when_a_command_line_training_holds_the_machine(studio_home: Path, monkeypatch):
    from engine.storage.locks import training_lock

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    with training_lock(holder="a command-line training"):
        at = app("pages/train.py")
        assert any("started outside the dashboard" in w.value for w in at.warning)
        assert at.button(key="train_start").disabled
    at = app("pages/train.py")
    assert not at.warning


# Data -------------------------------------------------------------------------------------------
def test_data_page_imports_a_zip_and_shows_what_was_left_out(home: Path, sample_zip: Path, tmp_path: Path):
    mixed = zip_with_bad_files(sample_zip, tmp_path / "mixed.zip")
    at = app()
    assert at.button(key="data_import").disabled
    at.file_uploader(key="data_upload").upload("My plates.zip", mixed.read_bytes(), "application/zip")
    at.run()
    assert at.text_input(key="data_name").value == "My-plates"
    at.button(key="data_import").click().run()
    no_trouble(at)
    assert any("Imported 40 photos into 'My-plates'. 3 were left out." in s.value for s in at.success)
    m = metrics(at)
    assert m["Accepted photos"] == "40" and m["Left out"] == "3"
    assert m["For training"].endswith("photos") and m["For testing"].endswith("photos")
    rejected = at.dataframe[0].value
    assert set(rejected["file"]) == {"notes.txt", "BROKEN123.jpg", "empty.jpg"}
    assert all(len(r) > 5 for r in rejected["reason"])
    assert len(at.get("plotly_chart")) == 2  # label length and character histograms
    captions = [c for img in at.image for c in img.captions]
    assert len(captions) == 12 and all(c.isalnum() and c.isupper() or c.isdigit() for c in captions)
    # the same name again is refused politely unless 'Replace' is ticked
    at.button(key="data_import").click().run()
    assert any("already exists" in e.value for e in at.error) and not at.exception
    at.checkbox(key="data_replace").check()
    at.button(key="data_import").click().run()
    no_trouble(at)


@pytest.mark.parametrize("name,payload", [
    ("holiday.zip", b"this is not a zip file at all"),
    ("evil.zip", None),  # a zip whose member climbs out of the folder
])
def test_data_page_refuses_bad_archives_with_a_short_message(home: Path, name: str, payload: bytes | None):
    if payload is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("../../../../tmp/escape.jpg", plate_jpeg())
        payload = buf.getvalue()
    before = sorted(p.name for p in (home / "datasets").iterdir()) if (home / "datasets").exists() else []
    at = app()
    at.file_uploader(key="data_upload").upload(name, payload, "application/zip")
    at.run()
    at.button(key="data_import").click().run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "Traceback" not in message and len(message) < 400
    assert [e.label for e in at.expander].count("Technical details") == 1
    after = sorted(p.name for p in (home / "datasets").iterdir() if not p.name.startswith("."))
    assert after == [b for b in before if not b.startswith(".")]
    assert not (home / "uploads").exists() or not any((home / "uploads").iterdir())


def test_data_page_sample_data_button(home: Path):
    at = app()
    at.button(key="data_sample").click().run()
    no_trouble(at)
    assert any("Sample data is ready as 'sample'" in s.value for s in at.success)
    assert at.selectbox(key="data_pick").value == "sample"
    assert int(metrics(at)["Accepted photos"]) >= 100


def test_data_page_deletes_a_dataset(home: Path, sample_zip: Path):
    import_tiny_dataset(sample_zip, "throwaway")
    at = app()
    at.selectbox(key="data_pick").set_value("throwaway").run()
    assert metrics(at)["Accepted photos"] == "40"
    at.button(key="data_delete_confirm").click().run()
    no_trouble(at)
    assert not (home / "datasets" / "throwaway").exists()
    assert "throwaway" not in at.selectbox(key="data_pick").options


# Train ------------------------------------------------------------------------------------------
def test_train_page_live_panel_stop_and_resume(home: Path, started_run: str):
    from engine import runs

    at = app("pages/train.py")
    no_trouble(at)
    assert any("page test" in w.value and "training now" in w.value for w in at.warning)
    assert at.button(key="train_start").disabled
    assert {"Epoch", "Elapsed", "Time left (estimate)", "Best validation plate accuracy"} <= set(metrics(at))

    def one_epoch_done() -> bool:
        run = runs.get_run(started_run)
        return (run["status"].get("epoch") or 0) >= 1 or not run["active"]

    wait_until(one_epoch_done, 180, 0.5, "no epoch finished")
    at.run()
    assert len(at.get("plotly_chart")) == 2  # loss and accuracy charts
    assert not metrics(at)["Epoch"].startswith("0 /")
    if runs.get_run(started_run)["active"]:
        at.button(key="train_stop").click().run()
        assert any("Stopping" in t.value for t in at.toast)
        wait_until(lambda: not runs.get_run(started_run)["active"], 120, 0.5, "stop did not stop")
        state = runs.get_run(started_run)["state"]
        if state == "finished":  # the time budget ran out before the signal landed (a very slow machine)
            pytest.skip("the training reached its time budget before Stop arrived")
        assert state == "stopped"
        at.run()
        no_trouble(at)
        assert any("Stopped" in i.value for i in at.info)
        assert not at.button(key="train_start").disabled
        at.button(key="train_resume").click().run()
        no_trouble(at)
        assert runs.get_run(started_run)["active"]


def test_train_page_after_the_training_ends(finished_run: str):
    at = app("pages/train.py")
    no_trouble(at)
    assert any("Finished" in s.value for s in at.success)
    assert not at.button(key="train_start").disabled
    at.button(key="train_results").click().run()
    no_trouble(at)
    assert [t.value for t in at.title] == ["Results"]


# Results ----------------------------------------------------------------------------------------
def test_results_page_scores_table_selection_gif_and_confusions(home: Path, finished_run: str):
    from dashboard.results import table_key

    at = app("pages/results.py")
    no_trouble(at)
    m = metrics(at)
    assert m["Plate accuracy"].endswith("%") and m["Character accuracy"].endswith("%")
    assert "share of plates read exactly right" in texts(at)
    run_id = at.selectbox(key="results_pick").value
    assert run_id == finished_run

    key = table_key(run_id, False, "", "confidence, lowest first")
    table = at.dataframe(key=key).value
    assert list(table.columns)[:5] == ["file", "label", "prediction", "confidence", "correct"]
    assert len(table) == int(m["Test photos"]) > 0
    assert list(table["confidence"]) == sorted(table["confidence"])
    # the first row is selected by default; picking another row shows that plate
    last = len(table) - 1
    at.session_state[key] = {"selection": {"rows": [last], "columns": [], "cells": []}}
    at.run()
    no_trouble(at)
    assert any(md.value.startswith("####") and f"`{table['label'][last]}`" in md.value for md in at.markdown)
    images = [img for img in at.image]
    assert len(images) >= 2  # the photo and its attention GIF
    assert any("Where the model looks" in c for img in images for c in img.captions)

    at.toggle(key="results_wrong").set_value(True).run()
    wrong = at.dataframe(key=table_key(run_id, True, "", "confidence, lowest first")).value
    assert not wrong["correct"].any()
    label = table["label"][0]
    at.toggle(key="results_wrong").set_value(False)
    at.text_input(key="results_search").set_value(label[:4]).run()
    found = at.dataframe(key=table_key(run_id, False, label[:4], "confidence, lowest first")).value
    assert label in set(found["label"]) and len(found) <= len(table)
    assert [b.label for b in at.get("download_button")] == ["Download predictions (CSV)"]
    assert "Which characters get mixed up" in [s.value for s in at.subheader]


# Try it -----------------------------------------------------------------------------------------
def test_try_it_reads_test_photos_and_uploads(finished_run: str):
    at = app("pages/try_it.py")
    no_trouble(at)
    assert at.selectbox(key="try_pick").value == finished_run
    pick = at.multiselect(key=f"try_tests_{finished_run}")
    pick.set_value(pick.options[:2]).run()
    no_trouble(at)
    assert [m.label for m in at.metric].count("Confidence") == 2
    assert sum("Where the model looks" in c for img in at.image for c in img.captions) == 2

    at.file_uploader(key="try_upload").set_value([
        ("34FK4522.jpg", plate_jpeg("34FK4522"), "image/jpeg"),
        ("garbage.jpg", b"definitely not an image", "image/jpeg"),
    ]).run()
    assert not at.exception
    assert [m.label for m in at.metric].count("Confidence") == 3
    assert len(at.error) == 1 and "garbage.jpg could not be read" in at.error[0].value


# Runs -------------------------------------------------------------------------------------------
def test_runs_page_history_curves_and_bundle(home: Path, finished_run: str):
    at = app("pages/runs.py")
    no_trouble(at)
    table = at.dataframe[0].value
    row = table[table["id"] == finished_run].iloc[0]
    assert row["run"] == "page test" and row["plate accuracy"] >= 0 and row["image size"] == "64x32 px"
    assert len(at.get("plotly_chart")) == 1
    assert at.selectbox(key="runs_pick").value == finished_run
    at.button(key=f"runs_prepare_{finished_run}").click().run()
    no_trouble(at)
    bundle = home / "runs" / finished_run / "bundle.zip"
    with zipfile.ZipFile(bundle) as zf:
        assert zf.testzip() is None and zf.namelist()
    buttons = at.get("download_button")
    assert len(buttons) == 1 and buttons[0].label.startswith("Download model bundle")


def test_runs_page_deletes_a_run(home: Path, finished_run: str):
    at = app("pages/runs.py")
    assert at.button(key=f"runs_delete_{finished_run}").disabled
    at.checkbox(key=f"runs_confirm_{finished_run}").check().run()
    at.button(key=f"runs_delete_{finished_run}").click().run()
    no_trouble(at)
    assert not (home / "runs" / finished_run).exists()
    assert "No trainings yet" in texts(at)


# password ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["env", "secrets"])
def test_password_gate(studio_home: Path, monkeypatch, how: str):
    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if how == "env":
        monkeypatch.setenv("PLATE_STUDIO_PASSWORD", "s3cret plates")
    else:
        at.secrets["password"] = "s3cret plates"
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Plate OCR Studio"]
    assert not at.file_uploader  # nothing of the Data page before signing in
    with pytest.raises(ValueError, match="Known pages: \\['Sign in'\\]"):  # no other page exists yet
        at.switch_page("pages/runs.py")
    at.text_input(key="login_password").input("wrong")
    at.button[0].click().run()
    assert any("not right" in e.value for e in at.error)
    at.text_input(key="login_password").input("s3cret plates")
    at.button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Data"]
