"""broadsheet: write a newsletter in Markdown, deliver it to every subscriber's inbox."""

__version__ = "0.1.0"
