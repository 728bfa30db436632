"""``dpaudit.models``: the cheap checks of a model directory made before any data is loaded."""

from __future__ import annotations

import json

import pytest

from dpaudit.errors import ModelError
from dpaudit.models import position_limit, resolve_model_dir


def test_embedded_model_positions():
    model_dir, _ = resolve_model_dir(None, max_length=512)
    with pytest.raises(ModelError, match=r"data.max_length=513 exceeds the 512 positions"):
        resolve_model_dir(None, max_length=513)
    assert json.loads((model_dir / "config.json").read_text())["max_position_embeddings"] == 512


@pytest.mark.parametrize("config, limit", [
    ({"model_type": "bert", "max_position_embeddings": 512}, (512, 0)),
    ({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}, (514, 2)),
    ({"model_type": "gpt2", "n_positions": 1024}, (1024, 0)),
    ({"model_type": "t5"}, None),
])
def test_position_limit(config, limit):
    assert position_limit(config) == limit


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "[" * 100_000])
def test_malformed_config_json_is_one_line(content, tmp_path):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ModelError, match="config.json of model directory") as err:
        resolve_model_dir(tmp_path)
    assert "\n" not in str(err.value)


def test_auto_map_in_tokenizer_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 64}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["x.Tok", None]}}))
    with pytest.raises(ModelError, match=r"auto_map in tokenizer_config.json\); dpaudit never runs code"):
        resolve_model_dir(tmp_path)
