"""One adapter per provider: its webhook's body, checked and normalised to MailEvents."""
