"""objects.json and condition files (test.json style) for each label-space kind, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gen_eval.data.conditions import read_condition_file, read_objects
from gen_eval.data.labels import LabelSpace
from gen_eval.data.shapes import objects_json_text
from gen_eval.errors import UserError

ICLEVR = LabelSpace.multilabel(json.loads(objects_json_text()))
CARTOON = LabelSpace.categorical({"hair": ["a", "b"], "eye": ["x", "y", "z"]})
SMILING = LabelSpace.binary("Smiling")


def write(tmp_path: Path, text: str, name: str = "cond.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_objects_matches_the_ta_order(tmp_path: Path) -> None:
    space = read_objects(write(tmp_path, objects_json_text(), "objects.json"))
    assert space.kind == "multilabel" and space.size == 24
    assert space.names[0] == "gray cube" and space.names[8] == "gray sphere" and space.names[23] == "yellow cylinder"


BAD_OBJECTS = [
    ("list", '["red cube"]', "expected a JSON object"),
    ("empty object", "{}", "expected a JSON object"),
    ("index not int", '{"a": "0"}', "expected an integer"),
    ("bool index", '{"a": true}', "expected an integer"),
    ("gap", '{"a": 0, "b": 2}', "indices must be 0..1"),
    ("repeated index", '{"a": 0, "b": 0}', "indices must be 0..1"),
    ("bad json", '{"a": 0,', "invalid JSON"),
    ("empty file", "", "empty"),
]


@pytest.mark.parametrize("case, text, words", BAD_OBJECTS, ids=[c[0] for c in BAD_OBJECTS])
def test_read_objects_errors(tmp_path: Path, case: str, text: str, words: str) -> None:
    path = write(tmp_path, text, "objects.json")
    with pytest.raises(UserError, match=words) as info:
        read_objects(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_multilabel_conditions(tmp_path: Path) -> None:
    path = write(tmp_path, '[["gray cube"], ["red sphere", "yellow cylinder"]]')
    vectors = read_condition_file(path, ICLEVR)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 24)
    assert np.flatnonzero(vectors[0]).tolist() == [0] and np.flatnonzero(vectors[1]).tolist() == [9, 23]


def test_the_tas_own_files_read(tmp_path: Path) -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "iclevr"
    if not (shared / "test.json").is_file():
        pytest.skip("the TA's files are not next to this checkout")
    space = read_objects(shared / "objects.json")
    for name in ("test.json", "new_test.json"):
        vectors = read_condition_file(shared / name, space)
        assert vectors.shape == (32, 24) and 1 <= vectors.sum(axis=1).min() <= vectors.sum(axis=1).max() <= 3


def test_categorical_and_binary_conditions(tmp_path: Path) -> None:
    vectors = read_condition_file(write(tmp_path, '[["hair:b", "eye:x"], ["eye:z", "hair:a"]]'), CARTOON)
    np.testing.assert_array_equal(vectors, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]])
    vectors = read_condition_file(write(tmp_path, '[0, 1, [], ["Smiling"]]'), SMILING)
    np.testing.assert_array_equal(vectors, [[0], [1], [0], [1]])


# Malformed condition files: (case, label space, file text, expected words in the one-line error).
BAD_CONDITIONS = [
    ("missing file", ICLEVR, None, "not found"),
    ("empty file", ICLEVR, "  \n", "empty"),
    ("bad json", ICLEVR, '[["red cube"]', "line 1 column"),
    ("not utf-8", ICLEVR, b"\xff\xfe[", "not UTF-8"),
    ("not a list", ICLEVR, '{"a": "red cube"}', "expected a JSON list"),
    ("no conditions", ICLEVR, "[]", "holds no conditions"),
    ("item not a list", ICLEVR, '["red cube"]', "item 0: expected a list"),
    ("empty condition", ICLEVR, '[["red cube"], []]', "item 1: empty list"),
    ("unknown name", ICLEVR, '[["pink cube"]]', "unknown label 'pink cube'; valid names include 'gray cube'"),
    ("duplicate name", ICLEVR, '[["red cube", "red cube"]]', "appears twice"),
    ("number in list", ICLEVR, "[[3]]", "must be strings"),
    ("number for multilabel", ICLEVR, "[1]", "expected a list"),
    ("categorical two in a head", CARTOON, '[["hair:a", "hair:b", "eye:x"]]', "head 'hair' needs exactly one choice, has 2"),
    ("categorical head missing", CARTOON, '[["hair:a"]]', "head 'eye' needs exactly one choice, has 0"),
    ("categorical bare value", CARTOON, '[["a", "eye:x"]]', "unknown label 'a'"),
    ("binary out of range", SMILING, "[0, 2]", "item 1: binary condition must be 0 or 1"),
    ("binary unknown name", SMILING, '[["Frowning"]]', "unknown label 'Frowning'"),
    ("binary bool", SMILING, "[true]", "expected a list"),
]


@pytest.mark.parametrize("case, space, text, words", BAD_CONDITIONS, ids=[c[0] for c in BAD_CONDITIONS])
def test_condition_file_errors(tmp_path: Path, case: str, space: LabelSpace, text, words: str) -> None:
    path = tmp_path / "cond.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(UserError) as info:
        read_condition_file(path, space)
    message = str(info.value)
    assert words in message and str(path) in message and "\n" not in message


def test_a_labelled_split_serves_as_conditions_in_file_order(tmp_path):
    """iCLEVR's train.json ({image: [names]}) conditions a generator on its labels, as the demo does."""
    from gen_eval.data.conditions import read_condition_file
    from gen_eval.data.labels import LabelSpace

    space = LabelSpace.multilabel(["red cube", "blue sphere", "gray cylinder"])
    split = tmp_path / "train.json"
    split.write_text('{"b.png": ["blue sphere"], "a.png": ["red cube", "gray cylinder"]}')
    np.testing.assert_array_equal(read_condition_file(split, space), [[0, 1, 0], [1, 0, 1]])
