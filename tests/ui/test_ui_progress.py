"""The live page's numbers read back from a job's log: tqdm bars redrawn with \\r, the stage lines after them,
the CLI's error line."""

from __future__ import annotations

from dpaudit.ui.progress import error_line, log_lines, progress

LOG = ("audit: population N=80, target (train) + 2 shadows\n"
       "train ×3:   0%|          | 0/40 [00:00<?, ?step/s]\r"
       "train ×3:  25%|██▌       | 10/40 [00:03<00:09,  3.1step/s, eps=2.41]\r"
       "train ×3:  50%|█████     | 20/40 [00:06<00:06,  3.2step/s, eps=3.87]\n")


def test_the_last_bar_gives_stage_step_eta_and_epsilon(tmp_path):
    path = tmp_path / "ui.log"
    path.write_text(LOG, encoding="utf-8")
    lines = log_lines(path)
    assert lines[-1].startswith("train ×3:  50%")  # the bar's last redraw only
    assert progress(lines) == {"stage": "train ×3", "step": 20, "total": 40, "eta": "00:06", "epsilon": 3.87}
    path.write_text(LOG + "score: 100%|██████████| 1/1 [00:00<00:00, 30.23batch/s]\nattack: loss\n")
    assert progress(log_lines(path)) == {"stage": "attacks", "step": None, "total": None, "eta": None,
                                         "epsilon": 3.87}
    assert error_line(log_lines(path)) is None
    path.write_text(LOG + "error: data file 'x.csv' has no column 'text'; pass --text-column.\n")
    assert error_line(log_lines(path)) == "error: data file 'x.csv' has no column 'text'; pass --text-column."


def test_an_unknown_eta_and_a_missing_log(tmp_path):
    assert progress(["train ×3:   0%|          | 0/40 [00:00<?, ?step/s]"])["eta"] is None
    assert log_lines(tmp_path / "absent.log") == []
