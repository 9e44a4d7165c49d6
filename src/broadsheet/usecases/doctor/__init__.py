"""`broadsheet doctor`: what Gmail, Yahoo and Outlook.com require of a bulk sender, checked before a send.

``run.run_doctor(options, config)`` gives one :class:`Check` per item: DKIM alignment (the check ``lint`` and
``send`` share), SPF, the DKIM key, DMARC and its alignment, the return path's MX, the transport's
credentials, BROADSHEET_SECRET, the one-click unsubscribe address, and the last campaigns' bounce and
complaint rates. ``fast.fast_checks`` are those needing no network (``send`` runs them; this package imports nothing, so
that ``send`` loads no DNS library).
"""
