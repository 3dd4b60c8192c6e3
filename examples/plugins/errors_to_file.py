#!/usr/bin/env python3
"""A distlogd `exec` plugin: ERROR and CRITICAL records to a sink.

distlogd writes each record routed to the processor to this program's stdin
as one JSON line (the Python LogRecord field names: name, levelname,
levelno, message, created, hostname, context, ...). This plugin appends one
webhook-style JSON payload per ERROR-or-worse record to a file; to post to
a real webhook, replace `deliver`.

    alerts:
      type: exec
      command: [python3, /etc/distlog/plugins/errors_to_file.py, /var/log/distlog/alerts.jsonl, --confirm]
      confirm: true

With --confirm (and `confirm: true` in the config) it writes "OK" on stdout
once a record is handled, so distlogd sends it again if the plugin dies
first. Diagnostics go to stderr, which distlogd copies to its log.
"""

import json
import sys


def deliver(sink, record):
    payload = {
        "text": "%s %s on %s: %s" % (
            record["levelname"], record["name"], record["hostname"], record["message"]),
        "task": record["context"]["key"] if record["context"] else None,
        "exception": record["exc_text"],
        "time": record["created"],
    }
    sink.write(json.dumps(payload) + "\n")
    sink.flush()


def main():
    path = sys.argv[1]
    confirm = "--confirm" in sys.argv[2:]
    with open(path, "a", encoding="utf-8") as sink:
        for line in sys.stdin:
            try:
                record = json.loads(line)
            except ValueError as e:
                sys.stderr.write("errors_to_file: skipped a line that is not JSON: %s\n" % e)
                record = None
            if record is not None and record["levelno"] >= 40:
                deliver(sink, record)
            if confirm:
                sys.stdout.write("OK\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
