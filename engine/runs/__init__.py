"""Training runs as the dashboard sees them: start, stop, resume, list, delete; datasets they use."""
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
    list_datasets,
    list_runs,
    resolve_dataset,
    resume_run,
    run_path,
    runs_trained_on,
    start_run,
    stop_run,
)
from engine.storage.paths import UnsafeName  # noqa: F401
