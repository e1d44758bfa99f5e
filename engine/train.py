"""Training: `python -m engine train DATASET --model-dir RUN` (what the dashboard launches as a subprocess).

The run folder is the contract (engine/runfolder.py): status.json, metrics.jsonl, train.log and
atomic checkpoints. SIGTERM saves and exits as `stopped`; starting again on the same folder resumes
from the last checkpoint (weights, optimizer state, epoch, elapsed time).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import queue
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine import checkpoint as ckpt
from engine.charset import EOS, GO, Charset
from engine.config import TrainConfig, config_for
from engine.locks import TrainingBusy, training_lock
from engine.preprocess import input_shape_for
from engine.runfolder import RunFolder, now_iso
from engine.sources import Example, is_dataset_folder, load_examples
from engine.split import grouped_split

log = logging.getLogger("engine.train")

# Keep originals at this multiple of the model height: augmentation is cheap at that size and
# the final resize still has detail to work with.
WORK_SCALE = 2


class StopRequested(Exception):
    """SIGTERM (the dashboard's Stop button) arrived; the loop saves and leaves cleanly."""


# -------------------------------------------------------------------------------------------------
# command line
# -------------------------------------------------------------------------------------------------
def cli_train(args: argparse.Namespace) -> int:
    started = time.time()
    config = config_for(
        args.preset,
        max_width=args.max_width, max_height=args.max_height, max_prediction=args.max_prediction,
        num_epoch=args.num_epoch, batch_size=args.batch_size, initial_learning_rate=args.initial_learning_rate,
        steps_per_checkpoint=args.steps_per_checkpoint, max_minutes=args.max_minutes, patience=args.patience,
        strategy=None if args.strategy == "default" else args.strategy, seed=args.seed,
    )
    return run_training(args.dataset_path, args.model_dir, config, val_dataset=args.val_dataset,
                        resume=not args.no_resume, started=started)


def _attach_log_file(run: RunFolder) -> logging.Handler:
    run.path.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return handler


def run_training(dataset_path: str | os.PathLike, model_dir: str | os.PathLike, config: TrainConfig, *,
                 val_dataset: str | None = None, resume: bool = True, started: float | None = None) -> int:
    """Train into `model_dir`, keeping status.json true at every moment. Returns an exit code."""
    started = started or time.time()
    run = RunFolder(model_dir)
    handler = _attach_log_file(run)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with training_lock(holder=f"run {run.path.name}, pid {os.getpid()}"):
            run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), error=None,
                              message="Loading data", finished_at=None)
            Trainer(run, dataset_path, config, val_dataset=val_dataset, resume=resume, started=started).fit()
        return 0
    except TrainingBusy as exc:
        log.error("%s", exc)
        run.update_status(state="failed", pid=None, error=str(exc), message=str(exc))
        return 3
    except StopRequested:
        log.info("Stopped on request; the last checkpoint is kept.")
        run.update_status(state="stopped", pid=None, message="Stopped. Resume continues from the last checkpoint.",
                          finished_at=now_iso(), eta_seconds=None)
        return 0
    except Exception as exc:  # noqa: BLE001 - the run must record any failure for the operator
        log.error("Training failed: %s\n%s", exc, traceback.format_exc())
        run.update_status(state="failed", pid=None, error=f"{type(exc).__name__}: {exc}",
                          message="Training failed. See train.log for details.", finished_at=now_iso(), eta_seconds=None)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger().removeHandler(handler)
        handler.close()


_STOP = threading.Event()


def _raise_stop(signum, frame):  # noqa: ARG001 - signal handler signature
    """SIGTERM: ask the loop to save and leave at the next step (never mid-save)."""
    _STOP.set()


def _check_stop() -> None:
    if _STOP.is_set():
        raise StopRequested()


# -------------------------------------------------------------------------------------------------
# data
# -------------------------------------------------------------------------------------------------
def _decode_all(examples: list[Example]) -> list[np.ndarray]:
    import cv2

    return [cv2.imdecode(np.frombuffer(ex.image, np.uint8), cv2.IMREAD_GRAYSCALE) for ex in examples]


def _resize_for_work(gray: np.ndarray, work_height: int, max_work_width: int) -> np.ndarray:
    import cv2

    h, w = gray.shape
    scale = min(work_height / h, max_work_width / w)
    size = (max(8, int(round(w * scale))), max(8, int(round(h * scale))))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _hold_out_validation(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Split training examples by label so validation plates are never trained on."""
    if len(examples) < 20 or fraction <= 0:
        return examples, examples  # too few to spare any: validate on what we train on
    sides = grouped_split([e.label for e in examples], fraction, seed + 1)
    train = [e for e, s in zip(examples, sides) if s == "train"]
    val = [e for e, s in zip(examples, sides) if s == "test"]
    return (train, val) if val and train else (examples, examples)


class BatchMaker:
    """Turns decoded images + labels into model batches (augmented or not)."""

    def __init__(self, images: list[np.ndarray], labels: list[str], charset: Charset, config: TrainConfig, length: int):
        self.images, self.labels, self.charset, self.config, self.length = images, labels, charset, config, length

    def batch(self, indices: np.ndarray, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        from engine.augment import augment
        from engine.preprocess import fit_to_box

        cfg, n, length = self.config, len(indices), self.length
        x = np.zeros((n, cfg.max_height, cfg.max_width, 1), np.float32)
        widths = np.zeros(n, np.int32)
        dec_in = np.zeros((n, length), np.int32)
        target = np.zeros((n, length), np.int32)
        ctc = np.zeros((n, length), np.int32)
        ctc_len = np.zeros(n, np.int32)
        for row, i in enumerate(indices):
            img = augment(self.images[i], rng) if rng is not None else self.images[i]
            x[row], place = fit_to_box(img, cfg.max_height, cfg.max_width)
            widths[row] = place.width
            tokens = self.charset.encode(self.labels[i])[: length - 1]
            dec_in[row, : len(tokens) + 1] = [GO] + tokens
            target[row, : len(tokens) + 1] = tokens + [EOS]
            ids = self.charset.char_ids(self.labels[i])[: length - 1]
            ctc[row, : len(ids)] = ids
            ctc_len[row] = len(ids)
        return {"images": x, "widths": widths, "dec_in": dec_in, "target": target, "ctc": ctc, "ctc_len": ctc_len}


def _prefetch(make, items, depth: int = 3):
    """Build batches in a thread while TensorFlow trains on the previous one."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in items:
                q.put(make(item))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (got := q.get()) is not done:
        if isinstance(got, BaseException):
            raise got
        yield got


# -------------------------------------------------------------------------------------------------
# the trainer
# -------------------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, run: RunFolder, dataset_path, config: TrainConfig, *, val_dataset=None, resume=True, started=None):
        self.run, self.started = run, started or time.time()
        self.dataset_path = str(dataset_path)
        state = ckpt.load(run.checkpoint("last")) if resume and run.checkpoint("last").exists() else None
        if state is not None:
            # A resumed run keeps its model shape and charset; the time budget and epochs may change.
            saved = TrainConfig.from_dict(state.meta["config"])
            for key in ("max_minutes", "num_epoch", "patience", "steps_per_checkpoint"):
                setattr(saved, key, getattr(config, key))
            config = saved
            log.info("Resuming from epoch %d (step %d)", state.meta["epoch"], state.meta["step"])
        self.config, self.resume_state = config, state
        self.val_dataset = val_dataset

    # setup -------------------------------------------------------------------------------------
    def _load_data(self):
        cfg = self.config
        train = load_examples(self.dataset_path, split="train")
        if not train:
            raise ValueError(f"No training images found in {self.dataset_path}.")
        if self.val_dataset:
            val = load_examples(self.val_dataset, split="test")
        else:
            train, val = _hold_out_validation(train, cfg.val_fraction, cfg.seed)
        if self.resume_state is not None:
            charset = Charset(self.resume_state.meta["charset"])
        else:
            charset = Charset.from_labels(e.label for e in train)
        longest = max(len(e.label) for e in train)
        if cfg.max_prediction is None:
            cfg.max_prediction = longest + 2
        unknown = sorted({c for e in val for c in e.label if not charset.knows(c)})
        if unknown:
            log.warning("Validation labels use characters never seen in training: %s", "".join(unknown))
        train_grays, val_grays = _decode_all(train), _decode_all(val)
        if cfg.max_height is None or cfg.max_width is None:
            height, width = input_shape_for([(g.shape[1], g.shape[0]) for g in train_grays])
            cfg.max_height, cfg.max_width = cfg.max_height or height, cfg.max_width or width
            log.info("Model input chosen from the photos: %d x %d px (height x width)", cfg.max_height, cfg.max_width)
        work_h, work_w = cfg.max_height * WORK_SCALE, cfg.max_width * WORK_SCALE * 2
        log.info("Data: %d training images, %d validation images, %d characters: %s",
                 len(train), len(val), charset.num_chars, charset.chars)
        self.charset = charset
        length = cfg.max_prediction + 1
        train_images = [_resize_for_work(g, work_h, work_w) for g in train_grays]
        train_labels = [e.label for e in train]
        extra = int(round(cfg.synthetic_fraction * len(train)))
        if extra:
            import cv2

            from engine.synthetic import lookalikes

            for bgr, label in lookalikes(train_labels, charset.chars, extra, cfg.seed):
                gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
                train_images.append(_resize_for_work(gray, work_h, work_w))
                train_labels.append(label)
            log.info("Added %d synthetic look-alike plates to the training data", extra)
        self.train_batches = BatchMaker(train_images, train_labels, charset, cfg, length)
        self.val_batches = BatchMaker([_resize_for_work(g, work_h, work_w) for g in val_grays],
                                      [e.label for e in val], charset, cfg, length)
        self.val_labels = [e.label for e in val]

    def _build(self):
        import keras
        import tensorflow as tf

        from engine.distribute import make_strategy
        from engine.model import build_model

        cfg = self.config
        tf.random.set_seed(cfg.seed)
        keras.utils.set_random_seed(cfg.seed)
        self.strategy = make_strategy(cfg.strategy)
        with self.strategy.scope():
            self.model = build_model(self.charset.num_chars, cfg.max_prediction, cfg.max_height, cfg.max_width,
                                     filters=cfg.filters, rnn_units=cfg.rnn_units, attention_units=cfg.rnn_units)
            ema = cfg.ema_momentum > 0
            self.optimizer = keras.optimizers.Adam(cfg.initial_learning_rate, clipnorm=5.0, use_ema=ema,
                                                   ema_momentum=cfg.ema_momentum if ema else 0.99)
            self.optimizer.build(self.model.trainable_variables)
        if self.resume_state is not None:
            ckpt.restore(self.resume_state, self.model, self.optimizer)
        self._compile_steps()

    def _compile_steps(self):
        import tensorflow as tf

        cfg, model, optimizer, strategy = self.config, self.model, self.optimizer, self.strategy
        length = cfg.max_prediction + 1
        global_batch = cfg.batch_size
        vocab = self.charset.vocab_size
        spec = {
            "images": tf.TensorSpec([None, cfg.max_height, cfg.max_width, 1], tf.float32),
            "widths": tf.TensorSpec([None], tf.int32),
            "dec_in": tf.TensorSpec([None, length], tf.int32),
            "target": tf.TensorSpec([None, length], tf.int32),
            "ctc": tf.TensorSpec([None, length], tf.int32),
            "ctc_len": tf.TensorSpec([None], tf.int32),
        }

        def per_example_loss(batch, training):
            from engine.model import encoder_steps

            enc, mask, ctc_logits = model.encode(batch["images"], batch["widths"], training=training)
            logits, _ = model.decode_teacher(enc, mask, batch["dec_in"], training=training)
            target = batch["target"]
            weights = tf.cast(tf.sequence_mask(batch["ctc_len"] + 1, length), tf.float32)
            onehot = tf.one_hot(target, vocab)
            smooth = cfg.label_smoothing
            onehot = onehot * (1.0 - smooth) + smooth / vocab
            ce = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
            attn_loss = tf.reduce_sum(ce * weights, axis=1) / tf.reduce_sum(weights, axis=1)
            logit_len = tf.maximum(encoder_steps(batch["widths"]), 1)
            ctc_loss = tf.nn.ctc_loss(batch["ctc"], ctc_logits, batch["ctc_len"], logit_len,
                                      logits_time_major=False, blank_index=-1)
            ctc_loss = ctc_loss / tf.cast(tf.maximum(batch["ctc_len"], 1), tf.float32)
            pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
            right = tf.reduce_all(tf.logical_or(tf.equal(pred, target), weights == 0), axis=1)
            return attn_loss + cfg.ctc_weight * ctc_loss, tf.cast(right, tf.float32)

        def replica_step(batch):
            with tf.GradientTape() as tape:
                losses, right = per_example_loss(batch, True)
                loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return tf.reduce_sum(losses), tf.reduce_sum(right)

        @tf.function(input_signature=[spec], reduce_retracing=True)
        def train_step(batch):
            loss, right = strategy.run(replica_step, args=(batch,))
            return (strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", right, axis=None))

        @tf.function(input_signature=[spec["images"], spec["widths"]])
        def read_step(images, widths):
            return model((images, widths), training=False)

        self.train_step, self.read_step = train_step, read_step

    # loop --------------------------------------------------------------------------------------
    def fit(self) -> None:
        self._load_data()
        _check_stop()
        self._build()
        _check_stop()
        cfg, run = self.config, self.run
        meta = self.resume_state.meta if self.resume_state else {}
        epoch, step = meta.get("epoch", 0), meta.get("step", 0)
        best, best_epoch = meta.get("best", -1.0), meta.get("best_epoch", 0)
        elapsed_before = self.elapsed_before = meta.get("elapsed", 0.0)
        self._mend_metrics(meta)
        n = len(self.train_batches.labels)
        steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
        total_steps = steps_per_epoch * cfg.num_epoch
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        # Reserve time for the final evaluation so the whole run fits the budget.
        eval_reserve = min(60.0, 2.0 + 0.004 * n)
        self.session_start = self.started
        if not self.resume_state:
            run.write_config({**cfg.to_dict(), "dataset": self.dataset_path, "charset": self.charset.chars,
                              "val_dataset": self.val_dataset, "train_images": n,
                              "validation_images": len(self.val_labels), "created_at": now_iso()})
        run.update_status(state="running", epochs=cfg.num_epoch, steps_per_epoch=steps_per_epoch, epoch=epoch,
                          step=step, message="Training", best_val_plate_accuracy=max(best, 0.0) if best >= 0 else None,
                          best_epoch=best_epoch or None)
        stale = 0
        epoch_times: list[float] = []
        out_of_time = False
        while epoch < cfg.num_epoch and not out_of_time:
            t0 = time.time()
            rng = np.random.default_rng(cfg.seed * 100003 + epoch)
            order = rng.permutation(n)
            chunks = [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
            loss_sum = right_sum = seen = 0.0
            for batch in _prefetch(lambda idx: self.train_batches.batch(idx, rng if cfg.augment else None), chunks):
                lr = _learning_rate(cfg, step, total_steps, self._elapsed(elapsed_before), budget)
                self.optimizer.learning_rate.assign(lr)
                loss, right = self.train_step(batch)
                loss_sum += float(loss)
                right_sum += float(right)
                seen += len(batch["widths"])
                step += 1
                if _STOP.is_set():
                    self._save("last", epoch, step, best, best_epoch, elapsed_before)
                    _check_stop()
                if cfg.steps_per_checkpoint and step % cfg.steps_per_checkpoint == 0:
                    self._save("last", epoch, step, best, best_epoch, elapsed_before)
                if budget and self._elapsed(elapsed_before) + eval_reserve + self._val_seconds() > budget:
                    out_of_time = True
                    break
            epoch += 1
            with self._averaged_weights():
                val = self.validate()
                improved = val["plate_accuracy"] > best
                if improved:  # the best model is the averaged one, as validated
                    best, best_epoch, stale = val["plate_accuracy"], epoch, 0
                    self._save("best", epoch, step, best, best_epoch, elapsed_before, with_optimizer=False)
                else:
                    stale += 1
            epoch_seconds = time.time() - t0
            epoch_times.append(epoch_seconds)
            elapsed = self._elapsed(elapsed_before)
            row = {"epoch": epoch, "step": step, "loss": loss_sum / max(seen, 1),
                   "train_plate_accuracy": right_sum / max(seen, 1), "val_plate_accuracy": val["plate_accuracy"],
                   "val_char_accuracy": val["char_accuracy"], "learning_rate": float(lr),
                   "seconds": round(epoch_seconds, 2), "elapsed": round(elapsed, 1)}
            # checkpoint first (carrying the row), then the metrics line: a kill in between is mended on resume
            self._save("last", epoch, step, best, best_epoch, elapsed_before, metrics_row=row)
            run.append_metrics(row)
            log.info("epoch %d/%d loss %.4f train %.3f val plate %.3f char %.3f lr %.2e (%.1fs)", epoch, cfg.num_epoch,
                     row["loss"], row["train_plate_accuracy"], row["val_plate_accuracy"], row["val_char_accuracy"],
                     lr, epoch_seconds)
            eta = _eta(epoch_times, cfg.num_epoch - epoch, budget, elapsed, eval_reserve)
            run.update_status(epoch=epoch, step=step, eta_seconds=eta, elapsed_seconds=round(elapsed, 1),
                              best_val_plate_accuracy=best, best_epoch=best_epoch)
            if cfg.patience and stale >= cfg.patience:
                log.info("No better validation accuracy for %d epochs: stopping early.", stale)
                break
        if out_of_time:
            log.info("Time budget of %.1f minutes reached.", cfg.max_minutes)
        self.finish()

    def _mend_metrics(self, meta: dict) -> None:
        """A kill between the epoch's checkpoint and its metrics line lost the line: write it from the checkpoint."""
        row = meta.get("metrics_row")
        done = [r.get("epoch", 0) for r in self.run.metrics()]
        if row and row.get("epoch") == meta.get("epoch") and (not done or max(done) < row["epoch"]):
            self.run.append_metrics(row)

    def _elapsed(self, before: float) -> float:
        return before + (time.time() - self.session_start)

    def _val_seconds(self) -> float:
        return getattr(self, "_last_val_seconds", 1.0)

    def validate(self) -> dict:
        t0 = time.time()
        texts = self.read_texts(self.val_batches)
        self._last_val_seconds = time.time() - t0
        from engine.metrics import char_accuracy, plate_accuracy

        return {"plate_accuracy": plate_accuracy(texts, self.val_labels), "char_accuracy": char_accuracy(texts, self.val_labels)}

    def read_texts(self, maker: BatchMaker, batch_size: int = 256) -> list[str]:
        texts = []
        for start in range(0, len(maker.labels), batch_size):
            b = maker.batch(np.arange(start, min(start + batch_size, len(maker.labels))), None)
            ids, _, _ = self.read_step(b["images"], b["widths"])
            texts.extend(self.charset.decode(row) for row in ids.numpy())
        return texts

    @contextmanager
    def _averaged_weights(self):
        """Temporarily put the moving average of the weights into the model (validation, best checkpoint)."""
        averages = getattr(self.optimizer, "_model_variables_moving_average", None) if self.config.ema_momentum > 0 else None
        if not averages:
            yield
            return
        variables = self.model.trainable_variables
        current = [v.numpy() for v in variables]
        for var, avg in zip(variables, averages):
            var.assign(avg)
        try:
            yield
        finally:
            for var, value in zip(variables, current):
                var.assign(value)

    def _save(self, which, epoch, step, best, best_epoch, elapsed_before, with_optimizer=True, metrics_row=None):
        meta = {"metrics_row": metrics_row, "epoch": epoch, "step": step, "best": best, "best_epoch": best_epoch,
                "elapsed": self._elapsed(elapsed_before), "charset": self.charset.chars,
                "config": self.config.to_dict(), "model": self.model.get_config(), "saved_at": now_iso()}
        ckpt.save(self.run.checkpoint(which), self.model, self.optimizer if with_optimizer else None, meta)

    def finish(self) -> None:
        """Evaluate the best checkpoint on the dataset's test split (if it has one), then mark finished."""
        run = self.run
        run.update_status(message="Evaluating on the test set", eta_seconds=None)
        from engine.evaluate import evaluate

        # only a dataset folder has a held-out test split; other sources are all training data
        test = load_examples(self.dataset_path, split="test") if is_dataset_folder(Path(self.dataset_path)) else []
        if test:
            result = evaluate(run.path, test, output_dir=run.path, checkpoint="best")
            log.info("Test: plate accuracy %.4f, character accuracy %.4f on %d images",
                     result["plate_accuracy"], result["char_accuracy"], result["count"])
        run.update_status(state="finished", pid=None, finished_at=now_iso(), eta_seconds=0,
                          message="Finished", elapsed_seconds=round(self._elapsed(self.elapsed_before), 1))


def _learning_rate(cfg: TrainConfig, step: int, total_steps: int, elapsed: float, budget: float | None) -> float:
    """Linear warm-up, then cosine decay over whichever runs out first: the epochs or the time budget."""
    warmup = min(150, max(5, total_steps // 20))  # short runs (small data) must not spend their steps warming up
    if step < warmup:
        return cfg.initial_learning_rate * (step + 1) / warmup
    progress = step / max(total_steps, 1)
    if budget:
        progress = max(progress, elapsed / budget)
    progress = min(1.0, progress)
    return cfg.initial_learning_rate * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def _eta(epoch_times: list[float], epochs_left: int, budget: float | None, elapsed: float, reserve: float) -> float:
    recent = epoch_times[-5:]
    by_epochs = epochs_left * (sum(recent) / len(recent)) + reserve
    if budget:
        return round(max(0.0, min(by_epochs, budget - elapsed)), 1)
    return round(by_epochs, 1)
