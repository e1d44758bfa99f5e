"""The training loop of one run: data, model, steps, checks, saves, and the end of the run.

The trainer checks the model on held-out photos every ~30 s (keeping the best averaged weights in
best.npz), saves last.npz atomically (at each check, every --steps-per-checkpoint steps, and when
asked to stop), and at the end scores the best model on the dataset's test photos, says plainly
when the model is poor, and prepares the download bundle. The process around it (the training
lock, signals, config.json, the final state) is engine/training/run.py. (A little over 300 lines:
one class whose parts share the run's state; split, they would pass it all around.)
"""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import numpy as np

from engine.data.dataset import check_split
from engine.model import checkpoint as ckpt
from engine.model.precision import compute_precision
from engine.model.starter import StartingModel, starting_model
from engine.reading.metrics import char_accuracy, plate_accuracy
from engine.storage.files import now_iso
from engine.storage.runfolder import RunFolder
from engine.training import dataprep, pipeline
from engine.training.distribute import cluster_size, make_strategy
from engine.training.schedule import Budget, learning_rate, step_limit
from engine.training.settings import TrainConfig
from engine.training.status import StatusWriter

log = logging.getLogger("engine.training")

STATUS_EVERY = 2.0  # seconds between progress updates in status.json
AVERAGE_EVERY = 4  # steps between updates of the weights' moving average


def keeps_final(final: float, best: float, checked: int) -> bool:
    """Whether the fully trained weights are kept over the best earlier check (plate accuracies on
    `checked` held-out photos).

    They usually read best, and a few held-out photos are a noisy judge: the best of ~20 checks is
    lucky by about two standard errors. So the final weights go only when they score worse by more
    than that, and by more than two photos and a half (never tipping over on float rounding). Once
    (US, peak rate 2e-3, 59 held-out photos) a mid-run check at 89.8 % beat the final 83.1 % by four
    photos, and on the test plates read 85.4 % where the final weights read 87.9 %.
    """
    count = max(checked, 1)
    noise = 2.0 * math.sqrt(max(best * (1.0 - best), 0.0) / count)
    return final >= best - max(2.5 / count, noise, 0.005)


class StopRequested(Exception):
    """SIGTERM (the dashboard's Stop button) arrived; the loop saved and leaves cleanly."""


STOP = threading.Event()  # set by SIGTERM (run.py): the loop saves and leaves at the next step, never mid-save


class Trainer:
    def __init__(self, run: RunFolder, config: dict, status: StatusWriter, chief: bool, resume: bool,
                 prepare_data=None, bundle: bool = True):
        self.run, self.config, self.status, self.chief = run, config, status, chief
        self.prepare_data, self.bundle = prepare_data or dataprep.prepare, bundle
        self.settings = TrainConfig.from_dict(config["settings"])
        self.state = ckpt.load(run.checkpoint("last")) if resume and run.checkpoint("last").exists() else None
        self.meta = self.state.meta if self.state else {}
        resolved = config.get("resolved") or {}
        if self.state is None and resolved.get("started_from") is None:
            resolved = {}  # a new run, or one that never saved: decide everything afresh
        self.resolved = resolved

    # setup -------------------------------------------------------------------------------------
    def _phase(self, text: str) -> None:
        _check_stop()
        self.status.update(phase=text)

    def _prepare(self) -> None:
        cfg, resolved = self.settings, self.resolved
        dataset = self.config["dataset"]
        self.strategy = make_strategy(cfg.strategy)  # first: a cluster must be joined before any TensorFlow op
        # the split the launcher saw, and on a resume the one this run trained on, must still be the dataset's
        check_split(dataset, resolved.get("split_fingerprint") or self.config.get("split_fingerprint"))
        if self.state is not None:
            log.info("Resuming at step %d", self.meta.get("step", 0))
        start = None if self.state is not None else starting_model(cfg.init_from)
        self.data = self.prepare_data(cfg, dataset, self.config.get("val_dataset"), start, self._phase, resolved)
        box = self.data.box
        if not resolved:
            resolved = {"input": [box.height, box.width], "slots": self.data.slots, "charset": self.data.charset.chars,
                        "architecture": start.architecture if start else (cfg.architecture or {}),
                        "started_from": start.describe() if start else {"from": "none"},
                        "precision": compute_precision(cfg.precision), **self.data.notes}
            self.resolved = resolved
            self.config["resolved"] = resolved
            if self.chief:
                from engine.storage.files import atomic_write_json

                atomic_write_json(self.run.config_path, self.config)
        self._phase("Building the model")
        self._build(start)

    def _build(self, start: StartingModel | None) -> None:
        import keras
        import tensorflow as tf

        from engine.model.network import build_model
        from engine.training.steps import make_state

        cfg, data = self.settings, self.data
        tf.random.set_seed(cfg.seed)
        keras.utils.set_random_seed(cfg.seed)
        arch = self.resolved.get("architecture") or {}
        precision = compute_precision(cfg.precision)  # this machine's: a resumed run may move to another
        log.info("Training computes in %s", precision)
        with self.strategy.scope():
            self.model = build_model(data.charset.vocab_size, data.slots, data.box.height, data.box.width, arch, precision)
            self.optimizer = keras.optimizers.Adam(cfg.learning_rate(start is None and self.state is None), clipnorm=5.0)
            self.optimizer.build(self.model.trainable_variables)
            self.step_state = make_state(self.model)
        self.average, self.totals = self.step_state.average, self.step_state.totals
        self.keys = [ckpt.variable_key(v, self.model) for v in self.model.weights]
        if self.state is not None:
            ckpt.restore(self.model, self.state.weights)
            ckpt.restore_optimizer(self.optimizer, self.state.optimizer)
            averaged = self.state.averaged or self.state.weights
            for var, key in zip(self.average, self.keys):
                var.assign(averaged[key])
        elif start is not None:
            weights = ckpt.transplant(start.weights, start.charset, self.model, data.charset)
            ckpt.restore(self.model, weights)
            for var, key in zip(self.average, self.keys):
                var.assign(weights[key])
        self.checker = build_model(data.charset.vocab_size, data.slots, data.box.height, data.box.width, arch)
        self._compile()

    def _compile(self) -> None:
        import tensorflow as tf

        from engine.training.steps import make_train_step

        cfg = self.settings
        self.train_step = make_train_step(self.model, self.optimizer, self.strategy, self.step_state,
                                          self.data.charset.vocab_size, cfg.batch_size, cfg.label_smoothing,
                                          cfg.strategy == "multi-worker")

        @tf.function(input_signature=[tf.TensorSpec([None, self.data.box.height, self.data.box.width, 1], tf.float32)])
        def check_step(images):
            return tf.argmax(self.checker(images, training=False)["logits"], -1, output_type=tf.int32)

        self.check_step = check_step

    # loop --------------------------------------------------------------------------------------
    def fit(self) -> None:
        self._phase("Reading the photos")
        self._prepare()
        cfg, meta = self.settings, self.meta
        self.step = step = int(meta.get("step", 0))
        self.best = tuple(meta.get("best", (-1.0, -1.0)))
        self.best_step, self.stale = meta.get("best_step"), int(meta.get("stale", 0))
        self.checks = int(meta.get("checks", 0))
        self.checked_at = -1
        self._mend_metrics()
        self.check_inputs = pipeline.model_inputs(self.data.check_images, self.data.box.height, self.data.box.width)
        reserve = 20.0 + 0.01 * len(self.data.check_labels) * 10
        budget = self.budget = Budget(step_limit(cfg.max_steps, cfg.num_epoch, self._steps_per_pass()),
                                      cfg.max_minutes * 60 if cfg.max_minutes else None,
                                      float(meta.get("elapsed", 0.0)), reserve)
        self._phase("Preparing the photos")
        batches = pipeline.batches(self.data.sources, self.data.boxes, self.data.charset, self.data.slots,
                                   cfg.batch_size, seed=cfg.seed + step, augmenting=cfg.augment,
                                   cache_dir=self._fresh_cache_dir())
        iterator = iter(self.strategy.experimental_distribute_dataset(batches))
        self.status.update(phase="Training (the first steps are slower)", max_steps=budget.max_steps, step=step)
        last_status = last_check = time.monotonic()
        snapshots = sorted(s for s in cfg.snapshot_steps if s > step)
        peak = cfg.learning_rate(self.resolved["started_from"].get("from") == "none")
        import tensorflow as tf

        multi_worker = cfg.strategy == "multi-worker"
        workers = cluster_size() if multi_worker else 1  # see steps.make_train_step's agree()
        lr, finishing = 0.0, False
        # The moving average is brought up to date every few steps with the decays of the steps between
        # (their product): updating its ~100 tensors every step costs 7 % of a step.
        average_every, pending = (AVERAGE_EVERY if cfg.ema_momentum else 1), 1.0
        while True:
            planned = budget.planned_steps(step)
            if self.chief:  # the chief decides when to end; in a cluster every worker hears it with the step
                finishing = finishing or step + 1 >= planned or budget.out_of_time()
            lr = learning_rate(step, planned, peak, cfg.warmup_steps)
            pending *= min(cfg.ema_momentum, (1.0 + step) / (10.0 + step)) if cfg.ema_momentum else 0.0
            decay = 1.0
            if (step + 1) % average_every == 0 or finishing or STOP.is_set():
                decay, pending = pending, 1.0
            controls = [lr * workers if self.chief else 0.0, float(STOP.is_set()), float(finishing)]
            agreed = self.train_step(next(iterator), tf.constant(controls), tf.constant(decay))
            step = self.step = step + 1
            if step == 3:
                budget.start_measuring(step)  # the first steps include tracing and compiling
            # outside a cluster the flags are the host's own: no wait on the device every step
            stop, finishing = (bool(v) for v in (agreed.numpy()[1:] if multi_worker else controls[1:]))
            if stop:
                self._save_last()
                raise StopRequested()
            if snapshots and step >= snapshots[0]:
                self._save_snapshot(snapshots.pop(0))
            if cfg.steps_per_checkpoint and step % cfg.steps_per_checkpoint == 0:
                self._save_last()
            if finishing:
                break
            now = time.monotonic()
            if self.chief and now - last_check >= cfg.check_every_seconds:
                finishing = self._check(lr)  # patience: end with the next step
                last_check = now = time.monotonic()
            if now - last_status >= STATUS_EVERY:
                self._report(step)
                last_status = now
        if self.chief and self.checked_at != self.step:
            self._check(lr, final=True)
        if budget.out_of_time():
            log.info("Time limit of %.1f minutes reached at step %d.", cfg.max_minutes, step)
        self.finish()

    def _fresh_cache_dir(self) -> Path:
        """Where large sets keep their decoded photos during this session (a killed session's half
        cache is removed first: tf.data refuses to write over it)."""
        import shutil
        import tempfile

        folder = self.run.path / "cache" if self.chief else Path(tempfile.mkdtemp(prefix="plate-cache-"))
        shutil.rmtree(folder, ignore_errors=True)
        return folder

    def _steps_per_pass(self) -> int:
        return max(1, math.ceil(self.data.train_count / self.settings.batch_size))

    def _report(self, step: int) -> None:
        budget = self.budget
        planned, eta, elapsed = budget.planned_steps(step), budget.eta_seconds(step), budget.elapsed()
        percent = 100.0 * elapsed / (elapsed + eta) if eta is not None else 100.0 * step / max(planned, 1)
        self.status.update(step=step, planned_steps=planned, eta_seconds=None if eta is None else round(eta, 1),
                           elapsed_seconds=round(elapsed, 1), percent=round(min(99.0, percent), 1),
                           phase=f"Training: step {step:,} of about {planned:,}")

    # checks and saves --------------------------------------------------------------------------
    def _averaged(self) -> dict[str, np.ndarray]:
        return {key: var.numpy() for key, var in zip(self.keys, self.average)}

    def _check(self, lr: float, final: bool = False) -> bool:
        """Score the averaged weights on the held-out photos, save, log a metrics row. True: stop early.

        The kept model is the best-scoring one; at the end of the schedule the final weights are kept
        unless they score clearly worse (see `keeps_final`).
        """
        cfg = self.settings
        averaged = self._averaged()
        texts = self._read_check_photos(averaged)
        labels = self.data.check_labels
        score = (plate_accuracy(texts, labels), char_accuracy(texts, labels))
        loss_sum, right, count = (float(v) for v in self.totals.numpy())
        self.totals.assign([0.0, 0.0, 0.0])
        self.checks += 1
        self.checked_at = self.step
        improved = keeps_final(score[0], self.best[0], len(labels)) if final else score > self.best
        if improved:
            self.best, self.best_step, self.stale = score, self.step, 0
            self._save("best", weights=averaged)
        else:
            self.stale += 1
        elapsed = self.budget.elapsed()
        row = {"check": self.checks, "step": self.step, "passes": round(self.step / self._steps_per_pass(), 2),
               "loss": loss_sum / max(count, 1), "train_plate_accuracy": right / max(count, 1),
               "val_plate_accuracy": score[0], "val_char_accuracy": score[1], "learning_rate": lr,
               "elapsed": round(elapsed, 1)}
        self._save_last(metrics_row=row)  # checkpoint first (carrying the row), then the line: a kill between is mended
        self.status.append_metrics(row)
        self.status.update(best_val_plate_accuracy=self.best[0], best_step=self.best_step, checks=self.checks)
        self._report(self.step)
        log.info("step %d loss %.4f train %.3f held-out plate %.3f char %.3f lr %.2e", self.step, row["loss"],
                 row["train_plate_accuracy"], score[0], score[1], lr)
        if cfg.patience and self.stale >= cfg.patience:
            log.info("No better score on held-out photos for %d checks: stopping early.", self.stale)
            return True
        return False

    def _read_check_photos(self, weights: dict[str, np.ndarray]) -> list[str]:
        ckpt.restore(self.checker, weights)
        texts = []
        for start in range(0, len(self.check_inputs), 256):
            ids = self.check_step(self.check_inputs[start:start + 256]).numpy()
            texts.extend(self.data.charset.decode(row) for row in ids)
        return texts

    def _meta(self, **extra) -> dict:
        return {"step": self.step, "best": list(self.best), "best_step": self.best_step, "stale": self.stale,
                "checks": self.checks, "elapsed": self.budget.elapsed(), "charset": self.data.charset.chars,
                "model": self.model.get_config(), "settings": self.settings.to_dict(), "saved_at": now_iso(), **extra}

    def _save(self, which: str, weights: dict | None = None, **meta) -> None:
        if self.chief:
            ckpt.save(self.run.checkpoint(which), self.model, self._meta(**meta), weights=weights)

    def _save_last(self, metrics_row: dict | None = None) -> None:
        if self.chief:
            ckpt.save(self.run.checkpoint("last"), self.model, self._meta(metrics_row=metrics_row),
                      averaged=self._averaged(), optimizer=self.optimizer)

    def _save_snapshot(self, step: int) -> None:
        self._save(f"step-{step}", weights=self._averaged())

    def _mend_metrics(self) -> None:
        """A kill between a check's checkpoint and its metrics line lost the line: write it from the checkpoint."""
        row = self.meta.get("metrics_row")
        done = [r.get("check", 0) for r in self.run.metrics()]
        if row and (not done or max(done) < row["check"]):
            self.status.append_metrics(row)

    # the end -----------------------------------------------------------------------------------
    def finish(self) -> None:
        if not self.chief:
            return
        from engine.reading.verdict import judge

        evaluation = self._evaluate()
        verdict = judge(evaluation, self.best[0] if self.best[0] >= 0 else None, self.data.notes)
        if evaluation is not None:  # the Results page and the bundle show it with the score
            from engine.storage.files import atomic_write_json

            atomic_write_json(self.run.evaluation_path, {**evaluation, "verdict": verdict})
        self.status.update(verdict=verdict)
        if self.bundle:
            self._phase("Preparing the download")
            try:
                from engine.reading.export import make_bundle

                make_bundle(self.run.path)
            except Exception as exc:  # noqa: BLE001 - the model is trained; the bundle can be made again later
                log.warning("The download bundle could not be prepared: %s", exc)
        import shutil

        shutil.rmtree(self.run.path / "cache", ignore_errors=True)
        self.status.update(state="finished", finished_at=now_iso(), eta_seconds=0, percent=100,
                           phase="Finished", elapsed_seconds=round(self.budget.elapsed(), 1), step=self.step)

    def _evaluate(self) -> dict | None:
        """Score the best model on the dataset's test photos (a dataset folder has them)."""
        from engine.data.dataset import is_dataset_folder
        from engine.reading.evaluate import evaluate

        dataset = Path(self.config["dataset"])
        if not is_dataset_folder(dataset):
            return None
        check_split(dataset, self.resolved.get("split_fingerprint"))
        self._phase("Scoring the model on the test photos")
        try:
            result = evaluate(self.run.path, dataset, output_dir=self.run.path, checkpoint="best")
        except ValueError as exc:  # no test photos
            log.info("No final score: %s", exc)
            return None
        log.info("Test: plate accuracy %.4f, character accuracy %.4f on %d photos",
                 result["plate_accuracy"], result["char_accuracy"], result["count"])
        return result


def _check_stop() -> None:
    if STOP.is_set():
        raise StopRequested()
