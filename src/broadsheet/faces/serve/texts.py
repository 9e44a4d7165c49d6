"""The words on serve's pages and in the confirmation message, per language (``language`` in the config).

A language without its own table falls back to English, and the page then says ``lang="en"``.
"""

from __future__ import annotations

EN = {
    "unsubscribe_title": "Unsubscribe",
    "unsubscribe_intro": "Stop sending {list} to {address}?",
    "unsubscribe_button": "Unsubscribe",
    "unsubscribed_title": "You are unsubscribed",
    "unsubscribed_text": "{address} will receive no more issues of {list}.",
    "resubscribe_intro": "Unsubscribed by mistake?",
    "resubscribe_button": "Subscribe again",
    "subscribe_title": "Subscribe to {list}",
    "email_label": "Email address",
    "name_label": "Name (optional)",
    "honeypot_label": "Leave this field empty",
    "subscribe_button": "Subscribe",
    "check_inbox_title": "Check your inbox",
    "check_inbox_text": "If {address} can subscribe, a message to confirm it is on its way. "
    "Follow its link to start receiving {list}.",
    "invalid_address": "That does not look like an email address.",
    "confirm_title": "Confirm your subscription",
    "confirm_intro": "Subscribe {address} to {list}?",
    "confirm_button": "Yes, subscribe me",
    "confirmed_title": "You are subscribed",
    "confirmed_text": "{address} will receive {list}. Thank you!",
    "bad_link_title": "This link does not work",
    "bad_link_text": "The link is incomplete or was changed. Use the link from the latest message you received.",
    "expired_title": "This link has expired or was already used",
    "expired_text": "Sign up again to get a fresh confirmation message.",
    "forbidden_title": "Please use the form again",
    "forbidden_text": "The form was sent from another site or is too old. Reload the page and try again.",
    "too_many_title": "Too many attempts",
    "too_many_text": "Please wait a few minutes and try again.",
    "too_large_title": "Too much data",
    "not_found_title": "Page not found",
    "error_title": "Something went wrong",
    "error_text": "Please try again in a few minutes.",
    "web_unsubscribe_text": "To unsubscribe, use the link at the bottom of any issue you received.",
    "mail_subject": "Confirm your subscription to {list}",
    "mail_intro": "Please confirm that you want to receive {list}.",
    "mail_button": "Confirm my subscription",
    "mail_ignore": "If you did not ask for this, ignore this message: you will not be subscribed. "
    "The link works for a week.",
}

FR = {
    **EN,
    "unsubscribe_title": "Se désabonner",
    "unsubscribe_intro": "Ne plus envoyer {list} à {address} ?",
    "unsubscribe_button": "Me désabonner",
    "unsubscribed_title": "Vous êtes désabonné·e",
    "unsubscribed_text": "{address} ne recevra plus {list}.",
    "resubscribe_intro": "Désabonné·e par erreur ?",
    "resubscribe_button": "Me réabonner",
    "subscribe_title": "S'abonner à {list}",
    "email_label": "Adresse e-mail",
    "name_label": "Nom (facultatif)",
    "honeypot_label": "Laissez ce champ vide",
    "subscribe_button": "M'abonner",
    "check_inbox_title": "Consultez votre boîte de réception",
    "check_inbox_text": "Si {address} peut s'abonner, un message de confirmation est en route. "
    "Suivez son lien pour recevoir {list}.",
    "invalid_address": "Ce n'est pas une adresse e-mail valable.",
    "confirm_title": "Confirmez votre abonnement",
    "confirm_intro": "Abonner {address} à {list} ?",
    "confirm_button": "Oui, je m'abonne",
    "confirmed_title": "Vous êtes abonné·e",
    "confirmed_text": "{address} recevra {list}. Merci !",
    "bad_link_title": "Ce lien ne fonctionne pas",
    "expired_title": "Ce lien a expiré ou a déjà servi",
    "expired_text": "Inscrivez-vous à nouveau pour recevoir un nouveau message de confirmation.",
    "mail_subject": "Confirmez votre abonnement à {list}",
    "mail_intro": "Merci de confirmer que vous souhaitez recevoir {list}.",
    "mail_button": "Confirmer mon abonnement",
}

NL = {
    **EN,
    "unsubscribe_title": "Uitschrijven",
    "unsubscribe_intro": "{list} niet meer naar {address} sturen?",
    "unsubscribe_button": "Uitschrijven",
    "unsubscribed_title": "Je bent uitgeschreven",
    "unsubscribed_text": "{address} ontvangt {list} niet meer.",
    "resubscribe_intro": "Per ongeluk uitgeschreven?",
    "resubscribe_button": "Opnieuw inschrijven",
    "subscribe_title": "Inschrijven op {list}",
    "email_label": "E-mailadres",
    "name_label": "Naam (niet verplicht)",
    "honeypot_label": "Laat dit veld leeg",
    "subscribe_button": "Inschrijven",
    "check_inbox_title": "Kijk in je mailbox",
    "check_inbox_text": "Als {address} zich kan inschrijven, is er een bevestigingsbericht onderweg. "
    "Volg de link erin om {list} te ontvangen.",
    "invalid_address": "Dat lijkt geen e-mailadres.",
    "confirm_title": "Bevestig je inschrijving",
    "confirm_intro": "{address} inschrijven op {list}?",
    "confirm_button": "Ja, schrijf me in",
    "confirmed_title": "Je bent ingeschreven",
    "confirmed_text": "{address} ontvangt voortaan {list}. Bedankt!",
    "bad_link_title": "Deze link werkt niet",
    "expired_title": "Deze link is verlopen of al gebruikt",
    "expired_text": "Schrijf je opnieuw in om een nieuw bevestigingsbericht te krijgen.",
    "mail_subject": "Bevestig je inschrijving op {list}",
    "mail_intro": "Bevestig dat je {list} wilt ontvangen.",
    "mail_button": "Inschrijving bevestigen",
}

LANGUAGES = {"en": EN, "fr": FR, "nl": NL}


def texts_for(language: str) -> tuple[str, dict[str, str]]:
    """(the language code the texts are in, the texts) for a config's ``language`` such as ``fr-BE``."""
    code = language.split("-")[0].lower()
    return (language, LANGUAGES[code]) if code in LANGUAGES else ("en", EN)
