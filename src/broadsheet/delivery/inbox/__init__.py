"""Reading the bounce/complaint mailbox over IMAP and parsing what comes back."""
