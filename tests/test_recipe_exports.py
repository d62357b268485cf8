"""Every recipe's `export` command: a SavedModel that serves raw inputs in a
TensorFlow-only process and gives what the Keras model gives.

Each recipe's tiny-preset model is built (its training is tested elsewhere),
saved as .keras, exported through `python -m recipes.NAME export` (called as
main([...])), and every export is served in one fresh interpreter.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_rnn_lab.data import shapes_world
from keras_rnn_lab.decoding.generation import TextGenerator
from keras_rnn_lab.serving import export
from keras_rnn_lab.training import config_from_preset
from recipes import captioning, char_lm, forecast, parity, sentiment, tagging, translation, video_frames
from tests.serving import Job, serve_many

# Every recipe trained and exported once (the module fixture, ~40 s) and served:
# with the slow tests.  The default run serves exports in test_export.py and,
# through LiteRT and ONNX Runtime, in test_numeric_exports.py.
pytestmark = pytest.mark.slow

RNG = np.random.default_rng(0)


def tiny(recipe, **overrides):
    return config_from_preset(recipe.Config, recipe.PRESETS, "tiny", **overrides)


def parity_case():
    model = parity.build_model(tiny(parity))
    split = parity.random_bit_strings(RNG, 8, (1, 9))
    return model, "classify", {"tokens": split.tokens}


def sentiment_case():
    config = tiny(sentiment)
    texts = ["a fine and moving film", "dull, flat and far too long", "the cast shines", "not worth it"]
    model = sentiment.build_model(config, sentiment.make_vocabulary(config, texts))
    return model, "classify", {"text": np.array(texts + ["words never seen in training"])}


def forecast_case():
    config = tiny(forecast)
    model = forecast.build_model(config)
    features = RNG.normal(size=(3, config.window, forecast.feature_count(config))).astype("float32")
    return model, "forecast", {"features": features}


def tagging_case():
    config = tiny(tagging)
    model = tagging.build_model(config)
    return model, "tag", {"measurements": RNG.normal(size=(2, 12, len(tagging.FEATURES))).astype("float32")}


def video_case():
    config = tiny(video_frames, target="motion")
    model = video_frames.build_model(config)
    frames = RNG.uniform(size=(2, config.frames, config.canvas_size, config.canvas_size, 1)).astype("float32")
    return model, "label_frames", {"frames": frames}


SENTENCES = ["one hundred and twenty-one", "seven", "Three thousand, four!", "nine hundred ninety-nine"]


def char_lm_case():
    config = tiny(char_lm)
    model = char_lm.build_model(config, char_lm.load_data(config))
    inputs = {
        "prime": np.array("From fairest"),
        "length": np.array(80, "int32"),
        "temperature": np.array(0.8, "float32"),
        "seed": np.array(7, "int32"),
    }
    return model, "generate", inputs


def translation_case():
    config = tiny(translation)
    model = translation.build_model(config, translation.load_data(config))
    return model, "translate", {"text": np.array(SENTENCES)}


def captioning_case():
    model = captioning.build_model(tiny(captioning))
    return model, "caption", {"image": shapes_world.generate_scenes(3, seed=5).images}


CASES = {
    "parity": (parity, parity_case),
    "sentiment": (sentiment, sentiment_case),
    "forecast": (forecast, forecast_case),
    "tagging": (tagging, tagging_case),
    "video_frames": (video_frames, video_case),
    "char_lm": (char_lm, char_lm_case),
    "translation": (translation, translation_case),
    "captioning": (captioning, captioning_case),
}
TEXT_OUTPUTS = ("translation", "captioning")  # compared string for string below, greedy and beam


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name -> (model, signature, inputs, SavedModel path, served outputs)."""
    root = tmp_path_factory.mktemp("exports")
    built = {}
    for name, (recipe, case) in CASES.items():
        keras.utils.set_random_seed(0)
        model, signature, inputs = case()
        model.save(root / f"{name}.keras")
        path = recipe.main(["export", "--model", str(root / f"{name}.keras"), "--out", str(root / name)])
        built[name] = (model, signature, inputs, path)
    jobs = [Job(path, signature, inputs) for _, signature, inputs, path in built.values()]
    # The beam-search signatures too: the same inputs, another signature.
    jobs += [Job(built[name][3], f"{built[name][1]}_beam", built[name][2]) for name in TEXT_OUTPUTS]
    served = serve_many(jobs)
    results = {name: (*built[name], outputs[0]) for name, outputs in zip(built, served)}
    for name, outputs in zip(TEXT_OUTPUTS, served[len(built) :]):
        results[f"{name}_beam"] = (*built[name], outputs[0])
    return results


@pytest.mark.parametrize("name", sorted(set(CASES) - set(TEXT_OUTPUTS) - {"char_lm"}))
def test_the_served_export_gives_the_keras_models_outputs(exports, name):
    model, signature, inputs, path, served = exports[name]
    x = inputs[next(iter(inputs))]
    expected = model.predict(x.astype(object) if x.dtype.kind == "U" else x, verbose=0)  # Keras takes str as object
    if "next_value" in served:  # forecast: the outputs themselves, in the series' units (°F)
        np.testing.assert_allclose(served["next_value"], forecast.to_units(model, expected), rtol=1e-6, atol=1e-4)
        return
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(expected))
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    np.testing.assert_array_equal(served["label_id"], np.argmax(expected, axis=-1))
    assert served["label"].shape == served["label_id"].shape and served["label"].dtype.kind == "U"


def test_labels_are_the_recipes_class_names(exports):
    *_, served = exports["sentiment"]
    assert [sentiment.CLASS_NAMES[i] for i in served["label_id"]] == list(served["label"])
    *_, served = exports["video_frames"]
    assert set(served["label"].ravel()) <= set(video_frames.MOTION_NAMES)


def test_saved_model_cli_lists_each_recipes_signature(exports):
    cli = [sys.executable, "-c", "from tensorflow.python.tools.saved_model_cli import main; main()"]
    for name in ("sentiment", "forecast"):
        _, signature, inputs, path, _ = exports[name]
        shown = subprocess.run(
            [*cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True
        ).stdout
        assert f"signature_def['{signature}']" in shown and "signature_def['serving_default']" in shown
        for input_name in inputs:
            assert f"inputs['{input_name}']" in shown


def test_export_command_refuses_a_non_empty_directory(exports, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    model_path = tmp_path / "m.keras"
    exports["parity"][0].save(model_path)
    with pytest.raises(SystemExit) as exit_info:
        parity.main(["export", "--model", str(model_path), "--out", str(tmp_path / "taken")])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parity.main(["export", "--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "new")])
    assert "no such file" in capsys.readouterr().err
    assert export.SAVED_MODEL_VERSION == 1 and not (tmp_path / "new").exists()


@pytest.mark.parametrize("beam_width, key", [(1, "translation"), (4, "translation_beam")])
def test_served_translations_are_the_translators(exports, beam_width, key):
    model, _, inputs, _, served = exports[key]
    translator = translation.Translator(model)
    expected = translator.translate_batch(
        [translation.tokenize(text) for text in inputs["text"]], beam_width, max_length=translation.SERVED_MAX_LENGTH
    )
    assert list(served["translation"]) == [" ".join(words) for words in expected]


def test_the_graph_tokenizer_is_the_recipes():
    texts = ["Vingt-et-un, non!", "l’été de l'an 2000 (déjà)", "  Über   Straße?  ", "quatre-vingt-dix"]
    tokens = translation.graph_tokens(np.array(texts)).numpy()
    for text, row in zip(texts, tokens):
        assert [t.decode() for t in row if t] == translation.tokenize(text)


@pytest.mark.parametrize("beam_width, key", [(1, "captioning"), (3, "captioning_beam")])
def test_served_captions_are_the_captioners(exports, beam_width, key):
    model, _, inputs, _, served = exports[key]
    tokens, _ = captioning.Captioner(model)(inputs["image"], captioning.SERVED_MAX_WORDS, beam_width=beam_width)
    vocabulary = captioning.Vocabulary.shapes()
    assert list(served["caption"]) == [vocabulary.decode(row) for row in tokens]


def test_served_generation_is_the_samplers_for_the_same_seed(exports):
    model, _, inputs, _, served = exports["char_lm"]
    expected = TextGenerator(model)("From fairest", 80, temperature=0.8, seed=7)[0]
    assert str(served["text"]) == expected and len(expected) == len("From fairest") + 80
