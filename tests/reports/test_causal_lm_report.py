"""The optional ``causal_lm`` section of audit.json: it round-trips, the schema refuses a malformed one, and the
markdown report shows the exposure table and the generations."""

from __future__ import annotations

import dataclasses

import pytest

from dpaudit.errors import DataError
from dpaudit.report_io import dump_report, load_report, validate_report
from dpaudit.report_schema import AuditReport
from dpaudit.reports.markdown import render_markdown

from tests.reports.sample import make_report

SECTION = {"attacks": ["lm_loss", "min_k_pp"], "loss": "mean next-token NLL per text (nats)",
           "exposure": {"space_bits": 19.93, "n_candidates": 200, "resolution_bits": 7.64,
                        "included": {"n": 10, "mean": 3.5, "max": 7.6}, "excluded": {"n": 10, "mean": 1.0, "max": 2.0}},
           "generations": {"prompts": ["The movie"], "before": [" is"], "after": [" was great"]}}


def test_causal_lm_section_round_trips_and_renders(tmp_path):
    report = dataclasses.replace(make_report(), causal_lm=SECTION)
    path = dump_report(report, tmp_path / "audit.json")
    again = load_report(path)
    assert again.causal_lm == SECTION and isinstance(again, AuditReport)
    md = render_markdown(again)
    assert "Secret Sharer exposure" in md and "was great" in md
    assert "Causal language model" not in render_markdown(make_report())  # absent: no section


@pytest.mark.parametrize("bad", [
    {**SECTION, "exposure": {**SECTION["exposure"], "included": {"n": 1}}},
    {**SECTION, "secret": "123456"},
    {k: v for k, v in SECTION.items() if k != "attacks"},
])
def test_a_malformed_causal_lm_section_is_refused(bad):
    data = make_report().to_dict()
    data["causal_lm"] = bad
    with pytest.raises(DataError):
        validate_report(data)
