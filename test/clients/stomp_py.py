"""Drives Debian's python3-stomp (stomp.py) against a live stompd over TCP:

    python3 stomp_py.py HOST:PORT VERSION

VERSION is 1.1 (stomp.Connection, what most code uses) or 1.2 (stomp.Connection12). It connects with
a STOMP frame (stomp.py's default, one accept-version) asking for heart-beats every
second, does topic pub/sub in order, a queue with client-individual acks (/queue/clients.python), a
1 MiB message and an orderly disconnect. Prints one JSON line {"ok":true,"passed":[...]} or
{"ok":false,"error":"..."}; exits non-zero on failure."""

import json
import sys
import threading
import time

import stomp

TIMEOUT = 15
passed = []


def check(cond, what):
    if not cond:
        raise AssertionError("check failed: " + what)
    passed.append(what)


class Collector(stomp.ConnectionListener):
    """Keeps what arrives; waiters poll it under a condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = set()
        self.heartbeats = 0
        self.errors = []

    def on_connected(self, frame):
        with self.cond:
            self.connected = frame
            self.cond.notify_all()

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame)
            self.cond.notify_all()

    def on_receipt(self, frame):
        with self.cond:
            self.receipts.add(frame.headers["receipt-id"])
            self.cond.notify_all()

    def on_heartbeat(self):
        with self.cond:
            self.heartbeats += 1

    def on_error(self, frame):
        with self.cond:
            self.errors.append(frame.headers.get("message"))
            self.cond.notify_all()

    def wait(self, what, cond):
        with self.cond:
            if not self.cond.wait_for(lambda: cond() or self.errors, TIMEOUT):
                raise AssertionError("timed out waiting for " + what)
            if self.errors:
                raise AssertionError("ERROR " + str(self.errors))


def open_connection(host, port, version):
    kind = stomp.Connection12 if version == "1.2" else stomp.Connection
    conn = kind([(host, port)], heartbeats=(1000, 1000))
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(wait=True, headers={"host": "/"})
    listener.wait("CONNECTED", lambda: listener.connected is not None)
    return conn, listener


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    version = sys.argv[2]
    sub, subl = open_connection(host, int(port), version)
    pub, publ = open_connection(host, int(port), version)
    check(subl.connected.headers.get("version") == version, "CONNECTED version %s to a STOMP frame" % version)
    check(subl.connected.headers.get("heart-beat") == "1000,1000", "CONNECTED heart-beat 1000,1000, as asked")

    sub.subscribe("/topic/clients.python", id="t", ack="auto", headers={"receipt": "sub-t"})
    subl.wait("the subscription receipt", lambda: "sub-t" in subl.receipts)
    texts = ["message %d ✓ ünïcödé" % i for i in range(10)]
    for i, text in enumerate(texts):
        pub.send("/topic/clients.python", text, headers={"x-seq": str(i)})
    subl.wait("10 topic messages", lambda: len(subl.messages) >= 10)
    got = subl.messages[:10]
    check([m.body for m in got] == texts and [m.headers["x-seq"] for m in got] == [str(i) for i in range(10)],
          "topic messages in order, UTF-8 and headers intact")

    del subl.messages[:]
    sub.subscribe("/queue/clients.python", id="q", ack="client-individual")
    for i in range(3):
        pub.send("/queue/clients.python", "job %d" % i)
    subl.wait("3 queue messages", lambda: len(subl.messages) >= 3)
    jobs = subl.messages[:3]
    for m in jobs:
        if version == "1.2":
            sub.ack(m.headers["ack"])
        else:
            sub.ack(m.headers["message-id"], m.headers["subscription"])
    check([m.body for m in jobs] == ["job 0", "job 1", "job 2"], "queue messages with client-individual acks")

    del subl.messages[:]
    large = "x" * (1 << 20)
    sub.subscribe("/topic/clients.large", id="l", headers={"receipt": "sub-l"})
    subl.wait("the subscription receipt", lambda: "sub-l" in subl.receipts)
    pub.send("/topic/clients.large", large)
    subl.wait("the large message", lambda: len(subl.messages) >= 1)
    check(subl.messages[0].body == large, "a 1 MiB message intact")

    before = subl.heartbeats
    time.sleep(3)
    check(subl.heartbeats - before >= 2, "%d server heart-beats in 3 s idle" % (subl.heartbeats - before))
    sub.send("/topic/clients.python", "still here", headers={"receipt": "alive"})
    subl.wait("the receipt after idling", lambda: "alive" in subl.receipts)
    check(sub.is_connected(), "connection alive after idling")

    for conn in (sub, pub):
        conn.disconnect(receipt="bye")
    check(not sub.is_connected() and not pub.is_connected(), "disconnect with a receipt")


try:
    main()
    print(json.dumps({"ok": True, "passed": passed}))
except Exception as e:  # noqa: BLE001 - every failure becomes the one JSON line
    print(json.dumps({"ok": False, "error": repr(e), "passed": passed}))
    sys.exit(1)
