"""Batch helpers: the API's paths, a JSON client, running tickets in this process, and a
local webhook receiver (a real HTTP server on 127.0.0.1)."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import Client

from billing.models import LedgerEntry
from tests.support_api import basic

BATCHES = "/api/v2/batches"


def api(key: tuple[str, str]) -> Client:
    return Client(HTTP_AUTHORIZATION=basic(*key))


def submit(client: Client, body: dict, **headers: str):
    return client.post(BATCHES, json.dumps(body), content_type="application/json", **headers)


def run_tickets(limit: int = 200) -> int:
    """Work queued items in this process, as a worker would, until none is ready."""
    from batches import work

    done = 0
    while done < limit and work.work_next():
        done += 1
    return done


def charges_for(batch_id: str) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(kind="charge", reference__startswith=f"batch:{batch_id}:")
    )


def charged_total(batch_id: str) -> Decimal:
    return -sum((entry.amount for entry in charges_for(batch_id)), Decimal(0))


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Receiver]:
    """A local HTTP server that keeps every POST (headers, body) and answers `status`."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            receiver.arrived.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
