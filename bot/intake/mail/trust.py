"""Sender verification: is the From domain proven? DKIM (dkimpy) or our own upstream's
Authentication-Results (RFC 8601). A match by address alone proves nothing: From is forgeable.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver
from dkim.canonicalization import CanonicalizationPolicy
from publicsuffixlist import PublicSuffixList

log = logging.getLogger(__name__)

TxtLookup = Callable[[str, float], bytes | None]
MAX_SIGNATURES = 3  # a mail with more DKIM-Signature fields than this is not worth the DNS
SUFFIXES = PublicSuffixList()  # the list bundled with the package: no download, no DNS


@dataclass(frozen=True)
class Trust:
    """Whether the sender's From domain is proven, how, and why not."""

    verified: bool
    method: str  # "dkim", "authentication-results", "trust-all" or "" when not verified
    reason: str
    # lower-case names of the header fields present with an instance the signature does not
    # cover (empty when an upstream's result or trust-all vouches for the whole header)
    unsigned: frozenset[str] = frozenset()
    # what each valid, aligned signature signed (signature_key): seen again, it is a replay
    signatures: tuple[str, ...] = ()

    def signs(self, name: str) -> bool:
        """Whether the field `name` is proven: the sender is, and no instance is unsigned."""
        return self.verified and name.lower() not in self.unsigned


def organisation(domain: str) -> str | None:
    """The registrable domain (Public Suffix List), or None for a public suffix itself."""
    try:
        found = SUFFIXES.privatesuffix(domain.lower().rstrip("."))
    except Exception:  # a name the list's parser cannot read proves nothing
        return None
    return str(found) if found else None


def aligned(signer: str, sender_domain: str) -> bool:
    """DMARC relaxed alignment: both domains under one registrable domain (Public Suffix List),
    so d=co.uk never aligns with example-consulting.co.uk."""
    mine, theirs = organisation(signer), organisation(sender_domain)
    return mine is not None and mine == theirs


def signed_instances(headers: list[tuple[bytes, bytes]], names: list[bytes]) -> set[int]:
    """The indexes of the header fields a DKIM h= list covers (RFC 6376 5.4.2).

    Each name in h= takes the last instance of that field not taken yet, bottom-up; a name
    listed more often than the field occurs signs its absence. Any other instance (one added
    above a signed copy, a field not named at all) is unsigned.
    """
    taken: set[int] = set()
    below: dict[bytes, int] = {}
    for name in names:
        index = below.get(name, len(headers))
        while index > 0:
            index -= 1
            if headers[index][0].lower() == name:
                taken.add(index)
                break
        below[name] = index
    return taken


def signature_key(checker: dkim.DKIM) -> str:
    """What a verified signature signed, independent of how its b= is spelled.

    The same signature has many spellings that verify: base64's spare bits, and (dkimpy does
    not check it) leading zero bytes or s + n in place of s. The tags other than b= and the
    header instances it covers are themselves signed, so they cannot change without breaking
    it; folding white space makes relaxed canonicalization's variants one key."""
    tags = b";".join(name + b"=" + re.sub(rb"\s+", b"", value)
                     for name, value in sorted(checker.signature_fields.items())
                     if name != b"b")
    headers: list[tuple[bytes, bytes]] = list(checker.headers)
    taken = signed_instances(headers, list(checker.include_headers))
    signed = b"\n".join(name.lower().strip() + b":" + b" ".join(value.split())
                        for index, (name, value) in enumerate(headers) if index in taken)
    return "dkim:" + hashlib.sha256(tags + b"\n" + signed).hexdigest()


def _body_length_gap(checker: dkim.DKIM) -> tuple[int, int] | None:
    """(signed, total) body bytes when the signature's l= leaves part of the body unsigned."""
    length = checker.signature_fields.get(b"l")
    if length is None:
        return None
    policy = CanonicalizationPolicy.from_c_value(
        checker.signature_fields.get(b"c", b"simple/simple"))
    total = len(policy.canonicalize_body(checker.body))
    return (int(length), total) if int(length) < total else None


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

    def _addressed_to_us(self, signed: list[tuple[str, str]]) -> bool:
        """A replayed mail (signed by the customer, but sent to someone else) is not proof:
        a To or Cc instance the signature covers must name one of our addresses (an unsigned
        `Cc: support@...` added on top proves nothing)."""
        if not self.recipients:
            return True
        named = {a.lower() for _, a in getaddresses(
            [v for n, v in signed if n in ("to", "cc")])}
        return bool(named & set(self.recipients))

    def _proven(self, checker: dkim.DKIM, signer: str) -> Trust | str:
        """A Trust for a valid, aligned signature, or why it still proves nothing."""
        headers: list[tuple[bytes, bytes]] = list(checker.headers)
        taken = signed_instances(headers, list(checker.include_headers))
        signed = [(name.decode("ascii", "replace").lower(),
                   value.decode("utf-8", "replace").replace("\r\n", ""))
                  for index, (name, value) in enumerate(headers) if index in taken]
        gap = _body_length_gap(checker)
        if gap is not None:
            return (f"dkim d={signer}: l= signs only {gap[0]} of {gap[1]} body bytes: "
                    "the rest may be anyone's")
        if not self._addressed_to_us(signed):
            return f"dkim d={signer}: signed mail not addressed to us (replayed?)"
        unsigned = frozenset(name.decode("ascii", "replace").lower()
                             for index, (name, _) in enumerate(headers) if index not in taken)
        return Trust(True, "dkim", f"dkim=pass d={signer}", unsigned=unsigned,
                     signatures=(signature_key(checker),))

    def _other_keys(self, raw: bytes, sender_domain: str, signers: list[str],
                    indexes: list[int], proving: int) -> tuple[str, ...]:
        """The keys of the mail's other valid, aligned signatures: a mail signed twice (RSA
        and Ed25519, RFC 8463) replayed with only its second signature is still a replay."""
        keys = []
        for index in indexes:
            if index == proving or not aligned(signers[index], sender_domain):
                continue
            checker = dkim.DKIM(raw, minkey=1024, timeout=int(self.dns_timeout) or 1)
            try:
                if checker.verify(idx=index, dnsfunc=self._txt):
                    keys.append(signature_key(checker))
            except Exception:  # a broken second signature adds no key
                continue
        return tuple(keys)

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
                proven = self._proven(checker, signer)
                if isinstance(proven, Trust):
                    others = self._other_keys(raw, sender_domain, signatures,
                                              order[:MAX_SIGNATURES], index)
                    return replace(proven, signatures=proven.signatures + others)
                reasons.append(proven)
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
