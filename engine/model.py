"""The attention OCR: CNN feature extractor, bidirectional LSTM encoder over the width, and an
attention decoder (LSTM + additive attention, input feeding) that emits one character per step
until the end token. An auxiliary CTC head on the encoder makes the attention align early.

Keras 3 layers on the TensorFlow backend; the decoding loop is unrolled to `max_prediction + 1`
steps so training (teacher forcing) and reading (greedy) share one step function.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from engine.charset import EOS, GO  # noqa: E402
from engine.preprocess import WIDTH_STRIDE  # noqa: E402


def encoder_steps(width):
    """Encoder time steps holding image for an input `width` in pixels (ceil division)."""
    return (width + WIDTH_STRIDE - 1) // WIDTH_STRIDE


def _conv_block(filters: int, name: str) -> list[layers.Layer]:
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv"),
        layers.BatchNormalization(name=f"{name}_bn"),
        layers.Activation("relu", name=f"{name}_relu"),
    ]


@keras.saving.register_keras_serializable(package="plate_ocr")
class AttentionOCR(keras.Model):
    def __init__(
        self,
        num_chars: int,
        max_prediction: int,
        height: int = 32,
        width: int = 128,
        filters: tuple[int, ...] = (32, 64, 96, 128),
        rnn_units: int = 128,
        attention_units: int = 128,
        embed_dim: int = 32,
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_chars = num_chars
        self.max_prediction = max_prediction
        self.height, self.width = height, width
        self.filters = tuple(filters)
        self.rnn_units, self.attention_units, self.embed_dim, self.dropout_rate = rnn_units, attention_units, embed_dim, dropout
        self.vocab_size = num_chars + 3
        f1, f2, f3, f4 = self.filters
        # CNN: height -> 1/16, width -> 1/4 (pooling (2,2), (2,2), (2,1), (2,1))
        self.cnn = keras.Sequential(
            _conv_block(f1, "c1") + [layers.MaxPooling2D((2, 2))]
            + _conv_block(f2, "c2") + [layers.MaxPooling2D((2, 2))]
            + _conv_block(f3, "c3") + _conv_block(f3, "c3b") + [layers.MaxPooling2D((2, 1))]
            + _conv_block(f4, "c4") + _conv_block(f4, "c4b") + [layers.MaxPooling2D((2, 1))],
            name="cnn",
        )
        self.feature_proj = layers.Dense(rnn_units, activation="relu", name="feature_proj")
        self.feature_drop = layers.Dropout(dropout)
        self.encoder_rnn = layers.Bidirectional(layers.LSTM(rnn_units, return_sequences=True), name="encoder")
        self.ctc_head = layers.Dense(num_chars + 1, name="ctc_head")  # last class = CTC blank
        # decoder
        self.embedding = layers.Embedding(self.vocab_size, embed_dim, name="embedding")
        self.init_h = layers.Dense(rnn_units, activation="tanh", name="init_h")
        self.init_c = layers.Dense(rnn_units, name="init_c")
        self.cell = layers.LSTMCell(rnn_units, name="decoder_cell")
        self.att_enc = layers.Dense(attention_units, use_bias=False, name="att_enc")
        self.att_dec = layers.Dense(attention_units, name="att_dec")
        self.att_v = layers.Dense(1, use_bias=False, name="att_v")
        self.combine = layers.Dense(rnn_units, activation="tanh", name="combine")
        self.out_drop = layers.Dropout(dropout)
        self.classifier = layers.Dense(self.vocab_size, name="classifier")

    def get_config(self):
        return {
            "num_chars": self.num_chars, "max_prediction": self.max_prediction, "height": self.height,
            "width": self.width, "filters": list(self.filters), "rnn_units": self.rnn_units,
            "attention_units": self.attention_units, "embed_dim": self.embed_dim, "dropout": self.dropout_rate,
        }

    # encoder -----------------------------------------------------------------------------------
    def encode(self, images, widths, training=False):
        """images [B,H,W,1] float, widths [B] valid columns -> features [B,T,2U], mask [B,T], ctc logits."""
        x = self.cnn(images, training=training)  # [B, H/16, W/4, C]
        b = tf.shape(x)[0]
        x = tf.transpose(x, [0, 2, 1, 3])  # width becomes time
        x = tf.reshape(x, [b, tf.shape(x)[1], x.shape[2] * x.shape[3]])
        x = self.feature_drop(self.feature_proj(x), training=training)
        enc = self.encoder_rnn(x, training=training)
        steps = tf.shape(enc)[1]
        valid = tf.maximum(encoder_steps(tf.cast(widths, tf.int32)), 1)
        mask = tf.sequence_mask(valid, steps)
        return enc, mask, self.ctc_head(enc)

    # decoder -----------------------------------------------------------------------------------
    def _start(self, enc, mask):
        m = tf.cast(mask, enc.dtype)[..., None]
        mean = tf.reduce_sum(enc * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)
        ctx = tf.zeros_like(mean)
        return [self.init_h(mean), self.init_c(mean)], ctx

    def _step(self, token, state, ctx, enc, enc_proj, mask, training):
        x = tf.concat([self.embedding(token), ctx], axis=-1)
        h, state = self.cell(x, state, training=training)
        score = tf.squeeze(self.att_v(tf.tanh(enc_proj + self.att_dec(h)[:, None, :])), -1)  # [B,T]
        score = tf.where(mask, score, tf.fill(tf.shape(score), tf.constant(-1e9, score.dtype)))
        alpha = tf.nn.softmax(score, axis=-1)
        ctx = tf.reduce_sum(alpha[..., None] * enc, axis=1)
        feat = self.out_drop(self.combine(tf.concat([h, ctx], axis=-1)), training=training)
        return self.classifier(feat), state, ctx, alpha

    def decode_teacher(self, enc, mask, decoder_inputs, training=False):
        """Teacher forcing: decoder_inputs [B,L] (GO then the label) -> logits [B,L,V], attention [B,L,T]."""
        state, ctx = self._start(enc, mask)
        enc_proj = self.att_enc(enc)
        logits, alphas = [], []
        for t in range(decoder_inputs.shape[1]):
            out, state, ctx, alpha = self._step(decoder_inputs[:, t], state, ctx, enc, enc_proj, mask, training)
            logits.append(out)
            alphas.append(alpha)
        return tf.stack(logits, 1), tf.stack(alphas, 1)

    def decode_greedy(self, enc, mask):
        """Reading: token ids [B,L], their probabilities [B,L], attention [B,L,T]; L = max_prediction + 1."""
        state, ctx = self._start(enc, mask)
        enc_proj = self.att_enc(enc)
        token = tf.fill([tf.shape(enc)[0]], GO)
        ids, probs, alphas = [], [], []
        for _ in range(self.max_prediction + 1):
            out, state, ctx, alpha = self._step(token, state, ctx, enc, enc_proj, mask, False)
            p = tf.nn.softmax(out, axis=-1)
            token = tf.argmax(p, axis=-1, output_type=tf.int32)
            ids.append(token)
            probs.append(tf.reduce_max(p, axis=-1))
            alphas.append(alpha)
        return tf.stack(ids, 1), tf.stack(probs, 1), tf.stack(alphas, 1)

    def call(self, inputs, training=False):
        """Keras entry point: (images, widths) -> (ids, probs, attention)."""
        images, widths = inputs
        enc, mask, _ = self.encode(images, widths, training=training)
        return self.decode_greedy(enc, mask)


def build_model(num_chars: int, max_prediction: int, height: int, width: int, **kwargs) -> AttentionOCR:
    """An AttentionOCR with its weights created (one dummy forward pass)."""
    model = AttentionOCR(num_chars, max_prediction, height=height, width=width, **kwargs)
    images = tf.zeros([1, height, width, 1])
    widths = tf.constant([width])
    enc, mask, _ = model.encode(images, widths)
    model.decode_teacher(enc, mask, tf.fill([1, max_prediction + 1], GO))
    model((images, widths))  # marks the model built for Keras (saving, count_params)
    return model


def sequence_lengths(ids):
    """Length of each decoded text: position of the first end token (or L if none)."""
    is_end = tf.cast(tf.equal(ids, EOS), tf.int32)
    has_end = tf.reduce_any(tf.equal(ids, EOS), axis=1)
    first = tf.argmax(is_end, axis=1, output_type=tf.int32)
    return tf.where(has_end, first, tf.shape(ids)[1])
