#!/usr/bin/env python3
"""Send records to a distlogd broker through the real PyPI `distlog` client.

    python3 send_records.py ENDPOINT [N]

Uses the package's own ZmqHandler, JSONFormatter, PickleFormatter and task
API, unchanged: N plain records plus one task tree (a task, a subtask, a
sub-subtask, a failing subtask and a logged exception) in JSON, then the
same in pickle. Prints one JSON object on stdout describing every record as
the client sent it (after its formatter ran), so the caller can check what
the broker stored. Every message names its encoding, so each is unique: {"host": ..., "pid": ..., "records": [...]}.

Requires: pip install -r tests/python/requirements.txt
"""

import json
import logging
import os
import sys

try:
    import zmq
    import distlog
except ImportError as e:  # pragma: no cover - the caller reports this
    sys.stderr.write(
        "send_records.py: cannot import the Python client (%s); "
        "run: pip install -r tests/python/requirements.txt\n" % e
    )
    sys.exit(3)


class Capture(logging.Handler):
    """Records what the ZmqHandler (added before it) just sent."""

    def __init__(self):
        super().__init__()
        self.encoding = None
        self.sent = []

    def emit(self, record):
        ctx = record.context
        self.sent.append({
            "encoding": self.encoding,
            "name": record.name,
            "levelno": record.levelno,
            "message": record.message,
            "key": ctx["key"] if ctx else None,
            "context": {k: v for k, v in ctx.items() if k != "key"} if ctx else {},
            "exc_text": record.exc_text,
            "thread": record.thread,
        })


def scenario(enc, n):
    plain = logging.getLogger("interop.plain")
    for i in range(n):
        plain.info("record %d of %s", i, enc)
    plain.warning("caf\u00e9 \u2713 multi\nline %s", enc)
    with distlog.task("order for %s", enc, user="alice", order=17):
        logging.getLogger("interop.task").warning("in task (%s)", enc)
        with distlog.to("charge card (%s)", enc, amount=12.5) as sub:
            logging.getLogger("interop.sub").debug("in subtask (%s)", enc)
            with distlog.to("nested (%s)", enc):
                plain.info("deep (%s)", enc)
            sub.success("charged %d (%s)", 12, enc)
        try:
            with distlog.to("will fail (%s)", enc):
                raise ValueError("bad card")
        except ValueError:
            pass
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("interop.err").exception("caught %s", enc)


def main():
    endpoint = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    handler = distlog.ZmqHandler(endpoint)
    capture = Capture()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    root.addHandler(capture)
    for fmt, enc in ((distlog.JSONFormatter(), "json"), (distlog.PickleFormatter(), "pickle")):
        handler.setFormatter(fmt)
        capture.encoding = enc
        scenario(enc, n)
    # Deliver everything before exiting (at most 10 s with no broker).
    handler.socket.close(linger=10000)
    handler.context.term()
    json.dump({"host": os.uname().nodename, "pid": os.getpid(), "records": capture.sent},
              sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
