"""Every dashboard page through Streamlit's AppTest, against the real engine: real imports, real
training processes (tiny: 40-60 steps from scratch, so a poor model), real reading and export.

One training, started from the Train page, stopped, resumed and finished, is shared by the module;
Results, Try it and Runs are checked on it. Its name is Markdown, HTML and a link, and its dataset
holds a label with backticks: every page must show them as the literal text.

(One module, longer than most, because its tests share that one real training: splitting it would
train once per file.)
"""
from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from browser_helpers import (
    bad_files,
    kill_trainers,
    markdown_texts,
    plate_jpeg,
    rendered_html,
    wait_until,
    zip_with_bad_files,
)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 240  # model loading, GIFs and the bundle's export on a busy 2-core machine
RUN_NAME = "![t](http://127.0.0.1:39999/t.png) <b>bold</b> `code` *x*"
ODD_LABEL = "AB`C12"  # a backtick would end a code span


def app(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    if page:
        at.switch_page(page).run()
    no_exception(at)
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def no_trouble(at: AppTest) -> None:
    no_exception(at)
    assert not at.error, [e.value for e in at.error]


def shown(markdown: str) -> str:
    """The text a reader sees for a Markdown string (tags dropped, entities and word joiners resolved)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered_html(markdown))).replace("\u2060", "").strip()


def page_text(at: AppTest) -> str:
    return "\n".join(shown(t) for t in markdown_texts(at))


def metrics(at: AppTest) -> dict[str, str]:
    return {shown(m.label): shown(m.value) for m in at.metric}


def wait_for_state(run_id: str, predicate, timeout: float = 300) -> dict:
    from engine import runs

    wait_until(lambda: predicate(runs.get_run(run_id)), timeout, 0.5, f"run {run_id}: condition not met")
    return runs.get_run(run_id)


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
def tiny(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 generated plates (enough distinct ones for the label pattern) plus a label with a backtick."""
    from engine.data.importer import import_dataset
    from engine.data.sample import make_sample_zip
    from engine.storage.paths import datasets_dir

    zipped = make_sample_zip(tmp_path_factory.mktemp("tiny") / "plates.zip", count=60, seed=3)
    with zipfile.ZipFile(zipped, "a") as zf:
        zf.writestr(f"{ODD_LABEL}.jpg", plate_jpeg("ABC12"))
    import_dataset(zipped, datasets_dir() / "tiny", test_fraction=0.25)
    return datasets_dir() / "tiny"


@pytest.fixture(scope="module")
def trained(home: Path, tiny: Path) -> dict:
    """The module's training: started on the Train page, stopped once it learned something, resumed,
    finished. Records what the page said on the way."""
    from engine import runs

    at = app("pages/train.py")
    at.selectbox(key="train_pick").set_value("tiny")
    at.selectbox(key="train_from").set_value("none")
    at.text_input(key="train_name").set_value(RUN_NAME)
    at.number_input(key="train_max_steps").set_value(60)
    at.number_input(key="train_batch_size").set_value(16)
    at.button(key="train_start").click().run()
    no_trouble(at)
    run = runs.active_run()
    assert run is not None and run["name"] == RUN_NAME
    assert run["settings"]["init_from"] == "none" and run["settings"]["max_steps"] == 60
    seen = {"id": run["id"], "started": at}
    run = wait_for_state(run["id"], lambda r: (r["status"].get("step") or 0) >= 1 or not r["active"])
    at.run()
    seen["live"] = {"metrics": metrics(at), "progress": [p.text for p in at.get("progress")],
                    "order": [shown(s.value) for s in at.subheader] + [e.label for e in at.expander]}
    if run["active"]:
        at.button(key="train_stop").click().run()
        seen["stop_notes"] = [shown(i.value) for i in at.info] + [shown(w.value) for w in at.warning]
        run = wait_for_state(run["id"], lambda r: not r["active"], 120)
        at.run()
        seen["stopped"] = {"state": run["state"], "texts": page_text(at), "buttons": [b.label for b in at.button]}
        if run["state"] == "stopped":
            at.button(key="train_resume").click().run()
            no_trouble(at)
            seen["resumed_active"] = runs.get_run(run["id"])["active"]
    run = wait_for_state(run["id"], lambda r: not r["active"], 400)
    assert run["state"] == "finished", run["status"]
    at.run()
    seen["end"] = at
    return seen


@pytest.fixture(scope="module")
def starter_run(home: Path, tiny: Path, trained: dict) -> dict:
    """A second training, from the starter model (the default start): its confidences spread out, so
    a threshold accepts some readings and not others."""
    from engine import runs

    run_id = runs.start_run(tiny, name="from the starter", max_steps=40, batch_size=16)
    run = wait_for_state(run_id, lambda r: not r["active"], 400)
    assert run["state"] == "finished", run["status"]
    return run


# empty data folder ------------------------------------------------------------------------------
def test_every_page_says_what_to_do_when_there_is_nothing_yet(studio_home: Path, monkeypatch):
    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    expected = {
        None: "No datasets yet",
        "pages/train.py": "Import plate photos on the Data page first",
        "pages/results.py": "No finished training yet",
        "pages/try_it.py": "There is no trained model yet",
        "pages/runs.py": "No trainings yet",
    }
    for page, words in expected.items():
        at = app(page)
        no_trouble(at)
        assert words in page_text(at), (page, page_text(at))
        assert page is None or at.get("page_link"), page


def test_train_page_says_so_when_a_command_line_training_holds_the_machine(studio_home: Path, sample_zip: Path,
                                                                            monkeypatch):
    from browser_helpers import import_tiny_dataset
    from engine.storage.locks import training_lock

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    import_tiny_dataset(sample_zip)
    with training_lock("cli-run", studio_home / "elsewhere"):
        at = app("pages/train.py")
        assert any("started outside the dashboard" in w.value for w in at.warning)
        assert at.button(key="train_start").disabled
    at = app("pages/train.py")
    assert not at.warning and not at.button(key="train_start").disabled


def test_train_page_presets_say_their_steps_and_their_time_cap(studio_home: Path, sample_zip: Path, monkeypatch):
    from browser_helpers import import_tiny_dataset

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    import_tiny_dataset(sample_zip)
    at = app("pages/train.py")
    # not a duration: how long the steps take is the machine's (3x longer on a CPU without AMX)
    captions = list(at.radio(key="train_preset").proto.captions)
    assert captions == ["600 steps, at most 6 minutes. A first look, or the sample data.",
                        "3,000 steps, at most 15 minutes. Reads most real plates well.",
                        "10,000 steps, at most 45 minutes. For the model you will deploy."], captions


# Data -------------------------------------------------------------------------------------------
def test_data_page_imports_a_zip_and_shows_what_was_left_out(home: Path, sample_zip: Path, tmp_path: Path):
    mixed = zip_with_bad_files(sample_zip, tmp_path / "mixed.zip")
    at = app()
    assert at.button(key="data_import").disabled
    assert "up to 200 MB" in at.file_uploader(key="data_upload").help
    at.file_uploader(key="data_upload").upload("My plates.zip", mixed.read_bytes(), "application/zip")
    at.run()
    assert at.text_input(key="data_name").value == "My-plates"
    at.button(key="data_import").click().run()
    no_trouble(at)
    assert "Imported 40 photos into “My-plates”. 3 files were left out: why is listed below." in page_text(at)
    m = metrics(at)
    assert m["Accepted photos"] == "40" and m["Left out"] == "3"
    rejected = at.dataframe[0].value
    assert set(rejected["file"]) == set(bad_files()) and all(len(r) > 5 for r in rejected["reason"])
    assert len(at.get("plotly_chart")) == 2  # label length and character histograms
    assert len(at.get("image")) == 12
    # the same name again: refused, and the message names the checkbox exactly as it reads
    at.button(key="data_import").click().run()
    checkbox = at.checkbox(key="data_replace").label
    assert len(at.error) == 1 and f"tick “{checkbox}”" in shown(at.error[0].value) and not at.exception
    at.checkbox(key="data_replace").check()
    at.button(key="data_import").click().run()
    no_trouble(at)


def test_data_page_takes_labels_from_a_csv_in_the_zip_and_says_so(home: Path, tmp_path: Path):
    plates = {f"IMG_{1000 + i}.jpg": text for i, text in enumerate(["34FK4522", "06AB123", "35XY9876", "16KL321"])}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (name, text) in enumerate(plates.items()):
            zf.writestr(f"gate/{name}", plate_jpeg(text, seed=i))
        zf.writestr("gate/plates.csv", "file,label\n" + "".join(f"{n},{t}\n" for n, t in plates.items()))
    at = app()
    at.file_uploader(key="data_upload").upload("gate export.zip", buf.getvalue(), "application/zip")
    at.run()
    at.button(key="data_import").click().run()
    no_trouble(at)
    text = page_text(at)
    assert "Imported 4 photos into “gate-export”. Labels taken from gate/plates.csv. No file was left out." in text
    assert "(label taken from gate/plates.csv)" in text
    assert sorted(c for img in at.get("image") for c in img.captions) == sorted(plates.values())

    camera_names = io.BytesIO()  # the same photos without the CSV: every label is "IMG"
    with zipfile.ZipFile(camera_names, "w") as zf:
        for i, name in enumerate(plates):
            for copy in range(3):
                zf.writestr(f"{name[:-4]}_{copy}.jpg", plate_jpeg(f"{i}{copy}", seed=i * 3 + copy))
    at.file_uploader(key="data_upload").upload("camera.zip", camera_names.getvalue(), "application/zip")
    at.run()
    at.button(key="data_import").click().run()
    assert "No file was left out. Read the 1 warning below before training." in page_text(at)


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
    before = sorted(p.name for p in (home / "datasets").iterdir() if not p.name.startswith("."))
    at = app()
    at.file_uploader(key="data_upload").upload(name, payload, "application/zip")
    at.run()
    at.button(key="data_import").click().run()
    no_exception(at)
    assert len(at.error) == 1
    message = at.error[0].value
    assert "Traceback" not in message and len(message) < 400
    assert [e.label for e in at.expander].count("Technical details") == 1
    assert sorted(p.name for p in (home / "datasets").iterdir() if not p.name.startswith(".")) == before
    assert not (home / "uploads").exists() or not any((home / "uploads").iterdir())


def test_data_page_sample_data_and_delete(home: Path, sample_zip: Path):
    from browser_helpers import import_tiny_dataset

    at = app()
    at.button(key="data_sample").click().run()
    no_trouble(at)
    assert "Sample data is ready as “sample”." in page_text(at)
    assert at.selectbox(key="data_pick").value == "sample" and int(metrics(at)["Accepted photos"]) >= 100
    import_tiny_dataset(sample_zip, "throwaway")
    at.run()
    at.selectbox(key="data_pick").set_value("throwaway").run()
    at.button(key="data_delete_confirm").click().run()
    no_trouble(at)
    assert not (home / "datasets" / "throwaway").exists()
    assert "throwaway" not in at.selectbox(key="data_pick").options


def test_the_dataset_choice_survives_a_rerun_a_reload_and_a_newer_dataset(home: Path, tiny: Path, sample_zip: Path):
    from browser_helpers import import_tiny_dataset

    import_tiny_dataset(sample_zip, "older-pick")
    at = app("pages/train.py")
    default = at.selectbox(key="train_pick").value  # the newest dataset: the operator's choice must win over it
    chosen = "older-pick" if default != "older-pick" else "tiny"
    at.selectbox(key="train_pick").set_value(chosen).run()
    at.run()
    assert at.selectbox(key="train_pick").value == chosen
    assert at.query_params["dataset"] == chosen
    import_tiny_dataset(sample_zip, "even-newer")
    reloaded = app("pages/train.py", query={"dataset": at.query_params["dataset"]})  # a reload: new session, same address
    assert reloaded.selectbox(key="train_pick").value == chosen
    at.switch_page("pages/data.py").run()  # the same session, another page: the same choice
    assert at.selectbox(key="data_pick").value == chosen


# Train ------------------------------------------------------------------------------------------
def test_the_advanced_form_offers_every_setting_in_plain_words(home: Path, tiny: Path):
    from engine.training.settings import offered_settings

    at = app("pages/train.py")
    advanced = [(name, meta) for name, meta, _ in offered_settings() if meta["advanced"]]
    assert advanced
    for name, meta in advanced:
        widget = at.get_by_key(f"train_{name}")
        assert widget.label == meta["label"] and widget.help == meta["help"], name
        assert not widget.label.startswith("-") and not widget.help.startswith("-"), name
    assert "aocr" not in " ".join(e.label for e in at.expander).lower()
    assert "Photos per step" in page_text(at) and "learning rate" in page_text(at)


def test_a_setting_added_to_trainconfig_appears_in_the_form_with_no_other_edit(home: Path, tiny: Path, monkeypatch):
    from dataclasses import dataclass

    from engine.training import settings

    @dataclass
    class Extended(settings.TrainConfig):
        sharpen_strength: float = settings.setting(
            0.5, "How much photos are sharpened before reading (aocr --sharpen).", flag="--sharpen",
            label="Sharpening", low=0.0, high=2.0, step=0.1)

    monkeypatch.setattr(settings, "TrainConfig", Extended)
    at = app("pages/train.py")
    widget = at.number_input(key="train_sharpen_strength")
    assert widget.label == "Sharpening" and widget.help.startswith("How much photos")
    assert widget.placeholder == "0.5"  # the preset's value is shown greyed out


def test_start_from_offers_the_starter_first_and_scratch(home: Path, tiny: Path):
    from engine.model.starter import starter_available

    options = app("pages/train.py").selectbox(key="train_from").options
    assert options[-1].startswith("Nothing: learn from scratch")
    if starter_available():
        assert options[0].startswith("The starter model: the model shipped with Plate OCR Studio, which already reads "
                                     "many kinds of plates")


def test_train_page_live_panel_stop_and_resume(trained: dict):
    live = trained["live"]
    assert live["order"][0] == RUN_NAME, "the live panel comes first on the page, above the new-training form"
    assert "Start a new training" in live["order"]
    assert trained["started"].text_input(key="train_name").value == ""  # the next training is not named alike
    assert "Step (of about 60)" in live["metrics"], live["metrics"]  # the planned steps, in the label
    assert {"Time so far", "Time left", "Best check on held-out photos"} <= set(live["metrics"])
    assert any(re.match(r"^\*\*\d+ %\*\* · ", text) for text in live["progress"]), live["progress"]
    # Stop says what it does; when the trainer ends before the page is redrawn, the panel says it ended
    assert any(n.startswith("Stopping: the model so far is being saved") or n.startswith("Stopped. The model so far")
               for n in trained["stop_notes"]), trained["stop_notes"]
    stopped = trained["stopped"]
    assert stopped["state"] == "stopped"
    assert "Stopped. The model so far is kept: press Resume to continue training it." in stopped["texts"]
    assert "Resume" in stopped["buttons"] and trained["resumed_active"]
    end = trained["end"]
    no_trouble(end)
    assert "Poor model: do not rely on it yet." in page_text(end)
    assert "Train longer" in page_text(end)
    assert not end.button(key="train_start").disabled
    end.button(key="train_results").click().run()
    no_trouble(end)
    assert [t.value for t in end.title] == ["Results"]


def test_stop_before_anything_was_learned_says_nothing_was_kept(trained: dict, tiny: Path):
    from engine import runs

    at = app("pages/train.py")
    at.selectbox(key="train_pick").set_value("tiny")
    at.selectbox(key="train_from").set_value("none")
    at.button(key="train_start").click().run()
    run = runs.active_run()
    assert run is not None
    at.button(key="train_stop").click().run()
    # Stop says what it does; when the trainer ends before the page is redrawn, the page says how it ended
    notes = [shown(i.value) for i in at.info]
    assert any(n.startswith(("Stopping", "Stopped before anything was learned")) for n in notes), notes
    run = wait_for_state(run["id"], lambda r: not r["active"], 120)
    at.run()
    if run["resumable"]:
        pytest.skip("the trainer saved before the signal arrived (a very fast machine)")
    assert "Stopped before anything was learned; nothing was kept. Start a new training." in page_text(at)
    assert "Resume" not in [b.label for b in at.button]
    runs.delete_run(run["id"])


def test_stop_when_nothing_runs_is_said_not_ignored(trained: dict):
    def press_stop(run_id: str) -> None:
        from dashboard import training

        training.stop(run_id)
        training.show_notes()

    at = AppTest.from_function(press_stop, args=(trained["id"],), default_timeout=TIMEOUT)
    at.run()
    assert len(at.warning) == 1 and shown(at.warning[0].value).startswith("Nothing to stop:")
    assert "is not training" in at.warning[0].value


# Results ----------------------------------------------------------------------------------------
def test_results_opens_on_the_newest_finished_run_and_warns_of_a_poor_model(trained: dict):
    from dashboard.results import table_key

    at = app("pages/results.py")
    no_trouble(at)
    assert at.selectbox(key="results_pick").value == trained["id"]
    text = page_text(at)
    assert "Poor model: do not rely on it yet." in text and "What to do:" in text
    m = metrics(at)
    assert m["Plate accuracy"].endswith("%") and m["Character accuracy"].endswith("%")
    assert "test photos, kept aside at import" in text
    key = table_key(trained["id"], False, "", "confidence, lowest first")
    table = at.dataframe(key=key).value
    assert len(table) == int(m["Test photos"]) > 0
    assert list(table["confidence"]) == sorted(table["confidence"])
    last = len(table) - 1
    at.session_state[key] = {"selection": {"rows": [last], "columns": [], "cells": []}}
    at.run()
    no_trouble(at)
    assert f"{table['label'][last]} read as" in page_text(at)
    assert any("Where the model looks" in c for img in at.image for c in img.captions)
    at.toggle(key="results_wrong").set_value(True).run()
    assert not at.dataframe(key=table_key(trained["id"], True, "", "confidence, lowest first")).value["correct"].any()
    at.toggle(key="results_wrong").set_value(False)
    label = table["label"][0]
    at.text_input(key="results_search").set_value(label[:4]).run()
    assert label in set(at.dataframe(key=table_key(trained["id"], False, label[:4], "confidence, lowest first")).value["label"])
    # one step to the download: the bundle the trainer prepared is offered at once
    assert [b.label for b in at.get("download_button")][-1].startswith("Download the model (")
    assert "read_plates.py" in text

    reloaded = app("pages/results.py", query=dict(at.query_params))
    assert reloaded.selectbox(key="results_pick").value == trained["id"]


def test_results_of_a_run_still_zipping_its_download_say_it_is_coming(trained: dict):
    """The trainer writes the scores, then zips the download: in between, Results shows the scores and
    says the download is being prepared (Try it, Runs and Train do not treat it as training: no Stop),
    and offers it once the trainer is gone."""
    from engine import runs
    from engine.storage.locks import training_lock

    run = runs.get_run(trained["id"])
    with training_lock(run["id"], run["path"]):  # held as the trainer holds it while zipping
        at = app("pages/results.py")
        at.selectbox(key="results_pick").set_value(run["id"]).run()
        no_trouble(at)
        assert metrics(at)["Plate accuracy"].endswith("%")
        assert "Training has ended and the download is being prepared" in page_text(at)
        assert not at.get("download_button")
        tried = app("pages/try_it.py")
        tried.selectbox(key="try_pick").set_value(run["id"]).run()
        assert "still training" not in page_text(tried)  # its model is the final one
        runs_page = app("pages/runs.py", query={"run": run["id"]})
        listed = runs_page.dataframe[0].value
        assert listed[listed["id"] == run["id"]].iloc[0]["state"] == "Finishing"
        assert "once its download is ready" in page_text(runs_page)  # not "while it trains"
        assert "while it trains" not in page_text(runs_page)
        live = [b.key for b in app("pages/train.py").button]
        assert "train_results" in live and "train_stop" not in live  # scored: nothing left to stop
    at.run()
    assert [b.label for b in at.get("download_button")][-1].startswith("Download the model (")


def test_the_loss_chart_of_a_first_check_has_no_negative_loss_on_its_axis():
    from dashboard.charts import loss_chart

    figure = loss_chart([{"check": 1, "step": 110, "loss": 0.23}])  # one point: Plotly centres the axis on it
    assert figure.layout.yaxis.rangemode == "tozero"


def test_label_review_fixes_a_label_and_leaves_a_photo_out(trained: dict, tiny: Path):
    from engine.data.dataset import DatasetFolder

    folder = DatasetFolder(tiny)
    rows = [r for r in folder.rows() if r["split"] == "train" and "_" not in r["file"]]
    wrong, unreadable = rows[0], rows[1]
    folder.edit_label(wrong["file"], "Q1", who="a careless import")  # 2 characters: breaks the pattern
    folder.edit_label(unreadable["file"], "Z99", who="a careless import")
    at = app("pages/results.py")
    no_trouble(at)
    key = next(k for k in (e.key for e in at.dataframe) if k and k.startswith("review_table_"))
    table = at.dataframe(key=key).value
    assert {"Q1", "Z99"} <= set(table["label"]), table
    assert all(table["reason"].str.len() > 10)
    at.session_state[key] = {"selection": {"rows": [list(table["label"]).index("Q1")], "columns": [], "cells": []}}
    at.run()
    at.text_input(key=f"review_{wrong['file']}_label").set_value(wrong["label"]).run()
    at.button(key=f"review_{wrong['file']}_save").click().run()
    no_trouble(at)
    assert next(r for r in folder.rows() if r["file"] == wrong["file"])["label"] == wrong["label"]
    key = next(k for k in (e.key for e in at.dataframe) if k and k.startswith("review_table_"))
    table = at.dataframe(key=key).value
    assert "Q1" not in set(table["label"])
    at.session_state[key] = {"selection": {"rows": [list(table["label"]).index("Z99")], "columns": [], "cells": []}}
    at.run()
    at.button(key=f"review_{unreadable['file']}_exclude").click().run()
    no_trouble(at)
    assert next(r for r in folder.rows() if r["file"] == unreadable["file"])["excluded"]
    history = next(d.value for d in at.dataframe if "who" in d.value.columns)
    assert list(history["who"][:2]) == ["dashboard", "dashboard"] and len(history) == 4
    assert list(history["change"][:2]) == ["left out", "label changed"]
    folder.exclude(unreadable["file"], excluded=False, who="test clean-up")
    folder.edit_label(unreadable["file"], unreadable["label"], who="test clean-up")


def test_label_check_starts_in_the_background_stops_and_once_done_covers_every_photo(trained: dict, tiny: Path):
    from engine import runs

    at = app("pages/results.py", query={"run": trained["id"]})
    assert "Checked: the test photos." in page_text(at)
    at.button(key=f"review_check_{trained['id']}").click().run()
    no_trouble(at)
    check = runs.active_run()
    assert check is not None and check["kind"] == "label-check"
    assert any(p.text.startswith("Label check: **") for p in at.get("progress"))
    at.button(key="review_check_stop").click().run()
    assert any(shown(i.value).startswith("Stopping") for i in at.info)
    wait_for_state(check["id"], lambda r: not r["active"], 120)
    at.run()
    assert "The last label check was stopped before it finished." in page_text(at)
    runs.delete_run(check["id"])

    done = runs.start_label_check(tiny, steps=20)  # a short one (the button's takes minutes): let it finish
    wait_for_state(done, lambda r: not r["active"], 400)
    at = app("pages/results.py", query={"run": trained["id"]})
    no_trouble(at)
    assert "Checked: every photo (label check of " in page_text(at)
    assert "The last one finished" in page_text(at)
    runs.delete_run(done)


def test_the_threshold_is_saved_and_applied_in_try_it_its_csv_and_the_bundle(starter_run: dict, tiny: Path):
    from dashboard.results import predictions
    from engine.data.dataset import DatasetFolder
    from engine.reading.threshold import load_threshold, tradeoff

    run = starter_run
    frame = predictions(run)
    thresholds = sorted(r["threshold"] for r in tradeoff(frame["confidence"], frame["correct"]))
    assert len(thresholds) > 2, "the starter's readings should not all be equally sure"
    chosen = thresholds[len(thresholds) // 2]  # accepts about half of the test plates
    at = app("pages/results.py", query={"run": run["id"]})
    assert len(at.get("plotly_chart")) >= 1
    at.select_slider(key=f"threshold_{run['id']}").set_value(chosen).run()
    assert any(shown(i.value).startswith("Accept readings above") for i in at.info)
    at.button(key=f"threshold_save_{run['id']}").click().run()
    no_trouble(at)
    assert load_threshold(run["path"]) == chosen
    assert "Saved now: readings with a confidence of at least" in page_text(at)
    assert [b.label for b in at.get("download_button")][-1].startswith("Download the model (")
    with zipfile.ZipFile(Path(run["path"]) / "bundle.zip") as zf:  # made again, with the threshold
        assert f'"threshold": {chosen}' in zf.read("threshold.json").decode()

    folder = DatasetFolder(tiny)
    tests = [r for r in folder.rows() if r["split"] == "test"]
    photos = [(r["file"], folder.image_path(r["file"]).read_bytes(), "image/jpeg") for r in tests]
    photos.append(("garbage.jpg", b"not an image", "image/jpeg"))
    at = app("pages/try_it.py", query={"run": run["id"]})
    at.file_uploader(key="try_upload").set_value(photos).run()
    no_exception(at)
    rows = at.session_state["try_rows"]
    read, broken = rows[:-1], rows[-1]
    assert [r["file"] for r in read] == [r["file"] for r in tests]
    for row in read:  # accepted exactly when the confidence reaches the saved threshold
        assert row["accepted"] is (row["confidence"] >= chosen) or abs(row["confidence"] - chosen) < 1e-4, row
    assert {r["accepted"] for r in read} == {True, False}, "some readings accepted, some sent to a person"
    assert all(r["name_says"] for r in read) and all(r["matches_name"] in (True, False) for r in read)
    assert broken["problem"] and broken["accepted"] is None
    table = next(d.value for d in at.dataframe if d.key and d.key.startswith("try_table_"))
    assert list(table["accepted"]) == ["yes" if r["accepted"] else "no" for r in read] + [""]
    assert set(table["right"][:-1]) <= {"right", "wrong"} and table["problem"].iloc[-1]
    assert any("Where the model looks" in c for img in at.image for c in img.captions)  # the first photo's GIF
    from engine.reading import batch

    csv = batch.rows_csv(rows).decode().splitlines()
    assert [line.split(",")[3] for line in csv[1:-1]] == [str(r["accepted"]) for r in read]


def test_try_it_reads_a_zip_in_batches_and_offers_the_csv(trained: dict, sample_zip: Path):
    from engine.reading import batch

    at = app("pages/try_it.py")
    at.file_uploader(key="try_upload").set_value([("plates.zip", sample_zip.read_bytes(), "application/zip")]).run()
    no_trouble(at)
    rows = at.session_state["try_rows"]
    assert len(rows) == 40 and all(r["reading"] is not None and not r["problem"] for r in rows)
    assert all(r["name_says"] for r in rows)  # the sample's files are named by their plate text
    csv = batch.rows_csv(rows).decode()
    assert csv.splitlines()[0] == "file,reading,confidence,accepted,name_says,matches_name,problem"
    assert len(csv.splitlines()) == 41
    assert [b.label for b in at.get("download_button")] == ["Download the readings (CSV)"]
    assert "of 40 photos read" in page_text(at)


def test_train_again_from_this_run_starts_from_its_model(trained: dict):
    from engine import runs

    at = app("pages/results.py", query={"run": trained["id"]})
    at.button(key="results_again").click().run()
    no_trouble(at)
    assert [t.value for t in at.title] == ["Train"]
    again = runs.active_run()
    try:
        assert again is not None and again["settings"]["init_from"] == runs.get_run(trained["id"])["path"]
        assert again["name"].endswith("(again)") and again["settings"]["max_steps"] == 60
    finally:
        if again:
            runs.stop_run(again["id"], wait=60)
            wait_for_state(again["id"], lambda r: not r["active"], 120)
            runs.delete_run(again["id"])


def test_replacing_a_dataset_that_runs_were_trained_on_is_refused(trained: dict, tiny: Path, sample_zip: Path):
    at = app()
    at.file_uploader(key="data_upload").upload("tiny.zip", sample_zip.read_bytes(), "application/zip")
    at.run()
    at.text_input(key="data_name").set_value("tiny")
    at.checkbox(key="data_replace").check()
    at.button(key="data_import").click().run()
    assert len(at.error) == 1 and "run(s) were trained on tiny" in shown(at.error[0].value)
    assert (tiny / "labels.csv").exists()


# Runs -------------------------------------------------------------------------------------------
def test_runs_page_table_in_words_verdict_download_and_details(trained: dict, home: Path):
    at = app("pages/runs.py", query={"run": trained["id"]})
    no_trouble(at)
    table = at.dataframe[0].value
    row = table[table["id"] == trained["id"]].iloc[0]
    assert row["name"] == RUN_NAME and row["state"] == "Finished" and row["verdict"] == "Poor"
    assert row["plate accuracy"].endswith("%") and row["dataset"] == "tiny" and row["took"] != "–"
    assert not table.isna().any().any()
    assert not table.drop(columns="id").map(lambda v: str(v) in ("None", "default", "nan", "")).any().any()
    text = page_text(at)
    assert "Poor model: do not rely on it yet." in text
    main = "\n".join(markdown_texts(at))
    assert str(home) not in main and trained["id"] not in main  # no server folder, no run id in the main view
    assert any(str(home) in t.value for t in at.get("text"))  # ...but in the technical details
    assert [b.label for b in at.get("download_button")][0].startswith("Download the model (")


def test_a_run_of_the_aocr_recipe_is_said_unscored_until_engine_test_scores_it(studio_home: Path, sample_zip: Path,
                                                                                 tmp_path: Path, monkeypatch):
    """aocr's recipe trains on training.tfrecords, which holds no test photos: Results and Runs say why the
    run has no score (not "no finished training yet"), and `engine test` on testing.tfrecords gives it one."""
    from engine.cli import main
    from engine.data.sample import make_sample_zip
    from model_fixtures import run_engine

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    training, testing = tmp_path / "training.tfrecords", tmp_path / "testing.tfrecords"
    assert main(["dataset", str(sample_zip), str(training)]) == 0  # in-process: TensorFlow is loaded already
    assert main(["dataset", str(make_sample_zip(tmp_path / "more.zip", count=12, seed=5)), str(testing)]) == 0
    run = studio_home / "runs" / "aocr-recipe"
    run_engine(["train", str(training), "--model-dir", str(run), "--max-steps", "10", "--batch-size", "8"], studio_home)

    at = app("pages/results.py")
    assert "No training has a score yet: the finished one was trained on a dataset that keeps no test photos aside." in page_text(at)
    assert [link.proto.label for link in at.get("page_link")] == ["Go to Data"]
    at = app("pages/train.py", query={"run": run.name})  # its panel: no results to see, but a model to try
    assert [b.label for b in at.button if b.label in ("See results", "Try it")] == ["Try it"]
    at = app("pages/runs.py")
    assert at.dataframe[0].value.iloc[0]["plate accuracy"] == "not scored"
    assert "It has no final score: its dataset kept no test photos aside." in page_text(at)

    monkeypatch.chdir(tmp_path)  # the file named as typed in its own folder, not in the dashboard's
    assert main(["test", testing.name, "--model-dir", str(run)]) == 0
    at = app("pages/results.py")
    no_trouble(at)
    assert metrics(at)["Test photos"] == "12"
    notes = [shown(e.value) for e in [*at.success, *at.warning]]
    assert not any("not available" in note for note in notes)  # the first row's photo, from testing.tfrecords,
    assert any("Where the model looks" in c for img in at.image for c in img.captions)  # ...with its attention GIF
    assert "of the test plates" in notes[0] and "held-out" not in notes[0], notes  # judged by this score
    assert "this run was trained on “training.tfrecords”, which is not one." in page_text(at)  # no label review
    at = app("pages/runs.py")
    assert "on its 12 test photos." in page_text(at)
    at = app("pages/train.py", query={"run": run.name})
    assert [b.label for b in at.button if b.label in ("See results", "Try it")] == ["See results"]


# user text --------------------------------------------------------------------------------------
def test_names_labels_and_file_names_are_shown_as_text_never_as_markdown(trained: dict, tiny: Path, home: Path):
    from dashboard import results as res
    from engine import runs
    from engine.data.dataset import DatasetFolder
    from engine.data.importer import import_dataset
    from engine.storage.paths import datasets_dir

    trained_run = runs.get_run(trained["id"])
    odd_dataset = "**bold**_`tick`_[x]"
    import_dataset(tiny / "images", datasets_dir() / odd_dataset, test_fraction=0.25)
    odd_file = next(r["file"] for r in DatasetFolder(tiny).rows() if r["label"] == ODD_LABEL)
    pages = {
        None: {"dataset": odd_dataset},
        "pages/train.py": {"run": trained["id"]},
        "pages/results.py": {"run": trained["id"]},
        "pages/runs.py": {"run": trained["id"]},
        "pages/try_it.py": {"run": trained["id"]},
    }
    for page, query in pages.items():
        at = app(page, query)
        no_trouble(at)
        if page == "pages/results.py" and odd_file in set(res.predictions(trained_run)["file"]):  # a test photo
            key = next(k for k in (e.key for e in at.dataframe) if k and k.startswith("results_table_"))
            table = at.dataframe(key=key).value
            at.session_state[key] = {"selection": {"rows": [list(table["file"]).index(odd_file)], "columns": [], "cells": []}}
            at.run()
            assert f"{ODD_LABEL} read as" in page_text(at)
        if page == "pages/try_it.py":
            at.file_uploader(key="try_upload").set_value([(f"{ODD_LABEL}.jpg", plate_jpeg("ABC12"), "image/jpeg")]).run()
            assert f"{ODD_LABEL}.jpg" in page_text(at)
        texts = markdown_texts(at)
        for text in texts:
            html_text = rendered_html(text)
            assert "<img" not in html_text and "<a " not in html_text and "<strong>bold" not in html_text, text
            assert "C12" not in text or "<code>" not in html_text, text
            assert "t.png" not in text or "\\!\\[t\\]" in text, text
        shown_all = page_text(at)
        if page is None:
            assert at.selectbox(key="data_pick").value == odd_dataset and odd_dataset in shown_all
        elif page == "pages/results.py":  # the run is named in the picker only (options are shown as text)
            picker = at.selectbox(key="results_pick")
            assert picker.options[picker.index].startswith(RUN_NAME)
        elif page == "pages/try_it.py":
            picker = at.selectbox(key="try_pick")
            assert picker.options[picker.index].startswith(RUN_NAME)
        else:
            assert RUN_NAME in shown_all, (page, shown_all[:2000])
