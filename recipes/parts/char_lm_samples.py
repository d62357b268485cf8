"""char_lm's samples during training: the lecture's "at first ... train more ... train more"."""

import keras

from keras_rnn_lab.decoding.generation import TextGenerator
from keras_rnn_lab.training import summaries


class PrintSamples(keras.callbacks.Callback):
    """Samples as training goes, the lecture's "at first ... train more ... train
    more": one from the untrained model, one after the first epoch, then every
    `every` epochs and one at the end if that epoch had none; every 0: none.
    Each is also logged for TensorBoard in a run directory (training.summaries),
    as text at step = the epochs trained (0 before training)."""

    def __init__(self, prime, every, length=200, temperature=0.8):
        super().__init__()
        self.prime, self.every, self.length, self.temperature = prime, every, length, temperature
        self.last_sampled = None
        self.generator = None

    def sample(self, epoch, heading):
        # One generator per fit: it reads the layers' variables, so it samples the
        # current weights, and its compiled loop is traced once, not per sample.
        if self.generator is None:
            self.generator = TextGenerator(self.model)
        text = self.generator(self.prime, self.length, temperature=self.temperature, seed=epoch + 1)[0]
        print(f"\n--- {heading} ---\n{text}\n---", flush=True)
        summaries.log_text(self.model, epoch + 1, "sample", text)  # nothing without a run directory
        self.last_sampled = epoch

    def on_train_begin(self, logs=None):
        self.last_sampled, self.epochs_done, self.generator = None, None, None
        if self.every:
            self.sample(-1, "sample before training (at first: random characters)")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch
        if self.every and (epoch == 0 or (epoch + 1) % self.every == 0):
            self.sample(epoch, f"sample after epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        if self.every and self.epochs_done is not None and self.last_sampled != self.epochs_done:
            self.sample(self.epochs_done, f"sample at the end (epoch {self.epochs_done + 1})")
