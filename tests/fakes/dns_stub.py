"""A DNS server on 127.0.0.1 that answers TXT queries from a dict: the tests' resolver stub."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsStub:
    """Serves `records` (name -> TXT value) over UDP until closed; counts the queries."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            self.queries.append(name)
            value = self.records.get(name)
            if value is None or question.rdtype != dns.rdatatype.TXT:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                chunks = " ".join(f'"{value[i:i + 250]}"' for i in range(0, len(value), 250))
                response.answer.append(dns.rrset.from_text(
                    question.name, 300, dns.rdataclass.IN, dns.rdatatype.TXT, chunks))
            self.sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> DnsStub:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
