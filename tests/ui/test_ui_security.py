"""The web UI's guards over plain HTTP, against a server bound to 0.0.0.0 (not loopback): the token, CSRF on
every POST route, traversal and allowed roots, upload size and type, escaping, headers, and the CLI's own
validation messages."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.ui._server import needs_ui

needs_ui()

from tests.ui._server import Client  # noqa: E402

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def public(shared):
    """The session's server (tests/ui/conftest.py): 0.0.0.0, 1 MiB upload limit, the tiny model and CSV."""
    return shared


def _left(srv) -> list[str]:
    """The uploaded-policy folders left in the server's TMPDIR (its audits' children may leave their own)."""
    return [p.name for p in (srv.tmp / "tmp").iterdir() if p.name.startswith("dpaudit-ui-policy-")]


def _jobs(srv) -> set[str]:
    return {p.name for p in srv.runs.iterdir()} if srv.runs.exists() else set()


@pytest.fixture
def web(public):
    return Client(public).login()


def _form(root: Path, **extra) -> dict:
    return {"label": "sec", "data_source": "path", "data_path": str(root / "data.csv"), "model_source": "path",
            "model_path": str(root / "models" / "tiny"), "privacy": "epsilon", "epsilon": "8", "shadows": "2",
            **extra}


def test_no_token_is_401_on_a_non_loopback_bind(public):
    anon = Client(public)
    for path in ("/", "/new", "/runs/x", "/runs/x/report", "/runs/x/download/audit.json", "/runs/x/status.json"):
        assert anon.get(path)[0] == 401, path
    assert anon.get("/?token=wrong-token-wrong-token")[0] == 401
    assert anon.post("/new", {}, csrf=None)[0] == 401
    assert anon.get("/", headers={"Authorization": f"Bearer {public.token}"})[0] == 200
    assert anon.get("/static/ui.css")[0] == 200  # public: styles and the script
    assert anon.get("/runs/nope/summary.json")[0] == 404  # public by the release boundary: not 401


def test_every_post_route_refuses_a_missing_wrong_or_cross_origin_csrf(public, web, tmp_path):
    from dpaudit.ui.app import Settings, create_app

    app = create_app(Settings(runs_dir=tmp_path / "r", token="t" * 20))
    posts = sorted(r.path for r in app.routes if "POST" in getattr(r, "methods", ()))
    assert {"/new", "/runs/{job_id}/cancel", "/runs/{job_id}/resume", "/runs/{job_id}/gate",
            "/runs/{job_id}/signoff", "/runs/{job_id}/pdf", "/runs/{job_id}/export"} <= set(posts)
    before = _jobs(public)
    for path in (p.replace("{job_id}", "any") for p in posts):
        assert web.post(path, {"label": "x"}, csrf=None)[0] == 403, path
        assert web.post(path, {"label": "x"}, csrf="forged-forged-forged-forged")[0] == 403, path
        assert web.post(path, {"label": "x"}, headers={"Origin": "http://evil.example"})[0] == 403, path
    assert _jobs(public) == before


def test_traversal_and_paths_outside_the_allowed_roots_are_refused(public, web, tmp_path):
    for path in ("/runs/..%2f..%2fetc/report", "/runs/%2e%2e/report", "/runs/x/download/..%2fui-job.json",
                 "/runs/.hidden/report", "/runs/x/download/dpaudit-run.json"):
        assert web.get(path)[0] in (404, 400), path
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    link = public.tmp / "models" / "link-out"
    link.symlink_to(outside, target_is_directory=True)
    for model in ("/etc", str(public.tmp / ".." / ".."), str(link)):
        code, body, _ = web.post("/new", _form(public.tmp, model_path=model))
        assert code == 400 and b"outside the allowed roots" in body, (model, body[:300])
    code, body, _ = web.post("/new", _form(public.tmp, data_path="/etc/passwd"))
    assert code == 400 and b"outside the allowed roots" in body


def test_oversized_and_wrong_type_uploads_are_refused(public, web):
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(public.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    before = _jobs(public)
    conn.putrequest("POST", "/new")  # 3 MB declared: refused from the headers, before a byte of body
    for key, value in (("Content-Length", str(3 << 20)), ("Content-Type", "multipart/form-data; boundary=b"),
                       ("Authorization", f"Bearer {public.token}")):
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and b"too large" in response.read()
    conn.close()
    mid = b"text,label\n" + b"a,b\n" * 300_000  # 1.2 MB: within the request allowance, over the file limit
    code, body, _ = web.post("/new", _form(public.tmp, data_source="upload"), {"data_file": ("mid.csv", mid)})
    assert code == 400 and b"at most 1048576" in body
    code, body, _ = web.post("/new", _form(public.tmp, data_source="upload"), {"data_file": ("x.exe", b"MZ")})
    assert code == 400 and b"is not accepted" in body
    code, body, _ = web.post("/new", _form(public.tmp, data_source="upload"), {"data_file": ("x.parquet", b"nope")})
    assert code == 400 and b"not a Parquet file" in body
    assert _jobs(public) == before  # refused jobs leave nothing


def test_the_cli_messages_refuse_bad_fields_before_any_job(public, web):
    before = _jobs(public)
    code, body, _ = web.post("/new", _form(public.tmp, shadows="3"))
    assert code == 400 and b"num_shadows must be even" in body
    code, body, _ = web.post("/new", _form(public.tmp, epsilon="lots"))
    assert code == 400 and b"invalid float value: &#39;lots&#39;" in body
    code, body, _ = web.post("/new", _form(public.tmp, label=HOSTILE, shadows="3"))
    assert code == 400 and HOSTILE.encode() not in body and b"&lt;script&gt;" in body
    assert _jobs(public) == before


def test_hostile_names_are_sanitised_escaped_and_kept_private(public, web):
    data = (public.tmp / "data.csv").read_bytes()
    name = f'../../{HOSTILE}.csv'
    before = _jobs(public)
    code, body, headers = web.post("/new", _form(public.tmp, data_source="upload", label=HOSTILE),
                                   {"data_file": (name, data)})
    assert code == 200, body[:500]  # followed the 303 to the live page
    job_id = re.search(rb'data-status-url="/runs/([^/]+)/status.json"', body).group(1).decode()
    web.post(f"/runs/{job_id}/cancel", {})
    assert _jobs(public) - before == {job_id}
    folder = public.runs / job_id
    saved = list((folder / "upload").iterdir())
    assert [p.name for p in saved] == ["script_.csv"]  # the folders and markup dropped
    assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "ui-job.json").stat().st_mode) == 0o600
    for page in ("/", f"/runs/{job_id}"):
        html = web.get(page)[1]
        assert HOSTILE.encode() not in html and b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, page
    assert not any(p.name.endswith(".csv") for p in public.tmp.parent.iterdir())


def test_security_headers(public, web):
    _, _, headers = web.get("/")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    _, _, fresh = Client(public).get("/new", headers={"Authorization": f"Bearer {public.token}"})
    assert fresh["set-cookie"].startswith("dpaudit_csrf=") and "HttpOnly" in fresh["set-cookie"]
    assert "SameSite=Strict" in fresh["set-cookie"]
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(public.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", f"/runs?token={public.token}")
    login = conn.getresponse()  # 303 to the same page without the token in the address
    assert login.status == 303 and login.getheader("location") == "/runs"
    session = login.getheader("set-cookie")
    assert session.startswith("dpaudit_session=") and "HttpOnly" in session and "SameSite=strict" in session
    conn.close()
    _, _, view = web.get("/static/ui.js")
    assert view["x-content-type-options"] == "nosniff"


def test_an_uploaded_policy_on_a_cli_made_run_leaves_no_file_behind(public, web):
    """A run `dpaudit audit --run-dir RUNS/NAME` wrote is its own folder: the uploaded policy is not saved into
    it (nor left in a temporary folder) — only a UI job keeps it, in its ``upload/`` folder."""
    import json
    import shutil

    from dpaudit.report_io import dump_report
    from dpaudit.rundir import MARKER
    from tests.reports.sample import make_report

    run = public.runs / "cli-run"
    run.mkdir()
    try:
        dump_report(make_report(), run / "audit.json")
        (run / MARKER).write_text(json.dumps({"command": "audit"}), encoding="utf-8")
        before = sorted(p.name for p in run.iterdir())
        policy = b'name = "lenient"\nmax_auc = 0.99\n'
        code, body, _ = web.post("/runs/cli-run/gate", {}, {"policy_file": (f"{HOSTILE}.toml", policy)})
        assert code == 200 and b'id="gate-outcome"' in body and b"script_.toml: pass" in body, body[-800:]
        assert sorted(p.name for p in run.iterdir()) == before
        assert not _left(public)  # the temporary folder is gone
        code, body, _ = web.post("/runs/cli-run/gate", {}, {"policy_file": ("bad.toml", b"max_auc = 'x'\n")})
        assert code == 400 and b"error: " in body and not _left(public)
    finally:
        shutil.rmtree(run)


@pytest.mark.parametrize("case", ["zip-slip", "absolute", "backslash", "drive", "symlink", "bomb", "not-an-image",
                                  "wrong-magic", "duplicate", "flat", "empty", "not-a-zip", "hostile-name"])
def test_hostile_image_zips_are_refused_before_any_job(public, web, case):
    """Each refusal of :mod:`dpaudit.ui.uploads` over HTTP: 400 with its line (escaped), no job folder, nothing
    written outside (the member-count and size limits: tests/ui/test_ui_image_upload.py)."""
    from tests.ui._zips import HOSTILE as ZIPS
    from tests.ui._zips import PNG, make_zip

    extra = {"not-a-zip": (b"PNG? no: " + PNG, "not a zip archive"),
             "hostile-name": (make_zip({f"../{HOSTILE}.png": PNG + b"x"}), "leaves its folder")}
    data, fragment = {**ZIPS, **extra}[case]
    before = _jobs(public)
    code, body, _ = web.post("/new", _form(public.tmp, data_source="upload"), {"data_file": ("images.zip", data)})
    assert code == 400 and fragment.encode() in body, body[-600:]
    assert HOSTILE.encode() not in body
    assert _jobs(public) == before
    assert not list(public.tmp.parent.rglob("evil.png")) and not list(public.tmp.rglob("*alert*"))


def test_a_good_image_zip_reaches_the_cli_checks(public, web):
    """An accepted zip becomes ``--data DIR`` and meets the CLI's pre-flight checks (a text model here: either
    a job, or the CLI's one line; never a server error)."""
    from tests.ui._zips import image_folder, make_zip

    before = _jobs(public)
    code, body, _ = web.post("/new", _form(public.tmp, data_source="upload"),
                             {"data_file": ("pets.zip", make_zip(image_folder(per_class=2)))})
    assert code == 200 or (code == 400 and b"error: " in body), body[-600:]
    if code == 200:
        (job,) = _jobs(public) - before
        web.post(f"/runs/{job}/cancel", {})
        assert (public.runs / job / "upload" / "pets" / "cat" / "0.png").is_file()
    else:
        assert _jobs(public) == before
