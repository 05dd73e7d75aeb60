"""From the head's probabilities to a Triage: when an agent must decide, and the customer's word.

The rules, in order (pure; the classifier and the evaluation both use them):

1. The model picks the most likely department, severity and product.
2. needs_triage when the department or the severity confidence is below the threshold
   (chosen from the evaluation sets so that unflagged severities are right >= 95 % of the time).
3. An uncertain A (severity A below the threshold) is not priced as A: the ticket gets the more
   likely of B and C and is flagged; the agent raises it if it really is critical.
4. A severity the customer states is recorded. Where it is lower than ours, theirs counts (they
   know their impact and pay for it), unless it is a priority rather than a severity on our
   scale, ours is a sure A (rule 3 has lowered the unsure ones) and the text itself shows
   critical impact (signals.has_impact): such a priority is often a ticket system's field or
   default ("Priority: 4 - Low" above "no mailbox receives mail"), not the customer's judgement
   of the impact they describe. The ticket keeps A and is flagged for an agent; a billable A is
   still quoted and waits for the customer's consent. A "Schweregrad B" always counts.
   A stated A counts only with evidence of critical impact in the text (signals.has_impact)
   that the model does not rule out (P(A) >= IMPACT_FLOOR: an "Ausfall" last month in an
   invoice question is no outage now); otherwise the ticket keeps our severity, and is flagged
   only if rule 2 flags it: a sender's word alone must not cost them an A quote or wake the
   night shift, and an agent need not confirm what the model is sure of ("URGENT!!!" on an
   invoice copy is C, data/README.md). The stated level is recorded and shown with the triage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.classify.head import Head
from bot.classify.signals import has_impact
from bot.classify.stated import stated_severity, states_severity_label
from bot.domain import Department, Severity, Triage

IMPACT_FLOOR = 0.1
RANK = {Severity.C: 0, Severity.B: 1, Severity.A: 2}


def split_text(text: str) -> tuple[str, str]:
    """The classifier's "subject\\nbody" text back into subject and body."""
    subject, _, body = text.partition("\n")
    return subject, body


def decide(labels: dict[str, list[str]], probs: dict[str, np.ndarray[Any, Any]], text: str,
           *, threshold: float, model: str) -> Triage:
    """One message's triage from its class probabilities (one row per task) and its text."""
    best = {task: int(p.argmax()) for task, p in probs.items()}
    conf = {task: round(float(probs[task][best[task]]), 3) for task in probs}
    picked = {task: labels[task][best[task]] for task in probs}
    severity = Severity(picked["severity"])
    needs_triage = min(conf["department"], conf["severity"]) < threshold
    if severity is Severity.A and conf["severity"] < threshold:
        severity = _most_likely_below_a(labels["severity"], probs["severity"])
    stated = stated_severity(*split_text(text))
    if stated is not None and RANK[stated] < RANK[severity]:
        if (severity is Severity.A and has_impact(text)
                and not states_severity_label(*split_text(text))):
            needs_triage = True  # our sure A stands against a priority field; an agent confirms
        else:
            severity = stated
    elif stated is Severity.A and severity is not Severity.A:
        p_a = float(probs["severity"][labels["severity"].index("A")])
        if has_impact(text) and p_a >= IMPACT_FLOOR:
            severity = Severity.A
    return Triage(department=Department(picked["department"]), severity=severity,
                  product=picked["product"], confidence=conf, needs_triage=needs_triage,
                  model=model, stated_severity=stated)


def _most_likely_below_a(labels: list[str], row: np.ndarray[Any, Any]) -> Severity:
    others = [(float(row[i]), label) for i, label in enumerate(labels) if label != "A"]
    return Severity(max(others)[1])


def decide_many(head: Head, x: np.ndarray[Any, Any], texts: list[str], *,
                threshold: float) -> list[Triage]:
    """Triage of many messages from their embeddings and texts."""
    probs = {task: layer.probabilities(layer.inputs(x, texts))
             for task, layer in head.tasks.items()}
    labels = {task: layer.labels for task, layer in head.tasks.items()}
    return [decide(labels, {task: p[row] for task, p in probs.items()}, text,
                   threshold=threshold, model=head.version)
            for row, text in enumerate(texts)]
