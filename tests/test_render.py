import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import lxml.html
import pytest
from PIL import Image
from support.installed import missing
from support.issues import hashed, write_image, write_issue

from broadsheet.core.config import Config, load_config
from broadsheet.core.content import read_issue
from broadsheet.core.errors import ConfigError, TemplateError
from broadsheet.core.render import build_issue, write_build
from broadsheet.core.render.compile import compile_mjml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"
PERSONAL = {"subscriber": {"first_name": "Ann", "email": "ann@example.com"},
            "unsubscribe_url": "https://u.example/x?a=1&b=2", "view_online_url": "https://v.example/issue/"}  # fmt: skip


@pytest.fixture(scope="module")
def sample():
    config = load_config(ROOT / "broadsheet.toml")
    return build_issue(SAMPLE, config), read_issue(SAMPLE, config)


def personalise(template: str, *, html: bool = True, **values) -> str:
    return jinja2.Environment(autoescape=html).from_string(template).render({**PERSONAL, **values})


def test_every_article_title_in_html_and_text(sample):
    rendered, issue = sample
    document = lxml.html.fromstring(personalise(rendered.html))
    text = document.text_content()
    for article in issue.articles:
        assert article.title in text
        assert article.title.upper() in rendered.text
    assert rendered.title in text


def test_placeholders_survive_compile_and_inlining(sample):
    rendered, _ = sample
    assert "{{ subscriber.first_name | default('reader') }}" in rendered.html
    document = lxml.html.fromstring(rendered.html)
    hrefs = [a.get("href") for a in document.iter("a")]
    assert "{{ unsubscribe_url }}" in hrefs and "{{ view_online_url }}" in hrefs
    assert "%20" not in rendered.html and "bsph" not in rendered.html
    filled = personalise(rendered.html)
    assert "Dear Ann," in filled and 'href="https://u.example/x?a=1&amp;b=2"' in filled
    assert "Dear reader," in personalise(rendered.html, subscriber={})
    assert "Unsubscribe: https://u.example/x?a=1&b=2" in personalise(rendered.text, html=False)


def test_subscriber_values_are_escaped_in_html(sample):
    rendered, _ = sample
    filled = personalise(rendered.html, subscriber={"first_name": "<script>x</script>"})
    assert "<script>x</script>" not in filled and "&lt;script&gt;" in filled


def test_media_queries_kept_after_inlining(sample):
    rendered, _ = sample
    compiled = compile_mjml(personalise(rendered.mjml), fonts={}, where="test")
    queries = set(re.findall(r"@media[^{]+", compiled))
    assert any("prefers-color-scheme" in q for q in queries) and any("max-width" in q for q in queries)
    for query in queries:
        assert query in rendered.html
    assert 'style="' in rendered.html and "font-size:22px" in rendered.html.replace(" ", "")  # inlined h2 rule


def test_accessibility_and_dark_mode(sample):
    rendered, _ = sample
    document = lxml.html.fromstring(personalise(rendered.html))
    assert document.get("lang") == "en"
    assert document.findtext(".//title") == rendered.subject
    assert document.xpath('//meta[@name="color-scheme"]/@content') == ["light dark"]
    images = list(document.iter("img"))
    assert len(images) >= 2 and all(img.get("alt") for img in images)
    layout_tables = [t for t in document.iter("table") if "content-table" not in (t.get("class") or "")]
    assert layout_tables and all(t.get("role") == "presentation" for t in layout_tables)


def test_preheader_present_and_not_white(sample):
    rendered, _ = sample
    document = lxml.html.fromstring(rendered.html)
    hidden = document.xpath('//div[contains(@class, "preheader")]')
    assert hidden and rendered.preheader in hidden[0].text_content()
    style = hidden[0].get("style").replace(" ", "").lower()
    assert "display:none" in style and "color:#fff" not in style and "color:white" not in style


def test_text_part_has_every_link_and_is_wrapped(sample):
    rendered, _ = sample
    html = personalise(rendered.html)
    text = personalise(rendered.text, html=False)
    links = {a.get("href") for a in lxml.html.fromstring(html).iter("a")}
    links = {link for link in links if link.startswith(("http", "mailto"))}
    assert links
    for link in links:
        assert link.removeprefix("mailto:") in text
    assert all(len(line) <= 78 for line in text.splitlines() if "://" not in line)
    assert "1. foreign investment;" in text and "> “It was a premiere for Asia." in text


def test_web_version_has_no_personal_fields(sample):
    rendered, _ = sample
    assert "{{" not in rendered.web_html and "bsph" not in rendered.web_html
    # The browser version greets nobody and does not link to itself; the email does both.
    assert "Dear" not in rendered.web_html and "in your browser" not in rendered.web_html
    assert rendered.view_online_url and f'href="{rendered.view_online_url}"' not in rendered.web_html
    email = personalise(rendered.html)
    assert "Dear Ann," in email and email.count(f'href="{PERSONAL["view_online_url"]}"') == 2
    assert "Unsubscribe" in rendered.web_html and "Chengdu and Flemish Brabant" in rendered.web_html


def test_email_only_stretches_are_kept_in_the_email_and_cut_from_the_browser_version():
    from markupsafe import Markup

    from broadsheet.core.render.placeholders import PlaceholderTable

    table = PlaceholderTable()
    name = table.subscriber().first_name
    text = f"<p>A</p>{table.email_only(Markup(f'<p>Hi {name}</p>'))}<p>B</p>{table.email_only('x')}<p>C</p>"
    assert table.to_jinja(text) == "<p>A</p><p>Hi {{ subscriber.first_name }}</p><p>B</p>x<p>C</p>"
    assert table.fill(text, {"subscriber.first_name": "Ann"}) == "<p>A</p><p>B</p><p>C</p>"
    assert isinstance(table.email_only(Markup("<b>")), Markup) and not isinstance(table.email_only("<b>"), Markup)


def test_every_html_output_declares_its_doctype(sample):
    """premailer drops MRML's <!doctype html>; without it clients render in quirks mode."""
    rendered, _ = sample
    for html in (rendered.html, rendered.web_html, personalise(rendered.html)):
        assert html.startswith("<!doctype html>\n<html"), html[:60]


def test_content_template_syntax_is_shown_not_executed(tmp_path, project):
    body = "Try {{ 7*7 }} and {{ subscriber.email | upper }}, {% if true %}x{% endif %} and {# c #}.\n"
    folder = write_issue(project, articles={"01-x.md": "---\ntitle: Braces\n---\n" + body})
    rendered = build_issue(folder, load_config(project / "broadsheet.toml"))
    for output in (personalise(rendered.html), personalise(rendered.text, html=False), rendered.web_html):
        output = " ".join(output.split())
        assert "{{ 7*7 }}" in output and "49" not in output
        assert "{{ subscriber.email | upper }}" in output and "ANN@EXAMPLE.COM" not in output
        assert "{% if true %}x{% endif %}" in output and "{# c #}" in output


def test_write_build_outputs_and_images(tmp_path, sample):
    rendered, _ = sample
    target = write_build(rendered, tmp_path / "dist")
    assert {p.name for p in target.iterdir()} == {"email.mjml", "email.html", "email.txt", "web.html", "images"}
    published = sorted(p.name for p in (target / "images").iterdir())
    assert len(published) == 2 and re.fullmatch(hashed("chengdu-flemish-brabant.png"), published[0])
    assert re.fullmatch(hashed("logo-bcecc-logo.png"), published[1])
    assert (target / "email.html").read_text(encoding="utf-8") == rendered.html


def test_an_article_image_named_like_the_logo_does_not_replace_it(project, tmp_path):
    from broadsheet.core.config import load_config

    issue = project / "issues" / "2021-06-01-chengdu-flemish-brabant"
    write_image(issue / "images" / "logo-bcecc-logo.png", size=(64, 64))
    article = issue / "articles" / "02-contact.md"
    article.write_text(
        article.read_text(encoding="utf-8") + "\n![Our team](../images/logo-bcecc-logo.png)\n", encoding="utf-8"
    )
    rendered = build_issue(issue, load_config(project / "broadsheet.toml"))
    names = [name for name, _ in rendered.images]
    assert len(names) == len(set(names)) == 3
    logo = re.search(r'<img[^>]*alt="BCECC[^"]*"[^>]*>', rendered.html).group(0)
    logo_name = re.search(r'images/([^"]+)"', logo).group(1)
    target = write_build(rendered, tmp_path / "dist")
    with Image.open(target / "images" / logo_name) as published:  # the brand's logo, not the 64 px article image
        assert published.width == min(Image.open(project / "assets" / "bcecc-logo.png").width, 2 * 160)


def test_template_syntax_error_names_template_file_and_line(project):
    partial = project / "templates" / "default" / "partials" / "intro.mjml.j2"
    partial.write_text(partial.read_text() + "\n{% if %}\n", encoding="utf-8")
    lines = partial.read_text().count("\n")
    with pytest.raises(TemplateError, match=rf"intro.mjml.j2:{lines}: template syntax error"):
        build_issue(project / "issues" / SAMPLE.name, load_config(project / "broadsheet.toml"))


def test_undefined_variable_in_theme_names_the_line(project):
    partial = project / "templates" / "default" / "partials" / "footer.mjml.j2"
    partial.write_text("{{ footer.nonexistent_field.x }}\n" + partial.read_text(), encoding="utf-8")
    with pytest.raises(TemplateError, match=r"footer.mjml.j2:1: template error"):
        build_issue(project / "issues" / SAMPLE.name, load_config(project / "broadsheet.toml"))


def test_mjml_compile_error(project):
    main = project / "templates" / "default" / "email.mjml.j2"
    main.write_text(main.read_text().replace("</mj-body>", ""), encoding="utf-8")
    with pytest.raises(TemplateError, match="MJML does not compile"):
        build_issue(project / "issues" / SAMPLE.name, load_config(project / "broadsheet.toml"))


def test_warnings(tmp_path):
    long_subject = "S" * 80
    folder = write_issue(
        tmp_path,
        issue=f"---\ntitle: T\nsubject: {long_subject}\n---\nintro\n",
        articles={"01-a.md": "---\ntitle: A\n---\nSee [old](http://insecure.example/page).\n\n![](pic.png)\n"},
    )
    write_image(folder / "articles" / "pic.png")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    rendered = build_issue(folder, Config(root=tmp_path))
    warnings = "\n".join(rendered.warnings)
    assert "no preheader" in warnings
    assert "subject is 80 characters" in warnings
    assert "01-a.md:4: insecure http:// link http://insecure.example/page" in warnings
    assert "01-a.md:6: image without alt text" in warnings
    assert "base_url is not set" in warnings


def test_clipping_warning_for_a_huge_issue(tmp_path):
    paragraph = "A fairly long sentence about trade between regions, repeated to grow the issue. " * 12
    articles = {f"{n:02d}-a.md": f"---\ntitle: Article {n}\n---\n" + (paragraph + "\n\n") * 6 for n in range(20)}
    folder = write_issue(tmp_path, articles=articles)
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    rendered = build_issue(folder, Config(root=tmp_path))
    assert any("over Gmail's clipping limit" in w for w in rendered.warnings)


@pytest.mark.node
@pytest.mark.slow
def test_emitted_mjml_passes_the_official_validator_in_strict_mode(tmp_path, sample):
    if not MJML_CLI.exists():
        missing("the npm mjml validator", "make validator")
    rendered, _ = sample
    path = tmp_path / "email.mjml"
    path.write_text(rendered.mjml, encoding="utf-8")
    result = subprocess.run([str(MJML_CLI), "--validate", str(path), "--config.validationLevel=strict"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.mjml"
    broken.write_text(rendered.mjml.replace("<mj-column>", "<mj-colum>", 1), encoding="utf-8")
    failed = subprocess.run([str(MJML_CLI), "--validate", str(broken), "--config.validationLevel=strict"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert failed.returncode != 0


def test_missing_include_names_the_including_template_line_and_the_fix(project):
    main = project / "templates" / "default" / "email.mjml.j2"
    main.write_text(main.read_text().replace('"style.css"', '"styles.css"'), encoding="utf-8")
    line = next(n for n, text in enumerate(main.read_text().splitlines(), 1) if "styles.css" in text)
    with pytest.raises(TemplateError) as raised:
        build_issue(project / "issues" / SAMPLE.name, load_config(project / "broadsheet.toml"))
    assert f"email.mjml.j2:{line}: template not found: styles.css" in str(raised.value)
    assert raised.value.fix


def test_template_syntax_error_says_how_to_fix_it(project):
    partial = project / "templates" / "default" / "partials" / "intro.mjml.j2"
    partial.write_text(partial.read_text() + "\n{{ issue.title }\n", encoding="utf-8")
    with pytest.raises(TemplateError) as raised:
        build_issue(project / "issues" / SAMPLE.name, load_config(project / "broadsheet.toml"))
    assert "intro.mjml.j2:" in str(raised.value) and raised.value.fix


def test_missing_logo_names_the_config_file(project):
    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace("assets/bcecc-logo.png", "assets/none.png"), encoding="utf-8")
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "assets/none.png" in text)
    with pytest.raises(ConfigError, match=rf"broadsheet.toml:{line}: logo not found: assets/none.png"):
        build_issue(project / "issues" / SAMPLE.name, load_config(config))


def test_article_titles_stand_out_from_the_headings_inside_articles(sample):
    rendered, _ = sample
    document = lxml.html.fromstring(personalise(rendered.html))

    def size(element) -> int:
        return int(re.search(r"font-size:\s*(\d+)px", element.get("style", "")).group(1))

    titles = document.xpath('//h2[contains(@class, "article-title")]')
    headings = [h for h in document.iter("h2", "h3", "h4") if h not in titles]
    assert titles and headings
    assert min(size(t) for t in titles) >= max(size(h) for h in headings) + 3


def test_headings_make_one_outline_under_the_issue_title(project):
    """The issue's title is the one h1, article titles h2, an article's own sections h3 and below; the intro's h2."""
    folder = project / "issues" / SAMPLE.name
    (folder / "issue.md").write_text(
        (folder / "issue.md").read_text(encoding="utf-8") + "\n### In short\n\nThe intro's section.\n", encoding="utf-8"
    )
    (folder / "articles" / "03-deep.md").write_text(
        "---\ntitle: Deep\n---\n# Top\n\n## Middle\n\n#### Skipped a level\n\n###### Bottom\n", encoding="utf-8"
    )
    document = lxml.html.fromstring(build_issue(folder, load_config(project / "broadsheet.toml")).html)
    outline = [(h.tag, h.text_content().strip()) for h in document.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert [tag for tag, _ in outline if tag == "h1"] == ["h1"]
    assert outline[0] == ("h1", "10 Years of Partnership: Chengdu and Flemish Brabant")
    assert ("h2", "In short") in outline and ("h2", "Deep") in outline
    assert outline[-4:] == [("h3", "Top"), ("h4", "Middle"), ("h6", "Skipped a level"), ("h6", "Bottom")]
    assert ("h3", "A region of knowledge and innovation") in outline  # the sample's "##" in its article
    assert document.xpath("//*[@role='main']") or document.xpath("//main")


def test_masthead_date_does_not_break_across_lines(sample):
    rendered, _ = sample
    document = lxml.html.fromstring(personalise(rendered.html))
    [date] = [e for e in document.iter("span") if e.text_content().strip() == "1 JUNE 2021"]
    assert "white-space:nowrap" in date.get("style", "").replace(" ", "")


def test_http_link_in_the_config_footer_is_traced_to_the_config(project):
    config_file = project / "broadsheet.toml"
    config_file.write_text(
        config_file.read_text().replace("https://www.example.org/bcecc/events", "http://www.example.org/bcecc/events"),
        encoding="utf-8",
    )
    line = next(n for n, text in enumerate(config_file.read_text().splitlines(), 1) if "http://www" in text)
    rendered = build_issue(project / "issues" / SAMPLE.name, load_config(config_file))
    assert any(w.startswith(f"{config_file.resolve()}:{line}: insecure http:// link") for w in rendered.warnings), (
        rendered.warnings
    )


@pytest.mark.parametrize(
    "template, expected",
    [
        ("https://news.example.org/unsubscribe?email={email}&token={token}", "https://news.example.org/unsubscribe"),
        ("https://news.example.org/u/{list_id}/{token}", "https://news.example.org/u/"),
    ],
)
def test_web_version_unsubscribe_link_has_no_placeholders(project, template, expected):
    config = load_config(project / "broadsheet.toml")
    from dataclasses import replace

    rendered = build_issue(project / "issues" / SAMPLE.name, replace(config, unsubscribe_url=template))
    assert f'href="{expected}"' in rendered.web_html and "{token}" not in rendered.web_html


def test_an_issue_without_articles_is_a_warning(project):
    folder = write_issue(project, articles={})
    rendered = build_issue(folder, load_config(project / "broadsheet.toml"))
    assert any("no articles" in warning for warning in rendered.warnings)


def test_a_folder_name_with_spaces_is_quoted_in_published_urls(project):
    folder = project / "issues" / "2024-05-01 spring news"
    (folder / "articles").mkdir(parents=True)
    (folder / "issue.md").write_text("---\ntitle: Spring\npreheader: p\n---\nHi\n", encoding="utf-8")
    (folder / "articles" / "01-a.md").write_text("---\ntitle: A\n---\n![Chart](chart.png)\n", encoding="utf-8")
    write_image(folder / "articles" / "chart.png")
    rendered = build_issue(folder, load_config(project / "broadsheet.toml"))
    assert rendered.view_online_url.endswith("/2024-05-01%20spring%20news/")
    assert re.search(r"/2024-05-01%20spring%20news/images/" + hashed("chart.png"), rendered.html)
