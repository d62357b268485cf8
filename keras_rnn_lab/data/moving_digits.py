"""Moving handwritten digits: short clips of a real digit bouncing on a blank canvas.

The digits are scikit-learn's 1,797 shipped 8x8 scans (no download).  A clip
shows one digit sliding across the canvas and bouncing off its edges; part way
through, the digit may be swapped for one of another class on the same path,
so the answer to "which digit is this?" changes over time.  Every frame is
labelled with its digit, or (target "motion") with the direction the digit
moved since the previous frame.

    pools = split_images(seed=0, validation_fraction=0.15, test_fraction=0.15)
    clips = make_clips(np.random.default_rng(0), pools["train"], 100, canvas_size=16, frames=10)
    clips.frames   # (100, 10, 16, 16, 1) float32 in [0, 1]
    clips.labels   # (100, 10) int32 digits

The source images are split before any clip is made (stratified by digit), so
held-out clips show handwriting never seen in training.
"""

import dataclasses
import functools

import numpy as np

from keras_rnn_lab._validation import check_positive_int, check_split_fractions

DIGIT_SIZE = 8  # load_digits' images are 8x8, values 0..16
DIGIT_CLASSES = 10
# Motion classes: index (sign(dy) + 1) * 3 + (sign(dx) + 1), rows growing downwards.
MOTION_NAMES = ("up-left", "up", "up-right", "left", "still", "right", "down-left", "down", "down-right")
TARGETS = ("digit", "motion")
# The splits of the source images, in the order their random streams are drawn.
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Clips:
    """One split's clips; every array starts with (clips, frames).

    frames: (n, frames, canvas, canvas, 1) float32 in [0, 1], background 0.
    labels: (n, frames) int32, the digit shown or the motion class.
    digits: (n, frames) int32, the digit shown (whatever the target).
    positions: (n, frames, 2) int32, (row, column) of the digit's top-left pixel.
    velocity: (n, 2) int32, (rows, columns) moved per frame at the start, before any bounce.
    image_index: (n, frames) int, index of the source image in `load_digits()`.
    """

    frames: np.ndarray
    labels: np.ndarray
    digits: np.ndarray
    positions: np.ndarray
    velocity: np.ndarray
    image_index: np.ndarray


@functools.cache
def digit_images():
    """(images (1797, 8, 8) float32 in [0, 1], targets (1797,) int32), read-only."""
    from sklearn.datasets import load_digits  # lazily: scikit-learn is slow to import

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")  # pixel values are 0..16
    targets = digits.target.astype("int32")
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def check_clip_shape(canvas_size, frames, digits_per_clip=1, max_speed=1):
    """Errors naming the argument unless clips of this shape can be made."""
    canvas_size = check_positive_int("canvas_size", canvas_size)
    if canvas_size < DIGIT_SIZE:
        raise ValueError(
            f"Argument `canvas_size` must be at least {DIGIT_SIZE}, the digits being {DIGIT_SIZE}x{DIGIT_SIZE}; "
            f"received {canvas_size}."
        )
    frames = check_positive_int("frames", frames)
    if check_positive_int("digits_per_clip", digits_per_clip) > frames:
        raise ValueError(
            f"Argument `digits_per_clip` must be at most `frames` ({frames}), each digit showing in at least one "
            f"frame; received {digits_per_clip}."
        )
    room = canvas_size - DIGIT_SIZE  # the largest top-left coordinate
    if check_positive_int("max_speed", max_speed) > room:
        raise ValueError(
            f"Argument `max_speed` must be at most canvas_size - {DIGIT_SIZE} = {room} pixels per frame, so that "
            f"the digit can move at all; received {max_speed} (a larger canvas_size allows more)."
        )


def split_images(seed, validation_fraction, test_fraction):
    """{"train", "validation", "test"} -> sorted indices into `digit_images()`.

    Stratified: each digit's images are shuffled and cut with the same
    fractions, so every split holds every digit (at least one image each).
    """
    check_split_fractions(validation_fraction, test_fraction)
    _, targets = digit_images()
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(len(SPLITS) + 1)[-1])
    parts = {name: [] for name in SPLITS}
    for digit in range(DIGIT_CLASSES):
        indices = rng.permutation(np.flatnonzero(targets == digit))
        n_validation = max(1, round(validation_fraction * len(indices)))
        n_test = max(1, round(test_fraction * len(indices)))
        parts["test"].append(indices[:n_test])
        parts["validation"].append(indices[n_test : n_test + n_validation])
        parts["train"].append(indices[n_test + n_validation :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def make_clips(rng, pool, count, canvas_size, frames, digits_per_clip=2, max_speed=2, target="digit"):
    """`count` clips drawing their digits from `pool` (indices into `digit_images()`).

    Per clip: a uniform start position and a velocity of up to `max_speed`
    pixels per frame along each axis (never (0, 0)); the digit bounces off the
    canvas edges.  The clip is cut at `digits_per_clip - 1` distinct random
    frames; each cut swaps the digit for an image of a different class, on the
    same trajectory.
    """
    if target not in TARGETS:
        raise ValueError(f"Argument `target` must be one of {list(TARGETS)}; received {target!r}.")
    check_clip_shape(canvas_size, frames, digits_per_clip, max_speed)
    count = check_positive_int("count", count)
    images, targets = digit_images()
    pool = np.asarray(pool)
    by_class = [pool[targets[pool] == digit] for digit in range(DIGIT_CLASSES)]
    missing = [digit for digit, members in enumerate(by_class) if len(members) == 0]
    if missing:
        raise ValueError(f"Argument `pool` must hold images of every digit; received none of {missing}.")

    # Which segment each frame belongs to: cuts are distinct frames in 1..frames-1.
    cuts = np.argsort(rng.random((count, frames - 1)), axis=1)[:, : digits_per_clip - 1] + 1  # (n, digits - 1)
    segment = np.sum(np.arange(frames)[np.newaxis, :, np.newaxis] >= cuts[:, np.newaxis, :], axis=2)  # (n, frames)
    # Each segment's digit class differs from the one before: add 1..9 modulo 10.
    classes = np.empty((count, digits_per_clip), dtype="int64")
    classes[:, 0] = rng.integers(0, DIGIT_CLASSES, size=count)
    for s in range(1, digits_per_clip):
        classes[:, s] = (classes[:, s - 1] + rng.integers(1, DIGIT_CLASSES, size=count)) % DIGIT_CLASSES
    chosen = np.empty_like(classes)  # (n, digits) source image of each segment
    for digit, members in enumerate(by_class):
        where = classes == digit
        chosen[where] = rng.choice(members, size=int(where.sum()))
    image_index = np.take_along_axis(chosen, segment, axis=1)  # (n, frames)

    # Bouncing = reflecting the straight path p0 + v t into [0, room], a triangle wave of period 2 room.
    room = canvas_size - DIGIT_SIZE
    start = rng.integers(0, room + 1, size=(count, 1, 2))
    speeds = np.arange(-max_speed, max_speed + 1)
    velocities = np.array([(dy, dx) for dy in speeds for dx in speeds if (dy, dx) != (0, 0)])
    velocity = velocities[rng.integers(0, len(velocities), size=count)][:, np.newaxis, :]  # (n, 1, 2)
    straight = start + velocity * np.arange(frames)[np.newaxis, :, np.newaxis]  # (n, frames, 2)
    folded = np.mod(straight, 2 * room)
    positions = np.where(folded > room, 2 * room - folded, folded).astype("int32")  # (n, frames, 2)

    # Paste each frame's 8x8 digit at its position on a blank canvas.
    canvas = np.zeros((count, frames, canvas_size, canvas_size), dtype="float32")
    offsets = np.arange(DIGIT_SIZE)
    rows = positions[:, :, 0, np.newaxis, np.newaxis] + offsets[:, np.newaxis]  # (n, frames, 8, 1)
    columns = positions[:, :, 1, np.newaxis, np.newaxis] + offsets[np.newaxis, :]  # (n, frames, 1, 8)
    clip_axis = np.arange(count)[:, np.newaxis, np.newaxis, np.newaxis]
    frame_axis = np.arange(frames)[np.newaxis, :, np.newaxis, np.newaxis]
    canvas[clip_axis, frame_axis, rows, columns] = images[image_index]  # (n, frames, 8, 8) pasted

    digits = targets[image_index].astype("int32")  # (n, frames)
    labels = digits if target == "digit" else motion_labels(positions)
    frames_out = canvas[..., np.newaxis]  # (n, frames, H, W, 1)
    return Clips(frames_out, labels, digits, positions, velocity[:, 0].astype("int32"), image_index)


def motion_labels(positions):
    """(n, frames, 2) positions -> (n, frames) motion classes; the first frame is "still"."""
    step = np.diff(positions, axis=1, prepend=positions[:, :1])  # (n, frames, 2), zero at frame 0
    sign = np.sign(step) + 1  # 0, 1, 2 for -, 0, +
    return (sign[..., 0] * 3 + sign[..., 1]).astype("int32")


def load_splits(
    seed,
    clip_counts,
    canvas_size,
    frames,
    digits_per_clip=2,
    max_speed=2,
    target="digit",
    validation_fraction=0.15,
    test_fraction=0.15,
):
    """{"train", "validation", "test"} -> Clips, determined by `seed`; `clip_counts`
    maps each split to its number of clips.

    The source images are split first; each split's clips then draw only from
    its own images, from their own child of one seed sequence (so changing one
    split's clip count leaves the other splits' clips as they were).
    """
    pools = split_images(seed, validation_fraction, test_fraction)
    streams = np.random.SeedSequence(seed).spawn(len(SPLITS) + 1)[: len(SPLITS)]
    return {
        name: make_clips(
            np.random.default_rng(stream),
            pools[name],
            clip_counts[name],
            canvas_size,
            frames,
            digits_per_clip,
            max_speed,
            target,
        )
        for name, stream in zip(SPLITS, streams)
    }
