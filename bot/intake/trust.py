"""Sender verification: is the From domain proven? DKIM (dkimpy) or our own upstream's
Authentication-Results (RFC 8601). A match by address alone proves nothing: From is forgeable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver

log = logging.getLogger(__name__)

TxtLookup = Callable[[str, float], bytes | None]
MAX_SIGNATURES = 3  # a mail with more DKIM-Signature fields than this is not worth the DNS


@dataclass(frozen=True)
class Trust:
    """Whether the sender's From domain is proven, how, and why not."""

    verified: bool
    method: str  # "dkim", "authentication-results", "trust-all" or "" when not verified
    reason: str


def aligned(signer: str, sender_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other (two labels at least)."""
    signer, sender_domain = signer.lower().rstrip("."), sender_domain.lower().rstrip(".")
    if "." not in signer or not sender_domain:
        return False
    return (signer == sender_domain or sender_domain.endswith("." + signer)
            or signer.endswith("." + sender_domain))


def _results(header: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """(authserv-id, [(method, result, {property: value})]) of one Authentication-Results."""
    header = re.sub(r"\([^()]*\)", " ", header)  # RFC 5322 comments
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


def topmost_results(fields: list[tuple[str, str]], authserv_id: str) -> list[str]:
    """Our upstream's Authentication-Results: only the run at the top of the header.

    Our MTA prepends its results (and at most one Received field of its own); everything
    below came with the message and may be forged, so a field with our authserv-id further
    down is ignored.
    """
    ours: list[str] = []
    received_seen = False
    for name, value in fields:
        lower = name.lower()
        if lower == "authentication-results" and _results(value)[0] == authserv_id.lower():
            ours.append(value)
            continue
        if lower == "received" and not received_seen:
            received_seen = True
            if ours:
                break  # results above our own Received: the run has ended
            continue
        break
    return ours


def _from_results(fields: list[tuple[str, str]], authserv_id: str,
                  sender_domain: str) -> Trust | None:
    for header in topmost_results(fields, authserv_id):
        for method, result, props in _results(header)[1]:
            if result != "pass":
                continue
            if method == "dmarc" and aligned(props.get("header.from", ""), sender_domain):
                return Trust(True, "authentication-results", "dmarc=pass")
            if method == "dkim":
                signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
                if aligned(signer, sender_domain):
                    return Trust(True, "authentication-results", f"dkim=pass ({signer})")
    return None


def load_key_table(path: Path) -> dict[str, bytes]:
    """Local TXT records (`<selector>._domainkey.<domain> <record>` a line), e.g. the demo's."""
    table: dict[str, bytes] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, record = line.partition(" ")
        if "._domainkey." not in name or not record.strip():
            raise ValueError(f"{path}, line {number}: expected '<selector>._domainkey.<domain> "
                             "<TXT record>'")
        table[name.lower().rstrip(".")] = record.strip().encode("ascii")
    return table


def dns_lookup(server: str = "") -> TxtLookup:
    """TXT records from DNS: the system's resolver, or `host[:port]` (tests use a local stub)."""
    resolver = dns.resolver.Resolver(configure=not server)
    if server:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        resolver.nameservers = [host]
        if port:
            resolver.port = int(port)

    def lookup(name: str, timeout: float) -> bytes | None:
        try:
            answer = resolver.resolve(name, dns.rdatatype.TXT, lifetime=timeout,
                                      raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        except dns.exception.Timeout as exc:
            raise dkim.DnsTimeoutError(f"DNS timeout for {name}") from exc
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None

    return lookup


@dataclass
class SenderVerifier:
    """Decides whether a mail's From domain is proven. Pure but for the DNS look-up."""

    authserv_id: str = ""
    keys: dict[str, bytes] = field(default_factory=dict)  # local records, before DNS
    dns: TxtLookup | None = None  # None: no DNS look-ups (only local keys)
    dns_timeout: float = 5.0
    trust_all: bool = False

    def _txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        key = name.decode("ascii", "replace").lower().rstrip(".")
        if key in self.keys:
            return self.keys[key]
        return self.dns(key, self.dns_timeout) if self.dns is not None else None

    def _dkim(self, raw: bytes, sender_domain: str, count: int) -> Trust | None:
        reasons = []
        for index in range(min(count, MAX_SIGNATURES)):
            checker = dkim.DKIM(raw, minkey=1024, timeout=int(self.dns_timeout) or 1)
            try:
                ok = checker.verify(idx=index, dnsfunc=self._txt)
            except dkim.DKIMException as exc:
                reasons.append(f"dkim: {exc}")
                continue
            signer = (checker.domain or b"").decode("ascii", "replace")
            if ok and aligned(signer, sender_domain):
                return Trust(True, "dkim", f"dkim=pass d={signer}")
            reasons.append(f"dkim d={signer}: " + ("not aligned" if ok else "signature fails"))
        log.info("event=dkim_fail domain=%s reasons=%s", sender_domain, "; ".join(reasons))
        return None

    def assess(self, raw: bytes, sender: str) -> Trust:
        """Verified when a DKIM signature or our upstream's results prove the From domain."""
        if self.trust_all:
            return Trust(True, "trust-all", "TRUST_ALL_SENDERS is on: From is not checked")
        sender_domain = sender.rpartition("@")[2]
        if not sender_domain:
            return Trust(False, "", "no sender address")
        try:
            headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
            fields = [(str(k), str(v)) for k, v in headers.items()]
        except Exception:  # a header block too broken to parse proves nothing
            return Trust(False, "", "unreadable header")
        if self.authserv_id:
            found = _from_results(fields, self.authserv_id, sender_domain)
            if found is not None:
                return found
        signatures = sum(1 for name, _ in fields if name.lower() == "dkim-signature")
        if signatures:
            found = self._dkim(raw, sender_domain, signatures)
            if found is not None:
                return found
            return Trust(False, "", f"no valid DKIM signature aligned with {sender_domain}")
        return Trust(False, "", f"{sender_domain}: no DKIM signature"
                     + (f" and no aligned result from {self.authserv_id}"
                        if self.authserv_id else ""))
