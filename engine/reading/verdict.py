"""Is this model any good? One plain rule, written with the run and shown wherever its score is.

A model that reads fewer than half of its test plates exactly is called poor, and so is one whose
test score is far (25 points) below its score on the held-out photos checked during training (the
test photos differ from the training ones: other cameras, wrong labels, a different kind of plate).
"""
from __future__ import annotations

POOR_BELOW = 0.5
GAP = 0.25
GAP_FROM = 30  # held-out photos needed before the gap between check and test is trusted

ADVICE = {
    "longer": "Train longer: choose Balanced or Best, or press Train again from this run.",
    "photos": "Add more photos: a few hundred different plates at least, taken like the ones it will read.",
    "labels": "Check the labels: the Results page lists the photos whose file name the model disagrees with.",
    "test": "Check that the test photos are the same kind of plates as the training photos.",
}


def judge(evaluation: dict | None, best_check: float | None, notes: dict | None = None) -> dict:
    """{"level": "good" | "poor" | "unknown", "headline": ..., "advice": [...]} for a finished run.
    `notes`: the data facts of the run (config.json's `resolved`): how many photos were held out."""
    notes = notes or {}
    test = (evaluation or {}).get("plate_accuracy")
    if test is None and best_check is None:
        return {"level": "unknown", "headline": "This run has no score: it had no photos to test on.", "advice": []}
    if test is None:
        level = "poor" if best_check < POOR_BELOW else "good"
        headline = (f"It reads {best_check:.0%} of the held-out photos it was checked on (the dataset has no "
                    "test photos for a final score).")
        return {"level": level, "headline": headline, "advice": [ADVICE["longer"], ADVICE["photos"]] if level == "poor" else []}
    if test < POOR_BELOW:
        advice = [ADVICE["longer"], ADVICE["photos"], ADVICE["labels"]]
        return {"level": "poor", "advice": advice,
                "headline": f"This model is not usable yet: it reads only {test:.0%} of the test plates exactly."}
    if best_check is not None and test < best_check - GAP and notes.get("check_images", GAP_FROM) >= GAP_FROM:
        return {"level": "poor", "advice": [ADVICE["test"], ADVICE["labels"], ADVICE["photos"]],
                "headline": f"This model reads {test:.0%} of the test plates, far below the {best_check:.0%} it reached "
                            "on the photos checked during training."}
    if notes.get("checked_on_training_photos"):
        return {"level": "good", "advice": [ADVICE["photos"]],
                "headline": f"It reads {test:.0%} of the test plates. With this few photos, none could be held out to "
                            "check progress during training."}
    return {"level": "good", "advice": [], "headline": f"It reads {test:.0%} of the test plates exactly."}
