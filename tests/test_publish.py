"""broadsheet publish: the web archive's index, pages, feed, sitemap and icons, built for real and read back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import io
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import lxml.html
import pytest
from lxml import etree
from PIL import Image
from support.archive import SAMPLE, dated_issue, sample_project
from support.atom import ATOM, atom_problems
from support.issues import hashed

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer
from broadsheet.core.config import load_config
from broadsheet.core.content import scaffold
from broadsheet.core.content.optimise import CACHE_FOLDER
from broadsheet.core.errors import PublishError
from broadsheet.core.render import build_issue
from broadsheet.faces.cli import main
from broadsheet.usecases.publish import publish_site
from broadsheet.usecases.publish.model import signup_url
from broadsheet.usecases.publish.reader import read_entries
from broadsheet.usecases.publish.writer import MANIFEST, SiteWriter

BASE = "https://newsletter.example.org"


@pytest.fixture
def archive(tmp_path: Path, sample_image_cache: Path) -> Path:
    """The sample project plus an older and a newer issue (one without images) and a draft; the sample's
    image (the other issues' lead picture too) already optimised, as after a first build."""
    project = sample_project(tmp_path / "project")
    shutil.copytree(sample_image_cache, project / CACHE_FOLDER)
    dated_issue(project, 41, dt.date(2021, 5, 1))
    dated_issue(project, 43, dt.date(2021, 7, 1), title="Summer <news> & more", image=False)
    dated_issue(project, 44, dt.date(2021, 8, 1), draft=True)
    return project


def publish(project: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(project / "broadsheet.toml"), "publish", "--out", str(out), *extra])


SLUGS = ["2021-07-01-issue-43", SAMPLE.name, "2021-05-01-issue-41"]  # newest first; the draft left out


def test_index_lists_every_published_issue_newest_first(archive: Path, tmp_path: Path, capsys):
    site = tmp_path / "site"
    assert publish(archive, site) == 0
    assert "published 3 issues" in capsys.readouterr().out
    index = lxml.html.parse(str(site / "index.html")).getroot()
    cards = index.cssselect("article.issue")
    assert [card.cssselect("h2 a")[0].get("href") for card in cards] == [f"{slug}/index.html" for slug in SLUGS]
    assert [card.cssselect("h2 a")[0].text_content() for card in cards] == [
        "Summer <news> & more",
        "10 Years of Partnership: Chengdu and Flemish Brabant",
        "Issue number 41",
    ]
    assert [card.cssselect("time")[0].get("datetime") for card in cards] == ["2021-07-01", "2021-06-01", "2021-05-01"]
    assert [card.cssselect(".meta")[0].text_content().split(" · ")[0] for card in cards] == [
        "Issue 43",
        "Issue 42",
        "Issue 41",
    ]
    assert cards[1].cssselect(".summary")[0].text_content().startswith("How a Belgian province")
    heroes = [[img.get("src") for img in card.cssselect("img")] for card in cards]
    assert heroes[0] == [] and len(heroes[1]) == len(heroes[2]) == 1
    assert re.fullmatch(f"{SAMPLE.name}/images/" + hashed("chengdu-flemish-brabant.png"), heroes[1][0])
    assert re.fullmatch("2021-05-01-issue-41/images/" + hashed("lead.png"), heroes[2][0])
    assert not (site / "2021-08-01-issue-44").exists()
    assert index.cssselect('link[rel="alternate"][type="application/atom+xml"]')[0].get("href") == "feed.xml"


def test_issue_pages_are_the_browser_version_with_the_archive_around_it(archive: Path, tmp_path: Path):
    site = tmp_path / "site"
    publish(archive, site)
    for position, slug in enumerate(SLUGS):
        raw = (site / slug / "index.html").read_text(encoding="utf-8")
        assert raw.startswith("<!doctype html>")
        page = lxml.html.fromstring(raw)
        meta = {m.get("property") or m.get("name"): m.get("content") for m in page.cssselect("meta[content]")}
        assert meta["og:url"] == f"{BASE}/{slug}/" == page.cssselect('link[rel="canonical"]')[0].get("href")
        assert meta["og:title"] == meta["twitter:title"] == page.findtext(".//title")
        assert meta["og:description"] == meta["twitter:description"] == meta["description"]
        assert page.cssselect('a[rel="index"]')[0].get("href") == "../index.html"
        older = page.cssselect('a[rel="prev"]')
        newer = page.cssselect('a[rel="next"]')
        assert [a.get("href") for a in older] == ([f"../{SLUGS[position + 1]}/index.html"] if position < 2 else [])
        assert [a.get("href") for a in newer] == ([f"../{SLUGS[position - 1]}/index.html"] if position else [])
        text = page.text_content()
        assert "Dear" not in text and "in your browser" not in text  # no greeting, no link to itself
        assert [a.get("href") for a in page.cssselect("a.signup")] == ["https://newsletter.example.org/subscribe"]
        assert page.cssselect('link[rel="icon"]')[0].get("href") == "../favicon.png"
    sample = lxml.html.parse(str(site / SAMPLE.name / "index.html")).getroot()
    meta = {m.get("property") or m.get("name"): m.get("content") for m in sample.cssselect("meta[content]")}
    assert meta["og:image"] == meta["twitter:image"]
    assert re.fullmatch(f"{BASE}/{SAMPLE.name}/images/" + hashed("chengdu-flemish-brabant.png"), meta["og:image"])
    assert meta["twitter:card"] == "summary_large_image"
    assert sample.findtext(".//title").startswith("10 Years of Partnership")
    assert all(not img.get("src").startswith("http") for img in sample.cssselect("img"))  # relative inside the site
    no_hero = lxml.html.parse(str(site / SLUGS[0] / "index.html")).getroot()
    assert no_hero.cssselect('meta[property="og:image"]')[0].get("content") == f"{BASE}/logo-bcecc-logo.png"


def test_sign_up_link_from_serve_public_url(archive: Path, tmp_path: Path):
    config = load_config(archive / "broadsheet.toml")
    assert signup_url(config) == "https://newsletter.example.org/subscribe"  # the sample's [serve] public_url
    assert signup_url(dataclasses.replace(config, serve=dataclasses.replace(config.serve, public_url=""))) == ""
    config = dataclasses.replace(config, serve=dataclasses.replace(config.serve, public_url="https://join.example.org"))
    publish_site(config, tmp_path / "site")
    for page in (tmp_path / "site" / "index.html", tmp_path / "site" / SAMPLE.name / "index.html"):
        links = lxml.html.parse(str(page)).getroot().cssselect("a.signup")
        assert [a.get("href") for a in links] == ["https://join.example.org/subscribe"]


def test_feed_is_valid_atom_with_full_content_and_stable_ids(archive: Path, tmp_path: Path):
    site = tmp_path / "site"
    publish(archive, site)
    data = (site / "feed.xml").read_bytes()
    assert atom_problems(data) == []
    parsed = feedparser.parse(data)
    assert parsed.version == "atom10" and not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "BCECC Newsletter"
    assert [e.link for e in parsed.entries] == [f"{BASE}/{slug}/" for slug in SLUGS]
    assert parsed.entries[0].title == "Summer <news> & more"
    sample = parsed.entries[1]
    assert sample.updated.startswith("2021-06-01T00:00:00")
    content = lxml.html.fromstring(sample.content[0].value)
    assert "A 10-year partnership between Chengdu and Flemish Brabant" in content.text_content()
    assert "Dear" not in content.text_content()
    assert re.fullmatch(
        f"{BASE}/{SAMPLE.name}/images/" + hashed("chengdu-flemish-brabant.png"),
        next(img.get("src") for img in content.iter("img")),
    )
    assert all(urlsplit(a.get("href")).scheme in ("https", "mailto") for a in content.iter("a"))
    feed = etree.fromstring(data)
    assert feed.findtext(f"{ATOM}updated").startswith("2021-07-01")  # the newest issue, not the clock
    ids = [e.findtext(f"{ATOM}id") for e in feed.iter(f"{ATOM}entry")]

    # A new issue later: the earlier entries keep their ids.
    dated_issue(archive, 45, dt.date(2021, 9, 1))
    publish(archive, site)
    later = etree.fromstring((site / "feed.xml").read_bytes())
    later_ids = [e.findtext(f"{ATOM}id") for e in later.iter(f"{ATOM}entry")]
    assert later_ids[1:] == ids and later_ids[0] not in ids and atom_problems((site / "feed.xml").read_bytes()) == []


def test_sitemap_lists_the_index_and_every_page(archive: Path, tmp_path: Path):
    publish(archive, tmp_path / "site")
    root = etree.parse(str(tmp_path / "site" / "sitemap.xml")).getroot()
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    assert root.xpath("/s:urlset/s:url/s:loc/text()", namespaces=ns) == [f"{BASE}/", *(f"{BASE}/{s}/" for s in SLUGS)]
    assert root.xpath("/s:urlset/s:url/s:lastmod/text()", namespaces=ns)[1:] == [
        "2021-07-01",
        "2021-06-01",
        "2021-05-01",
    ]


def test_every_link_and_image_in_the_site_resolves_to_a_file(archive: Path, tmp_path: Path):
    site = tmp_path / "site"
    publish(archive, site)
    assert _links_resolve(site) > 40


def test_links_resolve_with_spaces_and_accents_in_names(archive: Path, tmp_path: Path):
    odd = dated_issue(archive, 40, dt.date(2021, 4, 1))
    odd.rename(odd.with_name("2021-04-01 Chéngdū notes"))
    shutil.move(archive / "assets" / "bcecc-logo.png", archive / "assets" / "our logo.png")
    toml = archive / "broadsheet.toml"
    toml.write_text(toml.read_text().replace("assets/bcecc-logo.png", "assets/our logo.png"))
    site = tmp_path / "site"
    assert publish(archive, site) == 0
    assert (site / "2021-04-01 Chéngdū notes" / "index.html").is_file() and (site / "logo-our logo.png").is_file()
    assert _links_resolve(site) > 40
    assert atom_problems((site / "feed.xml").read_bytes()) == []


def _links_resolve(site: Path) -> int:
    """Check that every link and image of every page, and every address of the feed and sitemap, lands on a
    file of the site; the number checked."""
    checked = 0
    for page in sorted(site.rglob("*.html")):
        document = lxml.html.parse(str(page)).getroot()
        links = [
            (e, a, link) for e, a, link, _ in document.iterlinks() if not link.startswith(BASE)
        ]  # inside: relative
        links += [
            (m, "content", m.get("content"))
            for m in document.cssselect('meta[property="og:url"], meta[property="og:image"]')
        ]
        for element, attribute, link in links:
            target = _local_file(site, page, link)
            if target is not None:
                assert target.is_file(), f"{page.relative_to(site)}: <{element.tag} {attribute}={link!r}> has no file"
                checked += 1
    for xml in ("feed.xml", "sitemap.xml"):
        for address in etree.parse(str(site / xml)).xpath(
            "//@href | //*[local-name()='loc']/text() | //*[local-name()='icon']/text()"
        ):
            target = _local_file(site, site / "index.html", str(address))
            if target is not None:
                assert target.is_file(), f"{xml}: {address} has no file"
                checked += 1
    return checked


def _local_file(site: Path, page: Path, link: str) -> Path | None:
    """The file a link of ``page`` lands on in ``site`` (site-relative or under base_url); None for elsewhere."""
    if link.startswith(BASE + "/"):
        link, page = link[len(BASE) + 1 :], site / "index.html"
    elif urlsplit(link).scheme or link.startswith(("//", "#")):
        return None
    path = unquote(urlsplit(link).path)
    target = (page.parent / path).resolve()
    assert target.is_relative_to(site.resolve()), f"{page}: {link} leads out of the site"
    return target / "index.html" if target.is_dir() or path.endswith("/") or not path else target


def test_favicon_is_a_square_png_made_from_the_logo(archive: Path, tmp_path: Path):
    publish(archive, tmp_path / "site")
    for name, size in (("favicon.png", 32), ("apple-touch-icon.png", 180)):
        with Image.open(tmp_path / "site" / name) as icon:
            assert (icon.format, icon.size, icon.mode) == ("PNG", (size, size), "RGBA")
            assert icon.getextrema()[3][1] == 255  # the logo is there, not a blank square
    with (
        Image.open(tmp_path / "site" / "logo-bcecc-logo.png") as logo,
        Image.open(archive / "assets" / "bcecc-logo.png") as source,
    ):
        assert logo.format == "PNG" and logo.size == source.size  # re-encoded, not resized (narrower than 1,200)


def test_the_site_logo_is_published_without_its_metadata(archive: Path, tmp_path: Path):
    logo = archive / "assets" / "private-logo.jpg"
    exif = Image.Exif()
    exif[0x010F] = "Jane Private's phone"
    Image.new("RGB", (400, 100), (31, 78, 121)).save(logo, "JPEG", comment=b"Jane Private", exif=exif.tobytes())
    toml = archive / "broadsheet.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("assets/bcecc-logo.png", "assets/private-logo.jpg"))
    assert publish(archive, tmp_path / "site") == 0
    published = (tmp_path / "site" / "logo-private-logo.jpg").read_bytes()
    assert b"Jane Private" not in published and b"Exif" not in published
    with Image.open(io.BytesIO(published)) as shown:
        assert shown.format == "JPEG" and shown.size == (400, 100) and "comment" not in shown.info


def test_builds_are_byte_reproducible(tmp_path: Path, monkeypatch):
    """The same inputs, in two folders, built a second apart from different places: identical dist/ and site/."""
    outputs = []
    monkeypatch.setenv("TZ", "UTC")
    try:
        _build_twice(tmp_path, monkeypatch, outputs)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert sorted(outputs[0]) == sorted(outputs[1]) and len(outputs[0]) > 15
    different = [name for name in outputs[0] if outputs[0][name] != outputs[1][name]]
    assert different == []


def _build_twice(tmp_path: Path, monkeypatch, outputs: list) -> None:
    for run, zone in enumerate(("UTC", "Asia/Shanghai")):
        project = sample_project(tmp_path / f"copy{run}" / ("a" * (run + 1)))
        dated_issue(project, 41, dt.date(2021, 5, 1))
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        monkeypatch.chdir(tmp_path / f"copy{run}")
        config = ["--config", str(project / "broadsheet.toml")]
        for issue in sorted((project / "issues").iterdir()):
            assert main([*config, "build", str(issue), "--out", "dist"]) == 0
        assert main([*config, "publish", "--out", "site"]) == 0
        outputs.append(_tree(tmp_path / f"copy{run}"))
        if run == 0:
            time.sleep(1.1)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.parts[len(folder.parts)] in ("dist", "site")}  # fmt: skip


def test_an_archive_without_issues_is_an_empty_index_and_feed(tmp_path: Path):
    project = sample_project(tmp_path / "project")
    shutil.rmtree(project / "issues" / SAMPLE.name)
    assert publish(project, tmp_path / "site") == 0
    index = lxml.html.parse(str(tmp_path / "site" / "index.html")).getroot()
    assert not index.cssselect("article.issue") and "No issues published yet" in index.text_content()
    assert atom_problems((tmp_path / "site" / "feed.xml").read_bytes()) == []


def test_pages_of_issues_no_longer_published_are_removed(archive: Path, tmp_path: Path, capsys):
    site = tmp_path / "site"
    publish(archive, site)
    issue_md = archive / "issues" / "2021-05-01-issue-41" / "issue.md"
    issue_md.write_text(issue_md.read_text().replace("number: 41\n", "number: 41\ndraft: true\n"))
    newest = site / SLUGS[0] / "index.html"  # its neighbours stay the same
    before = newest.stat().st_mtime_ns
    assert publish(archive, site) == 0
    assert "removed 3 files" in capsys.readouterr().out  # the page and its two images
    assert not (site / "2021-05-01-issue-41").exists()
    assert newest.stat().st_mtime_ns == before  # unchanged bytes are not rewritten
    assert "2021-05-01-issue-41" not in (site / MANIFEST).read_text()


def test_the_writer_stays_inside_its_folder(tmp_path: Path):
    writer = SiteWriter(tmp_path / "site")
    for escape in ("../outside.html", "/etc/passwd-copy", "a/../../outside.html", "."):
        with pytest.raises(PublishError, match="outside the output folder"):
            writer.write(escape, "x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PublishError, match="outside the output folder"):
        writer.write("link/index.html", "x")
    assert not (tmp_path / "outside.html").exists() and not any((tmp_path / "elsewhere").iterdir())


def test_publish_refuses_a_folder_it_did_not_make(archive: Path, tmp_path: Path, capsys):
    other = tmp_path / "documents"
    other.mkdir()
    (other / "thesis.txt").write_text("mine")
    assert publish(archive, other) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "not made by broadsheet publish" in error and str(other) in error
    assert sorted(p.name for p in other.iterdir()) == ["thesis.txt"]


def test_an_issue_without_a_date_is_a_one_line_error(archive: Path, tmp_path: Path, capsys):
    issue_md = archive / "issues" / "2021-05-01-issue-41" / "issue.md"
    issue_md.write_text(issue_md.read_text().replace("date: 2021-05-01\n", ""))
    assert publish(archive, tmp_path / "site") == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"{issue_md}: the issue has no date" in error and "draft: true" in error
    assert not (tmp_path / "site").exists()


def test_without_base_url_the_site_still_works_but_has_no_feed(archive: Path, tmp_path: Path, capsys):
    toml = archive / "broadsheet.toml"
    toml.write_text(toml.read_text().replace(f'base_url = "{BASE}"\n', ""))
    assert publish(archive, tmp_path / "site") == 0
    assert "no feed" in capsys.readouterr().err
    assert not (tmp_path / "site" / "feed.xml").exists() and not (tmp_path / "site" / "sitemap.xml").exists()
    page = lxml.html.parse(str(tmp_path / "site" / SAMPLE.name / "index.html")).getroot()
    assert not page.cssselect('meta[property="og:url"]') and not page.cssselect('link[rel="canonical"]')
    assert page.cssselect('meta[property="og:title"]')


def test_the_sent_html_part_declares_its_doctype(archive: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "test-secret-for-doctype-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    config = load_config(archive / "broadsheet.toml")
    rendered = build_issue(archive / "issues" / SAMPLE.name, config)
    message = Composer(rendered, config).compose(Subscriber(email="ann@example.com", name="Ann Lee", first_name="Ann"))
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert html.replace("\r\n", "\n").startswith("<!doctype html>\n<html")
    assert "Dear Ann," in html and f'href="{BASE}/{SAMPLE.name}/"' in html  # the view-online link: the archive page
    assert parsed["Archived-At"] == f"<{BASE}/{SAMPLE.name}/>"
    # Uploaded at base_url, the archive has a page at each address the email names.
    publish(archive, tmp_path / "site")
    for address in (rendered.view_online_url, parsed["Archived-At"].strip("<>"), parsed["List-Archive"].strip("<>")):
        assert _local_file(tmp_path / "site", tmp_path / "site" / "index.html", address).is_file(), address


def test_an_issue_scheduled_for_later_is_left_out_until_its_send_at(archive: Path, tmp_path: Path, capsys):
    ahead = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    for number, send_at in ((45, ahead), (46, ahead - dt.timedelta(days=2))):
        issue_md = dated_issue(archive, number, dt.date(2021, 9, number - 44), image=False) / "issue.md"
        issue_md.write_text(
            issue_md.read_text().replace("---\nIntro", f"send_at: {send_at:%Y-%m-%d %H:%M:%S}+00:00\n---\nIntro", 1)
        )
    site = tmp_path / "site"
    assert publish(archive, site) == 0
    out, err = capsys.readouterr()
    assert "published 4 issues" in out and not (site / "2021-09-01-issue-45").exists()
    assert (site / "2021-09-02-issue-46" / "index.html").is_file()
    assert f"2021-09-01-issue-45 is left out until its send_at, {ahead:%Y-%m-%d %H:%M} UTC" in err
    assert "issue-45" not in (site / "index.html").read_text() + (site / "feed.xml").read_text()
    config = load_config(archive / "broadsheet.toml")
    later = [entry.slug for entry in read_entries(config, now=ahead + dt.timedelta(seconds=1))]
    assert later[0] == "2021-09-02-issue-46" and "2021-09-01-issue-45" in later


def test_an_issue_just_scaffolded_by_new_stays_out_of_the_archive(archive: Path, tmp_path: Path, capsys):
    """`broadsheet new` then `publish` (to refresh the archive): the placeholder issue is not made public."""
    assert main(["new", "Next month", "--config", str(archive / "broadsheet.toml")]) == 0
    (folder,) = [p for p in (archive / "issues").iterdir() if p.name.endswith("-next-month")]
    site = tmp_path / "site"
    assert publish(archive, site) == 0
    out, err = capsys.readouterr()
    assert "published 3 issues" in out and not (site / folder.name).exists()
    assert f"{folder.name} is left out: the preheader is still the placeholder `broadsheet new` wrote" in err
    assert f"({folder.name}/issue.md:4)" in err
    assert "Next month" not in (site / "index.html").read_text() + (site / "feed.xml").read_text()
    issue_md = folder / "issue.md"  # written, it is published like any other
    text = issue_md.read_text().replace(scaffold.PREHEADER, "Real words").replace(scaffold.INTRO, "Real intro")
    issue_md.write_text(text)
    article = folder / "articles" / "01-first-article.md"
    article.write_text(
        article.read_text().replace(scaffold.ARTICLE_TITLE, "News").replace(scaffold.ARTICLE_BODY, "Body")
    )
    assert publish(archive, site) == 0
    assert "published 4 issues" in capsys.readouterr().out and (site / folder.name / "index.html").is_file()
