"""Hostile inputs (issue 16, findings 4, 5 and 7): a config, a data file or a model directory chosen by an
attacker must end in exit code 2 with one ``error:`` line, in bounded memory, without running its code.

Memory is measured as peak-RSS growth in a fresh subprocess, after a warm-up call, so imports and caches do
not count. The peak is ``VmHWM`` from ``/proc/self/status``: Linux carries ``ru_maxrss`` over from the
forking parent (pytest, with torch loaded), which would hide any growth below the parent's size. Nothing here
is timed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dpaudit.data import MAX_CLASSES, load_dataset
from dpaudit.errors import DataError, ModelError
from dpaudit.models import check_positions, load_backbone
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--quiet"]
#: A model dir that does not exist: a config value that passes load would fail on it instead.
NO_MODEL = ["--model", "/nonexistent/model-dir", "--data", "/nonexistent/data.csv"]
DEEP = "[" * 600 + "]" * 600
HUGE = "1" + "0" * 400


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {"bert": save_tiny_model(root / "tiny-bert"), "csv": write_csv(root / "reviews.csv")}


#: Prelude of a measuring script: ``peak_kib()`` is this process's own peak RSS.
PEAK = """
def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
"""
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak RSS is read from /proc")


def _peak_growth_mb(script: str) -> float:
    """Run ``script`` (which prints the peak-RSS growth in KiB on its last line) in a fresh interpreter."""
    code = PEAK + textwrap.dedent(script)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.strip().splitlines()[-1]) / 1024


# --- finding 4: malformed config values are refused at load, one line, exit 2 ---------------------------------

MALFORMED = {
    "max_grad_norm nan": (["--set", "clipping.max_grad_norm=nan"], "clipping.max_grad_norm must be in (0, 1000000]"),
    "noise inf": (["--set", "privacy.noise_multiplier=inf"], "privacy.noise_multiplier must be in (0, 1000000]"),
    "noise 1e308": (["--set", "privacy.noise_multiplier=1e308"], "privacy.noise_multiplier=1e+308"),
    "epsilon nan": (["--epsilon", "nan"], "privacy.epsilon must be in (0, 1000]"),
    "epsilon inf": (["--epsilon", "inf"], "privacy.epsilon=inf"),
    "delta 1.5": (["--epsilon", "3", "--delta", "1.5"], "privacy.delta must be in (0, 1)"),
    "delta 0": (["--epsilon", "3", "--delta", "0"], "privacy.delta must be in (0, 1)"),
    "fpr 2.0": (["--set", "audit.fprs=[0.01, 2.0]"], "audit.fprs[1] must be in (0, 1]"),
    "fpr of a string": (["--set", "audit.fprs=['x']"], "audit.fprs[0] must be a number"),
    "significance 0.9": (["--set", "audit.significance=0.9"], "audit.significance must be in (0, 0.5]"),
    "lr inf": (["--set", "optim.lr=inf"], "optim.lr must be in (0, 100]"),
    "epochs inf": (["--epochs", "inf"], "train.epochs must be in (0, 10000]"),
    "batch 10**400": (["--batch-size", HUGE], "train.batch_size must be in [1, 10000000]"),
    "max_examples 10**400": (["--set", f"data.max_examples={HUGE}"], "data.max_examples must be in [1, 10000000]"),
    "noise 10**400": (["--set", f"privacy.noise_multiplier={HUGE}"], "privacy.noise_multiplier must be in"),
    "seed of 5000 digits": (["--set", "train.seed=1" + "0" * 5000], "too large to read"),
    "max_length 10**6": (["--set", "data.max_length=1000000"], "data.max_length must be in [1, 131072]"),
    "holdout 1": (["--set", "data.holdout_fraction=1.0"], "data.holdout_fraction must be in (0, 1)"),
    "canary fraction 0": (["--set", "audit.canary_guess_fraction=0"], "audit.canary_guess_fraction must be in (0, 1]"),
    "100k shadows": (["--set", "audit.num_shadows=100000"], "audit.num_shadows must be in [2, 1024]"),
    "loo 0": (["--set", "audit.loo_targets=0"], "audit.loo_targets must be in [1, 1025]"),
    "accountant gdp": (["--set", "privacy.accountant='gdp'"], "privacy.accountant must be one of {pld, prv, rdp}"),
    "clipping mode": (["--set", "clipping.mode='per_token'"], "clipping.mode must be one of"),
    "clipping style": (["--set", "clipping.style='none'"], "clipping.style must be one of"),
    "optimizer": (["--set", "optim.optimizer='lbfgs'"], "optim.optimizer must be one of {adam, adamw, sgd}"),
    "schedule": (["--set", "optim.schedule='step'"], "optim.schedule must be one of"),
    "device": (["--device", "cuda:0;x"], "train.device must be one of {auto, cpu, cuda, cuda:N}"),
    "bad group regex": (["--set", "clipping.groups={a=['(', 1.0]}"], "clipping.groups.a has an invalid regex"),
    "600-deep list": (["--set", f"audit.fprs={DEEP}"], "nested too deeply"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_config_value_is_refused_at_load(case, tmp_path, capsys):
    argv, fragment = MALFORMED[case]
    code, _, err = run_cli(capsys, ["train", *FAST, *NO_MODEL, *argv, "--run-dir", str(tmp_path / "run")])
    assert code == 2
    line = assert_one_error_line(err, fragment)
    assert "does not exist" not in line  # refused by the config, before the model or data is looked at
    assert len(line) < 400


@pytest.mark.parametrize("body", ["[train]\nseed = 1" + "0" * 5000 + "\n", f"[audit]\nfprs = {DEEP}\n",
                                  "[clipping]\nmax_grad_norm = nan\n", "data = 3\n"])
def test_malformed_config_file_is_one_line(body, tmp_path, capsys):
    config = tmp_path / "hostile.toml"
    config.write_text(body)
    code, _, err = run_cli(capsys, ["train", *NO_MODEL, "--config", str(config), "--set", "data.path='x.csv'"])
    assert code == 2
    assert "does not exist" not in assert_one_error_line(err)


# --- finding 5: bounded resources ----------------------------------------------------------------------------

@needs_proc
def test_a_10mb_text_field_tokenizes_in_bounded_memory():
    growth = _peak_growth_mb("""
        from transformers import AutoTokenizer
        from dpaudit.models import embedded_model_dir
        from dpaudit.trainers.batching import EncodedTexts
        tok = AutoTokenizer.from_pretrained(embedded_model_dir(), trust_remote_code=False)
        EncodedTexts.from_texts(["warm up"], tok, max_length=64)
        text = "lorem ipsum dolor sit amet " * 400_000  # 10.8 MB in one field
        before = peak_kib()
        enc = EncodedTexts.from_texts([text, "short"], tok, max_length=64)
        assert [len(x) for x in enc.ids] == [64, 3], [len(x) for x in enc.ids]
        print(peak_kib() - before)
    """)
    assert growth < 200, f"tokenizing one 10.8 MB field grew peak RSS by {growth:.0f} MB"


@needs_proc
def test_a_million_row_csv_is_sampled_while_streaming(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as f:  # 1M rows, 61 MB, written 100k rows at a time
        f.write("text,label\n")
        for start in range(0, 1_000_000, 100_000):
            f.write("".join(f"review {i} of a film that was fine and then not so fine,{i % 2}\n"
                            for i in range(start, start + 100_000)))
    growth = _peak_growth_mb(f"""
        from dpaudit.data import load_dataset
        open({str(tmp_path / 'warm.csv')!r}, "w").write("text,label\\na,0\\nb,1\\n")
        load_dataset(path={str(tmp_path / 'warm.csv')!r})  # pandas' lazy imports
        before = peak_kib()
        ds = load_dataset(path={str(path)!r}, max_examples=100, seed=0)
        assert len(ds) == 100 and ds.label_names == ("0", "1")
        print(peak_kib() - before)
    """)
    assert growth < 100, f"sampling 100 rows of a 1M-row CSV grew peak RSS by {growth:.0f} MB"


def test_an_id_column_as_label_is_refused(tmp_path, capsys, tiny):
    path = tmp_path / "ids.csv"
    path.write_text("text,id\n" + "".join(f"row {i},{i}\n" for i in range(200_000)))
    with pytest.raises(DataError, match=rf"column 'id' .* more than {MAX_CLASSES} distinct labels"):
        load_dataset(path=str(path), label_column="id", max_examples=100)
    code, _, err = run_cli(capsys, ["train", *FAST, "--model", str(tiny["bert"]), "--data", str(path), "--set",
                                    "data.label_column='id'", "--epsilon", "3", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert_one_error_line(err, "column 'id'", f"more than {MAX_CLASSES} distinct labels", "data.label_column")


def test_max_length_beyond_the_positions_is_refused_before_training(tmp_path, capsys, tiny):
    # The tiny BERT has 64 positions; 100 tokens used to crash inside the first forward pass.
    code, _, err = run_cli(capsys, ["train", *FAST, "--model", str(tiny["bert"]), "--data", str(tiny["csv"]),
                                    "--epsilon", "3", "--set", "data.max_length=100",
                                    "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert_one_error_line(err, "data.max_length=100", "max_position_embeddings=64", "≤ 64")
    assert not (tmp_path / "r" / "models.safetensors").exists()


def test_roberta_position_offset_is_counted():
    config = {"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}
    check_positions(config, 512, Path("m"))
    with pytest.raises(ModelError, match=r"513 exceeds the 512 positions .*minus an offset of 2"):
        check_positions(config, 513, Path("m"))


# --- finding 7: code in a model directory is never run ------------------------------------------------------

def _with_custom_code(path: Path, model_type: str, marker: Path) -> Path:
    config = json.loads((path / "config.json").read_text())
    config.update(model_type=model_type, auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    (path / "config.json").write_text(json.dumps(config))
    (path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                  "from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n")
    return path


@pytest.mark.parametrize("model_type", ["dpaudit-custom", "bert"])
def test_model_dir_with_auto_map_is_refused_without_prompt(model_type, tmp_path, capsys, monkeypatch, tiny):
    marker = tmp_path / "code-ran"
    model = _with_custom_code(save_tiny_model(tmp_path / "custom"), model_type, marker)
    capsys.readouterr()  # drop the progress bar of saving the checkpoint
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # a prompt would read "y" and run evil.py
    code, out, err = run_cli(capsys, ["train", *FAST, "--model", str(model), "--data", str(tiny["csv"]),
                                      "--epsilon", "3", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert_one_error_line(err, str(model), "custom code", "never runs code")
    assert "custom code which must be executed" not in out + err  # transformers' prompt
    assert not marker.exists()


def test_loaders_are_told_not_to_trust_remote_code(monkeypatch, tiny):
    from transformers import AutoModel, AutoTokenizer

    seen: list[object] = []
    for cls in (AutoModel, AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code", "unset"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_backbone(tiny["bert"])
    assert seen == [False, False]


@pytest.mark.parametrize("argv", [["train", "--batch-size", "1e3"], ["gate"], ["nosuch"],
                                  ["audit", "--shadows", "four"], ["report", "x", "--format", "docx"]])
def test_flag_type_errors_are_one_line(capsys, argv):
    """argparse printed its whole usage block before the error (several lines); the CLI contract is one."""
    from dpaudit.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--help" in err[0], err
