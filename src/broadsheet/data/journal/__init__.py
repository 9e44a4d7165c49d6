"""The send journal (.broadsheet/state.db): campaigns, recipients, outcomes, reports and the send lock."""
