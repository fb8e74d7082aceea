#!/usr/bin/python3
"""python-socketio (Debian's python3-socketio, run with /usr/bin/python3) against the
real ferry-broker: a client without connection-state-recovery support turns the
trailing offset argument off (auth {"offsets": false}, or a namespace configured with
offsets = false) and then receives deliveries as (data, meta); publishing, subscribing
and ack-mode acks work; the default transport (polling, then the WebSocket upgrade that
python3-websocket provides) works.

Run: FERRY_BROKER=<builddir>/broker/ferry-broker /usr/bin/python3 python_client.py -v
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

try:
    import socketio  # python3-socketio
except ImportError as e:  # fail, never skip
    sys.stderr.write(
        "python3-socketio is not importable by %s (%s). Install the Debian packages "
        "python3-socketio and python3-websocket and run this test with /usr/bin/python3.\n" % (sys.executable, e)
    )
    sys.exit(1)

TOML = """
[server]
ping_interval = "1s"
ping_timeout = "2s"

[namespaces."/nooff"]
offsets = false

[namespaces."/acks"]
ack_timeout = "300ms"
max_deliver = 3
"""


class Broker:
    """One ferry-broker process on 127.0.0.1:0 with its own temporary data directory."""

    def __init__(self):
        binary = os.environ.get("FERRY_BROKER")
        if not binary:
            raise RuntimeError("FERRY_BROKER is not set (run through meson, or set it to <builddir>/broker/ferry-broker)")
        if not os.path.exists(binary):
            raise RuntimeError("FERRY_BROKER=%s does not exist; build it first" % binary)
        self.tmp = tempfile.mkdtemp(prefix="ferry-py-")
        config = os.path.join(self.tmp, "ferry.toml")
        with open(config, "w") as f:
            f.write(TOML)
        self.log_path = os.path.join(self.tmp, "broker.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.tmp, "data"), "--config", config],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self._read_line(15)
        m = re.fullmatch(r"ferry-broker listening on 127\.0\.0\.1:(\d+)\n", line or "")
        if not m:
            self.stop()
            raise RuntimeError("broker did not print its port (got %r); log:\n%s" % (line, self.log_text()))
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def _read_line(self, timeout):
        result = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return result[0] if result else None

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.proc.stdout.close()
        return self.proc.returncode

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def http(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        _, text = self.http("GET", "/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Client:
    """A python-socketio client that records every delivery (catch-all handler)."""

    def __init__(self, ack_return=True):
        self.sio = socketio.Client(reconnection=False)
        self.events = []  # (namespace, event, args)
        self.lock = threading.Lock()
        self.ack_return = ack_return

        def make_handler(nsp):
            def handler(event, *args):
                with self.lock:
                    self.events.append((nsp, event, args))
                return self.ack_return  # becomes the ack when the delivery asks for one

            return handler

        for nsp in ("/", "/nooff", "/acks"):
            self.sio.on("*", make_handler(nsp), namespace=nsp)

    def connect(self, url, namespace="/", **kw):
        self.sio.connect(url, namespaces=[namespace], wait_timeout=5, **kw)

    def deliveries(self):
        with self.lock:
            return [e for e in self.events if not e[1].startswith("$")]

    def notices(self):
        with self.lock:
            return [e for e in self.events if e[1].startswith("$")]

    def wait_deliveries(self, n, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.deliveries()) >= n:
                return self.deliveries()
            time.sleep(0.02)
        raise AssertionError("expected %d deliveries, got %r" % (n, self.deliveries()))

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


class PythonSocketIOTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        try:
            result = getattr(self._outcome, "result", None)
            failed = result is None or any(t is self for t, _ in result.failures + result.errors)
            code = self.broker.stop()
            if failed or code != 0:
                sys.stderr.write("\n----- broker log (%s) -----\n%s\n" % (self.id(), self.broker.log_text()[-6000:]))
        finally:
            self.broker.cleanup()
        self.assertEqual(code, 0, "the broker exits 0 on SIGTERM")

    def client(self, **kw):
        c = Client(**kw)
        self.clients.append(c)
        return c

    def subscribe(self, c, topic, namespace="/", **extra):
        r = c.sio.call("subscribe", dict(topic=topic, **extra), namespace=namespace, timeout=5)
        self.assertTrue(r["ok"], r)
        return r

    def publish(self, c, namespace="/", **ev):
        r = c.sio.call("publish", ev, namespace=namespace, timeout=5)
        self.assertTrue(r["ok"], r)
        self.assertFalse(r["duplicate"])
        return r["offset"]

    def test_auth_offsets_false_drops_the_trailing_offset(self):
        c = self.client()
        c.connect(self.broker.url, auth={"offsets": False})
        self.subscribe(c, "py")
        # control: a client without the flag gets the trailing offset
        ctl = self.client()
        ctl.connect(self.broker.url)
        self.subscribe(ctl, "py")

        off = self.publish(c, topic="py", event="note", data={"x": 1, "s": "hé"}, id="py-1")
        (nsp, event, args), = c.wait_deliveries(1)
        self.assertEqual(event, "note")
        self.assertEqual(len(args), 2, "args are (data, meta) without the offset: %r" % (args,))
        data, meta = args
        self.assertEqual(data, {"x": 1, "s": "hé"})
        self.assertEqual(meta["topic"], "py")
        self.assertEqual(meta["id"], "py-1")
        self.assertIsInstance(meta["ts"], int)

        (_, _, cargs), = ctl.wait_deliveries(1)
        self.assertEqual(len(cargs), 3)
        self.assertEqual(cargs[2], off, "the control client's trailing argument is the offset")
        self.assertEqual(c.notices(), [], "no $offset seed for a client that turned offsets off")

        # a second event, and the same id again is a duplicate
        self.publish(c, topic="py", event="note", data=[1, 2], id="py-2")
        dup = c.sio.call("publish", {"topic": "py", "event": "note", "data": [1, 2], "id": "py-2"}, timeout=5)
        self.assertEqual(dup["duplicate"], True)
        got = c.wait_deliveries(2)
        time.sleep(0.3)
        self.assertEqual([a[1]["id"] for _, _, a in c.deliveries()], ["py-1", "py-2"])
        self.assertTrue(all(len(a) == 2 for _, _, a in got))

    def test_namespace_with_offsets_false(self):
        c = self.client()
        c.connect(self.broker.url + "/nooff", namespace="/nooff")
        self.subscribe(c, "n", namespace="/nooff")
        for k in range(3):
            self.publish(c, namespace="/nooff", topic="n", event="tick", data={"k": k}, id="n-%d" % k)
        got = c.wait_deliveries(3)
        self.assertEqual([nsp for nsp, _, _ in got], ["/nooff"] * 3)
        self.assertEqual([len(a) for _, _, a in got], [2, 2, 2], got)
        self.assertEqual([a[0]["k"] for _, _, a in got], [0, 1, 2])
        # the namespace option wins even if the client asks for nothing
        self.assertEqual(c.notices(), [])

    def test_ack_mode_acks_from_python_stop_redelivery(self):
        c = self.client(ack_return="done")
        c.connect(self.broker.url + "/acks", namespace="/acks", auth={"offsets": False, "consumer": "py-worker"})
        self.subscribe(c, "jobs", namespace="/acks", mode="ack")
        offs = [self.publish(c, namespace="/acks", topic="jobs", event="job", data={"k": k}, id="j-%d" % k) for k in range(3)]
        c.wait_deliveries(3)
        time.sleep(1.3)  # > 4 x ack_timeout (300 ms): unacked deliveries would have come again
        got = c.deliveries()
        self.assertEqual([a[0]["k"] for _, _, a in got], [0, 1, 2], "each delivered once: %r" % (got,))
        self.assertTrue(all(len(a) == 2 for _, _, a in got))
        m = self.broker.metrics()
        self.assertEqual(m["ferry_acks_total"], 3)
        self.assertEqual(m["ferry_redelivered_total"], 0)
        self.assertEqual(m['ferry_consumer_lag{namespace="/acks",consumer="py-worker",topic="jobs"}'], 0)
        status, body = self.broker.http("GET", "/v1/topics?namespace=/acks")
        self.assertEqual(status, 200)
        self.assertFalse(any(t["name"].startswith("$dlq.") for t in json.loads(body)["topics"]))
        self.assertEqual(len(offs), 3)

    def test_default_transport_upgrades_to_websocket(self):
        c = self.client()
        c.connect(self.broker.url, auth={"offsets": False})  # default: polling, then upgrade
        deadline = time.time() + 5
        while c.sio.transport() != "websocket" and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(c.sio.transport(), "websocket", "python-socketio upgraded to WebSocket (python3-websocket)")
        self.assertGreaterEqual(self.broker.metrics()["ferry_engineio_upgrades_total"], 1)
        self.subscribe(c, "w")
        status, body = self.broker.http("POST", "/v1/publish", {"topic": "w", "event": "hello", "data": "over ws", "id": "w-1"})
        self.assertEqual(status, 200, body)
        (_, event, args), = c.wait_deliveries(1)
        self.assertEqual((event, args[0], len(args)), ("hello", "over ws", 2))

        # a polling-only client works as well
        p = self.client()
        p.connect(self.broker.url, auth={"offsets": False}, transports=["polling"])
        self.assertEqual(p.sio.transport(), "polling")
        self.subscribe(p, "w")
        self.publish(p, topic="w", event="hello", data="over polling", id="w-2")
        (_, _, pargs), = p.wait_deliveries(1)
        self.assertEqual(pargs[0], "over polling")
        c.wait_deliveries(2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
