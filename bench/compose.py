"""Compose throughput on one core: broadsheet's Composer against the stdlib EmailMessage path.

    .venv/bin/python bench/compose.py [--recipients 5000] [--dkim-recipients 300] [--repeat 3] [--issue DIR]

Builds a synthetic ~60 KB issue (placeholders as render leaves them), or with ``--issue`` renders a
real one through broadsheet.core.render, composes N personalised messages, then builds the same messages
with ``email.message.EmailMessage`` and prints both rates (best of ``--repeat`` runs), and how many
unsubscribe tokens a second are made and read (one per message).
"""

from __future__ import annotations

import argparse
import email.policy
import email.utils
import os
import platform
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer
from broadsheet.core.config import Config, Dkim
from broadsheet.core.render.model import RenderedIssue
from broadsheet.core.tokens import make_token, read_token

ARTICLE_HTML = """<tr><td style="padding:24px 32px;font-family:Georgia,serif;font-size:16px;line-height:1.6;color:#1a1a1a">
<h2 style="margin:0 0 12px;font-size:22px;color:#1f4e79">Article {n}: Chengdu &amp; Flemish Brabant, côte à côte</h2>
<p style="margin:0 0 12px">Lorem ipsum dolor sit amet, consectetur adipiscing elit. Sed do eiusmod tempor incididunt ut
labore et dolore magna aliqua — über naïve café society, {{{{ '{{' }}}} shown literally }}.</p>
<p style="margin:0 0 12px">Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea
commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore.</p>
<a href="https://news.example.org/2021-06-01/article-{n}?utm_source=newsletter" style="color:#c8102e">Read more</a>
</td></tr>
"""
ARTICLE_TEXT = """Article {n}: Chengdu & Flemish Brabant, côte à côte
Lorem ipsum dolor sit amet, consectetur adipiscing elit. Sed do eiusmod tempor incididunt ut labore.
Read more: https://news.example.org/2021-06-01/article-{n}

"""


def synthetic_issue(size: int = 60_000) -> RenderedIssue:
    head = (
        '<!doctype html><html lang="en"><body style="margin:0;background:#f2f4f7">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
        '<tr><td style="padding:16px 32px">Hello {{ subscriber.first_name | default("reader") }},'
        ' <a href="{{ view_online_url }}">view online</a></td></tr>\n'
    )
    foot = (
        '<tr><td style="padding:24px 32px;font-size:12px">Sent to {{ subscriber.email }}. '
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></td></tr></table></body></html>\n'
    )
    html, text, n = head, "Hello {{ subscriber.first_name | default('reader') }},\n\n", 0
    while len(html) + len(foot) < size:
        n += 1
        html += ARTICLE_HTML.format(n=n)
        text += ARTICLE_TEXT.format(n=n)
    text += "Unsubscribe: {{ unsubscribe_url }}\n"
    return RenderedIssue(
        slug="bench",
        title="Bench",
        subject="Chengdu & Flemish Brabant — côte à côte",
        preheader="",
        mjml="",
        html=html + foot,
        text=text,
        web_html="",
        view_online_url="https://news.example.org/bench",
    )


def subscribers(count: int) -> list[Subscriber]:
    people = []
    for i in range(count):
        name = f"Reader Nümber {i}"
        fields = {"email": f"reader{i}@example.com", "name": name, "first_name": "Reader", "city": "Leuven"}
        people.append(Subscriber(email=fields["email"], name=name, first_name="Reader", fields=fields, line=i + 2))
    return people


def config(**overrides) -> Config:
    return Config(
        name="The Bench Weekly",
        from_address="The Bench Weekly <news@example.org>",
        list_id="weekly.example.org",
        unsubscribe_url="https://news.example.org/unsubscribe?e={email}&t={token}",
        unsubscribe_mailto="unsubscribe@example.org",
        **overrides,
    )


def rate(build, people, repeat: int = 1) -> tuple[float, int]:
    """Best messages/second over ``repeat`` runs, and the mean message size."""
    best, size = 0.0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = sum(len(build(person)) for person in people)
        best = max(best, len(people) / (time.perf_counter() - started))
    return best, size // len(people)


def token_rates(people: list[Subscriber], list_id: str, secret: str, repeat: int) -> tuple[float, float]:
    """Best unsubscribe tokens/second made, and read back, over ``repeat`` runs."""
    made, read, tokens = 0.0, 0.0, []
    for _ in range(repeat):
        started = time.perf_counter()
        tokens = [make_token("unsubscribe", person.email, list_id, secret) for person in people]
        made = max(made, len(people) / (time.perf_counter() - started))
        started = time.perf_counter()
        if not all(read_token("unsubscribe", token, list_id, (secret,)) for token in tokens):
            raise SystemExit("a token did not read back")
        read = max(read, len(people) / (time.perf_counter() - started))
    return made, read


def real_issue(issue_dir: Path) -> RenderedIssue:
    from broadsheet.core.config import load_config
    from broadsheet.core.render import build_issue

    return build_issue(issue_dir, load_config(start=issue_dir))


def stdlib_builder(composer: Composer):
    """The same message through email.message.EmailMessage (templates rendered the same way)."""

    def build(person: Subscriber) -> bytes:
        url = composer.unsubscribe.url(person.email)
        html, text = ("".join(pieces) for pieces in composer.templates.render(person.fields, url))
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"] = composer.from_header
        message["To"] = email.utils.formataddr((person.name, person.email))
        message["Subject"] = composer.subject
        message["Date"] = email.utils.formatdate()
        message["Message-ID"] = email.utils.make_msgid(domain="example.org")
        for key, value in {**composer.fixed_headers, **composer.unsubscribe.headers(url)}.items():
            message[key] = value
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        return message.as_bytes()

    return build


def dkim_config(folder: Path) -> Config | None:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        return None
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    (folder / "dkim.pem").write_bytes(pem)
    return config(dkim=Dkim(domain="example.org", selector="bench", private_key_file="dkim.pem"), root=folder)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{model}, nproc {os.cpu_count()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--dkim-recipients", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--issue", type=Path, help="an issue folder to render instead of the synthetic issue")
    args = parser.parse_args()
    os.environ.setdefault("BROADSHEET_SECRET", "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    issue = real_issue(args.issue.resolve()) if args.issue else synthetic_issue()
    people = subscribers(args.recipients)
    composer = Composer(issue, config())
    composer.compose(people[0])  # warm up
    fast, size = rate(lambda person: composer.compose(person).raw, people, args.repeat)
    slow, _ = rate(stdlib_builder(composer), people[: max(1, args.recipients // 5)], args.repeat)
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(f"issue html {len(issue.html):,} chars, text {len(issue.text):,}; message {size:,} bytes")
    print(f"Composer                {fast:8.0f} msg/s  ({args.recipients} recipients, best of {args.repeat})")
    print(f"stdlib EmailMessage     {slow:8.0f} msg/s  -> Composer is {fast / slow:.1f}x faster")
    made, read = token_rates(people, composer.unsubscribe.list_id, os.environ["BROADSHEET_SECRET"], args.repeat)
    print(f"unsubscribe tokens      {made:8.0f} made/s, {read:8.0f} read/s")
    with tempfile.TemporaryDirectory() as folder:
        signed_config = dkim_config(Path(folder))
        if signed_config is None:
            print("DKIM: skipped (cryptography not installed to make a test key)")
            return
        signed = Composer(issue, signed_config)
        dkim_rate, _ = rate(lambda person: signed.compose(person).raw, people[: args.dkim_recipients])
        print(f"Composer + DKIM (2048)  {dkim_rate:8.0f} msg/s  ({args.dkim_recipients} recipients)")


if __name__ == "__main__":
    main()
