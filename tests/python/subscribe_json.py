#!/usr/bin/env python3
"""A consumer in another language: plain pyzmq and json, no distlog code.

    python3 subscribe_json.py ENDPOINT [PREFIX]

Subscribes to a distlogd `publish` socket with `format: json` (topics
ending in `J`, one JSON object per message) and prints each message as one
line on stdout: {"topic": "PLJ", "record": {...the record as parsed...}}.
Runs until killed.
"""

import json
import sys

import zmq


def main():
    endpoint = sys.argv[1]
    prefix = sys.argv[2].encode() if len(sys.argv) > 2 else b""
    sub = zmq.Context().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, prefix)
    sub.connect(endpoint)
    while True:
        topic, body = sub.recv_multipart()
        record = json.loads(body.decode("utf-8"))
        sys.stdout.write(json.dumps({"topic": topic.decode("ascii"), "record": record}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
