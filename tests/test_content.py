import datetime as dt
import re
from pathlib import Path

import lxml.html
import pytest
from support.issues import hashed, write_image, write_issue

from broadsheet.core.config import Config, load_config
from broadsheet.core.content import read_issue
from broadsheet.core.content.markdown import render_markdown
from broadsheet.core.content.text import LinkRegistry, html_to_text
from broadsheet.core.errors import ContentError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"


def config_for(root: Path, **values) -> Config:
    return Config(root=root, **values)


def test_sample_issue_model():
    issue = read_issue(SAMPLE, load_config(ROOT / "broadsheet.toml"))
    assert issue.slug == SAMPLE.name
    assert issue.date == dt.date(2021, 6, 1) and issue.number == 42
    assert next(a.title for a in issue.articles).startswith("A 10-year partnership")
    first = issue.articles[0]
    assert (
        first.image
        and first.image.alt
        and re.search("/images/" + hashed("chengdu-flemish-brabant.png") + "$", first.image.src)
    )
    assert first.body_html.count('class="pull-quote"') == 3
    assert "<ol>" in first.body_html and first.body_html.count("<li>") == 5
    assert len(issue.images) == 1 and re.fullmatch(hashed("chengdu-flemish-brabant.png"), issue.images[0].src)


def test_articles_ordered_by_order_then_file_name_and_drafts_left_out(tmp_path):
    folder = write_issue(
        tmp_path,
        articles={
            "01-a.md": "---\ntitle: A\n---\na",
            "02-b.md": "---\ntitle: B\norder: 1\n---\nb",
            "03-c.md": "---\ntitle: C\ndraft: true\n---\nc",
        },
    )
    issue = read_issue(folder, config_for(tmp_path))
    assert [a.title for a in issue.articles] == ["B", "A"]
    assert any("03-c.md: draft, left out" in note for note in issue.notes)


def test_subject_defaults_to_title(tmp_path):
    folder = write_issue(tmp_path, issue="---\ntitle: Only a title\n---\n")
    assert read_issue(folder, config_for(tmp_path)).subject == "Only a title"


def test_missing_folder_and_issue_file(tmp_path):
    with pytest.raises(ContentError, match="issue folder not found"):
        read_issue(tmp_path / "nope", config_for(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContentError, match=r"issue\.md is missing"):
        read_issue(tmp_path / "empty", config_for(tmp_path))


def test_malformed_front_matter_names_the_line(tmp_path):
    folder = write_issue(tmp_path, articles={"01-bad.md": "---\ntitle: ok\ntags: [a, b\nauthor: x\n---\nbody"})
    with pytest.raises(ContentError) as raised:
        read_issue(folder, config_for(tmp_path))
    assert "01-bad.md:3" in str(raised.value) and "malformed front matter" in str(raised.value)


def test_missing_title(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\nauthor: me\n---\nbody"})
    with pytest.raises(ContentError, match=r"01-x.md:1: missing title"):
        read_issue(folder, config_for(tmp_path))


def test_not_utf8_names_the_line(tmp_path):
    folder = write_issue(tmp_path)
    (folder / "articles" / "02-latin.md").write_bytes(b"---\ntitle: x\n---\nline\ncaf\xe9\n")
    with pytest.raises(ContentError, match=r"02-latin.md:5: the file is not UTF-8"):
        read_issue(folder, config_for(tmp_path))


def test_unknown_front_matter_key(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\ntitle: x\nauthr: me\n---\nbody"})
    with pytest.raises(ContentError, match=r"01-x.md:3: unknown front matter key 'authr'"):
        read_issue(folder, config_for(tmp_path))


def test_missing_image_names_file_and_line(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\ntitle: x\n---\nText\n\n![Alt](pics/none.png)\n"})
    with pytest.raises(ContentError, match=r"01-x.md:6: image not found: pics/none.png"):
        read_issue(folder, config_for(tmp_path))


def test_local_images_rewritten_to_base_url(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\ntitle: x\n---\n![A chart](chart.png)\n"})
    write_image(folder / "articles" / "chart.png")
    issue = read_issue(folder, config_for(tmp_path, base_url="https://news.example.org/"))
    assert re.search(
        r'src="https://news.example.org/2024-01-02-test-issue/images/' + hashed("chart.png") + '"',
        issue.articles[0].body_html,
    )
    assert 'alt="A chart"' in issue.articles[0].body_html
    assert issue.images[0].path == (folder / "articles" / "chart.png").resolve()


def test_unsafe_html_removed_with_notes(tmp_path):
    body = (
        'Hi <span onclick="steal()">there</span>\n\n<script>alert(1)</script>\n\n'
        '<iframe src="https://x.example"></iframe>\n\n<form><input name=a></form>\n\n<a href="javascript:alert(2)">x</a>\n'
    )
    folder = write_issue(tmp_path, articles={"01-x.md": "---\ntitle: x\n---\n" + body})
    issue = read_issue(folder, config_for(tmp_path))
    html = issue.articles[0].body_html
    for bad in ("<script", "alert(", "<iframe", "<form", "<input", "onclick", "javascript:"):
        assert bad not in html
    assert "there" in html
    notes = " ".join(issue.notes)
    assert "<script>" in notes and "<iframe>" in notes and "onclick= attribute" in notes


def test_template_syntax_in_content_is_kept_as_text(tmp_path):
    folder = write_issue(
        tmp_path, articles={"01-x.md": "---\ntitle: x\n---\nUse {{ name }} and {% if %} and {# c #}.\n"}
    )
    issue = read_issue(folder, config_for(tmp_path))
    assert "{{ name }}" in issue.articles[0].body_html and "{% if %}" in issue.articles[0].body_text


def test_markdown_features():
    html = render_markdown(
        'He said "hi" -- ok\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nNote[^1]\n\n[^1]: The note.\n\n~~old~~\n'
    ).html
    assert "“hi”" in html and "–" in html
    assert 'class="content-table"' in html and "<td>2</td>" in html
    assert 'class="footnotes"' in html and "The note." in html and "footnote-backref" not in html
    assert "<s>old</s>" in html


def test_plain_text_headings_lists_links_and_wrapping():
    links = LinkRegistry()
    html = render_markdown(
        "## Heading\n\n- one\n- two [site](https://a.example/x)\n\n1. first\n2. second\n\n> quoted words\n\n"
        + "word " * 40
        + "\n\nSee [site](https://a.example/x) and [other](https://b.example/).\n"
    ).html
    text = html_to_text(html, links)
    assert "Heading\n-------" in text
    assert "- one\n- two site [1]" in text
    assert "1. first\n2. second" in text
    assert "> quoted words" in text
    assert "other [2]" in text and links.urls == ["https://a.example/x", "https://b.example/"]
    assert all(len(line) <= 78 for line in text.splitlines())
    assert links.references() == "[1] https://a.example/x\n[2] https://b.example/"


def test_local_body_images_get_a_width_capped_to_the_column(tmp_path):
    from PIL import Image as Picture

    folder = write_issue(
        tmp_path, articles={"01-x.md": "---\ntitle: x\n---\n![Wide](wide.png)\n\n![Small](small.jpg)\n"}
    )
    Picture.new("RGB", (1200, 300)).save(folder / "articles" / "wide.png")
    Picture.new("RGB", (200, 100)).save(folder / "articles" / "small.jpg")
    html = read_issue(folder, config_for(tmp_path)).articles[0].body_html
    assert 'width="536"' in html and 'width="200"' in html
    from broadsheet.core.content.images import ImageProblem, image_size

    assert image_size(folder / "articles" / "wide.png") == (1200, 300)
    assert image_size(folder / "articles" / "small.jpg") == (200, 100)
    with pytest.raises(ImageProblem, match="is not a PNG, JPEG or GIF"):
        image_size(folder / "issue.md")


def test_impossible_date_in_front_matter_is_a_content_error(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\ntitle: x\nauthor: me\ndate: 2021-13-45\n---\nbody"})
    with pytest.raises(ContentError, match=r"01-x.md:4: .*2021-13-45.*YYYY-MM-DD"):
        read_issue(folder, config_for(tmp_path))


def test_a_link_whose_unsafe_href_is_removed_becomes_plain_text(tmp_path):
    folder = write_issue(
        tmp_path, articles={"01-x.md": '---\ntitle: x\n---\nSee <a href="javascript:go()">this</a>.\n'}
    )
    html = read_issue(folder, config_for(tmp_path)).articles[0].body_html
    assert "See this." in html and "<a" not in html


def test_footnote_markers_in_text_do_not_look_like_link_references():
    links = LinkRegistry()
    html = render_markdown("See [site](https://a.example/) and a note[^n].\n\n[^n]: The note.\n").html
    text = html_to_text(html, links)
    assert "site [1]" in text and "note[1]" not in text and "note[^1]" in text
    assert "[^1]: The note." in text or "[^1] The note." in text


def test_image_without_alt_names_the_body_line_not_the_front_matter(tmp_path):
    body = "---\ntitle: x\nimage: pic.png\nimage_alt: A hero\n---\nText\n\n![](pic.png)\n"
    folder = write_issue(tmp_path, articles={"01-x.md": body})
    write_image(folder / "articles" / "pic.png")
    notes = read_issue(folder, config_for(tmp_path)).notes
    assert any("01-x.md:8: image without alt text" in note for note in notes), notes


def test_explicit_image_width_wider_than_the_column_is_capped():
    html = render_markdown('<img src="https://x.example/a.png" width="900" height="300" alt="a">\n').html
    assert 'width="536"' in html and 'height="300"' not in html


def test_wide_table_rows_are_wrapped_in_the_text_part():
    row = "| " + " | ".join(f"cell number {n} with words" for n in range(6)) + " |"
    html = render_markdown("| " + " | ".join("h" * 6 for _ in range(6)) + " |\n|" + "---|" * 6 + "\n" + row + "\n").html
    text = html_to_text(html, LinkRegistry())
    assert "cell number 5 with words" in " ".join(text.split())
    assert all(len(line) <= 78 for line in text.splitlines()), text


@pytest.mark.parametrize(
    "raw",
    [
        '<svg><a xlink:href="javascript:alert(1)">x</a></svg>',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        '<img src="https://x.example/a.png" srcset="javascript:alert(1)" alt="a">',
        '<a href="https://x.example/" formaction="javascript:alert(1)">x</a>',
    ],
)
def test_script_urls_in_any_url_attribute_are_removed(raw):
    fragment = render_markdown(raw + "\n")
    assert "javascript" not in fragment.html and fragment.removed


def test_removed_html_notes_name_the_line(tmp_path):
    body = '---\ntitle: x\n---\nText\n\n<script>alert(1)</script>\n\nHi <b onclick="x()">there</b>\n'
    folder = write_issue(tmp_path, articles={"01-x.md": body})
    notes = " ".join(read_issue(folder, config_for(tmp_path)).notes)
    assert "01-x.md:6: removed <script>" in notes and "01-x.md:8: removed onclick= attribute" in notes


def test_image_file_names_with_spaces_and_accents(tmp_path):
    body = "---\ntitle: x\n---\n![One](<my pic.png>)\n\n![Two](café.png)\n"
    folder = write_issue(tmp_path, articles={"01-x.md": body})
    for name in ("my pic.png", "café.png"):
        write_image(folder / "articles" / name)
    issue = read_issue(folder, config_for(tmp_path, base_url="https://news.example.org"))
    srcs = sorted(image.src for image in issue.images)
    assert len(srcs) == 2 and re.fullmatch(hashed("café.png"), srcs[0]) and re.fullmatch(hashed("my pic.png"), srcs[1])
    html = issue.articles[0].body_html
    assert f"/images/my%20pic-{srcs[1][-14:-4]}.png" in html and f"/images/caf%C3%A9-{srcs[0][-14:-4]}.png" in html


def test_long_headings_wrap_in_the_text_part():
    html = render_markdown("## " + "A rather long heading about trade " * 4 + "\n").html
    text = html_to_text(html, LinkRegistry())
    assert all(len(line) <= 78 for line in text.splitlines()), text
    assert text.splitlines()[-1].startswith("-----")


def test_images_outside_the_project_are_refused(tmp_path):
    project = tmp_path / "project"
    outside = tmp_path / "secret.png"
    write_image(outside)
    folder = write_issue(project, articles={"01-x.md": "---\ntitle: x\n---\n![a](../../../../secret.png)\n"})
    with pytest.raises(ContentError, match=r"01-x.md:4: .*outside the project"):
        read_issue(folder, config_for(project))


def test_images_of_an_issue_kept_outside_the_project_folder_are_fine(tmp_path):
    folder = write_issue(tmp_path / "elsewhere", articles={"01-x.md": "---\ntitle: x\n---\n![a](pic.png)\n"})
    write_image(folder / "articles" / "pic.png")
    (tmp_path / "project").mkdir()
    assert read_issue(folder, config_for(tmp_path / "project")).images


def test_editor_lock_and_hidden_files_are_not_articles(tmp_path):
    folder = write_issue(tmp_path)
    (folder / "articles" / ".#01-one.md").symlink_to("someone@host.1234:1700000000")  # Emacs, while editing
    (folder / "articles" / ".notes.md").write_text("not an article", encoding="utf-8")
    assert [a.title for a in read_issue(folder, config_for(tmp_path)).articles] == ["One"]


@pytest.mark.parametrize("front", ["- title\n- x", "just a sentence"])
def test_front_matter_that_is_not_key_value_lines_is_an_error(tmp_path, front):
    folder = write_issue(tmp_path, articles={"01-x.md": f"---\n{front}\n---\nbody"})
    with pytest.raises(ContentError, match=r"01-x.md:2: front matter must be 'key: value' lines"):
        read_issue(folder, config_for(tmp_path))


def test_empty_front_matter_is_only_a_missing_title(tmp_path):
    folder = write_issue(tmp_path, articles={"01-x.md": "---\n---\nbody"})
    with pytest.raises(ContentError, match="missing title"):
        read_issue(folder, config_for(tmp_path))


def test_body_lines_count_from_the_file_with_crlf_and_leading_blank_lines(tmp_path):
    text = "\n\n---\r\ntitle: x\r\n---\r\n\r\nText\r\n\r\n<script>x</script>\r\n"
    folder = write_issue(tmp_path, articles={"01-x.md": text})
    notes = read_issue(folder, config_for(tmp_path)).notes
    assert any(note.endswith("01-x.md:9: removed <script> (not allowed in email)") for note in notes), notes


def test_front_matter_without_a_body_and_a_file_without_front_matter(tmp_path):
    folder = write_issue(
        tmp_path, issue="---\ntitle: Only front matter\n---\n", articles={"01-x.md": "No front matter at all.\n"}
    )
    with pytest.raises(ContentError, match=r"01-x.md:1: missing title"):
        read_issue(folder, config_for(tmp_path))


def test_images_get_their_ratio_and_a_fluid_width_and_tables_a_scroll_box_reached_by_keyboard():
    sizes = {"wide.png": (1200, 600), "small.png": (120, 120)}
    source = (
        "![w](wide.png) ![s](small.png) ![r](https://example.org/r.jpg) "
        '<img src="https://example.org/big.jpg" alt="b" width="800" height="400">\n\n'
        "| Region | Exports |\n|---|---|\n| Antwerp | 5 |\n"
    )
    fragment = render_markdown(source, rewrite_src=lambda src: ("/i/" + src, sizes.get(src)))
    root = lxml.html.fragment_fromstring(fragment.html, create_parent="div")
    images = {img.get("alt"): img for img in root.iter("img")}
    assert (images["w"].get("width"), images["w"].get("height")) == ("536", "268")
    assert images["w"].get("style") == "width:100%;max-width:536px;height:auto"
    assert (images["s"].get("width"), images["s"].get("height")) == ("120", "120")
    assert "max-width:120px" in images["s"].get("style")
    assert images["r"].get("width") is None and images["r"].get("style") == "max-width:100%;height:auto"
    assert (images["b"].get("width"), images["b"].get("height")) == ("536", "268")  # written 800 x 400
    [box] = root.find_class("table-scroll")
    assert (box.get("tabindex"), box.get("role"), box.get("aria-label")) == ("0", "region", "Region, Exports")


def test_headings_shift_below_the_title_they_stand_under():
    html = render_markdown("## Two\n\n### Three\n\n###### Six\n", top_heading=3).html
    assert re.findall(r"<(h\d)>", html) == ["h3", "h4", "h6"]
    assert re.findall(r"<(h\d)>", render_markdown("### Only\n", top_heading=2).html) == ["h2"]
