"""Training runs as the dashboard sees them: start, stop, resume, list, delete; datasets they use; label checks."""
from engine.runs.launcher import (  # noqa: F401 - the public API of this part
    NothingToStop,
    RunNotFound,
    TrainingBusy,
    active_run,
    check_replace,
    dataset_path,
    delete_dataset,
    delete_run,
    get_run,
    latest_label_check,
    list_datasets,
    list_runs,
    resolve_dataset,
    resume_run,
    run_path,
    runs_trained_on,
    start_label_check,
    start_run,
    stop_run,
)
from engine.storage.paths import UnsafeName  # noqa: F401
