"""``broadsheet serve``: the public pages (unsubscribe, sign-up, confirmation, webhooks) under waitress."""

from __future__ import annotations

import argparse
import html
import logging

from . import Subparsers, project_config


def register(sub: Subparsers) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "serve",
        help="serve unsubscribe, sign-up and confirmation pages (behind a reverse proxy)",
        description="Run the public side of the newsletter under waitress: RFC 8058 one-click unsubscribes "
        "at /u/<token>, the sign-up form at /subscribe with double opt-in (/c/<token>), provider webhooks. "
        "Readers reach it at [serve] public_url through a reverse proxy (Caddy, nginx) that adds HTTPS. "
        "Needs BROADSHEET_SECRET. Ctrl-C stops it.",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default: [serve] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: [serve] port, 8026)")
    parser.add_argument(
        "--form-snippet", action="store_true", help="print an HTML sign-up form to paste into a website, and exit"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    if args.form_snippet:
        print(form_snippet(config.serve.public_url, config.name))
        return 0
    from ..serve import make_app
    from ..serve.server import run as run_server

    log_to_stderr()
    app = make_app(config)
    if not config.serve.public_url.startswith("https://"):
        logging.getLogger("broadsheet.faces.serve").info(
            "note: [serve] public_url is not https://, so messages carry no List-Unsubscribe-Post "
            "(RFC 8058 one-click needs an https link); fine for trying serve out locally"
        )
    try:
        run_server(
            app,
            config,
            host=args.host or config.serve.host,
            port=config.serve.port if args.port is None else args.port,
            ready=lambda line: print(line, flush=True),
        )
    except KeyboardInterrupt:  # waitress usually handles it and returns
        pass
    print("stopped", flush=True)
    return 0


def log_to_stderr() -> None:
    """serve's log (its notices and failed requests) on stderr, a line each as ``broadsheet serve: …``,
    a traceback under its line."""
    handler = logging.StreamHandler()  # sys.stderr
    handler.setFormatter(logging.Formatter("broadsheet serve: %(message)s"))
    log = logging.getLogger("broadsheet.faces.serve")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def form_snippet(public_url: str, name: str) -> str:
    """A plain HTML form posting to serve's /subscribe (no script; the hidden field is the honeypot)."""
    action = html.escape((public_url.rstrip("/") or "https://news.example.org") + "/subscribe")
    return f"""<!-- {html.escape(name)}: sign-up form for `broadsheet serve`. Add this site's address to
     [serve] form_origins in broadsheet.toml, e.g. form_origins = ["https://www.example.org"]. -->
<form method="post" action="{action}">
  <label for="bs-email">Email address</label>
  <input type="email" id="bs-email" name="email" required autocomplete="email">
  <label for="bs-name">Name (optional)</label>
  <input type="text" id="bs-name" name="name" autocomplete="name">
  <div style="position:absolute;left:-10000px" aria-hidden="true">
    <label for="bs-website">Leave this field empty</label>
    <input type="text" id="bs-website" name="website" tabindex="-1" autocomplete="off">
  </div>
  <button type="submit">Subscribe</button>
</form>"""
