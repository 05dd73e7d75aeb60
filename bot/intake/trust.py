"""Sender trust from Authentication-Results (RFC 8601) added by our own upstream server."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.intake.mime import ParsedMail


@dataclass(frozen=True)
class Trust:
    """Whether the From domain is proven; `checked` is False when no upstream is configured."""

    trusted: bool
    checked: bool
    reason: str


def _results(header: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    authserv, _, rest = header.partition(";")
    found = []
    for clause in rest.split(";"):
        match = re.match(r"\s*([a-z0-9-]+)\s*=\s*([a-z]+)(.*)", clause, re.I | re.S)
        if match:
            props = dict(re.findall(r"([a-z]+\.[a-z-]+)\s*=\s*\"?([^\s;\"]+)", match.group(3),
                                    re.I))
            found.append((match.group(1).lower(), match.group(2).lower(),
                          {k.lower(): v.lower() for k, v in props.items()}))
    return authserv.strip().split()[0].lower() if authserv.strip() else "", found


def _aligned(domain: str, sender_domain: str) -> bool:
    return bool(domain) and (sender_domain == domain or sender_domain.endswith("." + domain)
                             or domain.endswith("." + sender_domain))


def assess_sender(mail: ParsedMail, authserv_id: str) -> Trust:
    """Trusted when our upstream saw DMARC pass, or DKIM pass aligned with the From domain."""
    if not authserv_id:
        return Trust(trusted=True, checked=False, reason="no upstream configured")
    sender_domain = mail.sender.rpartition("@")[2]
    ours = [h for h in mail.headers.get("authentication-results", [])
            if _results(h)[0] == authserv_id.lower()]
    if not ours:
        return Trust(False, True, f"no Authentication-Results from {authserv_id}")
    for header in ours:
        for method, result, props in _results(header)[1]:
            if method == "dmarc" and result == "pass":
                return Trust(True, True, "dmarc=pass")
            if method == "dkim" and result == "pass":
                signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
                if _aligned(signer, sender_domain):
                    return Trust(True, True, f"dkim=pass aligned ({signer})")
    return Trust(False, True, f"no aligned dkim/dmarc pass for {sender_domain}")
