"""Issue 21 item 9 and the minor list: inputs are opened safely, outputs never written through a link.

Each case is what a hostile pull request or a careless user can put where dpaudit reads or writes: a JUnit
file committed as a link to ``~/.ssh/authorized_keys``, a FIFO as the policy, string or float member ids, a
pickle with more than tensors, a bare encoder as a "classifier", a checkpoint of other training sets to resume.
Before the fix each one was a traceback, a hang, a silent truncation, an overwrite or a wrong audit.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dpaudit.cli.main import main as run_cli
from dpaudit.errors import CheckpointError, ConfigError, DataError
from dpaudit.input_limits import format_bytes, read_capped
from tests.reports import sample


@pytest.fixture(autouse=True)
def _no_github(monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def _world(tmp_path: Path) -> tuple[Path, Path]:
    report = tmp_path / "audit.json"
    report.write_text(json.dumps(sample.make_report().to_dict(), allow_nan=False), encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text("max_auc = 0.9\n", encoding="utf-8")
    return report, policy


# --------------------------------------------------------------------------- item 9: no write through a link


def test_junit_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    report, policy = _world(tmp_path)
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA honest\n")
    (tmp_path / "gate.xml").symlink_to(victim)
    code = run_cli(["gate", str(report), "--policy", str(policy), "--junit", str(tmp_path / "gate.xml")])
    _, err = capsys.readouterr()
    assert code == 2
    _one_error_line(err, "symbolic link")
    assert victim.read_text() == "ssh-ed25519 AAAA honest\n"


def test_junit_is_written_atomically_and_shareable(tmp_path, capsys):
    report, policy = _world(tmp_path)
    junit = tmp_path / "gate.xml"
    junit.write_text("old")
    assert run_cli(["gate", str(report), "--policy", str(policy), "--junit", str(junit)]) == 0
    assert junit.read_text().startswith("<?xml") and (junit.stat().st_mode & 0o777) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_verdict_through_a_link_is_refused_before_any_work(tmp_path, capsys):
    report, policy = _world(tmp_path)
    link = tmp_path / "link.json"
    link.symlink_to(report)
    before = report.read_bytes()
    code = run_cli(["gate", str(link), "--policy", str(policy), "--write-verdict"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    _one_error_line(err, "symbolic link")
    assert report.read_bytes() == before


# --------------------------------------------------------------------------- inputs: regular files only


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _no_hang(fn, *args, timeout: float = 20.0):
    """Run ``fn(*args)`` in a thread; fail (instead of hanging the suite) if it blocks."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        with open(args[0] if isinstance(args[0], (str, Path)) else os.devnull, "wb"):  # unblock a reader
            pass
        pytest.fail(f"{fn.__name__} blocked on a FIFO")
    return result


@pytest.mark.parametrize("which", ["policy", "report", "mechanism-check"])
def test_fifo_input_is_one_error_line_not_a_hang(tmp_path, capsys, which):
    report, policy = _world(tmp_path)
    fifo = _fifo(tmp_path / "input.fifo")
    argv = {"policy": ["gate", str(report), "--policy", str(fifo)],
            "report": ["gate", str(fifo), "--policy", str(policy)],
            "mechanism-check": ["gate", str(report), "--policy", str(policy), "--mechanism-check", str(fifo)]}[which]

    def gate(path):
        return run_cli(argv)

    result = _no_hang(gate, fifo)
    assert result.get("value") == 2, result
    _one_error_line(capsys.readouterr().err, "is a FIFO, not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_device_is_refused_at_once(device):
    with pytest.raises(DataError, match="is a character device, not a regular file"):
        read_capped(Path(device), 1024, what="audit report", error=DataError)


def test_fifo_member_ids_are_refused(tmp_path):
    from dpaudit.pipeline.external import read_member_ids

    fifo = _fifo(tmp_path / "members.fifo")
    result = _no_hang(read_member_ids, str(fifo), 10)
    assert isinstance(result.get("error"), DataError) and "not a regular file" in str(result["error"])


# --------------------------------------------------------------------------- ids parsed strictly


@pytest.mark.parametrize("ids", ["[0.5, 1.9, true]", "[0, 1, true]", "[0, 1.0]", "[\"0\", 1]", "[[0, 1]]",
                                 "0\n1.9\n", "0\ntrue\n", "{\"train\": [0, 1.5], \"salt\": \"s\"}",
                                 "{\"holdout\": [0]}", "[0, 99999999999999999999999]"])
def test_member_ids_are_integers_or_refused(tmp_path, ids):
    from dpaudit.pipeline.external import read_member_ids

    path = tmp_path / "members.json"
    path.write_text(ids)
    with pytest.raises(DataError, match="is not a list of integer ids") as info:
        read_member_ids(str(path), 10)
    assert "\n" not in str(info.value)


def test_member_ids_that_are_integers_still_read(tmp_path):
    from dpaudit.pipeline.external import read_member_ids

    for text in ("[0, 3, 5]", "0\n3\n5\n", "{\"train\": [0, 3, 5], \"salt\": \"k\"}"):
        (tmp_path / "m.json").write_text(text)
        assert np.flatnonzero(read_member_ids(str(tmp_path / "m.json"), 10).mask).tolist() == [0, 3, 5]


@pytest.mark.parametrize("column", ["a\nb\nc", "0\n1\nx", "0.5\n1.5\n2.5", "true\nfalse\ntrue"])
def test_scores_csv_ids_must_be_integers(tmp_path, column):
    from dpaudit.pipeline.scores import read_scores

    rows = column.split("\n")
    path = tmp_path / "scores.csv"
    path.write_text("id,c0,c1\n" + "".join(f"{r},0.1,0.2\n" for r in rows))
    with pytest.raises(DataError, match="'id' column .* must hold integers") as info:
        read_scores(path, n=3, num_classes=2, kind="logits")
    assert "\n" not in str(info.value)


def test_scores_csv_with_an_empty_text_cell_is_one_line(tmp_path):
    from dpaudit.pipeline.scores import read_scores

    path = tmp_path / "scores.csv"
    path.write_text("id,c0,c1,text\n0,0.1,0.2,\n1,0.3,0.4,b\n")
    with pytest.raises(DataError, match="name another text"):
        read_scores(path, n=2, num_classes=2, kind="logits", texts=["a", "b"])


# --------------------------------------------------------------------------- units


def test_size_caps_are_stated_in_the_right_unit(tmp_path):
    from dpaudit.verify.attach import MAX_CHECK_BYTES, attach_mechanism_check

    assert (format_bytes(2**16), format_bytes(50 * 2**20), format_bytes(4 << 30)) == ("64 KiB", "50 MiB", "4 GiB")
    big = tmp_path / "mechanism_check.json"
    big.write_bytes(b" " * (MAX_CHECK_BYTES + 1))
    with pytest.raises(DataError, match="larger than 64 KiB") as info:
        attach_mechanism_check(sample.make_report(), big)
    assert "0 MiB" not in str(info.value)


# --------------------------------------------------------------------------- Hugging Face targets


def _hf_dirs(tmp_path: Path) -> dict[str, Path]:
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    from tests.cli._helpers import TOKENIZER_FILES, embedded_model_dir

    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        vocab_size=30522, max_position_embeddings=64)
    torch.manual_seed(0)
    dirs = {}
    for name, model in (("classifier", BertForSequenceClassification(config)), ("encoder", BertModel(config))):
        path = tmp_path / name
        model.save_pretrained(path)
        for file in TOKENIZER_FILES:
            shutil.copy(embedded_model_dir() / file, path / file)
        dirs[name] = path
    relabelled = tmp_path / "relabelled"  # an encoder whose config.json claims to be a classifier
    shutil.copytree(dirs["encoder"], relabelled)
    cfg = json.loads((relabelled / "config.json").read_text())
    (relabelled / "config.json").write_text(json.dumps({**cfg, "architectures": ["BertForSequenceClassification"]}))
    dirs["relabelled"] = relabelled
    pickled = tmp_path / "pickled"  # pickle weights holding more than tensors
    shutil.copytree(dirs["classifier"], pickled)
    tables = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save({**tables, "extra": __import__("datetime").datetime(2024, 1, 1)}, pickled / "pytorch_model.bin")
    dirs["pickled"] = pickled
    return dirs


class _Texts:
    label_names = ("0", "1")
    texts = ["good film", "bad film"]
    pairs = None
    labels = np.array([1, 0])
    num_classes = 2

    def __len__(self):
        return 2


def test_hf_target_without_a_classification_head_is_refused(tmp_path):
    from dpaudit.pipeline.hf_target import check_labels, hf_logits

    dirs = _hf_dirs(tmp_path)
    check_labels(dirs["classifier"], 2)  # the positive control
    with pytest.raises(CheckpointError, match="is not a sequence classifier .architectures: BertModel.") as info:
        check_labels(dirs["encoder"], 2)
    assert "\n" not in str(info.value)
    check_labels(dirs["relabelled"], 2)  # the config lies; the weights do not
    with pytest.raises(CheckpointError, match="lacks trained weights .* initialised at random"):
        hf_logits(dirs["relabelled"], _Texts(), max_length=16, batch_size=2, device=torch.device("cpu"))


def test_refused_pickle_is_one_line(tmp_path):
    from dpaudit.errors import ModelError
    from dpaudit.pipeline.hf_target import hf_logits

    dirs = _hf_dirs(tmp_path)
    with pytest.raises(ModelError, match="pickle weights .pytorch_model.bin. hold objects other than tensors") as info:
        hf_logits(dirs["pickled"], _Texts(), max_length=16, batch_size=2, device=torch.device("cpu"))
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


# --------------------------------------------------------------------------- the library's resume


def test_library_resume_refuses_a_checkpoint_of_other_training_sets(tmp_path):
    from dpaudit.rundir import RunDir
    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.dp import ClippingConfig
    from dpaudit.trainers.loop import Trainer, TrainSettings
    from tests.trainers._tiny import tiny_bert, tiny_population

    n = 24
    enc, labels = tiny_population(n)
    settings = TrainSettings(sample_rate=0.5, steps=2, batch_size=6, micro_batch_size=16, lr=0.05, optimizer="sgd",
                             momentum=0.0, noise_multiplier=1.0, clipping=ClippingConfig(max_grad_norm=1.0))
    first, other = np.zeros((1, n), bool), np.zeros((1, n), bool)
    first[0, :12], other[0, 12:] = True, True
    run = RunDir.claim(tmp_path / "run", command="train")
    run.bind({"dataset_sha256": "d" * 64, "n_examples": n})

    def trainer(membership):
        clf = BankedClassifier.from_backbone(tiny_bert(0), num_models=1, num_labels=2)
        return Trainer(clf, enc, labels, membership, settings, seeds=[5], run=run, meta={"backbone_sha256": "t"},
                       progress=False)

    trainer(first).save()
    meta = json.dumps(__import__("dpaudit.trainers.checkpoint", fromlist=["x"]).read_models(
        run.file("models.safetensors"))[1])
    assert "membership_commitments" in meta and str(list(range(12))) not in meta  # keyed, not the ids
    assert (run.file("membership_key.json").stat().st_mode & 0o777) == 0o600
    with pytest.raises(ConfigError, match="trained on other examples"):
        trainer(other).try_resume()
    assert trainer(first).try_resume() is True


def test_fifo_scores_target_is_refused_before_hashing(tmp_path):
    from dpaudit.config import load_config
    from dpaudit.pipeline.target import open_target

    fifo = _fifo(tmp_path / "scores.npy")
    (tmp_path / "m.json").write_text("[0, 1]")
    cfg, _ = load_config(None, [("target", "path", str(fifo)), ("target", "members", str(tmp_path / "m.json"))])

    def open_it(path):
        return open_target(cfg, "scores", _Texts(), "b" * 64)

    result = _no_hang(open_it, fifo)
    assert isinstance(result.get("error"), ConfigError) and "not a regular file" in str(result["error"])
