"""`broadsheet serve`: the public side of the newsletter (one-click and page unsubscribes, sign-up
with double opt-in, provider webhooks), a WSGI app on werkzeug run by waitress behind a reverse proxy.

Modules: ``app`` (routing and endpoints), ``http`` (werkzeug's request/response, forms within limits), ``security`` (Host allow-list,
form guard, rate limits, headers), ``pages`` + ``templates/`` (HTML), ``texts`` (words per language),
``signup`` (the confirmation message), ``server`` (waitress).
"""

from .app import App, make_app

__all__ = ["App", "make_app"]
