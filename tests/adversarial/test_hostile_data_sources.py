"""Hostile saved ``datasets`` directories through ``dpaudit train``: one line, exit 2, before any training.

Before issue 10 a directory as ``--data`` fell through to the table reader ("unknown format"); now that
directories are read with ``datasets.load_from_disk``, each way one can be wrong must still be one line naming
the fix, never a traceback from ``datasets`` or pyarrow.
"""

from __future__ import annotations

import datasets
import pytest

from dpaudit.data import MAX_CLASSES
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model

FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--epsilon", "3", "--quiet"]


def _saved(path, *, names=("neg", "pos"), dict_of=None):
    ds = datasets.Dataset.from_dict({"text": ["a b", "c d", "e f"], "label": [0, 1, 0]},
                                    features=datasets.Features({"text": datasets.Value("string"),
                                                                "label": datasets.ClassLabel(names=list(names))}))
    (datasets.DatasetDict({s: ds for s in dict_of}) if dict_of else ds).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("case", ["too-many-labels", "missing-column", "missing-split", "not-a-dataset",
                                  "arrow-garbage"])
def test_hostile_datasets_dir_is_one_line(case, tmp_path, capsys):
    flags: list[str] = []
    if case == "too-many-labels":
        path, fragments = _saved(tmp_path / "d", names=[f"id{i}" for i in range(5000)]), \
            ("5,000 classes", f"at most {MAX_CLASSES}", "data.label_column")
    elif case == "missing-column":
        path, fragments = _saved(tmp_path / "d"), ("no column(s) ['body']", "data.text_column")
        flags = ["--set", "data.text_column='body'"]
    elif case == "missing-split":
        path, fragments = _saved(tmp_path / "d", dict_of=("test",)), ("no split 'train'", "['test']", "data.split")
    elif case == "not-a-dataset":
        path, fragments = save_tiny_model(tmp_path / "d"), ("not a saved Hugging Face dataset", "save_to_disk")
    else:  # a real dataset dir whose Arrow file was overwritten
        path = _saved(tmp_path / "d")
        for arrow in path.glob("*.arrow"):
            arrow.write_bytes(b"\x00garbage" * 100)
        fragments = ("not a saved Hugging Face dataset",)
    model = save_tiny_model(tmp_path / "model")
    capsys.readouterr()  # the fixtures' own progress bars
    code, out, err = run_cli(capsys, ["train", *FAST, *flags, "--model", str(model), "--data", str(path),
                                      "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert_one_error_line(err, *fragments)
    assert not (tmp_path / "r" / "models.safetensors").exists()
