"""The consent reader against the refusals people really write (issue 21, item 5).

Each refusal must never read as a yes: alone, below a "Ja"/"Yes" line, or after "Ja, " on the
same line; the real yeses below must stay yes. Written from support mailboxes' wording: short
answers, refusals with a reason, delays, "we fixed it ourselves", changes of mind.
"""

from __future__ import annotations

import pytest

from bot.cases.consent import Answer, read_answer

GERMAN = [
    "Nein", "Nein danke", "Nein, danke.", "NEIN!", "Nee", "Nee, lass mal.", "Nö", "nö danke",
    "Ne, danke", "Abgelehnt", "Abgelehnt.", "Ich lehne ab.", "Ich lehne das Angebot ab.",
    "Wir lehnen ab.", "Das lehnen wir ab.", "Lehnen wir ab, danke.", "Angebot abgelehnt.",
    "Bitte abbrechen.", "Bitte abbrechen, das ist uns zu viel Geld.", "Abbrechen bitte.",
    "Brechen Sie bitte ab.", "Bitte brechen Sie den Auftrag ab.", "Auftrag abbrechen.",
    "Bitte stornieren.", "Storno bitte.", "Bitte den Auftrag stornieren.", "Stornieren Sie das.",
    "Wir sagen ab.", "Ich sage ab.", "Absage.", "Hiermit sagen wir ab.", "Bitte absagen.",
    "Zu teuer.", "Das ist uns zu teuer.", "Viel zu teuer!", "Zu viel Geld.",
    "Das ist zu viel.", "Das können wir uns nicht leisten.", "Das sprengt unser Budget.",
    "Dafür haben wir kein Budget.", "Kostet zu viel.", "Die Kosten übernehmen wir nicht.",
    "Nicht zu diesem Preis.", "Für den Preis nicht.", "Bitte nicht bearbeiten.",
    "Bitte NICHT bearbeiten.", "Nicht nötig.", "Nicht notwendig, danke.", "Brauchen wir nicht.",
    "Wird nicht benötigt.", "Kein Bedarf.", "Kein Interesse.", "Keinen Auftrag.",
    "Keine Freigabe.", "Keinesfalls.", "Auf keinen Fall.", "Niemals.", "Auf gar keinen Fall!",
    "Bitte noch warten.", "Bitte warten.", "Warten Sie bitte noch.", "Noch nicht.",
    "Noch nicht bitte.", "Erstmal nicht.", "Vorerst nicht.", "Später vielleicht.",
    "Lieber später.", "Moment bitte.", "Einen Moment noch.", "Bitte zurückstellen.",
    "Bitte verschieben.", "Wir warten noch ab.", "Wir müssen das erst intern klären.",
    "Ich muss erst mit meinem Chef sprechen.", "Das muss ich erst prüfen.",
    "Ich melde mich nochmal.", "Wir überlegen noch.", "Wir haben es uns anders überlegt.",
    "Vergessen Sie das.", "Vergessen Sie es bitte.", "Vergiss es.", "Lassen Sie es bitte.",
    "Lass mal.", "Lassen wir das.", "Hat sich erledigt.", "Hat sich erledigt, danke.",
    "Erledigt, danke.", "Problem ist gelöst.", "Das Problem ist behoben.", "Läuft wieder.",
    "Funktioniert wieder, danke.", "Wir haben es selbst gelöst.", "Machen wir selbst.",
    "Das machen wir intern.", "Hat unser Admin schon erledigt.", "Ticket bitte schließen.",
    "Bitte schließen.", "Kann geschlossen werden.", "Ich ziehe den Auftrag zurück.",
    "Wir ziehen zurück.", "Ich widerrufe.", "Ich widerrufe meine Zustimmung.",
    "Widerspruch.", "Ich widerspreche.", "Wir sind dagegen.", "Nicht einverstanden.",
    "Wir sind nicht einverstanden.", "Ich stimme nicht zu.", "Keine Zustimmung.",
    "Wir verzichten.", "Ich verzichte.", "Darauf verzichten wir.", "Leider nein.",
    "Leider nicht.", "Sorry, nein.", "Tut mir leid, nein.", "Das war ein Versehen.",
    "Aus Versehen geschickt, bitte ignorieren.", "Falsch verstanden, bitte nicht.",
    "Ich dachte, das ist kostenlos.", "Das sollte im Vertrag enthalten sein.",
    "Das ist doch inklusive!", "Warum kostet das etwas?", "Wieso ist das kostenpflichtig?",
    "Was kostet das genau?", "Unverschämt.", "Frechheit.", "Quatsch.",
    "Nur wenn es unter 100 Euro bleibt.", "Falls es günstiger geht.", "Wenn überhaupt, später.",
    "Vielleicht.", "Eventuell nächste Woche.", "Aber nicht heute.", "Doch nicht.",
    "Lieber doch nicht.", "Besser nicht.", "Eher nicht.",
]
ENGLISH = [
    "No", "No thanks", "No, thank you.", "NO!", "Nope", "Nope, not now.", "Nah", "Nah, thanks.",
    "Declined", "Decline", "Declined.", "I decline.", "We decline.", "I decline the quote.",
    "Rejected.", "I reject the offer.", "I refuse.", "Refused.", "Cancel.", "Cancel it.",
    "Please cancel.", "Actually, cancel that.", "Cancel the request please.", "Abort.",
    "Stop.", "Please stop.", "Stop, don't do anything.", "Hold on.", "Wait, hold on.",
    "Wait.", "Please wait.", "Hold off for now.", "Put it on hold.", "Not yet.", "Not now.",
    "Not right now.", "Later.", "Maybe later.", "Let's postpone.", "Please postpone this.",
    "Give us a second.", "One moment please.", "Too expensive.", "Way too expensive!",
    "That's too much.", "Too much money.", "We can't afford that.", "No budget for this.",
    "Over our budget.", "Not at that price.", "Do not proceed.", "Don't proceed.",
    "Please don't.", "Don't do it.", "Never mind.", "Nevermind.", "Forget it.",
    "Forget about it.", "Scratch that.", "Ignore my last mail.", "Please disregard.",
    "I changed my mind.", "We changed our mind.", "Withdraw my request.", "I withdraw.",
    "I revoke my consent.", "We'll pass.", "I'll pass.", "Not interested.", "Not needed.",
    "Not necessary.", "No need.", "We don't need it anymore.", "Already fixed.",
    "It's fixed.", "Resolved, thanks.", "Solved it ourselves.", "It's working again.",
    "We'll handle it ourselves.", "We'll do it in-house.", "Please close the ticket.",
    "Close it.", "I disagree.", "I object.", "We're against it.", "Unfortunately not.",
    "Sorry, no.", "Sorry, that was a mistake.", "Sent by mistake.", "Wrong ticket.",
    "I thought this was free.", "This should be included.", "It's under warranty.",
    "Why does this cost money?", "How much exactly?", "What does it cost?",
    "Only if it's under 100 EUR.", "If it's cheaper.", "Unless it's free.",
    "Maybe.", "Perhaps next week.", "Not sure.", "I'm not sure yet.",
    "I need to check with my boss first.", "Need approval first.", "Let me think about it.",
    "We'll discuss it internally.", "Let me check first.", "But not today.",
    "However, not at that price.", "Ridiculous.", "That's nonsense.",
]
TRICKED = [
    "Ａｂｇｅｌｅｈｎｔ",  # full-width letters
    "Ｎｅｉｎ", "ＣＡＮＣＥＬ", "Ab\u00adbrechen", "ab\u00adge\u00adlehnt",  # soft hyphens
    "Ab\u200bbrechen", "Can\u200bcel", "De\u200bcline", "n\u200bicht bearbeiten",  # ZWSP
    "Sto\u200dp", "War\ufeffte", "nö\u2060", "Ｗａｉｔ",
]
REFUSALS = GERMAN + ENGLISH + TRICKED


def test_the_table_holds_at_least_150_real_refusals() -> None:
    assert len(set(GERMAN + ENGLISH)) >= 150


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refusal_alone_is_never_a_yes(refusal: str) -> None:
    assert read_answer(refusal) is not Answer.YES


@pytest.mark.parametrize("refusal", REFUSALS)
@pytest.mark.parametrize("yes", ["Ja", "JA", "Yes", "Ja, bitte.", "Einverstanden."])
def test_a_refusal_below_a_yes_is_never_a_yes(yes: str, refusal: str) -> None:
    assert read_answer(f"{yes}\n{refusal}") is not Answer.YES


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refusal_after_a_yes_on_its_line_is_never_a_yes(refusal: str) -> None:
    assert read_answer(f"Ja, {refusal}") is not Answer.YES


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refusal_in_a_ps_is_never_a_yes(refusal: str) -> None:
    assert read_answer(f"JA\nViele Grüße\nJan Meier\nP.S. {refusal}") is not Answer.YES


@pytest.mark.parametrize("text", [
    "Abgelehnt", "Declined", "Decline", "Ich lehne ab", "Nee", "nö", "nope", "Nein",
    "No thanks", "Bitte stornieren.", "Please cancel.", "Zu teuer.", "Ａｂｇｅｌｅｈｎｔ",
    "Ab\u00adbrechen", "De\u200bcline",
])
def test_a_plain_refusal_is_a_no(text: str) -> None:
    assert read_answer(text) is Answer.NO


YESES = [
    "JA", "Ja", "ja", "Ja.", "Ja!", "JA bitte", "Ja, bitte.", "Ja bitte", "Ja gerne.",
    "Ja, gerne", "Ja, bitte beheben Sie das Problem.", "Ja, bitte loslegen.",
    "Ja, bitte bearbeiten.", "Jawohl.", "Einverstanden.", "Einverstanden, bitte starten.",
    "Ich bin einverstanden.", "Wir sind einverstanden.", "Ich stimme zu.", "Wir stimmen zu.",
    "Hiermit stimme ich zu.", "Zugestimmt.", "Ja, Auftrag erteilt.", "Ja, genehmigt.",
    "Yes", "YES", "Yes.", "Yes please.", "Yes, please go ahead.", "yes please go ahead",
    "Yes, please proceed.", "Yes, go ahead.", "Agreed.", "I agree.", "I agree to the price.",
    "Yes, approved.", "Yes, fix it please.", "Yes, thank you.",
    "JA\n\nMit freundlichen Grüßen\nJan Meier", "Ja, bitte.\nViele Grüße\nAnna Schmidt",
    "Ja\nGruß\nJan", "JA\nDanke!", "Ja bitte\nLG", "Yes please\nThanks,\nJohn Smith",
    "Yes, go ahead.\nBest regards\nMary", "Hallo,\nja, bitte loslegen.",
    "Guten Tag Herr Meier,\nJA\nGruß", "Hi,\nyes please.\nCheers",
    "Ｊａ",  # full-width
    "J\u00ada", "Ja\u200b",  # a soft hyphen, a zero-width space
]


@pytest.mark.parametrize("text", YESES)
def test_a_real_yes_stays_yes(text: str) -> None:
    assert read_answer(text, NAMES.get(text, "Jan Meier")) is Answer.YES


NAMES = {"Ja, bitte.\nViele Grüße\nAnna Schmidt": "Anna Schmidt",
         "Yes please\nThanks,\nJohn Smith": "Smith, John",
         "Yes, go ahead.\nBest regards\nMary": "Mary O'Neill"}


@pytest.mark.parametrize("text", [
    "Yes\nJust Kidding", "Ja\nNochmals Überdenken", "Ja\nKleiner Scherz", "Ja\nBitte Warten",
    "Ja\nJan Meier\nAbbruch", "Yes\nJohn Smith", "Ja\nViele Grüße\nEva Kühn",
])
def test_a_line_below_the_yes_that_is_neither_a_closing_nor_the_senders_name_is_unclear(
        text: str) -> None:
    assert read_answer(text, "Jan Meier") is Answer.UNCLEAR
