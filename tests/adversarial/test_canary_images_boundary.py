"""The canary pictures stay on the confidential side and are inert: ``canary_images.json`` is read by the HTML
report only, validated as untrusted input (a hostile label comes out escaped, a non-PNG payload or too many
entries leave the pictures out), and never reach ``summary.json``."""

from __future__ import annotations

import json

import numpy as np

from dpaudit.pipeline.canary_images import png_base64
from dpaudit.reports.canary_images import MAX_SHOWN, load_canary_images
from dpaudit.reports.html import render_html


def _row(**kw):
    row = {"png": png_base64(np.zeros((4, 4, 1), dtype=np.uint8)), "label": "a", "original": "b",
           "predicted": "a", "included": True, "recognised": True}
    return {**row, **kw}


def _write(tmp_path, rows):
    (tmp_path / "canary_images.json").write_text(json.dumps({"canaries": rows}))
    return tmp_path / "report.html"


def test_valid_pictures_load_and_a_hostile_label_is_escaped(tmp_path):
    from tests.reports.sample import make_report

    rows = load_canary_images(_write(tmp_path, [_row(label="<script>alert(1)</script>")]))
    assert len(rows) == 1
    html = render_html(make_report(), canary_images=rows)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert f"data:image/png;base64,{rows[0]['png']}" in html


def test_malformed_pictures_are_left_out(tmp_path):
    import base64

    not_png = base64.b64encode(b"GIF89a....").decode()
    for rows in ([_row(png=not_png)], [_row(png='x" onerror="alert(1)')], [_row(included="yes")],
                 [_row()] * (MAX_SHOWN + 1)):
        assert load_canary_images(_write(tmp_path, rows)) == []
    (tmp_path / "canary_images.json").write_text("{not json")
    assert load_canary_images(tmp_path / "report.html") == []
