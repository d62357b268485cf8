"""The shapes world: deterministic scenes whose captions say what is drawn."""

import numpy as np
import pytest

from keras_rnn_lab.data import shapes_world as sw


@pytest.fixture(scope="module")
def scenes():
    return sw.generate_scenes(400, seed=3)


def object_pixels(image, colour_rgb):
    """(rows, columns) of pixels within the colour jitter of `colour_rgb`."""
    close = np.all(np.abs(image.astype(int) - colour_rgb) <= sw.COLOUR_JITTER, axis=-1)
    return np.nonzero(close)


def test_same_seed_same_scenes_other_seed_other_scenes():
    a, b, c = sw.generate_scenes(50, seed=1), sw.generate_scenes(50, seed=1), sw.generate_scenes(50, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions
    np.testing.assert_array_equal(a.centre, b.centre)
    assert a.captions != c.captions and not np.array_equal(a.images, c.images)


def test_images_are_uint8_and_captions_follow_the_grammar(scenes):
    assert scenes.images.shape == (400, 64, 64, 3) and scenes.images.dtype == np.uint8
    for i, text in enumerate(scenes.captions):
        words = text.split()
        first = f"a {sw.SIZES[scenes.size[i, 0]]} {sw.COLOURS[scenes.colour[i, 0]]} {sw.SHAPES[scenes.shape[i, 0]]}"
        assert text.startswith(first)
        if scenes.count[i] == 1:
            assert len(words) == 4 and scenes.relation[i] == -1 and np.all(scenes.colour[i, 1] == -1)
        else:
            second = (
                f"a {sw.SIZES[scenes.size[i, 1]]} {sw.COLOURS[scenes.colour[i, 1]]} {sw.SHAPES[scenes.shape[i, 1]]}"
            )
            assert text == f"{first} {sw.RELATIONS[scenes.relation[i]]} {second}"
        assert set(words) <= set(sw.WORDS) and len(words) <= sw.MAX_CAPTION_WORDS
    # Every relation and both scene kinds occur (0.75 of scenes with two objects).
    assert set(scenes.relation.tolist()) == {-1, 0, 1, 2, 3}
    assert 0.65 < np.mean(scenes.count == 2) < 0.85


def test_each_object_has_its_colour_at_its_centre_and_its_shape_at_its_corners(scenes):
    for i in range(len(scenes)):
        image = scenes.images[i]
        for slot in range(scenes.count[i]):
            row, column = scenes.centre[i, slot]
            half = sw.HALF_EXTENT[scenes.size[i, slot]]
            rgb = sw.PALETTE[scenes.colour[i, slot]]
            assert np.all(np.abs(image[row, column].astype(int) - rgb) <= sw.COLOUR_JITTER), (i, slot)
            object_colour = image[row, column]
            top_left, top_right = image[row - half, column - half], image[row - half, column + half]
            bottom_left = image[row + half, column - half]
            shape = sw.SHAPES[scenes.shape[i, slot]]
            is_object = [np.array_equal(p, object_colour) for p in (top_left, top_right, bottom_left)]
            # Square: all corners filled; circle: none; triangle (apex up): the bottom corner only.
            expected = {"square": [True, True, True], "circle": [False, False, False], "triangle": [False, False, True]}
            assert is_object == expected[shape], (i, slot, shape)


def test_object_sizes_differ_as_captioned(scenes):
    # Pixel counts of lone objects: every small one is smaller than every large one.
    areas = {0: [], 1: []}
    for i in np.flatnonzero(scenes.count == 1)[:60]:
        rows, _ = object_pixels(scenes.images[i], sw.PALETTE[scenes.colour[i, 0]])
        areas[scenes.size[i, 0]].append(len(rows))
    assert areas[0] and areas[1] and max(areas[0]) < min(areas[1])


def test_relations_are_unambiguous_and_objects_stay_inside(scenes):
    two = np.flatnonzero(scenes.count == 2)
    half = np.asarray(sw.HALF_EXTENT)[scenes.size[two]]  # (m, 2)
    first, second = scenes.centre[two, 0], scenes.centre[two, 1]  # (m, 2) row, column
    delta = second - first
    for k, relation in enumerate(scenes.relation[two]):
        axis = 1 if sw.RELATIONS[relation] in ("left of", "right of") else 0
        sign = 1 if sw.RELATIONS[relation] in ("left of", "above") else -1  # where the second object lies
        along, across = sign * delta[k, axis], abs(delta[k, 1 - axis])
        assert along >= half[k].sum() + sw.MIN_GAP, (k, relation, delta[k])
        assert across <= along / 3 + 0.5
    low = scenes.centre[two] - half[..., None]
    high = scenes.centre[two] + half[..., None]
    assert low.min() >= sw.MARGIN and high.max() <= 64 - 1 - sw.MARGIN


def test_the_first_named_object_comes_first_word_by_word(scenes):
    two = scenes.count == 2
    key = (scenes.size * len(sw.COLOURS) + scenes.colour) * len(sw.SHAPES) + scenes.shape
    assert np.all(key[two, 0] < key[two, 1])  # never equal: two objects always differ


def test_excluded_pairs_never_appear_and_included_ones_always_do():
    held_out = [("red", "square"), ("blue", "circle")]
    train = sw.generate_scenes(300, seed=0, exclude_pairs=held_out)
    assert not any(p in held_out for pairs in train.pairs() for p in pairs if p is not None)
    test = sw.generate_scenes(300, seed=0, include_pairs=held_out)
    assert all(any(p in held_out for p in pairs if p is not None) for pairs in test.pairs())
    # The held-out object is named first or second, as the naming rule says.
    first = [pairs[0] in held_out for pairs in test.pairs()]
    assert 0 < np.mean(first) < 1
    seen_elsewhere = {shape for pairs in train.pairs() for p in pairs if p for colour, shape in [p] if colour == "red"}
    assert seen_elsewhere == {"circle", "triangle"}  # red is still seen, just never as a square


def test_caption_by_hand():
    assert sw.caption(0, 0, 0) == "a small red circle"
    assert sw.caption(0, 0, 0, 0, 1, 2, 1) == "a small red circle left of a large blue square"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(count=0), ValueError, "`count` must be a positive int; received 0"),
        (dict(count=5, image_size=40), ValueError, "`image_size` must be at least 50"),
        (dict(count=5, two_object_fraction=1.5), ValueError, "`two_object_fraction` must be a float in [0, 1]"),
        (dict(count=5, exclude_pairs=[("pink", "circle")]), ValueError, "received ('pink', 'circle')"),
        (dict(count=5, exclude_pairs=[("red", "square")], include_pairs=[("red", "square")]), ValueError, "share"),
        (dict(count=5, exclude_pairs=sw.all_pairs()), ValueError, "leaves no (colour, shape) pair"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(
        error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        sw.generate_scenes(**kwargs)
