"""The release boundary of a causal-LM audit (docs/design.md, "Release boundary"): its public summary.json
(:func:`dpaudit.pipeline.lm_audit.lm_audit_summary`, what the audit writes) is the same for two audits whose
membership-dependent results differ (attacks, canaries, exposure, generations), and holds none of them. The
end-to-end run (tests/cli/test_audit_causal_lm.py, slow) checks the files' modes and that no secret is public."""

from __future__ import annotations

import dataclasses
import json

from dpaudit.config import Config
from dpaudit.pipeline.lm_audit import lm_audit_summary
from tests.reports.lm_sample import make_lm_report

LEAKY = {"prompts": ["The movie", "I think that", "the secret number is "],
         "before": ["", "", ""], "after": ["member text zq81", "member text zq82", " 731904"]}


def test_lm_summary_shows_nothing_of_the_membership():
    cfg = Config()
    cfg = dataclasses.replace(cfg, audit=dataclasses.replace(cfg.audit, num_shadows=2, canaries=400))
    quiet = lm_audit_summary(cfg, make_lm_report(seed=1))
    leaky = lm_audit_summary(cfg, make_lm_report(seed=2, shift=1.0, canary_shift=3.0, generations=LEAKY))
    assert quiet == leaky  # no field moves with the results
    text = json.dumps(leaky)
    assert "causal_lm" not in text and "exposure" not in text and "zq81" not in text and "731904" not in text
    assert "auc" not in text and "epsilon_lb" not in text and "perplexity" not in text
    assert leaky["audit"]["attacks"] == ["lm_loss", "zlib", "ref_ratio", "lm_rmia", "min_k", "min_k_pp"]

