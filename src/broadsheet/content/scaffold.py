"""The placeholder text `broadsheet new` writes; lint refuses to let it be sent (commands/new.py, lint/rules.py)."""

from __future__ import annotations

PREHEADER = "One line that inboxes show after the subject."
INTRO = "A few words from the editor: what this issue is about and why it matters."
ARTICLE_TITLE = "First article"
ARTICLE_BODY = "Write the article here in Markdown"

# (text as it stands on its line, what it is) — what lint looks for in the Markdown
PLACEHOLDERS = (
    (f'preheader: "{PREHEADER}"', "the preheader"),
    (INTRO, "the introduction"),
    (f'title: "{ARTICLE_TITLE}"', "an article title"),
    (ARTICLE_BODY, "an article's text"),
)
