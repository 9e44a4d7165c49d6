"""Hostile and careless inputs through the real command: real files, real symlinks, real YAML bombs,
real fake images. Each is one line naming the file (and line) and the fix, exit 2, nothing built."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest
from support.issues import hashed, write_image
from test_cli_build import SAMPLE_NAME, assert_one_line_error, run_cli

from broadsheet.faces.cli import main

ISSUE = f"issues/{SAMPLE_NAME}"

BILLION_LAUGHS = """---
title: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
---
body
"""


def article(project: Path, text: str | bytes, name: str = "03-extra.md") -> Path:
    path = project / "issues" / SAMPLE_NAME / "articles" / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli(project, monkeypatch, capsys):
    """``broadsheet …`` run in this process (cli.main, as the console script calls it), in the project."""
    monkeypatch.chdir(project)
    monkeypatch.delenv("BROADSHEET_DEBUG", raising=False)

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["broadsheet", *args], code, out, err)

    return run


def build(project: Path) -> subprocess.CompletedProcess:
    return run_cli(project, "build", ISSUE)  # a hang is ended by pytest-timeout, a crash by xdist


def assert_refused(run: Path | Callable, *fragments: str) -> None:
    """The build (by ``run_cli`` for a project path, else through ``cli``) is one line naming ``fragments``."""
    result = build(run) if isinstance(run, Path) else run("build", ISSUE)
    assert_one_line_error(result, *fragments)
    project = run if isinstance(run, Path) else Path.cwd()
    assert not (project / "dist" / SAMPLE_NAME / "email.html").exists()


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


# Images: only real PNG, JPEG or GIF files from inside the project are published -----------------------


@pytest.mark.parametrize(
    "text, line",
    [
        ("---\ntitle: x\nimage: ../../../subscribers.example.csv\nimage_alt: x\n---\nhi\n", 3),
        ("---\ntitle: x\n---\nSee\n\n![x](../../../broadsheet.toml)\n", 6),
        ('---\ntitle: x\n---\n<img src="../../../broadsheet.toml" alt="x">\n', 4),
    ],
    ids=["front-matter-image", "markdown-image", "html-img"],
)
def test_project_files_are_not_published_as_images(project, cli, text, line):
    article(project, text)
    assert_refused(cli, f"03-extra.md:{line}", "is not a PNG, JPEG or GIF", "use a PNG, JPEG or GIF file")
    assert not list(project.glob("dist/*/images/*.csv")) and not list(project.glob("dist/*/images/*.toml"))


def test_a_text_file_renamed_png_and_an_svg_are_refused(project, cli):
    images = project / "issues" / SAMPLE_NAME / "images"
    (images / "fake.png").write_text("name,email\nA,a@example.org\n", encoding="utf-8")
    article(project, "---\ntitle: x\n---\n![x](../images/fake.png)\n")
    assert_refused(cli, "03-extra.md:4", "image is not a PNG, JPEG or GIF: ../images/fake.png")
    (images / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")
    article(project, "---\ntitle: x\nimage: ../images/logo.svg\nimage_alt: Logo\n---\nhi\n")
    assert_refused(cli, "03-extra.md:3", "SVG", "Gmail and Outlook cannot show")


def test_a_truncated_png_is_refused(project, cli):
    picture = write_image(project / "issues" / SAMPLE_NAME / "images" / "cut.png", size=(300, 200))
    picture.write_bytes(picture.read_bytes()[:60])
    article(project, "---\ntitle: x\n---\n![x](../images/cut.png)\n")
    assert_refused(cli, "03-extra.md:4", "image is damaged")


def test_an_image_claiming_billions_of_pixels_is_refused(project, cli):
    picture = write_image(project / "issues" / SAMPLE_NAME / "images" / "bomb.png", size=(1, 1))
    data = bytearray(picture.read_bytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)  # the IHDR chunk's width and height, then its CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    picture.write_bytes(bytes(data))
    article(project, "---\ntitle: x\n---\n![x](../images/bomb.png)\n")
    assert_refused(cli, "03-extra.md:4", "image has too many pixels for an email")


@pytest.mark.parametrize("src", ["javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4="])
def test_a_hero_image_address_that_runs_code_is_refused(project, cli, src):
    article(project, f"---\ntitle: x\nimage: '{src}'\nimage_alt: x\n---\nhi\n")
    assert_refused(cli, "03-extra.md:3", "'image' must be a file or a web address")


def test_an_image_symlinked_from_outside_the_project_is_refused(project, cli, tmp_path_factory):
    outside = write_image(tmp_path_factory.mktemp("elsewhere") / "secret.png")
    (project / "issues" / SAMPLE_NAME / "images" / "linked.png").symlink_to(outside)
    article(project, "---\ntitle: x\n---\n![x](../images/linked.png)\n")
    assert_refused(cli, "03-extra.md:4", "image outside the project: ../images/linked.png", "copy it into")


@pytest.mark.parametrize(
    "logo, fragment",
    [
        ("subscribers.example.csv", "logo is not a PNG, JPEG or GIF: subscribers.example.csv"),
        ("../outside.png", "logo outside the project: ../outside.png"),
        ("assets", "logo is not a file: assets"),
    ],
)
def test_brand_logo_must_be_a_real_image_inside_the_project(project, cli, logo, fragment):
    write_image(project.parent / "outside.png")
    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace('"assets/bcecc-logo.png"', f'"{logo}"'), encoding="utf-8")
    assert_refused(cli, f"broadsheet.toml:{line_of(config, 'logo =')}", fragment)


def test_real_jpeg_and_gif_images_are_published(project, cli):
    images = project / "issues" / SAMPLE_NAME / "images"
    write_image(images / "photo.jpg", image_format="JPEG")
    write_image(images / "anim.gif", image_format="GIF")
    article(project, "---\ntitle: x\n---\n![A photo](../images/photo.jpg)\n\n![A drawing](../images/anim.gif)\n")
    result = cli("build", ISSUE)
    assert result.returncode == 0, result.stderr
    published = {p.name for p in (project / "dist" / SAMPLE_NAME / "images").iterdir()}
    for name in ("photo.jpg", "anim.gif", "logo-bcecc-logo.png"):
        assert any(re.fullmatch(hashed(name), p) for p in published), (name, published)


# Markdown files: inside the project, regular, at most 1 MiB ----------------------------------------


def test_an_article_symlinked_from_outside_the_project_is_refused(project, cli, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "notes.md"
    outside.write_text("---\ntitle: private\n---\nnot for the newsletter\n", encoding="utf-8")
    (project / "issues" / SAMPLE_NAME / "articles" / "03-linked.md").symlink_to(outside)
    assert_refused(cli, "03-linked.md", "leads outside the project", "copy the file into the issue folder")


def test_issue_md_symlinked_to_dev_zero_ends_quickly(project):
    issue = project / "issues" / SAMPLE_NAME / "issue.md"
    issue.unlink()
    issue.symlink_to("/dev/zero")
    assert_refused(project, "issue.md", "leads outside the project")  # refused before it is read: no endless read


def test_an_article_that_is_a_device_or_a_fifo_inside_the_project_is_refused(project):
    os.mkfifo(project / "issues" / SAMPLE_NAME / "articles" / "03-pipe.md")
    assert_refused(project, "03-pipe.md", "not a regular file")


def test_an_article_over_1_mib_is_refused(project, cli):
    article(project, "---\ntitle: big\n---\n" + ("lorem ipsum " * 100_000))
    assert_refused(cli, "03-extra.md", "over 1 MiB")


# Front matter ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("---\ntitle: x\n\nNo closing line.\n", ("03-extra.md:1", "front matter is not closed", "three dashes")),
        ("---\ntitle: x\n1: y\n---\nhi\n", ("03-extra.md:3", "front matter key '1' is not a name")),
        ("---\ntitle: x\nnull: y\n---\nhi\n", ("03-extra.md:3", "front matter key 'null' is not a name")),
        ("---\ntitle: x\ntitle: y\n---\nhi\n", ("03-extra.md:3", "key 'title' appears twice")),
        ('---\ntitle: x\ndraft: "no"\n---\nhi\n', ("03-extra.md:3", "'draft' must be true or false, not 'no'")),
        ("---\ntitle: x\ndate: 2026-02-30\n---\nhi\n", ("03-extra.md:3", "not a real date or time: 2026-02-30")),
        ("---\ntitle: x\ndate: 2026-02-03 25:00:00\n---\nhi\n", ("03-extra.md:3", "2026-02-03 25:00:00")),
        ("---\ntitle: x\ntags: " + "[" * 50 + "]" * 50 + "\n---\nhi\n", ("03-extra.md:3", "nested more than")),
        ("---\ntitle: x\ntags: [a, [b]]\n---\nhi\n", ("03-extra.md:3", "'tags' must be a list")),
    ],
    ids=[
        "not-closed",
        "key-1",
        "key-null",
        "duplicate-key",
        "draft-string",
        "impossible-date",
        "impossible-time",
        "deep-yaml",
        "nested-tag",
    ],
)
def test_front_matter_mistakes_are_one_line_with_the_line(project, cli, text, fragments):
    article(project, text)
    assert_refused(cli, *fragments)


def test_a_yaml_alias_bomb_is_refused_at_once(project):
    article(project, BILLION_LAUGHS)
    assert_refused(project, "03-extra.md:4", "YAML alias *a", "aliases are not allowed")  # refused, not expanded


def test_draft_false_without_quotes_is_a_real_boolean(project, cli):
    article(project, "---\ntitle: Kept in\ndraft: no\n---\nhi\n")
    result = cli("build", ISSUE)
    assert result.returncode == 0, result.stderr
    assert "Kept in" in (project / "dist" / SAMPLE_NAME / "email.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "key, value", [("subject", r'"News\0 today"'), ("preheader", r'"Read\x07 this"'), ("title", r'"Two\nlines"')]
)
def test_control_characters_in_one_line_fields_name_the_line(project, cli, key, value):
    issue = project / "issues" / SAMPLE_NAME / "issue.md"
    text = issue.read_text(encoding="utf-8")
    start = text.index(f"{key}:")
    issue.write_text(text[:start] + f"{key}: {value}" + text[text.index("\n", start) :], encoding="utf-8")
    assert_refused(
        cli,
        f"issue.md:{line_of(issue, key + ':')}",
        f"'{key}' holds",
        "a line break" if "\\n" in value else "the control character U+00",
    )


def test_a_control_character_in_the_body_names_the_line(project, cli):
    article(project, "---\ntitle: x\n---\nfine\n\nnot \x0b fine\n")
    assert_refused(cli, "03-extra.md:6", "control character U+000B")


def test_a_warning_about_a_file_with_a_line_break_in_its_name_stays_one_line(project, cli):
    article(project, "---\ntitle: x\ndraft: true\n---\nhi\n", name="03-odd\nname.md")
    result = cli("build", ISSUE)
    assert result.returncode == 0, result.stderr
    assert next(line for line in result.stderr.splitlines() if "draft" in line).endswith(
        r"03-odd\nname.md: draft, left out of the build"
    )


def test_windows_line_endings_are_fine(project, cli):
    article(project, "---\r\ntitle: Windows\r\n---\r\nWritten on Windows.\r\n")
    assert cli("build", ISSUE).returncode == 0


# HTML nested too deep: lxml would silently drop the rest of the email, footer included ------------------


def test_content_nested_256_deep_is_refused_with_its_line(project, cli):
    article(project, "---\ntitle: x\n---\nIntro.\n\n" + "<div>" * 300 + "deep" + "</div>" * 300 + "\n\nafter\n")
    assert_refused(cli, "03-extra.md:6", "HTML nested more than 100 elements deep")


@pytest.mark.parametrize(
    "body, items",
    [
        ("- a\n-\n- b\n", ["a", "", "b"]),
        ("<ul><li></li><li>x</li></ul>\n", ["", "x"]),
        ("".join("  " * level + f"- {level}\n" for level in range(10)), [str(n) for n in range(10)]),
        ("".join("  " * level + f"- {level}\n" for level in range(45)), [str(n) for n in range(45)]),
    ],
    ids=["empty-markdown-item", "empty-li", "list-10-deep", "list-45-deep"],
)
def test_empty_list_items_and_deep_lists_are_built_whole(project, cli, body, items):
    article(project, "---\ntitle: Lists\n---\nIntro.\n\n" + body + "\nafter the list\n")
    result = cli("build", ISSUE)
    assert result.returncode == 0, result.stderr
    html = lxml.html.parse(project / "dist" / SAMPLE_NAME / "email.html")
    shown = [(item.text or "").strip() for item in html.iter("li")]  # each item's own text
    assert any(shown[at : at + len(items)] == items for at in range(len(shown))), shown
    text = (project / "dist" / SAMPLE_NAME / "email.txt").read_text(encoding="utf-8")
    assert "after the list" in text and f"- {items[-1]}" in text


def test_a_list_nested_past_the_depth_limit_names_its_line(project, cli):
    article(project, "---\ntitle: x\n---\nIntro.\n\n" + "".join("  " * n + f"- {n}\n" for n in range(60)))
    assert_refused(cli, "03-extra.md:55", "lists or quotes nested more than 100 deep")


def test_a_theme_that_loses_the_footer_when_compiled_is_refused(project, cli):
    theme = project / "templates" / "default" / "email.mjml.j2"
    deep = "<div>" * 300 + "deep" + "</div>" * 300
    text = theme.read_text(encoding="utf-8").replace(
        '{% include "partials/intro.mjml.j2" %}',
        '{% include "partials/intro.mjml.j2" %}\n<mj-section><mj-column><mj-text>'
        + deep
        + "</mj-text></mj-column></mj-section>",
    )
    theme.write_text(text, encoding="utf-8")
    assert_refused(cli, "email.mjml.j2", "the unsubscribe link is lost when the email is compiled")


def test_the_built_email_keeps_unsubscribe_link_and_postal_address(project, cli):
    article(project, "---\ntitle: Nested\n---\n" + "<div>" * 90 + "deep" + "</div>" * 90 + "\n")
    result = cli("build", ISSUE)
    assert result.returncode == 0, result.stderr
    html = (project / "dist" / SAMPLE_NAME / "email.html").read_text(encoding="utf-8")
    assert "Rue Example 1, 1000 Brussels" in html and ">Unsubscribe</a>" in html


# Theme: sandboxed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("''.__class__.__mro__[1].__subclasses__()", "attribute '__class__' of 'str' object is unsafe"),
        ("cycler.__init__.__globals__.os.popen('id').read()", "attribute '__init__'"),
        ("config.root.joinpath('subscribers.example.csv').read_text()", "attribute 'joinpath' of 'PosixPath'"),
    ],
    ids=["mro", "globals", "read-file"],
)
def test_a_theme_cannot_escape_its_sandbox(project, cli, expression, fragment):
    theme = project / "templates" / "default" / "partials" / "footer.mjml.j2"
    theme.write_text(theme.read_text(encoding="utf-8") + "{{ " + expression + " }}\n", encoding="utf-8")
    line = len(theme.read_text(encoding="utf-8").splitlines())
    assert_refused(cli, f"footer.mjml.j2:{line}", "the theme tried something unsafe", fragment)


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("{{ range(10**8) | list }}", "the theme does too much: Range too big"),
        (
            "{% macro again(n) %}{{ again(n) }}{% endmacro %}{{ again(1) }}",
            "the theme does too much: maximum recursion",
        ),
        ("{{ 1/0 }}", "template error: ZeroDivisionError: division by zero"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "the theme does too much: more than 1,000,000 loop steps and calls",
        ),
        ("{{ ('x' * 10**9) | length }}", "the theme does too much: a value 1 long times 1000000000"),
        ("{{ 10 ** (10 ** 9) }}", "the theme does too much: 10 ** 1000000000 is a number of more than"),
        ("{{ 'x' | center(10**9) }}", "the theme does too much: the filter center was given 1000000000"),
        ("{{ 'x'.encode('no-such-codec') }}", "template error: LookupError: unknown encoding"),
    ],
    ids=["range", "recursive-macro", "zero-division", "nested-loops", "repeat", "power", "filter", "codec"],
)
def test_a_theme_that_fails_or_does_too_much_is_one_line_naming_its_line(project, expression, fragment):
    theme = project / "templates" / "default" / "partials" / "footer.mjml.j2"
    theme.write_text(theme.read_text(encoding="utf-8") + expression + "\n", encoding="utf-8")
    line = len(theme.read_text(encoding="utf-8").splitlines())
    assert_refused(project, f"footer.mjml.j2:{line}: {fragment}")  # in a child process: a hang fails the test


def test_a_theme_within_its_bounds_still_loops_multiplies_and_filters(project, cli):
    theme = project / "templates" / "default" / "partials" / "footer.mjml.j2"
    expression = "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}{{ 'ab' * 2 }} {{ 2 ** 10 }}"
    theme.write_text(theme.read_text(encoding="utf-8") + expression + "\n", encoding="utf-8")
    assert cli("build", ISSUE).returncode == 0
    assert "1/3 2/3 3/3 abab 1024" in (project / "dist" / SAMPLE_NAME / "email.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("target", ["subscribers.example.csv", "/dev/zero"])
def test_a_theme_partial_linked_outside_the_theme_is_refused(project, cli, target):
    partial = project / "templates" / "default" / "partials" / "footer.mjml.j2"
    partial.unlink()
    partial.symlink_to(project / target if not target.startswith("/") else target)
    assert_refused(cli, "footer.mjml.j2", "theme template partials/footer.mjml.j2 leads to", "inside the theme folder")


# Config ------------------------------------------------------------------------------------------


def test_a_control_character_in_the_config_names_its_line_not_the_theme(project, cli):
    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace('name = "BCECC Newsletter"', r'name = "BCECC\u0000 Newsletter"'))
    assert_refused(cli, f"broadsheet.toml:{line_of(config, 'name =')}", "'name' holds the control character U+0000")


def test_errors_print_on_one_line_whatever_their_data_holds():
    from broadsheet.core.errors import ContentError

    error = ContentError("bad\r\nBcc: x@example.org", where="issues/odd\nname/issue.md:3", fix="a\x00b")
    assert str(error) == r"issues/odd\nname/issue.md:3: bad\r\nBcc: x@example.org (a\x00b)"


def test_send_test_with_a_line_break_in_the_address_is_one_line(project, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "s3cret-for-tests-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    result = run_cli(project, "send", ISSUE, "--test", "me@example.org\r\nBcc: everyone@example.org")
    assert_one_line_error(result, r"me@example.org\r\nBcc: everyone@example.org", "not a plain ASCII address")
    assert not (project / "outbox").exists()


@pytest.mark.parametrize(
    "key, old, new",
    [
        ("from", 'from = "BCECC Newsletter <newsletter@example.org>"', 'from = "newsletter at example.org"'),
        ("reply_to", 'reply_to = "info@example.org"', 'reply_to = "info"'),
    ],
)
def test_bad_sender_addresses_name_their_config_line(project, cli, monkeypatch, key, old, new):
    monkeypatch.setenv("BROADSHEET_SECRET", "s3cret-for-tests-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace(old, new))
    result = cli("send", ISSUE, "--test", "me@example.org")
    assert_one_line_error(result, f"broadsheet.toml:{line_of(config, key + ' =')}", f"'{key}' is not an address")


@pytest.mark.parametrize("setting", ["absent", "empty"])
def test_lint_names_the_unsubscribe_setting_not_the_text_template(project, cli, setting):
    config = project / "broadsheet.toml"
    kept = [
        line
        for line in config.read_text().splitlines()  # without [serve] public_url, no default link either
        if not line.startswith(("unsubscribe_mailto", "public_url"))
    ]
    kept = [line for line in kept if not line.startswith("unsubscribe_url")]
    if setting == "empty":  # a top-level key: before the first table
        kept.insert(next(n for n, line in enumerate(kept) if line.startswith("[")), 'unsubscribe_url = ""')
    config.write_text("\n".join(kept) + "\n")
    result = cli("lint", ISSUE, "--no-validator")  # the setting, not the compiled MJML: no node start
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    where = (
        f"broadsheet.toml:{line_of(config, 'unsubscribe_url =')}"
        if setting == "empty"
        else "broadsheet.toml [unsubscribe_url]"
    )
    assert errors[0].startswith(where) and "[unsubscribe]" in errors[0]
