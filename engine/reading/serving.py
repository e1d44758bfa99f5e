"""In-graph preprocessing and decoding for the exported SavedModel: encoded image bytes in, text out.

Mirrors `engine.model.preprocess` (decode_gray + fit_to_box) with TensorFlow ops only, so a server with
nothing but TensorFlow (TF Serving, a plain `tf.saved_model.load`) reads plates exactly like the
engine's PlateReader:

* JPEG: libjpeg's own grayscale output (the Y channel), accurate integer IDCT - what OpenCV's
  `imdecode(..., IMREAD_GRAYSCALE)` does, bit for bit.
* PNG: libpng's own RGB->gray, as OpenCV asks for it. BMP / GIF: decoded to RGB(A), then OpenCV's fixed-point BGR->gray weights (R 4899, G 9617,
  B 1868, >> 14, rounded); a GIF uses its first frame; alpha is ignored like OpenCV does.
* Fit: the same scale, rounded sizes (Python's round half to even, computed in float64), area
  averaging when shrinking and bilinear (half-pixel centres) when enlarging, rounded back to 0..255
  like OpenCV's uint8 resize; standardised as (x - mean) / max(std, 8), padded with 0, centred
  vertically, image at the left.
* Views: a photo whose reading is less sure than preprocess.VIEW_GATE is read again as given,
  cropped and framed (preprocess.VIEWS, the same whole pixels), averaging the characters'
  probabilities over the views (network.read_outputs), as PlateReader does.

What OpenCV does and this graph does not: EXIF orientation of JPEGs (phone photos), and WebP/TIFF.
"""
from __future__ import annotations

import tensorflow as tf

from engine.model.preprocess import VIEW_GATE, VIEWS


MIN_STD = 8.0  # preprocess.fit_to_box: (x - mean) / max(std, 8.0)


# --- decoding -------------------------------------------------------------------------------------
def _rgb_to_gray_cv(rgb: tf.Tensor) -> tf.Tensor:
    """OpenCV's COLOR_BGR2GRAY for uint8: (R*4899 + G*9617 + B*1868 + 8192) >> 14."""
    x = tf.cast(rgb[..., :3], tf.int32)
    gray = (x[..., 0] * 4899 + x[..., 1] * 9617 + x[..., 2] * 1868 + (1 << 13)) // (1 << 14)
    return tf.cast(gray, tf.uint8)


def _decode_other(data: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=0, expand_animations=True, dtype=tf.uint8)
    image = tf.cond(tf.equal(tf.rank(image), 4), lambda: image[0], lambda: tf.reshape(image, tf.shape(image)[-3:]))
    image = tf.ensure_shape(image, [None, None, None])
    channels = tf.shape(image)[-1]
    return tf.cond(channels >= 3, lambda: _rgb_to_gray_cv(image), lambda: image[..., 0])


def decode_gray(data: tf.Tensor) -> tf.Tensor:
    """One encoded image (scalar tf.string) -> [h, w] uint8 grayscale, as preprocess.decode_gray does."""
    magic = tf.strings.substr(data, 0, 4)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), b"\xff\xd8\xff")
    is_png = tf.equal(magic, b"\x89PNG")
    gray = tf.case(
        [
            (is_jpeg, lambda: tf.io.decode_jpeg(data, channels=1, dct_method="INTEGER_ACCURATE")[..., 0]),
            (is_png, lambda: tf.io.decode_png(data, channels=1, dtype=tf.uint8)[..., 0]),
        ],
        default=lambda: _decode_other(data),
    )
    return tf.ensure_shape(gray, [None, None])


# --- fit into the model's box ---------------------------------------------------------------------
# OpenCV's uint8 resize, re-done op for op so the model input matches preprocess.fit_to_box exactly.

def _cv_area_weights(ssize: tf.Tensor, dsize: tf.Tensor):
    """computeResizeAreaTab: per output pixel, source indices [dsize, K] and float32 weights [dsize, K]."""
    scale = 1.0 / (tf.cast(dsize, tf.float64) / tf.cast(ssize, tf.float64))
    fs1 = tf.cast(tf.range(dsize), tf.float64) * scale
    fs2 = fs1 + scale
    cell = tf.minimum(scale, tf.cast(ssize, tf.float64) - fs1)
    s2 = tf.minimum(tf.floor(fs2), tf.cast(ssize - 1, tf.float64))
    s1 = tf.minimum(tf.math.ceil(fs1), s2)
    k = tf.cast(tf.math.ceil(scale), tf.int32) + 2
    src = (s1 - 1.0)[:, None] + tf.cast(tf.range(k), tf.float64)[None, :]  # candidates s1-1 .. s1+k-2
    first = tf.where((s1 - fs1 > 1e-3)[:, None] & tf.equal(src, (s1 - 1.0)[:, None]), ((s1 - fs1) / cell)[:, None], 0.0)
    middle = tf.where((src >= s1[:, None]) & (src < s2[:, None]), (1.0 / cell)[:, None], 0.0)
    last_w = tf.minimum(tf.minimum(fs2 - s2, 1.0), cell) / cell
    last = tf.where((fs2 - s2 > 1e-3)[:, None] & tf.equal(src, s2[:, None]), last_w[:, None], 0.0)
    weights = tf.cast(first + middle + last, tf.float32)
    index = tf.clip_by_value(tf.cast(src, tf.int32), 0, ssize - 1)
    return index, weights, k


def _cv_resize_area(gray: tf.Tensor, new_h: tf.Tensor, new_w: tf.Tensor) -> tf.Tensor:
    """cv2.resize(INTER_AREA) of uint8 when shrinking: float32 accumulation in OpenCV's order, rounded."""
    h, w = tf.shape(gray)[0], tf.shape(gray)[1]
    src = tf.cast(gray, tf.float32)
    x_index, x_weight, kx = _cv_area_weights(w, new_w)
    y_index, y_weight, ky = _cv_area_weights(h, new_h)

    def h_step(k, acc):
        return k + 1, acc + tf.gather(src, x_index[:, k], axis=1) * x_weight[:, k][None, :]

    _, rows = tf.while_loop(lambda k, _: k < kx, h_step, (0, tf.zeros([h, new_w], tf.float32)))

    def v_step(k, acc):
        return k + 1, acc + y_weight[:, k][:, None] * tf.gather(rows, y_index[:, k], axis=0)

    _, out = tf.while_loop(lambda k, _: k < ky, v_step, (0, tf.zeros([new_h, new_w], tf.float32)))
    return tf.clip_by_value(tf.round(out), 0.0, 255.0)  # saturate_cast<uchar>: round half to even


def _cv_resize_area_fast(gray: tf.Tensor, new_h: tf.Tensor, new_w: tf.Tensor) -> tf.Tensor:
    """OpenCV's integer-factor INTER_AREA: block sums, (sum + area/2) / area."""
    h, w = tf.shape(gray)[0], tf.shape(gray)[1]
    fy, fx = h // new_h, w // new_w
    blocks = tf.reshape(tf.cast(gray, tf.int32), [new_h, fy, new_w, fx])
    area = fy * fx
    return tf.cast((tf.reduce_sum(blocks, axis=[1, 3]) + area // 2) // area, tf.float32)


def _cv_linear_tab(ssize: tf.Tensor, dsize: tf.Tensor, clamp: bool):
    """Source indices and 11-bit fixed-point weights of OpenCV's INTER_LINEAR (half-pixel centres)."""
    scale = 1.0 / (tf.cast(dsize, tf.float64) / tf.cast(ssize, tf.float64))
    f = tf.cast((tf.cast(tf.range(dsize), tf.float64) + 0.5) * scale - 0.5, tf.float32)
    s = tf.floor(f)
    f = f - s
    s = tf.cast(s, tf.int32)
    if clamp:  # columns: OpenCV pins the weights at the borders; rows only clamp the row index
        f = tf.where((s < 0) | (s >= ssize - 1), tf.zeros_like(f), f)
        s = tf.clip_by_value(s, 0, ssize - 1)
    a0 = tf.cast(tf.round((1.0 - f) * 2048.0), tf.int32)
    a1 = tf.cast(tf.round(f * 2048.0), tf.int32)
    return tf.clip_by_value(s, 0, ssize - 1), tf.clip_by_value(s + 1, 0, ssize - 1), a0, a1


def _cv_resize_linear(gray: tf.Tensor, new_h: tf.Tensor, new_w: tf.Tensor) -> tf.Tensor:
    """cv2.resize(INTER_LINEAR) of uint8 when enlarging: fixed-point horizontal pass, OpenCV's SIMD vertical pass."""
    h, w = tf.shape(gray)[0], tf.shape(gray)[1]
    src = tf.cast(gray, tf.int32)
    x0, x1, a0, a1 = _cv_linear_tab(w, new_w, clamp=True)
    y0, y1, b0, b1 = _cv_linear_tab(h, new_h, clamp=False)
    rows = tf.gather(src, x0, axis=1) * a0[None, :] + tf.gather(src, x1, axis=1) * a1[None, :]
    shr = tf.bitwise.right_shift
    r0 = shr(tf.gather(rows, y0, axis=0), 4)
    r1 = shr(tf.gather(rows, y1, axis=0), 4)
    out = shr(shr(r0 * b0[:, None], 16) + shr(r1 * b1[:, None], 16) + 2, 2)
    return tf.cast(tf.clip_by_value(out, 0, 255), tf.float32)


def _cv_resize(gray: tf.Tensor, new_h: tf.Tensor, new_w: tf.Tensor, shrink: tf.Tensor) -> tf.Tensor:
    h, w = tf.shape(gray)[0], tf.shape(gray)[1]
    integer = tf.equal(h % new_h, 0) & tf.equal(w % new_w, 0)
    return tf.case(
        [
            (shrink & integer, lambda: _cv_resize_area_fast(gray, new_h, new_w)),
            (shrink, lambda: _cv_resize_area(gray, new_h, new_w)),
        ],
        default=lambda: _cv_resize_linear(gray, new_h, new_w),
    )


def fit_to_box(gray: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[h, w] uint8 -> ([height, width, 1] float32 model input, valid width int32); see preprocess.fit_to_box."""
    shape = tf.shape(gray)
    h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    scale = tf.minimum(tf.constant(float(height), tf.float64) / h, tf.constant(float(width), tf.float64) / w)
    new_w = tf.clip_by_value(tf.cast(tf.round(w * scale), tf.int32), 1, width)  # round half to even, like Python
    new_h = tf.clip_by_value(tf.cast(tf.round(h * scale), tf.int32), 1, height)
    resized = _cv_resize(gray, new_h, new_w, scale < 1.0)
    values = tf.cast(resized, tf.float64)
    mean = tf.reduce_mean(values)
    std = tf.sqrt(tf.reduce_mean(tf.square(values - mean)))
    standard = (resized - tf.cast(mean, tf.float32)) / tf.cast(tf.maximum(std, MIN_STD), tf.float32)
    top = (height - new_h) // 2
    out = tf.pad(standard, [[top, height - new_h - top], [0, width - new_w]])
    out = tf.ensure_shape(out[..., None], [height, width, 1])
    return out, new_w


def view(gray: tf.Tensor, rows: int, columns: int) -> tf.Tensor:
    """preprocess.view: cropped (percents <= 0) or framed with repeated edge pixels (>= 0)."""
    shape = tf.shape(gray)
    h, w = shape[0], shape[1]
    dy, dx = h * abs(rows) // 100, w * abs(columns) // 100
    if rows <= 0 and columns <= 0:
        return gray[dy : h - dy, dx : w - dx]
    # OpenCV's BORDER_REPLICATE: every index outside the photo takes the nearest edge pixel
    ys = tf.clip_by_value(tf.range(-dy, h + dy), 0, h - 1)
    xs = tf.clip_by_value(tf.range(-dx, w + dx), 0, w - 1)
    return tf.gather(tf.gather(gray, ys, axis=0), xs, axis=1)


def preprocess_batch(image_bytes: tf.Tensor, height: int, width: int,
                     views: tuple[tuple[int, int], ...] = VIEWS) -> tuple[tf.Tensor, tf.Tensor]:
    """[B] encoded images -> images [B, V, height, width, 1] float32 (preprocess.fit_views), widths [B] int32
    (of the photo as given)."""

    def one(data):
        gray = decode_gray(data)
        fitted = [fit_to_box(view(gray, *v), height, width) for v in views]
        return tf.stack([x for x, _ in fitted]), fitted[0][1]

    return tf.map_fn(
        one, image_bytes,
        fn_output_signature=(tf.TensorSpec([len(views), height, width, 1], tf.float32), tf.TensorSpec([], tf.int32)),
    )


# --- decoding the model's output ------------------------------------------------------------------
def texts(ids: tf.Tensor, length: tf.Tensor, chars: str) -> tf.Tensor:
    """ids [B, K] and length [B] (network.read_outputs) -> text [B] tf.string."""
    table = tf.constant([""] + list(chars))
    pieces = tf.gather(table, tf.clip_by_value(ids, 0, len(chars)))
    return tf.strings.reduce_join(tf.where(tf.sequence_mask(length, tf.shape(ids)[1]), pieces, ""), axis=1)


class ServingModule(tf.Module):
    """What `export` saves: `serve(image_bytes)` -> {text, probability}; `preprocess(image_bytes)` for debugging."""

    def __init__(self, model, chars: str, views: tuple[tuple[int, int], ...] = VIEWS, gate: float = VIEW_GATE):
        super().__init__(name="plate_ocr")
        self.views, self.gate = tuple(tuple(v) for v in views), gate
        self.model = model
        self.model_variables = list(model.variables)  # tracked explicitly: the SavedModel must hold them
        self.chars = chars
        self.height, self.width = int(model.height), int(model.width)
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.preprocess = tf.function(self._preprocess, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])

    def _preprocess(self, image_bytes):
        images, _ = preprocess_batch(image_bytes, self.height, self.width, self.views)
        return {"images": images}

    def _serve(self, image_bytes):
        # An empty batch never reaches the network: TensorFlow's oneDNN convolution (on AVX-512 CPUs)
        # fails on one, and most batches have no unsure photo to read again.
        return tf.cond(tf.size(image_bytes) > 0, lambda: self._read(image_bytes),
                       lambda: {"text": tf.zeros([0], tf.string), "probability": tf.zeros([0], tf.float32)})

    def _read(self, image_bytes):
        from engine.model.network import read_views

        first, _ = preprocess_batch(image_bytes, self.height, self.width, self.views[:1])
        out = read_views(self.model, first)
        keys = ("ids", "length", "confidence")
        if len(self.views) > 1:  # the unsure ones again, in every view: only they are decoded again and fitted in the others
            unsure = tf.where(out["confidence"] < self.gate)

            def read_again():
                others, _ = preprocess_batch(tf.gather_nd(image_bytes, unsure), self.height, self.width, self.views[1:])
                again = read_views(self.model, tf.concat([tf.gather_nd(first, unsure), others], axis=1))
                return {key: tf.tensor_scatter_nd_update(out[key], unsure, again[key]) for key in keys}

            out = tf.cond(tf.size(unsure) > 0, read_again, lambda: {key: out[key] for key in keys})
        return {"text": texts(out["ids"], out["length"], self.chars), "probability": out["confidence"]}


def save_serving_model(model, chars: str, path, views: tuple[tuple[int, int], ...] = VIEWS,
                       gate: float = VIEW_GATE) -> None:
    """Write the SavedModel: signature `serving_default` (image_bytes [None] string -> text, probability)."""
    module = ServingModule(model, chars, views, gate)
    tf.saved_model.save(
        module, str(path),
        signatures={
            "serving_default": module.serve.get_concrete_function(),
            "preprocess": module.preprocess.get_concrete_function(),
        },
    )
