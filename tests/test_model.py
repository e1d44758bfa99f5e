"""The model's contracts: checkpoints by name, starting from another model, the schedule, the starter."""
from __future__ import annotations

import numpy as np
import pytest

from engine.model import checkpoint as ckpt
from engine.model.charset import Charset
from engine.model.network import build_model, read_outputs


def _texts(model, charset: Charset, images: np.ndarray) -> list[str]:
    out = read_outputs(**model(images, training=False))
    return [charset.decode(ids, int(n)) for ids, n in zip(out["ids"].numpy(), out["length"].numpy())]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(16, 32, 128, 1)).astype(np.float32)


def test_checkpoints_restore_by_name_and_refuse_a_different_network(tmp_path, images):
    charset = Charset("0123456789AB")
    model = build_model(charset.vocab_size, 8, 32, 128)
    path = tmp_path / "last.npz"
    ckpt.save(path, model, {"step": 3, "charset": charset.chars, "model": model.get_config()})
    state = ckpt.load(path)
    assert state.meta["step"] == 3 and "cnn/c1_conv/kernel" in state.weights
    again = build_model(charset.vocab_size, 8, 48, 128)  # another input size: the same weights fit
    ckpt.restore(again, state.weights)
    assert _texts(again, charset, images[:, :32]) is not None
    other = build_model(charset.vocab_size, 8, 32, 128, {"filters": [8, 16, 32, 48], "dim": 64})
    with pytest.raises(ckpt.CheckpointMismatch) as info:
        ckpt.restore(other, state.weights)
    assert "different shape" in str(info.value) and "cnn/" in str(info.value)
    bad = dict(state.weights)
    bad.pop("classifier/kernel")
    with pytest.raises(ckpt.CheckpointMismatch, match="missing: classifier/kernel"):
        ckpt.restore(model, bad)


def test_new_characters_are_added_and_known_ones_keep_their_readings(images):
    old = Charset("0123456789ABCDE")
    model = build_model(old.vocab_size, 9, 32, 128)
    before = _texts(model, old, images)
    new = old.extended(["AB*Z9"])
    assert new.chars == "0123456789ABCDE*Z"  # known characters keep their places; new ones are appended
    grown = build_model(new.vocab_size, 9, 32, 128)
    ckpt.restore(grown, ckpt.transplant(ckpt.model_weights(model), old, grown, new))
    assert _texts(grown, new, images) == before
    reordered = Charset("EDCBA9876543210")  # the same characters in another order still read the same
    moved = build_model(reordered.vocab_size, 9, 32, 128)
    ckpt.restore(moved, ckpt.transplant(ckpt.model_weights(model), old, moved, reordered))
    assert _texts(moved, reordered, images) == before


def test_slots_are_cut_or_extended_for_another_longest_plate(images):
    charset = Charset("0123456789")
    model = build_model(charset.vocab_size, 12, 32, 128)
    for slots in (6, 16):
        other = build_model(charset.vocab_size, slots, 32, 128)
        ckpt.restore(other, ckpt.transplant(ckpt.model_weights(model), charset, other, charset))
        assert len(_texts(other, charset, images)) == len(images)


@pytest.mark.parametrize("positions", [128, 400])  # the 32 x 128 and the 80 x 160 box's grids
def test_grid_attention_computes_what_keras_attention_computes_with_the_same_weights(positions):
    """The decoder's cross-attention takes a cheaper order of the same products: the same weights
    (so every checkpoint made with Keras's MultiHeadAttention, the starter's among them) must give
    the same output and the same attention maps (the GIFs)."""
    import keras

    from engine.model.network import GridAttention

    rng = np.random.default_rng(1)
    queries = rng.normal(size=(3, 10, 96)).astype(np.float32)
    grid = rng.normal(size=(3, positions, 96)).astype(np.float32)
    theirs, ours = keras.layers.MultiHeadAttention(4, 24), GridAttention(4, 24)
    theirs(queries, grid), ours(queries, grid)
    for weight in theirs.weights:  # trained-looking weights: biases included, none zero
        weight.assign(rng.normal(scale=0.2, size=weight.shape).astype(np.float32))
    ours.set_weights(theirs.get_weights())
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [w.path.split("/", 1)[1] for w in theirs.weights]
    out, attention = theirs(queries, grid, return_attention_scores=True)
    got, got_attention = ours(queries, grid, return_attention_scores=True)
    assert np.abs(np.asarray(out)).max() > 1.0  # not a trivially small output
    np.testing.assert_allclose(np.asarray(got), np.asarray(out), atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(got_attention), np.asarray(attention), atol=1e-5)


def test_the_schedule_warms_up_decays_to_a_floor_and_plans_in_steps():
    from engine.training.schedule import FLOOR, MIN_PLAN, Budget, learning_rate

    peak = 1e-3
    assert learning_rate(0, 1000, peak, 100) < learning_rate(99, 1000, peak, 100) == pytest.approx(peak)
    assert learning_rate(1000, 1000, peak, 100) == pytest.approx(FLOOR * peak)
    assert learning_rate(5000, 1000, peak, 100) == pytest.approx(FLOOR * peak), "never below the floor"
    assert learning_rate(500, 1000, peak, 100) > learning_rate(800, 1000, peak, 100)
    budget = Budget(max_steps=3000, max_seconds=None, spent_seconds=0.0, reserve_seconds=0.0)
    assert budget.planned_steps(10) == 3000 and not budget.out_of_time()
    slow = Budget(max_steps=3000, max_seconds=60.0, spent_seconds=59.0, reserve_seconds=0.0)
    slow.start_measuring(0)
    slow._speed_since = (slow._speed_since[0] - 10.0, 0)  # 10 s measured for 20 steps: 2 steps/s
    assert slow.planned_steps(20) == MIN_PLAN, "a busy machine shortens the plan, never below MIN_PLAN"


def test_the_final_weights_are_kept_unless_clearly_worse_than_the_best_check():
    """The kept model: a lucky mid-run check on a few held-out photos does not beat the fully
    trained weights, but a clearly better one does."""
    from engine.training.trainer import keeps_final

    assert keeps_final(49 / 59, 53 / 59, 59), "four photos of 59 is within the noise of the best of many checks"
    assert not keeps_final(40 / 59, 53 / 59, 59), "thirteen photos worse is not noise"
    assert keeps_final(0.96, 0.965, 1000) and not keeps_final(0.90, 0.95, 1000), "more photos, a finer judge"
    assert keeps_final(1.0, 1.0, 20) and not keeps_final(17 / 20, 1.0, 20), "three of twenty is more than 2.5 photos"


def test_the_starter_reads_generated_plates_well_above_chance():
    """The shipped starter model, before any training on the operator's photos."""
    from engine.data.sample import sample_images
    from engine.model.starter import STARTER_FILE, load_starter
    from engine.reading.metrics import char_accuracy, plate_accuracy
    from engine.reading.reader import PlateReader

    start = load_starter()
    assert "皖" in start.charset.chars and start.slots >= 10
    assert STARTER_FILE.stat().st_size < 3_000_000, "the shipped weights stay small"
    reader = PlateReader.from_checkpoint(STARTER_FILE)
    photos = list(sample_images(60, seed=42))
    texts = [r.text for r in reader.read([data for _, data in photos])]
    labels = [name.split("_")[0].split(".")[0] for name, _ in photos]
    assert char_accuracy(texts, labels) > 0.6 and plate_accuracy(texts, labels) > 0.2, (texts[:5], labels[:5])


def test_a_bfloat16_training_model_saves_float32_weights_that_read_the_same():
    """Training computes in bfloat16 where the CPU has it; what it saves is float32 and a float32
    reader built from it reads the same plates the same, and the readers built after it stay float32.
    A trained model (the starter) on generated plates: an untrained one's near-ties flip either way."""
    import keras
    import tensorflow as tf

    from engine.data.sample import sample_images
    from engine.model.preprocess import US_BOX, decode_gray, fit_to_box
    from engine.model.starter import load_starter

    start = load_starter()
    photos = np.stack([fit_to_box(decode_gray(data), *US_BOX)[0] for _, data in sample_images(48, seed=7)])[..., None]
    fast = build_model(start.charset.vocab_size, start.slots, *US_BOX, start.architecture, precision="bfloat16")
    ckpt.restore(fast, start.weights)
    assert {v.dtype for v in fast.weights} == {"float32"}
    out = fast(photos, training=False)
    assert out["logits"].dtype == tf.float32 and out["attention"].dtype == tf.float32
    assert keras.config.dtype_policy().name == "float32"
    exact = build_model(start.charset.vocab_size, start.slots, *US_BOX, start.architecture)
    ckpt.restore(exact, ckpt.model_weights(fast))
    assert exact.cnn.layers[0].compute_dtype == "float32"
    texts = [_texts(m, start.charset, photos) for m in (fast, exact)]
    assert sum(a == b for a, b in zip(*texts)) >= len(photos) - 1, list(zip(*texts))
    probs = [tf.nn.softmax(m(photos, training=False)["logits"]).numpy() for m in (fast, exact)]
    assert np.abs(probs[0] - probs[1]).max() < 0.05


def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it(tmp_path):
    import tensorflow as tf

    from engine.model.precision import compute_precision, native_bfloat16

    with_amx, without = tmp_path / "amx", tmp_path / "plain"
    with_amx.write_text("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    without.write_text("flags\t\t: fpu sse2 avx2 avx512f fma\n")
    assert not native_bfloat16(str(without)) and not native_bfloat16(str(tmp_path / "missing"))
    assert native_bfloat16(str(with_amx)) == (not tf.config.list_physical_devices("GPU"))
    assert compute_precision("float32") == "float32" and compute_precision("bfloat16") == "bfloat16"
    assert compute_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    with pytest.raises(ValueError, match="Unknown precision"):
        compute_precision("half")


def test_the_input_box_follows_the_photos_shape():
    """Long one-row plates get a low box; square and two-row plates a taller and wider one, so each
    row of text keeps about as many pixels as a one-row plate has."""
    from engine.model.preprocess import input_shape_for

    assert input_shape_for([(520, 110)] * 50) == (32, 128)  # Turkish / European
    assert input_shape_for([(300, 150)] * 50) == (48, 128)  # US
    assert input_shape_for([(300, 150)] * 40 + [(200, 160)] * 10) == (80, 160)  # a fifth two-row
    assert input_shape_for([(200, 160)] * 1 + [(520, 110)] * 99) == (32, 128)  # one odd crop does not decide
    # 1 in 25 two-row plates among long ones: 32 px would crush their rows (half of them misread)
    assert input_shape_for([(200, 160)] * 4 + [(520, 110)] * 96) == (48, 128)


def test_views_average_the_characters_probabilities_and_show_the_first_views_attention():
    """Three views of one photo: two read 'A' weakly, one reads 'B' strongly; the average decides."""
    import tensorflow as tf

    # slots: a character, then the end (token 0); vocabulary: end, A, B
    weak_a = [[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]
    strong_b = [[0.05, 0.05, 0.9], [0.9, 0.05, 0.05]]
    probs = np.array([weak_a, weak_a, strong_b], np.float32)
    attention = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    out = read_outputs(tf.math.log(probs), attention, views=3)
    # (0.5 + 0.5 + 0.05) / 3 = 0.35 for A against (0.4 + 0.4 + 0.9) / 3 = 0.57 for B
    assert out["ids"].numpy().tolist() == [[2, 0]] and out["length"].numpy().tolist() == [1]
    assert out["probs"].numpy()[0, 0] == pytest.approx(1.7 / 3, rel=1e-5)
    assert np.array_equal(out["attention"].numpy(), attention[:1])
    alone = read_outputs(tf.math.log(probs[:1]), attention[:1])  # the photo as given only: A
    assert alone["ids"].numpy().tolist() == [[1, 0]]


def test_views_crop_and_frame_the_photo_by_whole_pixels():
    from engine.model.preprocess import VIEWS, fit_views, view

    gray = np.arange(50 * 200, dtype=np.int64).reshape(50, 200).astype(np.uint8)
    assert view(gray, 0, 0).shape == (50, 200)
    tight = view(gray, -4, -2)  # 4 % of 50 rows = 2 off the top and the bottom, 2 % of 200 columns = 4 off each side
    assert np.array_equal(tight, gray[2:48, 4:196])
    loose = view(gray, 5, 5)  # 2 rows and 10 columns of repeated edge pixels on each side
    assert loose.shape == (54, 220) and np.array_equal(loose[2:52, 10:210], gray)
    assert np.array_equal(loose[0, 10:210], gray[0]) and np.array_equal(loose[2:52, 0], gray[:, 0])
    assert view(np.zeros((3, 5), np.uint8), -4, -2).shape == (3, 5)  # too small to crop: as given
    x, place = fit_views(gray, 32, 128)
    assert x.shape == (len(VIEWS), 32, 128, 1) and place.width == 128 and place.height == 32
