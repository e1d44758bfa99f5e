"""The plate reader network: a small CNN keeps a 2-D feature map of the plate, and a parallel
attention decoder reads every character position at once by attending over height AND width.

    image [B, H, W, 1] -> CNN (stride 8 down, 4 across) -> features [B, H/8, W/4, D] + 2-D position
    -> K learned slot queries (one per character position, then "end"), 2 decoder layers of
       self-attention (the slots agree on who reads what) and cross-attention (where on the plate)
    -> per slot: a character or "end"; per slot: an attention map over the feature grid.

Why this shape: attention over the 2-D grid reads two-row plates (motorcycles, square plates) as
well as one-row ones, and the attention map of each slot is where on the photo that character
was read (the GIFs). Reading all slots at once, not one after the other, makes reading a single
forward pass (fast in TFLite/ONNX) and training converge in far fewer steps than a recurrent
decoder. The network is fully convolutional with a position encoding computed from the grid
size, so one set of weights (the starter model) serves any input size.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import asdict, dataclass
from typing import Iterator

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from engine.model.precision import compute_precision  # noqa: E402
from engine.model.preprocess import STRIDE  # noqa: E402


@dataclass(frozen=True)
class Architecture:
    """Sizes of the network (stored with every model, so any checkpoint can be rebuilt)."""

    filters: tuple[int, ...] = (16, 32, 64, 96)
    late_blocks: int = 2  # depthwise-separable blocks at the last (coarsest, cheapest) resolution
    dim: int = 96
    heads: int = 4
    decoder_layers: int = 2
    ffn: int = 192
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return {**asdict(self), "filters": list(self.filters)}

    @classmethod
    def from_dict(cls, values: dict) -> "Architecture":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "filters" in known:
            known["filters"] = tuple(known["filters"])
        return cls(**known)


@keras.saving.register_keras_serializable(package="plate_ocr")
class BatchNorm(layers.BatchNormalization):
    """Keras's batch normalisation, run by TensorFlow's fused kernel while training on one device.

    Why: Keras 3 computes the batch statistics and the normalisation in separate passes over the
    feature map, and as many again for the gradient; the fused kernel makes one pass each way,
    which makes a training step about 1.3x faster on CPU. Same weights, same moving averages
    (the kernel updates them in place). With several replicas the statistics must be those of the
    global batch, so Keras's synchronized path is kept there.
    """

    def __init__(self, **kwargs):
        # synchronized: under tf.distribute the statistics are those of the global batch, so a split
        # batch learns exactly what one device would
        kwargs.setdefault("synchronized", True)
        super().__init__(**kwargs)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and inputs.shape.rank == 4
                and self.axis in (-1, 3) and _one_replica()):
            return super().call(inputs, training=training, mask=mask)
        outputs, moving_mean, moving_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma, offset=self.beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, exponential_avg_factor=1.0 - self.momentum, data_format="NHWC", is_training=True)
        self.moving_mean.assign(moving_mean)
        self.moving_variance.assign(moving_variance)
        return outputs


def _one_replica() -> bool:
    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync == 1


def _conv(filters: int, name: str, separable: bool) -> list[layers.Layer]:
    if separable:  # depthwise + pointwise: a tenth of the cost once there are many channels
        first = [layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw"),
                 BatchNorm(name=f"{name}_dwbn"), layers.ReLU(name=f"{name}_dwrelu"),
                 layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")]
    else:
        first = [layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")]
    return first + [BatchNorm(name=f"{name}_bn"), layers.ReLU(name=f"{name}_relu")]


class GridAttention(layers.MultiHeadAttention):
    """The slots' cross-attention over the grid, MultiHeadAttention's weights and result computed in a
    cheaper order. Keras projects every grid position to keys and values (2 x positions x dim^2
    multiply-adds, 128 or 400 positions) for about ten queries; here each query is projected into the
    features' space instead, (q Wk) m, and the attended features are projected once, (a m) Wv. Both are
    exact: a query's attention weights sum to 1, so the value bias passes through unchanged. It saves
    about a tenth of a reading (docs/ARCHITECTURE.md), and checkpoints are those of MultiHeadAttention."""

    def call(self, query, value, key=None, return_attention_scores=False, training=None):
        if key is not None:
            raise ValueError("GridAttention attends over `value` only (keys and values are the same grid).")
        dtype = self.compute_dtype  # mixed precision: the kernels are float32 variables
        wk, bk, wv, bv = (keras.ops.cast(w, dtype) for w in (self._key_dense.kernel, self._key_dense.bias,
                                                             self._value_dense.kernel, self._value_dense.bias))
        q = self._query_dense(query) * keras.ops.cast(self._inverse_sqrt_key_dim, dtype)  # [B, T, heads, k]
        scores = keras.ops.einsum("bntd,bsd->bnts", keras.ops.einsum("btnk,dnk->bntd", q, wk), value)
        attention = keras.ops.softmax(scores + keras.ops.einsum("btnk,nk->bnt", q, bk)[..., None], axis=-1)
        context = keras.ops.einsum("bntd,dnk->btnk", keras.ops.einsum("bnts,bsd->bntd", attention, value), wv) + bv
        out = self._output_dense(context)
        return (out, attention) if return_attention_scores else out


def grid_position(height: tf.Tensor, width: tf.Tensor, freqs: int) -> tf.Tensor:
    """Fixed sinusoids of (row, column) for a height x width grid: [height, width, 4 * freqs]."""
    rates = tf.pow(2.0, tf.range(freqs, dtype=tf.float32) / 2.0) * (math.pi / 16.0)
    rows = (tf.cast(tf.range(height), tf.float32) + 0.5)[:, None] * rates
    cols = (tf.cast(tf.range(width), tf.float32) + 0.5)[:, None] * rates
    by_row = tf.concat([tf.sin(rows), tf.cos(rows)], -1)
    by_col = tf.concat([tf.sin(cols), tf.cos(cols)], -1)
    return tf.concat([tf.tile(by_row[:, None, :], [1, width, 1]), tf.tile(by_col[None, :, :], [height, 1, 1])], -1)


@keras.saving.register_keras_serializable(package="plate_ocr")
class PlateNet(keras.Model):
    """images [B, H, W, 1] (standardised gray) -> {"logits": [B, K, V], "attention": [B, K, H/8 * W/4]}.

    Token 0 is "end"; tokens 1..V-1 are the charset's characters. K = max_prediction + 1 slots.
    """

    POSITION_FREQS = 8

    def __init__(self, vocab_size: int, slots: int, height: int, width: int,
                 architecture: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        arch = Architecture.from_dict(architecture or {})
        self.arch, self.vocab_size, self.slots, self.height, self.width = arch, vocab_size, slots, height, width
        f1, f2, f3, f4 = arch.filters
        self.cnn = keras.Sequential(
            _conv(f1, "c1", False) + [layers.MaxPooling2D(2, name="p1")]
            + _conv(f2, "c2", False) + [layers.MaxPooling2D(2, name="p2")]
            + _conv(f3, "c3", False) + _conv(f3, "c3b", True) + [layers.MaxPooling2D((2, 1), name="p3")]
            + [layer for i in range(arch.late_blocks) for layer in _conv(f4, "c4" + "bcdefgh"[i - 1] * (i > 0), True)],
            name="cnn",
        )
        self.feature_proj = layers.Dense(arch.dim, name="feature_proj")
        self.position_proj = layers.Dense(arch.dim, name="position_proj")
        self.context_proj = layers.Dense(arch.dim, name="context_proj")  # the whole plate's gist, for the queries
        self.slot_queries = self.add_weight(shape=(slots, arch.dim), name="slot_queries",
                                            initializer=keras.initializers.RandomNormal(stddev=0.5))
        key_dim = arch.dim // arch.heads
        self.self_attention, self.cross_attention, self.ffns, self.norms = [], [], [], []
        for i in range(arch.decoder_layers):
            self.self_attention.append(layers.MultiHeadAttention(arch.heads, key_dim, dropout=arch.dropout, name=f"self_att{i}"))
            self.cross_attention.append(GridAttention(arch.heads, key_dim, name=f"cross_att{i}"))
            self.ffns.append(keras.Sequential([layers.Dense(arch.ffn, activation="gelu", name=f"ffn{i}_in"),
                                               layers.Dropout(arch.dropout), layers.Dense(arch.dim, name=f"ffn{i}_out")],
                                              name=f"ffn{i}"))
            self.norms.append([layers.LayerNormalization(name=f"ln{i}_{j}") for j in range(3)])
        # float32 whatever the policy: the loss and the reader's probabilities need its precision
        self.classifier = layers.Dense(vocab_size, name="classifier", dtype="float32")

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "slots": self.slots, "height": self.height, "width": self.width,
                "architecture": self.arch.to_dict(), "name": self.name}

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the attention maps for this model's input size."""
        return self.height // STRIDE[0], self.width // STRIDE[1]

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Feature map with positions: [B, rows * columns, dim]."""
        x = self.cnn(images, training=training)
        rows, cols = tf.shape(x)[1], tf.shape(x)[2]
        x = self.feature_proj(x) + self.position_proj(grid_position(rows, cols, self.POSITION_FREQS))[None]
        return tf.reshape(x, [tf.shape(x)[0], rows * cols, self.arch.dim])

    def decode(self, memory: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """Slot logits [B, K, V] and the last layer's attention over the grid [B, K, N] (mean of heads)."""
        gist = self.context_proj(tf.reduce_mean(memory, axis=1))
        q = self.slot_queries[None] + gist[:, None, :]
        attention = None
        for i in range(self.arch.decoder_layers):
            n1, n2, n3 = self.norms[i]
            q = n1(q + self.self_attention[i](q, q, training=training))
            seen, attention = self.cross_attention[i](q, memory, return_attention_scores=True, training=training)
            q = n2(q + seen)
            q = n3(q + self.ffns[i](q, training=training))
        return self.classifier(q), tf.cast(tf.reduce_mean(attention, axis=1), tf.float32)

    def call(self, images, training=False):
        logits, attention = self.decode(self.encode(images, training=training), training=training)
        return {"logits": logits, "attention": attention}


def read_outputs(logits: tf.Tensor, attention: tf.Tensor, views: int | tf.Tensor = 1) -> dict[str, tf.Tensor]:
    """What a reader needs, computed in the graph (the same in TensorFlow, TFLite and SavedModel):
    ids [B, K] (0 = end), probs [B, K], length [B] (characters before the first end),
    confidence [B] (product of the probabilities of the characters and of the end), attention.

    With `views` > 1 the batch holds that many views of each photo, one after the other
    (preprocess.VIEWS): each slot's probabilities are averaged over them, and the attention is
    the first view's (the photo as given)."""
    p = tf.nn.softmax(logits, axis=-1)
    if not (isinstance(views, int) and views == 1):
        p = tf.reduce_mean(tf.reshape(p, [-1, views, tf.shape(p)[1], tf.shape(p)[2]]), axis=1)
        attention = tf.reshape(attention, [-1, views, tf.shape(attention)[1], tf.shape(attention)[2]])[:, 0]
    ids = tf.argmax(p, axis=-1, output_type=tf.int32)
    probs = tf.reduce_max(p, axis=-1)
    slots = tf.shape(ids)[1]
    is_end = tf.cast(tf.equal(ids, 0), tf.int32)
    # index of the first end token, or K if none: argmax of a cumulative "end seen" flag
    seen = tf.cumsum(is_end, axis=1)
    length = tf.reduce_sum(tf.cast(tf.equal(seen, 0), tf.int32), axis=1)
    counted = tf.cast(tf.range(slots)[None, :] <= length[:, None], probs.dtype)  # characters and the end
    confidence = tf.exp(tf.reduce_sum(tf.math.log(tf.maximum(probs, 1e-12)) * counted, axis=1))
    return {"ids": ids, "probs": probs, "length": length, "confidence": confidence, "attention": attention}


def read_views(model: keras.Model, views: tf.Tensor) -> dict[str, tf.Tensor]:
    """views [N, V, H, W, 1], V model inputs of each photo (preprocess.fit_views) -> read_outputs of
    each photo. V may be 1 (the photo alone: fastest) or any number the caller prepared."""
    shape = tf.shape(views)
    out = model(tf.reshape(views, [-1, model.height, model.width, 1]), training=False)
    return read_outputs(out["logits"], out["attention"], shape[1])


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Layers created inside take this Keras dtype policy; the global one is restored after."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build_model(vocab_size: int, slots: int, height: int, width: int, architecture: dict | None = None,
                precision: str = "float32") -> PlateNet:
    """A PlateNet with its weights created (one dummy forward pass).

    precision 'bfloat16' (for training): Keras's mixed precision, computing in bfloat16 with the
    weights kept in float32, so checkpoints and readers are the same as a float32 model's."""
    if height % STRIDE[0] or width % STRIDE[1]:
        raise ValueError(f"The model input must be a multiple of {STRIDE[0]} high and {STRIDE[1]} wide "
                         f"(got {height} x {width}).")
    with _dtype_policy("mixed_bfloat16" if compute_precision(precision) == "bfloat16" else "float32"):
        model = PlateNet(vocab_size, slots, height, width, architecture, name="plate_net")
        model(tf.zeros([1, height, width, 1]))
    return model
