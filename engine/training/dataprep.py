"""What a training learns from and checks on: the data side of a run, decided once at its start.

From the dataset: the training photos (a stream, never all in memory), held-out plates to check
progress on (grouped by plate, so a plate photographed twice is never on both sides), the
characters to read (the starting model's plus any new ones), the model box chosen from the photos'
shape, and rendered look-alike plates that follow the real labels' layout with random characters,
so every character is seen many times even in a few hundred photos.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.data.dataset import DatasetFolder, is_dataset_folder
from engine.data.labels import MASK_MARKS
from engine.data.sources import Example, load_examples
from engine.data.split import grouped_split
from engine.model.charset import Charset
from engine.model.preprocess import SOME_TWO_ROW, STRIDE, input_shape_for, two_row_shaped
from engine.model.starter import StartingModel
from engine.training import pipeline
from engine.training.settings import LOOKALIKES, TrainConfig

log = logging.getLogger(__name__)

MAX_CHECK_PHOTOS = 2000  # checks during training use at most this many held-out photos
SHARDS_FROM = 20_000  # photos: from this many on, training reads the dataset's TFRecord shards
Progress = Callable[[str], None]


@dataclass
class TrainingData:
    sources: list  # [(pipeline.Records, weight)]
    box: pipeline.Box
    charset: Charset
    slots: int
    train_count: int
    check_images: list[bytes] = field(repr=False)
    check_labels: list[str]
    notes: dict  # facts recorded in config.json (counts, split fingerprint, warnings)
    extra_boxes: list = field(default_factory=list)  # more input sizes to learn (the starter model's)

    @property
    def boxes(self) -> list:
        return [self.box, *self.extra_boxes]


def _hold_out(labels: list[str], fraction: float, seed: int) -> list[bool]:
    """True for the photos held out for checks (whole plates; all of them kept when too few)."""
    if len(labels) < 20 or fraction <= 0:
        return [False] * len(labels)
    sides = grouped_split(labels, fraction, seed + 1)
    held = [s == "test" for s in sides]
    return held if any(held) and not all(held) else [False] * len(labels)


def prepare(settings: TrainConfig, dataset: str, val_dataset: str | None, start: StartingModel | None,
            progress: Progress, resolved: dict | None = None) -> TrainingData:
    """Everything the data side of a training needs. `resolved`: what an earlier session of the same
    run decided (a resumed run keeps its box, slots and characters)."""
    resolved = resolved or {}
    path = Path(dataset)
    notes: dict = {}
    if val_dataset and Path(val_dataset).resolve() == path.resolve():
        log.warning("--val-dataset is the training dataset: its test photos are kept for the final score; "
                    "progress is checked on held-out training photos instead.")
        notes["val_dataset_ignored"] = True
        val_dataset = None
    progress("Reading the list of photos")
    if is_dataset_folder(path):
        folder = DatasetFolder(path)
        rows = [r for r in folder.rows() if r["split"] == "train" and not r["excluded"]]
        if not rows:
            raise ValueError(f"No training photos in {path.name}.")
        labels = [r["label"] for r in rows]
        sizes = [(int(r["width"]), int(r["height"])) for r in rows if r.get("width") and r.get("height")]
        held = [False] * len(rows) if val_dataset else _hold_out(labels, settings.val_fraction, settings.seed)
        train_rows = [r for r, h in zip(rows, held) if not h]
        check_rows = [r for r, h in zip(rows, held) if h]
        notes["split_fingerprint"] = folder.split_fingerprint()
        records = _dataset_records(folder, train_rows, {r["label"] for r in check_rows})
        train_labels = [r["label"] for r in train_rows]
        check = [Example(r["file"], r["label"], folder.image_path(r["file"]).read_bytes())
                 for r in _spread(check_rows, MAX_CHECK_PHOTOS)]
    else:
        examples = load_examples(path, split="train")
        if not examples:
            raise ValueError(f"No training images found in {dataset}.")
        labels = [e.label for e in examples]
        held = [False] * len(examples) if val_dataset else _hold_out(labels, settings.val_fraction, settings.seed)
        train_examples = [e for e, h in zip(examples, held) if not h]
        check = _spread([e for e, h in zip(examples, held) if h], MAX_CHECK_PHOTOS)
        sizes = _photo_sizes(train_examples)
        records = pipeline.from_memory([e.image for e in train_examples], [e.label for e in train_examples])
        train_labels = [e.label for e in train_examples]
    if val_dataset:
        check = _spread(load_examples(val_dataset, split="test"), MAX_CHECK_PHOTOS)
    if not check:  # too few photos to spare any: check on what it learns from
        notes["checked_on_training_photos"] = True
        check = _training_sample(path, train_labels, records)

    charset = Charset(resolved["charset"]) if "charset" in resolved else _charset(start, train_labels)
    unknown = charset.unknown(e.label for e in check)
    if unknown:
        log.warning("Held-out labels use characters never seen in training: %s", unknown)
    slots = int(resolved.get("slots") or (settings.max_prediction or max(len(t) for t in train_labels) + 1) + 1)
    box = _box(settings, sizes, start, resolved)
    sources = [(records, 1.0)]
    count = LOOKALIKES if settings.synthetic_fraction > 0 else 0
    if count:
        progress(f"Drawing {count} look-alike plates")
        two_rows = _two_row_share(box, sizes)
        sources.append((_lookalikes(train_labels, charset, count, two_rows, settings.seed), settings.synthetic_fraction))
    notes.update({"train_images": len(train_labels), "check_images": len(check), "lookalikes": count})
    log.info("Data: %d training photos, %d held out for checks, %d look-alikes; input %dx%d; %d characters: %s",
             len(train_labels), len(check), count, box.height, box.width, len(charset.chars), charset.chars)
    return TrainingData(sources, box, charset, slots, len(train_labels), [e.image for e in check],
                        [e.label for e in check], notes)


def _dataset_records(folder: DatasetFolder, rows: list[dict], held_labels: set[str]) -> pipeline.Records:
    """Small datasets stream their image files; large ones their TFRecord shards (written on first use)."""
    if len(rows) < SHARDS_FROM:
        return pipeline.from_files([folder.image_path(r["file"]) for r in rows], [r["label"] for r in rows])
    from engine.data.tfrecords import ensure_dataset_records

    shards = ensure_dataset_records(folder.path)["train"]
    return pipeline.from_shards(shards, len(rows), drop=held_labels)


def _spread(items: list, limit: int) -> list:
    """At most `limit` items, evenly spread (checks stay quick on big sets)."""
    if len(items) <= limit:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def _training_sample(path: Path, labels: list[str], records) -> list[Example]:
    if is_dataset_folder(path):
        rows = [r for r in DatasetFolder(path).rows() if r["split"] == "train" and not r["excluded"]]
        return [Example(r["file"], r["label"], (path / "images" / r["file"]).read_bytes()) for r in _spread(rows, 200)]
    return _spread(load_examples(path, split="train"), 200)


def _photo_sizes(examples: list[Example]) -> list[tuple[int, int]]:
    from engine.data.images import header_size

    return [size for e in _spread(examples, 500) if (size := header_size(e.image))]


def _charset(start: StartingModel | None, labels: list[str]) -> Charset:
    """The starting model's characters (kept in place) plus the dataset's new ones."""
    return start.charset.extended(labels) if start else Charset.from_labels(labels)


def _box(settings: TrainConfig, sizes: list[tuple[int, int]], start: StartingModel | None, resolved: dict) -> pipeline.Box:
    if "input" in resolved:
        height, width = resolved["input"]
    elif start is not None and start.source != "starter" and not (settings.max_height or settings.max_width):
        height, width = start.input_shape  # continuing a run: same input as that run
    else:
        height, width = input_shape_for(sizes)
        height, width = settings.max_height or height, settings.max_width or width
    height = -(-int(height) // STRIDE[0]) * STRIDE[0]  # the network needs multiples of its stride
    width = -(-int(width) // STRIDE[1]) * STRIDE[1]
    return pipeline.Box(height, width)


# A space where digits and letters meet; a hidden character (mask mark) sides with its neighbours.
_OTHER = f"[^\\d{re.escape(MASK_MARKS)}]"
_BOUNDARY = re.compile(rf"(?<=\d)(?={_OTHER})|(?<={_OTHER})(?=\d)")
AMBIGUOUS = set("OIQ")  # drawn alike with 0 and 1 in many fonts: showing them would teach confusion


def _kind(char: str) -> str:
    if char in MASK_MARKS:
        return "hidden"  # stays hidden where the real plate hides one: covered, not printed
    if char.isdigit():
        return "digit"
    if char.isalpha():
        return "latin" if char.isascii() else "letter"  # "letter": e.g. a Chinese province character
    return "sign"  # e.g. a dash a label keeps


def lookalike_label(label: str, chars: str, rng: np.random.Generator) -> str:
    """Random characters in the layout of `label`: each character is replaced by one of the same kind
    (digit, Latin letter, other letter, sign, hidden) from the charset, never by O, I or Q (read as digits)."""
    pools: dict[str, list[str]] = {}
    for c in chars:
        if c not in AMBIGUOUS and c.isprintable():
            pools.setdefault(_kind(c), []).append(c)
    out = []
    for c in label:
        pool = pools.get(_kind(c)) or [c]
        out.append(pool[int(rng.integers(0, len(pool)))])
    return "".join(out)


def _two_row_share(box: pipeline.Box, sizes: list[tuple[int, int]]) -> float:
    """The share of look-alikes printed on two rows: half in the square box (a tenth or more of the
    photos are square); else twice the share of two-row-shaped photos, when they are enough to have
    chosen the taller box for the long ones (SOME_TWO_ROW): a few two-row plates among long ones learn
    from look-alikes too (bench/bench_accuracy.py --set two-row --layouts "es*8,es-two-row" --masked 2:
    1 and 3 more of 31 two-row plates, quiet and busy)."""
    if box.height >= 64:
        return 0.5
    share = two_row_shaped(sizes) / max(1, len(sizes))
    return min(0.5, 2 * share) if share >= SOME_TWO_ROW else 0.0


def lookalike_print(label: str, two_rows: float, rng: np.random.Generator) -> tuple[str, str]:
    """How a look-alike prints `label` (a space where digits and letters meet) and the layout that
    draws it. A share `two_rows` of them print on two rows, split anywhere but after a lone
    character: real plates put 2 to 5 on top (Chinese 2 + 5, Spanish 4 + 3, square European
    2 + 4 or 5 + 2), rarely just half."""
    from engine.data import render

    if two_rows and rng.random() < two_rows and len(label) >= 4:
        cut = int(rng.integers(2, len(label) - 1))
        return "\n".join(_BOUNDARY.sub(" ", row) for row in (label[:cut], label[cut:])), str(rng.choice(render.TWO_ROW))
    return _BOUNDARY.sub(" ", label), str(rng.choice(render.ONE_ROW))


def _lookalikes(labels: list[str], charset: Charset, count: int, two_rows: float, seed: int) -> pipeline.Records:
    """Rendered plates imitating the real labels (a share `two_rows` of them on two rows), encoded once
    as PNG at about the working size."""
    import cv2

    from engine.data import render

    fonts = render.hershey_fonts() + render.system_fonts()
    rng = np.random.default_rng([seed, 7919])
    wanted = set(charset.chars)
    images, out_labels = [], []
    for _ in range(count):
        label = lookalike_label(labels[int(rng.integers(0, len(labels)))], charset.chars, rng)
        label = "".join(c for c in label if c in wanted)
        printed, layout = lookalike_print(label, two_rows, rng)
        try:
            image = render.render_plate(printed, rng, layout, fonts)
        except ValueError:  # a character no available font draws: skip this plate
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        ok, png = cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if ok:
            images.append(png.tobytes())
            out_labels.append(label)
    return pipeline.from_memory(images, out_labels, name="lookalikes")
