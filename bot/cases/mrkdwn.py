"""Slack's mrkdwn escaping, pure: the triage desk is in Slack whatever the customer's channel,
so use cases that write a note into a triage thread escape its parts here."""

# Slack reads &, < and > as control characters: <!channel>, <@U123> and <https://x|label> ping
# people or disguise links. Escaping these three is all Slack asks for.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """Customer text made inert for mrkdwn: no mentions, no disguised links."""
    return text.translate(_ESCAPES)
