"""A generated "shapes world": small pictures whose true captions are known.

No captioned photo set ships in any package, so the captioning recipe draws
its own: 64x64 RGB images of one or two flat-coloured objects on a dark, noisy
background, each with the one caption the rules below allow,

    a small red circle
    a small red circle left of a large blue square

Objects have a shape (circle, square, triangle), one of six colours and one of
two sizes.  Two objects stand in one of four relations: "left of", "right of",
"above", "below".

One picture, one caption.  "A left of B" shows the same picture as "B right of
A", so a rule picks which object is named first: the one whose description
comes first word by word, with sizes ordered small < large, colours in the
order of `COLOURS` and shapes in the order of `SHAPES` (a small object before a
large one; between two small ones, the red before the blue; ...).  The order
of the key follows the order of the words, so a decoder writing left to right
can settle the first object word by word.  The two objects of a scene always
differ in at least one of size, colour and shape, so the rule never ties.  The
relation then says where the first-named object is: the two stand at least
`MIN_GAP` pixels apart along the relation's axis, and are offset at most a
third of their distance along the other axis, so "left of" is never also
"above".

    scenes = generate_scenes(1_000, seed=0, exclude_pairs=[("red", "square")])
    scenes.images      # (1000, 64, 64, 3) uint8
    scenes.captions    # list of 1000 strings
    scenes.colour      # (1000, 2) indices into COLOURS, -1 where there is no second object

Everything is NumPy and determined by `seed`; 20,000 scenes take a second or two.
"""

import dataclasses
import numbers

import numpy as np

from keras_rnn_lab._validation import check_positive_int

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
# RGB of each colour before jitter: far apart, so colour is a matter of seeing, not of guessing.
PALETTE = np.array(
    [(220, 40, 40), (40, 180, 60), (50, 90, 235), (235, 215, 40), (160, 60, 210), (235, 235, 235)], dtype="int16"
)
SIZES = ("small", "large")
HALF_EXTENT = (6, 11)  # pixels from the centre to the edge of the bounding box, per size
RELATIONS = ("left of", "right of", "above", "below")
IMAGE_SIZE = 64
MIN_GAP = 4  # pixels between the two bounding boxes along the relation's axis
MARGIN = 1  # pixels kept free at the image border
COLOUR_JITTER = 20  # each object's RGB moves by up to this much per channel
BACKGROUND = (0, 50)  # background grey level range, per scene
NOISE = 8  # per-pixel background noise, up to +-this

# Every word a caption can hold, in a fixed order (recipes build the vocabulary from it).
WORDS = ("a",) + SIZES + COLOURS + SHAPES + ("left", "right", "of", "above", "below")
MAX_CAPTION_WORDS = 10  # "a small red circle left of a large blue square"


@dataclasses.dataclass
class Scenes:
    """Images with their objects and captions; object 0 is the one named first."""

    images: np.ndarray  # (n, size, size, 3) uint8
    captions: list  # n strings
    count: np.ndarray  # (n,) objects in the scene, 1 or 2
    size: np.ndarray  # (n, 2) int indices into SIZES; -1 where there is no object
    colour: np.ndarray  # (n, 2) indices into COLOURS; -1 where there is no object
    shape: np.ndarray  # (n, 2) indices into SHAPES; -1 where there is no object
    centre: np.ndarray  # (n, 2, 2) int (row, column) of each object's centre; -1 where there is no object
    relation: np.ndarray  # (n,) index into RELATIONS of object 0 to object 1; -1 for one object

    def __len__(self):
        return len(self.captions)

    def pairs(self):
        """(n, 2) tuples (colour name, shape name) per object, None where there is none."""
        return [
            [(COLOURS[c], SHAPES[s]) if c >= 0 else None for c, s in zip(colours, shapes)]
            for colours, shapes in zip(self.colour, self.shape)
        ]


def all_pairs():
    """Every (colour, shape) pair, colours outer."""
    return [(colour, shape) for colour in COLOURS for shape in SHAPES]


def check_pairs(name, pairs):
    """`pairs` as a sorted list of (colour index, shape index); errors name the argument."""
    if pairs is None:
        return []
    try:
        items = list(pairs)
    except TypeError:
        raise TypeError(f"Argument `{name}` must be a list of (colour, shape) pairs; received {pairs!r}.") from None
    indices = set()
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and item[0] in COLOURS and item[1] in SHAPES):
            raise ValueError(
                f"Argument `{name}` must hold (colour, shape) pairs with colours in {list(COLOURS)} and shapes in "
                f"{list(SHAPES)}; received {item!r}."
            )
        indices.add((COLOURS.index(item[0]), SHAPES.index(item[1])))
    return sorted(indices)


def caption(size, colour, shape, relation=-1, size2=-1, colour2=-1, shape2=-1):
    """The caption of one scene from attribute indices (relation -1: one object)."""
    first = f"a {SIZES[size]} {COLOURS[colour]} {SHAPES[shape]}"
    if relation < 0:
        return first
    return f"{first} {RELATIONS[relation]} a {SIZES[size2]} {COLOURS[colour2]} {SHAPES[shape2]}"


def generate_scenes(
    count, seed=0, two_object_fraction=0.75, exclude_pairs=None, include_pairs=None, image_size=IMAGE_SIZE
):
    """`count` scenes determined by `seed` (an int, or a NumPy Generator to draw from).

    exclude_pairs: (colour, shape) pairs no object may have (held out of training).
    include_pairs: every scene holds at least one object with one of these pairs
        (the held-out test scenes); the other object may be anything not excluded.
    two_object_fraction: share of scenes with two objects, the rest have one.
    """
    count = check_positive_int("count", count)
    image_size = check_positive_int("image_size", image_size)
    if image_size < 2 * (2 * HALF_EXTENT[1] + MARGIN) + MIN_GAP:
        raise ValueError(
            f"Argument `image_size` must be at least {2 * (2 * HALF_EXTENT[1] + MARGIN) + MIN_GAP}, room for two "
            f"large objects side by side; received {image_size}."
        )
    if isinstance(two_object_fraction, bool) or not isinstance(two_object_fraction, numbers.Real):
        raise TypeError(f"Argument `two_object_fraction` must be a float in [0, 1]; received {two_object_fraction!r}.")
    if not 0 <= two_object_fraction <= 1:
        raise ValueError(f"Argument `two_object_fraction` must be a float in [0, 1]; received {two_object_fraction!r}.")
    excluded = check_pairs("exclude_pairs", exclude_pairs)
    allowed = [p for p in np.ndindex(len(COLOURS), len(SHAPES)) if p not in excluded]
    if not allowed:
        raise ValueError("Argument `exclude_pairs` leaves no (colour, shape) pair to draw.")
    required = check_pairs("include_pairs", include_pairs) if include_pairs is not None else None
    if required is not None:
        if not required:
            raise ValueError("Argument `include_pairs` must hold at least one pair, or be None.")
        clash = sorted(set(required) & set(excluded))
        if clash:
            names = [(COLOURS[c], SHAPES[s]) for c, s in clash]
            raise ValueError(f"Arguments `include_pairs` and `exclude_pairs` share {names}.")

    rng = np.random.default_rng(seed)
    n_objects = np.where(rng.random(count) < two_object_fraction, 2, 1)
    allowed = np.array(allowed)  # (pairs, 2)
    pair = allowed[rng.integers(0, len(allowed), size=(count, 2))]  # (n, 2 objects, colour/shape)
    size = rng.integers(0, len(SIZES), size=(count, 2))
    if required is not None:
        required = np.array(required)
        pair[:, 0] = required[rng.integers(0, len(required), size=count)]  # sorting below may move it to slot 1
    # Two objects are never identical, so the naming rule never ties: redraw the second.
    while True:
        same = (n_objects == 2) & np.all(pair[:, 0] == pair[:, 1], axis=1) & (size[:, 0] == size[:, 1])
        if not same.any():
            break
        pair[same, 1] = allowed[rng.integers(0, len(allowed), size=int(same.sum()))]
        size[same, 1] = rng.integers(0, len(SIZES), size=int(same.sum()))
    colour, shape = pair[..., 0], pair[..., 1]

    # Name first the object whose (size, colour, shape) comes first: swap where object 1 does.
    key = (size * len(COLOURS) + colour) * len(SHAPES) + shape  # (n, 2)
    swap = (n_objects == 2) & (key[:, 1] < key[:, 0])
    for attribute in (size, colour, shape):
        attribute[swap] = attribute[swap][:, ::-1]
    relation = np.where(n_objects == 2, rng.integers(0, len(RELATIONS), size=count), -1)
    centre = _place(rng, size, relation, image_size)
    one = n_objects == 1
    for attribute in (size, colour, shape):
        attribute[one, 1] = -1
    centre[one, 1] = -1

    images = _draw(rng, size, colour, shape, centre, image_size)
    captions = [
        caption(size[i, 0], colour[i, 0], shape[i, 0], relation[i], size[i, 1], colour[i, 1], shape[i, 1])
        for i in range(count)
    ]
    return Scenes(images, captions, n_objects, size, colour, shape, centre, relation)


def _place(rng, size, relation, image_size):
    """(n, 2, 2) integer centres (row, column): object 0 stands in `relation` to object 1."""
    count = len(size)
    half = np.asarray(HALF_EXTENT)[size]  # (n, 2)
    # Along the relation's axis, centre to centre: both half extents plus a gap of MIN_GAP or more.
    nearest = half[:, 0] + half[:, 1] + MIN_GAP
    farthest = image_size - 2 * MARGIN - half[:, 0] - half[:, 1] - 1
    distance = np.floor(nearest + rng.random(count) * (farthest - nearest + 1)).astype(int)
    distance = np.minimum(distance, farthest)
    offset = np.round((rng.random(count) * 2 - 1) * distance / 3).astype(int)  # along the other axis
    # Object 1 relative to object 0, (row, column); "0 left of 1" puts 1 to the right.
    step = {0: (0, 1), 1: (0, -1), 2: (1, 0), 3: (-1, 0)}
    along = np.array([step.get(r, (0, 0)) for r in relation])  # (n, 2)
    across = along[:, ::-1]  # the other axis
    second = along * distance[:, None] + np.abs(across) * offset[:, None]  # (n, 2)
    relative = np.stack([np.zeros_like(second), second], axis=1)  # (n, 2 objects, 2 axes)
    single = relation < 0
    relative[single, 1] = 0
    half_single = np.where(single[:, None], half[:, :1], half)  # a lone object bounds itself only
    low = np.min(relative - half_single[..., None], axis=1)  # (n, 2) box of the pair, relative to object 0
    high = np.max(relative + half_single[..., None], axis=1)
    lowest_start = MARGIN - low
    highest_start = image_size - 1 - MARGIN - high
    start = lowest_start + np.floor(rng.random((count, 2)) * (highest_start - lowest_start + 1)).astype(int)
    return start[:, None, :] + relative  # (n, 2, 2)


def _draw(rng, size, colour, shape, centre, image_size, chunk=2_000):
    """(n, size, size, 3) uint8 images of the objects on noisy grey backgrounds."""
    count = len(size)
    images = np.empty((count, image_size, image_size, 3), dtype="uint8")
    grey = rng.integers(BACKGROUND[0], BACKGROUND[1] + 1, size=(count, 1, 1, 1), dtype="int16")
    jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=(count, 2, 3))
    colours = np.clip(PALETTE[colour] + jitter, 0, 255).astype("uint8")  # (n, 2, 3); rows of -1 unused
    noise_seeds = rng.integers(0, 2**32, size=(count + chunk - 1) // chunk)
    grid = np.arange(image_size, dtype="float32")
    for index, begin in enumerate(range(0, count, chunk)):
        rows = slice(begin, begin + chunk)
        n = len(size[rows])
        noise = np.random.default_rng(noise_seeds[index]).integers(
            -NOISE, NOISE + 1, (n, image_size, image_size, 1), dtype="int16"
        )
        canvas = np.repeat(np.clip(grey[rows] + noise, 0, 255).astype("uint8"), 3, axis=-1)  # (n, H, W, 3) grey
        for slot in range(2):
            mask = _mask(size[rows, slot], shape[rows, slot], centre[rows, slot], grid)  # (n, H, W)
            scene, row, column = np.nonzero(mask)
            canvas[scene, row, column] = colours[rows, slot][scene]  # the object's pixels, in its colour
        images[rows] = canvas
    return images


def _mask(size, shape, centre, grid):
    """(n, H, W) bool: pixels inside each object; all False where size is -1."""
    half = np.asarray(HALF_EXTENT, dtype="float32")[np.maximum(size, 0)][:, None, None]  # (n, 1, 1)
    dy = grid[None, :, None] - centre[:, 0, None, None]  # (n, H, 1)
    dx = grid[None, None, :] - centre[:, 1, None, None]  # (n, 1, W)
    circle = dy**2 + dx**2 <= (half + 0.5) ** 2
    square = (np.abs(dy) <= half) & (np.abs(dx) <= half)
    # Apex up at row -half, base at row +half, as wide as the square at the base.
    triangle = (np.abs(dy) <= half) & (2 * np.abs(dx) <= dy + half)
    shape = shape[:, None, None]
    mask = np.where(shape == 0, circle, np.where(shape == 1, square, triangle))
    return mask & (size >= 0)[:, None, None]
