"""The preview server without a browser: paths, port errors, reload events, build errors, Ctrl-C."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.browser import wait_for
from support.issues import hashed
from test_cli_build import run_cli

from broadsheet.core.errors import AudienceError, BroadsheetError
from broadsheet.faces.preview import Preview
from broadsheet.faces.preview.server import safe_path

SLUG = "2021-06-01-chengdu-flemish-brabant"


def get(preview: Preview, path: str) -> tuple[int, bytes]:
    """A raw GET: the path goes on the wire exactly as written (no client-side normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", preview.server.server_address[1], timeout=5)
    connection.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def read_event(stream: http.client.HTTPResponse) -> bytes:
    """Read one whole Server-Sent Event (up to its blank line)."""
    data = b""
    while not data.endswith(b"\n\n"):
        data += stream.read1(1)
    return data


@pytest.fixture
def preview(project: Path):
    with Preview(project / "issues" / SLUG, port=0, config_path=project / "broadsheet.toml") as running:
        yield running


def test_serves_the_page_email_and_images_on_localhost(preview):
    assert preview.server.server_address[0] == "127.0.0.1"
    status, page = get(preview, "/")
    assert status == 200 and b"10 Years of Partnership" in page and b"frame-mobile" in page
    status, email = get(preview, "/email.html")
    src = re.search(rb'src="(/images/' + hashed("chengdu-flemish-brabant.png").encode() + rb')"', email)
    assert status == 200 and b"Dear Sam," in email and src
    assert get(preview, src.group(1).decode())[1].startswith(b"\x89PNG")
    assert get(preview, "/web.html")[0] == 200
    assert json.loads(get(preview, "/status.json")[1])["ok"] is True


TRAVERSALS = [
    "/../broadsheet.toml",
    "/images/../../broadsheet.toml",
    "/images/..%2f..%2fbroadsheet.toml",
    "/images/%2e%2e/%2e%2e/broadsheet.toml",
    "/images/%2E%2E%2F%2E%2E%2Fbroadsheet.toml",
    "/images/%252e%252e%252f%252e%252e%252fbroadsheet.toml",
    "/images/%25252e%25252e/x",
    "/images/..\\..\\broadsheet.toml",
    "/images/%5c..%5cbroadsheet.toml",
    "/images/chengdu-flemish-brabant.png%00",
    "/images//etc/passwd",
    "//etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/images/",
    "/issue.md",
    "/articles/01-chengdu-flemish-brabant.md",
    "/broadsheet.toml",
    "/email.mjml/../../broadsheet.toml",
]


def test_path_traversal_is_404(preview):
    answers = {path: get(preview, path) for path in TRAVERSALS}
    assert {path: status for path, (status, _) in answers.items() if status != 404} == {}
    assert not any(b"[send]" in body or b"root:" in body for _, body in answers.values())


def test_other_host_names_are_refused(preview):
    connection = http.client.HTTPConnection("127.0.0.1", preview.server.server_address[1], timeout=5)
    connection.request("GET", "/", headers={"Host": "attacker.example:80"})
    assert connection.getresponse().status == 421
    connection.close()


def test_the_email_may_not_run_scripts(preview):
    connection = http.client.HTTPConnection("127.0.0.1", preview.server.server_address[1], timeout=5)
    connection.request("GET", "/email.html")
    assert "script-src 'none'" in connection.getresponse().getheader("Content-Security-Policy")
    connection.close()


def test_safe_path():
    assert safe_path("/images/a%20b.png?x=1") == "/images/a b.png"
    assert safe_path("/images/%252e%252e/x") is None
    assert safe_path("/") == "/"


def test_port_taken_is_a_clear_error(project: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BroadsheetError, match="already in use") as caught:
            Preview(project / "issues" / SLUG, port=port, config_path=project / "broadsheet.toml").start()
        assert caught.value.where == f"127.0.0.1:{port}"
        done = run_cli(project, "preview", f"issues/{SLUG}", "--port", str(port))
    assert done.returncode == 2
    assert f"127.0.0.1:{port}: cannot listen on port {port}: it is already in use" in done.stderr


def test_port_out_of_range_is_a_clear_error(project: Path):
    with pytest.raises(BroadsheetError, match="cannot listen on port 99999") as caught:
        Preview(project / "issues" / SLUG, port=99999, config_path=project / "broadsheet.toml").start()
    assert caught.value.fix and "--port" in caught.value.fix


def test_reload_event_after_a_save_and_errors_keep_the_last_good_build(preview, project: Path):
    article = project / "issues" / SLUG / "articles" / "02-contact.md"
    source = article.read_text(encoding="utf-8")
    connection = http.client.HTTPConnection("127.0.0.1", preview.server.server_address[1], timeout=5)
    connection.request("GET", "/events")
    stream = connection.getresponse()
    assert stream.getheader("Content-Type") == "text/event-stream"
    assert b"event: build\ndata: 1\n" in read_event(stream)

    article.write_text(source + "\nOne more line.\n", encoding="utf-8")
    wait_for(lambda: preview.current.generation >= 2, timeout=30, what="a rebuild")
    assert b"event: build\ndata: 2\n" in read_event(stream)
    connection.close()

    article.write_text("---\ntitle: [oops\n---\n", encoding="utf-8")
    wait_for(lambda: preview.current.error is not None, timeout=30, what="the build error")
    assert preview.current.error.where.endswith("02-contact.md:2")
    _status, page = get(preview, "/")
    assert b'id="build-error"' in page and b"02-contact.md:2" in page
    assert get(preview, "/email.html")[0] == 200  # the last good build is still served

    article.write_text(source, encoding="utf-8")
    wait_for(lambda: preview.current.error is None, timeout=30, what="recovery")
    assert b'id="build-error"' not in get(preview, "/")[1]


def test_config_and_theme_changes_rebuild(preview, project: Path):
    generation = preview.current.generation
    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace('name = "BCECC Newsletter"', 'name = "BCECC Letter"'))
    wait_for(
        lambda: preview.current.generation > generation and b"BCECC Letter" in get(preview, "/")[1],
        timeout=30,
        what="a config rebuild",
    )
    generation = preview.current.generation
    style = project / "templates" / "default" / "style.css"
    style.write_text(style.read_text() + "\n/* edited */\n")
    wait_for(lambda: preview.current.generation > generation, timeout=30, what="a theme rebuild")


def test_first_build_failing_still_serves_the_error(project: Path):
    issue = project / "issues" / SLUG / "issue.md"
    issue.write_text("---\nsubject: [\n---\n")
    with Preview(issue.parent, port=0, config_path=project / "broadsheet.toml", watch=False) as running:
        status, page = get(running, "/")
        assert status == 200 and b'id="build-error"' in page and b"issue.md:" in page
        assert get(running, "/email.html")[0] == 404


def test_as_subscriber_from_the_list(project: Path):
    with Preview(
        project / "issues" / SLUG,
        port=0,
        config_path=project / "broadsheet.toml",
        as_email="ann.peeters@example.com",
        watch=False,
    ) as running:
        assert b"Dear Ann," in get(running, "/email.html")[1]
        assert b"Ann Peeters &lt;ann.peeters@example.com&gt;" in get(running, "/")[1]
    with Preview(
        project / "issues" / SLUG,
        port=0,
        config_path=project / "broadsheet.toml",
        as_email="nobody@example.com",
        watch=False,
    ) as running:
        assert isinstance(running.current.error, AudienceError)


def test_a_weak_secret_previews_with_a_placeholder_token(project: Path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "demo-only-not-a-real-secret")  # make demo's: too weak to send with
    with Preview(project / "issues" / SLUG, port=0, config_path=project / "broadsheet.toml", watch=False) as running:
        assert running.current.error is None
        assert "BROADSHEET_SECRET is too weak for a real send" in running.current.email.note
        assert b"/u/PREVIEW-TOKEN" in get(running, "/email.html")[1]


def ignore_sigint() -> None:
    """What a shell does to `broadsheet preview &` in a script: the child starts with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("started", [None, ignore_sigint], ids=["foreground", "background-from-a-script"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_exits_cleanly(project: Path, tmp_path: Path, stop: signal.Signals, started):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "broadsheet", "preview", f"issues/{SLUG}", "--port", "0"],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(temporary)},
                               preexec_fn=started)  # fmt: skip
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert any("previewing" in line and "http://127.0.0.1:" in line for line in lines), lines
        assert list(temporary.glob("broadsheet-preview-*"))
        process.send_signal(stop)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert not list(temporary.glob("broadsheet-preview-*")), "the temporary builds were left behind"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc/PID/task")
def test_a_stop_signal_taken_by_another_thread_still_stops(project: Path):
    """A signal sent to the process can be taken by any of its threads, or land just before the main
    thread starts waiting: Python's handler is then due but nothing wakes the main thread. Sent to a
    thread of the preview's own (kill(2) of a thread id), it shows the same: the preview must stop."""
    process = subprocess.Popen([sys.executable, "-m", "broadsheet", "preview", f"issues/{SLUG}", "--port", "0"],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert any("previewing" in line for line in lines), lines
        threads = [int(task.name) for task in Path(f"/proc/{process.pid}/task").iterdir()]
        os.kill(next(tid for tid in threads if tid != process.pid), signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_a_project_file_posing_as_an_image_is_never_served(project):
    article = project / "issues" / SLUG / "articles" / "03-leak.md"
    article.write_text("---\ntitle: Leak\n---\n![list](../../../subscribers.example.csv)\n", encoding="utf-8")
    with Preview(project / "issues" / SLUG, port=0, config_path=project / "broadsheet.toml") as running:
        status = json.loads(get(running, "/status.json")[1])
        assert status["ok"] is False and "is not a PNG, JPEG or GIF" in json.dumps(status)
        assert get(running, "/images/subscribers.example.csv")[0] == 404
        assert b"ann.peeters@example.com" not in get(running, "/email.html")[1] + get(running, "/web.html")[1]
