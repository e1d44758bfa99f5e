"""One optimizer step under tf.distribute, and the moving average of the weights.

Each global batch is split across the replicas by the distributed dataset; every replica's loss
is scaled by the GLOBAL batch size (tf.nn.compute_average_loss), so the gradients the optimizer
sums across replicas are those of the whole batch, whatever the number of replicas. The loss,
right plates and photo counts are summed across replicas into `totals`, read at each check (no
wait on the device at every step).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StepState:
    """Variables a training step updates besides the model's: created under the strategy's scope."""

    average: list  # moving average of every model weight (checks and the best model use it)
    totals: object  # tf.Variable [3]: loss sum, plates right, photos seen since the last read


def make_state(model):
    import tensorflow as tf

    average = [tf.Variable(v, trainable=False, name=f"average_{i}") for i, v in enumerate(model.weights)]
    return StepState(average, tf.Variable(tf.zeros([3]), trainable=False, name="totals"))


def make_train_step(model, optimizer, strategy, state: StepState, vocab: int, global_batch: int,
                    label_smoothing: float = 0.0, multi_worker: bool = False):
    """train_step(distributed batch, controls [learning rate, stop, finish], decay) -> the controls every
    worker agreed on (see `agree`). The moving average becomes decay * average + (1 - decay) * weights."""
    import tensorflow as tf

    def replica_step(images, tokens):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)["logits"]
            target = tf.one_hot(tokens, vocab) * (1.0 - label_smoothing) + label_smoothing / vocab
            per_example = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(target, logits), axis=1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        right = tf.reduce_all(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tokens), axis=1)
        count = tf.cast(tf.shape(tokens)[0], tf.float32)
        return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(right, tf.float32)), count])

    def agree(values):
        """Every worker of a cluster takes the chief's learning rate and anyone's stop or finish. The
        chief sends its rate times the number of workers, the others 0 (tf.distribute reduces by SUM or
        MEAN only): the mean over all replicas is the chief's rate, and a flag is set if its mean is > 0."""
        if not multi_worker:
            return values
        return strategy.reduce("MEAN", strategy.run(lambda v: v, args=(values,)), axis=None)

    @tf.function
    def train_step(batch, controls, decay):
        controls = agree(controls)
        optimizer.learning_rate.assign(controls[0])
        per_replica = strategy.run(replica_step, args=batch)
        state.totals.assign_add(strategy.reduce("SUM", per_replica, axis=None))
        if decay < 1.0:  # 1.0 leaves the average as it is: the trainer updates it every few steps
            for avg, var in zip(state.average, model.weights):
                avg.assign(decay * avg + (1.0 - decay) * var)
        return controls

    return train_step
