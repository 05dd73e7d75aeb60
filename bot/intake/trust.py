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
from email.utils import getaddresses
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


def topmost_results(fields: list[tuple[str, str]], authserv_id: str, expected: int = 1
                    ) -> list[str] | None:
    """Our upstream's Authentication-Results, or None when they cannot be trusted.

    Our MTA prepends exactly `expected` fields with its authserv-id (one for rspamd or Exchange;
    one per milter otherwise) and removes any that arrive from outside. So they must stand at
    the top of the header (among at most one Received field of its own) and there must be
    exactly `expected` of them in the whole header: one more anywhere is a forgery (or the MTA
    did not strip it), one less means a check did not run.
    """
    ours = [(i, value) for i, (name, value) in enumerate(fields)
            if name.lower() == "authentication-results" and _results(value)[0] ==
            authserv_id.lower()]
    if len(ours) != expected:
        return None
    top, received = len(fields), 0  # the block our MTA wrote: results and its one Received
    for index, (name, _) in enumerate(fields):
        lower = name.lower()
        received += lower == "received"
        if received > 1 or lower not in ("authentication-results", "received"):
            top = index
            break
    if any(index >= top for index, _ in ours):
        return None
    return [value for _, value in ours]


def _from_results(fields: list[tuple[str, str]], authserv_id: str, expected: int,
                  sender_domain: str) -> Trust | None:
    for header in topmost_results(fields, authserv_id, expected) or []:
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
        except dns.exception.Timeout as exc:
            raise dkim.DnsTimeoutError(f"DNS timeout for {name}") from exc
        except (dns.exception.DNSException, ValueError, UnicodeError):
            return None  # no such name, a name DNS cannot hold ("s=" of 64 x "a"), ...
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None

    return lookup


SINGLE = ("from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id",
          "in-reply-to", "references")  # RFC 5322 3.6: at most one of each


def _signer(value: str) -> str:
    match = re.search(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", value)
    return match.group(1).lower() if match else ""


@dataclass
class SenderVerifier:
    """Decides whether a mail's From domain is proven. Pure but for the DNS look-up."""

    authserv_id: str = ""
    authserv_fields: int = 1  # how many Authentication-Results our MTA adds
    keys: dict[str, bytes] = field(default_factory=dict)  # local records, before DNS
    dns: TxtLookup | None = None  # None: no DNS look-ups (only local keys)
    dns_timeout: float = 5.0
    trust_all: bool = False
    recipients: tuple[str, ...] = ()  # our support addresses: a signed mail must name one

    def _txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        key = name.decode("ascii", "replace").lower().rstrip(".")
        if key in self.keys:
            return self.keys[key]
        return self.dns(key, self.dns_timeout) if self.dns is not None else None

    def _addressed_to_us(self, fields: list[tuple[str, str]], signed: set[str]) -> bool:
        """A replayed mail (signed by the customer, but sent to someone else) is not proof:
        the signature must cover To or Cc, and they must name one of our addresses."""
        if not self.recipients:
            return True
        if not {"to", "cc"} & signed:
            return False
        named = {a.lower() for _, a in getaddresses(
            [v for n, v in fields if n.lower() in ("to", "cc")])}
        return bool(named & set(self.recipients))

    def _dkim(self, raw: bytes, fields: list[tuple[str, str]], sender_domain: str) -> Trust:
        signatures = [_signer(v) for n, v in fields if n.lower() == "dkim-signature"]
        # the signatures that could prove the From domain first; others only up to the cap
        order = sorted(range(len(signatures)),
                       key=lambda i: not aligned(signatures[i], sender_domain))
        reasons = []
        for index in order[:MAX_SIGNATURES]:
            checker = dkim.DKIM(raw, minkey=1024, timeout=int(self.dns_timeout) or 1)
            try:
                ok = checker.verify(idx=index, dnsfunc=self._txt)
            except dkim.DnsTimeoutError:
                reasons.append(f"dkim d={signatures[index]}: DNS timeout (temporary)")
                continue
            except Exception as exc:  # hostile signatures break dkimpy in many ways
                reasons.append(f"dkim d={signatures[index]}: {type(exc).__name__}: {exc}"[:200])
                continue
            signer = (checker.domain or b"").decode("ascii", "replace")
            if not ok:
                reasons.append(f"dkim d={signer}: signature fails")
            elif not aligned(signer, sender_domain):
                reasons.append(f"dkim d={signer}: not aligned with {sender_domain}")
            else:
                signed = {h.strip().lower() for h in checker.signature_fields.get(b"h", b"")
                          .decode("ascii", "replace").split(":")}
                if self._addressed_to_us(fields, signed):
                    return Trust(True, "dkim", f"dkim=pass d={signer}")
                reasons.append(f"dkim d={signer}: signed mail not addressed to us (replayed?)")
        reason = "; ".join(reasons) or "no DKIM signature checked"
        log.info("event=dkim_fail domain=%s reasons=%r", sender_domain, reason)
        return Trust(False, "", reason)

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
        for name in SINGLE:
            count = sum(1 for n, _ in fields if n.lower() == name)
            if count > 1:  # a signed copy below, another one on top: what do we believe?
                return Trust(False, "", f"{count} {name} fields (RFC 5322 allows one)")
        if self.authserv_id:
            found = _from_results(fields, self.authserv_id, self.authserv_fields, sender_domain)
            if found is not None:
                return found
        if any(name.lower() == "dkim-signature" for name, _ in fields):
            return self._dkim(raw, fields, sender_domain)
        return Trust(False, "", f"{sender_domain}: no DKIM signature"
                     + (f" and no aligned result from {self.authserv_id}"
                        if self.authserv_id else ""))
