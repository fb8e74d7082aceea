#!/usr/bin/env python3
"""Integration tests of ferryctl (tools/ferryctl) against the real ferry-broker.

Each broker runs on 127.0.0.1 with a kernel-chosen port (--listen 127.0.0.1:0, the port is
read from its "ferry-broker listening on 127.0.0.1:<port>" line) and its own temporary data
directory. Events are published over the broker's HTTP API (not through ferryctl, except
where `ferryctl publish` itself is under test), consumers and dead letters are produced by a
real Socket.IO session (a small Engine.IO v4 long-polling client below), and every
assertion is on what the ferryctl binary prints and how it exits.

Environment (meson sets both):
  FERRY_BROKER  <builddir>/broker/ferry-broker
  FERRYCTL      <builddir>/tools/ferryctl/ferryctl
Standard library only (Debian's /usr/bin/python3).
"""
import datetime
import glob
import http.client
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BROKER = os.environ.get("FERRY_BROKER", "")
FERRYCTL = os.environ.get("FERRYCTL", "")

# /acks: un-acked deliveries go to the dead-letter topic after one 200 ms attempt.
# Pings every 2 s keep long-polls short; the generous ping_timeout lets a test pause
# polling while it runs ferryctl.
BROKER_TOML = """
[server]
ping_interval = "2s"
ping_timeout = "30s"

[namespaces."/acks"]
ack_timeout = "200ms"
max_deliver = 1
"""


# ---------------------------------------------------------------------------------------
# the broker


class Broker:
    def __init__(self, toml=BROKER_TOML):
        self.tmp = tempfile.mkdtemp(prefix="ferryctl-it-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "broker.log")
        args = [BROKER, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, "--log-level", "info"]
        if toml:
            cfg = os.path.join(self.tmp, "ferry.toml")
            with open(cfg, "w") as f:
                f.write(toml)
            args += ["--config", cfg]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 15
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        prefix = "ferry-broker listening on 127.0.0.1:"
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"broker did not start (got {line!r}); log:\n{self.log_tail()}")
        self.port = int(line[len(prefix):].strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

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
        if os.environ.get("FERRY_KEEP_DATA") == "1":
            print(f"kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        return r.status, json.loads(text) if text else None

    def publish(self, events, nsp="/"):
        """Publishes a batch over POST /v1/publish; returns the offsets."""
        status, reply = self.request("POST", "/v1/publish?namespace=" + nsp.replace("/", "%2F"), events)
        assert status == 200 and reply["ok"], (status, reply)
        return reply["offsets"]


# ---------------------------------------------------------------------------------------
# a minimal Socket.IO v5 client over Engine.IO v4 HTTP long-polling


class PollingSocket:
    def __init__(self, port, nsp="/", auth=None):
        self.port = port
        self.nsp = nsp
        self.prefix = "" if nsp == "/" else nsp + ","
        self.sid = None
        self.packets = []  # Socket.IO packets received, without the "4" Engine.IO type
        opened = self._http("GET", None)
        assert opened.startswith("0"), opened
        self.sid = json.loads(opened[1:])["sid"]
        self._http("POST", "40" + self.prefix + json.dumps(auth or {}))
        self.connect_ack = self.wait(lambda p: p.startswith("0" + self.prefix))
        self.next_ack = 1

    def _http(self, method, body, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        path = "/socket.io/?EIO=4&transport=polling" + (f"&sid={self.sid}" if self.sid else "")
        headers = {"Content-Type": "text/plain;charset=UTF-8"} if body is not None else {}
        c.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        assert r.status == 200, (r.status, text)
        return text

    def poll_once(self):
        for p in self._http("GET", None).split("\x1e"):
            if p == "2":
                self._http("POST", "3")  # pong
            elif p.startswith("4"):
                self.packets.append(p[1:])

    def wait(self, match, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            for p in self.packets:
                if match(p):
                    return p
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching packet within {timeout}s; got {self.packets}")
            self.poll_once()

    def call(self, event, data):
        """emit with ack; returns the ack's first argument."""
        ack_id = self.next_ack
        self.next_ack += 1
        self._http("POST", f"42{self.prefix}{ack_id}" + json.dumps([event, data]))
        head = f"3{self.prefix}{ack_id}["
        p = self.wait(lambda p: p.startswith(head))
        return json.loads(p[len(head) - 1:])[0]

    def deliveries(self):
        """[(event, data, meta, offset)] received so far (ack ids ignored)."""
        out = []
        for p in self.packets:
            if not p.startswith("2" + self.prefix):
                continue
            body = p[1 + len(self.prefix):]
            body = body[body.index("["):]
            args = json.loads(body)
            if args and not args[0].startswith("$"):
                out.append(tuple(args[:4]))
        return out

    def close(self):
        try:
            self._http("POST", "1")
        except (OSError, AssertionError):
            pass


# ---------------------------------------------------------------------------------------
# running ferryctl


def ferryctl(*args, stdin=None, timeout=30):
    return subprocess.run([FERRYCTL, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def iso(ms, hours=0):
    tz = datetime.timezone(datetime.timedelta(hours=hours))
    return datetime.datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def wait_until(fn, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(p):
    """Kills a ferryctl process left running by a failed assertion and closes its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            f.close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------


class FerryctlTest(unittest.TestCase):
    """One broker for the whole class; each test uses its own topics."""

    @classmethod
    def setUpClass(cls):
        if not BROKER or not FERRYCTL:
            raise RuntimeError("set FERRY_BROKER and FERRYCTL (meson test does)")
        cls.b = Broker()

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()

    def online(self, *args, **kw):
        return ferryctl("--url", self.b.url, *args, **kw)

    def offline(self, *args, **kw):
        return ferryctl("--data-dir", self.b.data_dir, *args, **kw)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, f"exit {r.returncode}; stderr: {r.stderr}")
        return r.stdout

    def fails(self, r, code, stderr_has=None):
        self.assertEqual(r.returncode, code, f"stdout: {r.stdout}\nstderr: {r.stderr}")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, f"one line on stderr, got: {r.stderr!r}")
        self.assertTrue(r.stderr.startswith("ferryctl: "), r.stderr)
        if stderr_has:
            self.assertIn(stderr_has, r.stderr)

    # ---- replay ---------------------------------------------------------------------

    def test_replay_prints_the_published_events_in_offset_order(self):
        events = [{"topic": "r-orders", "event": "created", "id": f"order-{i}",
                   "data": {"n": i, "name": "caf\u00e9 \"q\"", "list": [1, 2.5, None, True], "nested": {"a": {"b": [i]}}}}
                  for i in range(40)]
        events.insert(7, {"topic": "r-orders", "data": "no id, default event"})
        events.insert(9, {"topic": "r-other", "event": "x", "data": 1})  # another topic in between
        offsets = self.b.publish(events)
        want = [(o, e) for o, e in zip(offsets, events) if e["topic"] == "r-orders"]
        got = lines(self.ok(self.online("replay", "--topic", "r-orders", "--from", "earliest")))
        self.assertEqual(len(got), len(want))
        for g, (off, e) in zip(got, want):
            self.assertEqual(list(g.keys()), ["offset", "topic", "event", "id", "ts", "data"])
            self.assertEqual(g["offset"], off)
            self.assertEqual(g["topic"], "r-orders")
            self.assertEqual(g["event"], e.get("event", "message"))
            self.assertEqual(g["id"], e.get("id", off))  # no producer id: the offset
            self.assertEqual(g["data"], e["data"])
            self.assertIsInstance(g["ts"], int)
        self.assertEqual([g["offset"] for g in got], sorted(g["offset"] for g in got))
        # Each line is the broker's own event object (GET /v1/topics/<topic>/events), byte for byte.
        c = http.client.HTTPConnection("127.0.0.1", self.b.port, timeout=10)
        c.request("GET", "/v1/topics/r-orders/events?from=earliest&limit=1000")
        body = c.getresponse().read().decode()
        c.close()
        self.assertTrue(body.startswith('{"ok":true,"events":['), body[:100])
        events_text = body[len('{"ok":true,"events":['):body.rindex('],"next":')]
        self.assertEqual(",".join(self.ok(self.online("replay", "--topic", "r-orders")).splitlines()), events_text)

    def test_binary_attachments_are_printed_as_base64_in_both_modes(self):
        s = PollingSocket(self.b.port)
        try:
            # A Socket.IO BINARY_EVENT over long-polling: the attachment follows as a "b<base64>" packet.
            s._http("POST", '451-1["publish",{"topic":"r-bin","event":"blob","data":{"file":{"_placeholder":true,"num":0}}}]'
                            "\x1ebAQID/w==")
            ack = json.loads(s.wait(lambda p: p.startswith("31["))[2:])[0]
            self.assertTrue(ack["ok"], ack)
        finally:
            s.close()
        on = self.ok(self.online("replay", "--topic", "r-bin"))
        self.assertEqual(on, self.ok(self.offline("replay", "--topic", "r-bin")))
        e = lines(on)[0]
        self.assertEqual(e["offset"], ack["offset"])
        self.assertEqual(e["attachments"], ["AQID/w=="])  # bytes 01 02 03 ff
        self.assertEqual(e["data"], {"file": {"_placeholder": True, "num": 0}})

    def test_offline_replay_is_byte_identical_to_online_while_the_broker_runs(self):
        offs = self.b.publish([{"topic": "r-same", "id": f"s{i}", "data": {"i": i, "f": 1.5e3, "s": "\u2603\n"}} for i in range(30)])
        for extra in ([], ["--from", offs[5], "--to", offs[20]], ["--limit", "7"], ["--format", "pretty"]):
            with self.subTest(args=extra):
                on = self.ok(self.online("replay", "--topic", "r-same", *extra))
                off = self.ok(self.offline("replay", "--topic", "r-same", *extra))
                self.assertTrue(on)
                self.assertEqual(on, off)
        # topics too
        self.assertEqual(self.ok(self.online("topics")), self.ok(self.offline("topics")))

    def test_to_is_inclusive_and_limit_caps_the_count_in_both_modes(self):
        offs = self.b.publish([{"topic": "r-range", "data": i} for i in range(20)])
        for run in (self.online, self.offline):
            with self.subTest(mode=run.__name__):
                got = lines(self.ok(run("replay", "--topic", "r-range", "--from", offs[3], "--to", offs[8])))
                self.assertEqual([g["offset"] for g in got], offs[3:9])
                got = lines(self.ok(run("replay", "--topic", "r-range", "--limit", "4")))
                self.assertEqual([g["data"] for g in got], [0, 1, 2, 3])
                got = lines(self.ok(run("replay", "--topic", "r-range", "--from", offs[15], "--limit", "100")))
                self.assertEqual([g["data"] for g in got], [15, 16, 17, 18, 19])
                got = lines(self.ok(run("replay", "--topic", "r-range", "--from", offs[10], "--to", offs[10])))
                self.assertEqual([g["data"] for g in got], [10])
                self.assertEqual(self.ok(run("replay", "--topic", "r-range", "--from", "latest")), "")
                self.assertEqual(self.ok(run("replay", "--topic", "r-range", "--from", offs[9], "--to", offs[2])), "")

    def test_follow_prints_new_events_until_sigint(self):
        for mode in (["--url", self.b.url], ["--data-dir", self.b.data_dir]):
            with self.subTest(mode=mode[0]):
                topic = "r-follow" + mode[0]
                self.b.publish([{"topic": topic, "data": "old"}])
                p = subprocess.Popen([FERRYCTL, *mode, "replay", "--topic", topic, "--from", "earliest", "--follow",
                                      "--poll-interval", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    first = json.loads(p.stdout.readline())
                    self.assertEqual(first["data"], "old")
                    offs = self.b.publish([{"topic": topic, "data": f"new-{i}"} for i in range(3)])
                    got = [json.loads(p.stdout.readline()) for _ in range(3)]
                    self.assertEqual([g["offset"] for g in got], offs)
                    p.send_signal(signal.SIGINT)
                    self.assertEqual(p.wait(5), 0)
                    self.assertEqual(p.stdout.read(), "")
                    self.assertEqual(p.stderr.read(), "")
                finally:
                    stop(p)

    def test_tail_starts_at_the_head_and_follow_stops_at_to(self):
        self.b.publish([{"topic": "r-tail", "data": "before"}])
        p = subprocess.Popen([FERRYCTL, "--url", self.b.url, "tail", "--topic", "r-tail", "--poll-interval", "50"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # let it read the head
            offs = self.b.publish([{"topic": "r-tail", "data": "after"}])
            got = json.loads(p.stdout.readline())
            self.assertEqual((got["offset"], got["data"]), (offs[0], "after"))
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(5), 0)
        finally:
            stop(p)
        # --follow with --to ends by itself once that offset was printed.
        offs = self.b.publish([{"topic": "r-tail", "data": i} for i in range(2)])
        target = offs[1]
        p = subprocess.Popen([FERRYCTL, "--data-dir", self.b.data_dir, "replay", "--topic", "r-tail", "--from", offs[0], "--to",
                              "%s-%016x" % (target.split("-")[0], int(target.split("-")[1], 16) + 2), "--follow",
                              "--poll-interval", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            more = self.b.publish([{"topic": "r-tail", "data": "x"}, {"topic": "r-tail", "data": "y"}, {"topic": "r-tail", "data": "z"}])
            out, _ = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0)
            self.assertEqual([g["offset"] for g in lines(out)], offs + more[:2])
        finally:
            stop(p)

    def test_from_time_starts_at_the_first_event_stored_at_or_after_it(self):
        early = self.b.publish([{"topic": "r-time", "data": f"early-{i}"} for i in range(5)])
        time.sleep(1.3)  # more than the storage's 1 s checkpoint interval
        late = []
        for i in range(5):
            late += self.b.publish([{"topic": "r-time", "data": f"late-{i}"}])
            time.sleep(0.02)
        allev = lines(self.ok(self.online("replay", "--topic", "r-time")))
        ts = {g["offset"]: g["ts"] for g in allev}
        t_late = ts[late[0]]
        self.assertGreater(t_late, ts[early[-1]])
        cases = {
            "first late event, UTC": (f"time:{iso(t_late)}".replace("+00:00", "Z"), late),
            "same instant, +02:00": (f"time:{iso(t_late, 2)}", late),
            "same instant, ms": (f"time:{t_late}", late),
            "just after the early ones": (f"time:{ts[early[-1]] + 1}", late),
            "third late event": (f"time:{iso(ts[late[2]])}", late[2:]),
            "before everything": ("time:2000-01-01T00:00:00Z", early + late),
            "in the future": ("time:2100-01-01T00:00:00Z", []),
        }
        for name, (spec, want) in cases.items():
            with self.subTest(case=name, spec=spec):
                on = self.ok(self.online("replay", "--topic", "r-time", "--from", spec))
                off = self.ok(self.offline("replay", "--topic", "r-time", "--from", spec))
                self.assertEqual([g["offset"] for g in lines(on)], want)
                self.assertEqual(on, off)

    def test_follow_from_a_future_time_skips_events_stored_before_it(self):
        self.b.publish([{"topic": "r-future", "data": "past"}])
        t = int(time.time() * 1000) + 1500
        p = subprocess.Popen([FERRYCTL, "--url", self.b.url, "replay", "--topic", "r-future", "--from", f"time:{iso(t, -5)}",
                              "--follow", "--poll-interval", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # ferryctl is following from the head by now
            self.b.publish([{"topic": "r-future", "data": "too early"}])
            time.sleep(max(0, t / 1000 - time.time()) + 0.1)
            on_time = self.b.publish([{"topic": "r-future", "data": "on time"}])
            got = json.loads(p.stdout.readline())
            self.assertEqual((got["offset"], got["data"]), (on_time[0], "on time"))
            self.assertGreaterEqual(got["ts"], t)
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(5), 0)
        finally:
            stop(p)

    def test_progress_bar_only_when_stderr_is_a_terminal(self):
        self.b.publish([{"topic": "r-progress", "data": i} for i in range(300)])
        # stderr piped: nothing on it
        r = self.online("replay", "--topic", "r-progress")
        self.assertEqual(len(lines(self.ok(r))), 300)
        self.assertEqual(r.stderr, "")
        # stderr a terminal, stdout a pipe: the bar is drawn and erased at the end
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([FERRYCTL, "--url", self.b.url, "replay", "--topic", "r-progress"], stdout=subprocess.PIPE,
                                 stderr=slave, text=True)
            out, _ = p.communicate(timeout=30)
            os.close(slave)
            slave = None
            tty = b""
            while True:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                tty += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(len(lines(out)), 300)
        text = tty.decode(errors="replace")
        self.assertIn("events", text)
        self.assertIn("%", text)
        self.assertIn("[", text)
        self.assertTrue(text.endswith("\r\x1b[K"), repr(text[-40:]))
        # --no-progress turns it off
        master, slave = pty.openpty()
        try:
            p = subprocess.run([FERRYCTL, "--url", self.b.url, "--no-progress", "replay", "--topic", "r-progress"],
                               stdout=subprocess.PIPE, stderr=slave, timeout=30)
            ready, _, _ = select.select([master], [], [], 0.3)
            self.assertFalse(ready, "nothing written to the terminal")
        finally:
            os.close(slave)
            os.close(master)

    # ---- topics, stats ----------------------------------------------------------------

    def test_topics_lists_name_head_count_and_bytes(self):
        offs = self.b.publish([{"topic": "t-a", "data": i} for i in range(3)] + [{"topic": "t-b", "data": "x"}])
        for run in (self.online, self.offline):
            with self.subTest(mode=run.__name__):
                rows = {t["name"]: t for t in lines(self.ok(run("topics")))}
                self.assertEqual(rows["t-a"]["head"], offs[2])
                self.assertEqual(rows["t-a"]["count"], 3)
                self.assertGreater(rows["t-a"]["bytes"], 0)
                self.assertEqual(rows["t-b"]["head"], offs[3])
                self.assertEqual(rows["t-b"]["count"], 1)
                self.assertEqual(set(rows["t-a"].keys()), {"name", "head", "first", "count", "bytes", "created"})
                pretty = self.ok(run("--format", "pretty", "topics")).splitlines()
                self.assertEqual(pretty[0].split(), ["TOPIC", "COUNT", "BYTES", "HEAD", "CREATED"])
                self.assertTrue(any(l.split()[:2] == ["t-a", "3"] and offs[2] in l for l in pretty))

    def test_stats_online_from_the_broker_and_offline_from_storage(self):
        self.b.publish([{"topic": "st", "data": 1}])
        on = json.loads(self.ok(self.online("stats")))
        self.assertTrue(on["ok"])
        self.assertGreaterEqual(on["published"], 1)
        self.assertIn("/", [n["name"] for n in on["namespaces"]])
        off = json.loads(self.ok(self.offline("stats")))
        self.assertEqual(off["mode"], "offline")
        root = [n for n in off["namespaces"] if n["name"] == "/"][0]
        topics = lines(self.ok(self.offline("topics")))
        self.assertEqual(root["topics"], len(topics))
        self.assertEqual(root["events"], sum(t["count"] for t in topics))
        self.assertEqual(root["bytes"], sum(t["bytes"] for t in topics))
        self.assertEqual(root["head"], max(t["head"] for t in topics))
        pretty = self.ok(self.offline("--format", "pretty", "stats"))
        self.assertEqual(json.loads(pretty), off)
        self.assertIn('\n  "namespaces": [', pretty)

    # ---- publish ------------------------------------------------------------------------

    def test_publish_from_flags_and_from_stdin_in_batches(self):
        r = self.online("publish", "--topic", "p-one", "--event", "created", "--id", "p-1", "--data", '{"a": [1, 2]}')
        one = lines(self.ok(r))
        self.assertEqual(len(one), 1)
        self.assertFalse(one[0]["duplicate"])
        stdin = "\n".join([
            '{"data": {"i": 0}, "id": "p-2"}',
            '',
            '{"data": {"i": 1}, "event": "other"}',
            '{"topic": "p-two", "data": "elsewhere"}',
            '{"data": null}',
            '{"id": "p-1", "data": "repeat of p-1"}',
        ]) + "\n"
        got = lines(self.ok(self.online("publish", "--topic", "p-one", "--event", "created", "--batch", "2", stdin=stdin)))
        self.assertEqual(len(got), 5)
        self.assertEqual([g["duplicate"] for g in got], [False, False, False, False, True])
        self.assertEqual(got[4]["offset"], one[0]["offset"])  # dedupe: the original offset
        replay = lines(self.ok(self.online("replay", "--topic", "p-one")))
        self.assertEqual([e["offset"] for e in replay], [one[0]["offset"], got[0]["offset"], got[1]["offset"], got[3]["offset"]])
        self.assertEqual([e["event"] for e in replay], ["created", "created", "other", "created"])
        self.assertEqual([e["data"] for e in replay], [{"a": [1, 2]}, {"i": 0}, {"i": 1}, None])
        self.assertEqual(lines(self.ok(self.online("replay", "--topic", "p-two")))[0]["offset"], got[2]["offset"])

    def test_publish_stops_at_a_bad_stdin_line_after_publishing_the_lines_before_it(self):
        stdin = '{"data": 1}\n{"data": 2}\nnot json\n{"data": 3}\n'
        r = self.online("publish", "--topic", "p-bad", stdin=stdin)
        self.fails(r, 1, "stdin line 3")
        self.assertEqual(len(lines(r.stdout)), 2)
        self.assertEqual([e["data"] for e in lines(self.ok(self.online("replay", "--topic", "p-bad")))], [1, 2])
        self.fails(self.online("publish", "--topic", "p-bad", stdin='{"topic": "t", "colour": 1}\n'), 1, "unknown key")
        self.fails(self.online("publish", "--topic", "p-bad", "--data", "not-json"), 1, "not valid JSON")
        # the broker refuses a reserved event name: exit 4 with its error code
        self.fails(self.online("publish", "--topic", "p-bad", "--event", "subscribe", "--data", "1"), 4, "reserved_event")

    # ---- consumers and positions ----------------------------------------------------

    def test_consumers_positions_and_positions_set(self):
        offs = self.b.publish([{"topic": "c-jobs", "data": i} for i in range(5)])
        s = PollingSocket(self.b.port, "/", {"consumer": "reader"})
        try:
            ack = s.call("subscribe", {"topic": "c-jobs", "from": "earliest"})
            self.assertTrue(ack["ok"], ack)
            wait_until(lambda: (s.poll_once() or True) and len(s.deliveries()) >= 5, what="5 deliveries")
            self.assertEqual([d[3] for d in s.deliveries()], offs)
            # connected: shown as active, and its position cannot be moved
            wait_until(lambda: any(c["consumer"] == "reader" for c in lines(self.online("consumers").stdout)), what="consumer row")
            c = [c for c in lines(self.ok(self.online("consumers"))) if c["consumer"] == "reader"][0]
            self.assertTrue(c["active"])
            self.assertEqual([t["topic"] for t in c["topics"]], ["c-jobs"])
            self.fails(self.online("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", "earliest"), 4,
                       "consumer_active")
        finally:
            s.close()

        def settled():
            rows = lines(self.online("positions", "--consumer", "reader").stdout)
            return rows if rows and rows[0]["position"] == offs[-1] and not rows[0]["active"] else None

        rows = wait_until(settled, what="position saved on disconnect")
        self.assertEqual(rows[0]["lag"], 0)
        self.assertEqual(rows[0]["head"], offs[-1])
        more = self.b.publish([{"topic": "c-jobs", "data": i} for i in range(3)])
        rows = lines(self.ok(self.online("positions", "--consumer", "reader")))
        self.assertEqual((rows[0]["lag"], rows[0]["head"]), (3, more[-1]))
        # offline agrees, without the live "active" flag
        off_rows = lines(self.ok(self.offline("positions", "--consumer", "reader")))
        for r in rows:
            r.pop("active")
        self.assertEqual(off_rows, rows)
        off_c = lines(self.ok(self.offline("consumers", "--consumer", "reader")))
        self.assertEqual(off_c, [{"consumer": "reader", "topics": [{"topic": "c-jobs", "position": offs[-1], "lag": 3}], "lag": 3}])

        # positions set: to an offset (the next delivery is that offset), then to latest
        r = lines(self.ok(self.online("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", offs[2])))
        self.assertEqual(r[0]["consumer"], "reader")
        stored = lines(self.ok(self.online("positions", "--consumer", "reader")))[0]["position"]
        self.assertEqual(stored, r[0]["position"])
        self.assertLess(stored, offs[2])
        self.assertGreaterEqual(stored, offs[1])
        self.ok(self.online("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", "latest"))
        row = lines(self.ok(self.online("positions", "--consumer", "reader")))[0]
        self.assertEqual((row["position"], row["lag"]), (more[-1], 0))
        # a new session of that consumer resumes after the stored position
        self.ok(self.online("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", more[1]))
        s = PollingSocket(self.b.port, "/", {"consumer": "reader"})
        try:
            self.assertTrue(s.call("subscribe", {"topic": "c-jobs"})["ok"])
            wait_until(lambda: (s.poll_once() or True) and len(s.deliveries()) >= 2, what="resumed deliveries")
            self.assertEqual([d[3] for d in s.deliveries()], more[1:])
        finally:
            s.close()

        # offline refuses writes; unknowns are exit 2
        self.fails(self.offline("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", "latest"), 1, "read-only")
        self.fails(self.online("positions", "--consumer", "nobody"), 2, "nobody")
        self.fails(self.offline("positions", "--consumer", "nobody"), 2, "nobody")
        self.fails(self.online("positions", "set", "--consumer", "reader", "--topic", "no-such-topic", "--to", "latest"), 2,
                   "unknown_topic")
        self.fails(self.online("positions", "set", "--consumer", "reader", "--topic", "c-jobs", "--to", "later"), 1, "--to")

    # ---- dead letters -----------------------------------------------------------------

    def test_dlq_list_and_redrive(self):
        s = PollingSocket(self.b.port, "/acks", {"consumer": "lazy"})
        try:
            self.assertTrue(s.call("subscribe", {"topic": "jobs", "mode": "ack"})["ok"])
            offs = self.b.publish([{"topic": "jobs", "event": "job", "id": "job-1", "data": {"task": "resize"}}], nsp="/acks")
            wait_until(lambda: (s.poll_once() or True) and s.deliveries(), what="the ack-mode delivery")  # never acked

            def dead():
                rows = lines(self.online("-n", "/acks", "dlq", "list").stdout)
                return rows if rows and rows[0]["count"] == 1 else None

            rows = wait_until(dead, what="the dead letter")
        finally:
            s.close()
        self.assertEqual(rows[0]["topic"], "$dlq.lazy")
        self.assertEqual(rows[0]["consumer"], "lazy")
        self.assertEqual(set(rows[0].keys()), {"topic", "consumer", "count", "head", "redriven_to"})
        self.assertEqual(lines(self.ok(self.offline("-n", "/acks", "dlq", "list"))), rows)

        letters = self.ok(self.online("--namespace", "/acks", "dlq", "list", "--consumer", "lazy"))
        self.assertEqual(letters, self.ok(self.offline("--namespace", "/acks", "dlq", "list", "--consumer", "lazy")))
        d = lines(letters)
        self.assertEqual(len(d), 1)
        self.assertEqual(d[0]["topic"], "$dlq.lazy")
        self.assertEqual(d[0]["data"], {"task": "resize"})
        self.assertEqual(d[0]["dlq"]["topic"], "jobs")
        self.assertEqual(d[0]["dlq"]["offset"], offs[0])
        self.assertEqual(d[0]["dlq"]["deliveries"], 1)
        self.assertIn("1 deliveries", d[0]["dlq"]["reason"])

        self.fails(self.offline("-n", "/acks", "dlq", "redrive", "--consumer", "lazy"), 1, "read-only")
        r = lines(self.ok(self.online("-n", "/acks", "dlq", "redrive", "--consumer", "lazy")))
        self.assertEqual(r, [{"consumer": "lazy", "redriven": 1, "position": d[0]["offset"]}])
        jobs = lines(self.ok(self.online("-n", "/acks", "replay", "--topic", "jobs")))
        self.assertEqual(len(jobs), 2)
        self.assertEqual(jobs[1]["data"], {"task": "resize"})
        self.assertEqual(jobs[1]["id"], "redrive:" + d[0]["offset"])
        self.assertEqual(lines(self.ok(self.online("-n", "/acks", "dlq", "list")))[0]["redriven_to"], d[0]["offset"])
        # nothing left to redrive
        self.assertEqual(lines(self.ok(self.online("-n", "/acks", "dlq", "redrive", "--consumer", "lazy"))),
                         [{"consumer": "lazy", "redriven": 0}])
        self.fails(self.online("-n", "/acks", "dlq", "redrive", "--consumer", "nobody"), 2, "unknown_topic")
        self.fails(self.online("-n", "/acks", "dlq", "list", "--consumer", "nobody"), 2, "nobody")
        self.fails(self.offline("-n", "/acks", "dlq", "list", "--consumer", "nobody"), 2, "nobody")

    # ---- bad input -------------------------------------------------------------------

    def test_unknown_topic_and_namespace_are_exit_2(self):
        for run in (self.online, self.offline):
            with self.subTest(mode=run.__name__):
                self.fails(run("replay", "--topic", "never-published"), 2, "never-published")
                self.fails(run("-n", "/nowhere", "topics"), 2, "/nowhere")

    def test_bad_arguments_are_exit_1_before_anything_is_contacted(self):
        for mode in (["--url", self.b.url], ["--data-dir", self.b.data_dir], ["--url", f"http://127.0.0.1:{closed_port()}"],
                     ["--data-dir", "/nonexistent/ferry"]):
            with self.subTest(mode=mode):
                self.fails(ferryctl(*mode, "replay", "--topic", "x", "--from", "yesterday"), 1, "--from")
                self.fails(ferryctl(*mode, "replay", "--topic", "x", "--from", "time:2026-11-26T10:00:00"), 1, "time zone")
                self.fails(ferryctl(*mode, "replay", "--topic", "x", "--to", "latest"), 1, "--to")
                self.fails(ferryctl(*mode, "replay", "--topic", "x", "--limit", "0"), 1)
                self.fails(ferryctl(*mode, "replay"), 1, "--topic")
                self.fails(ferryctl(*mode, "frobnicate"), 1)
        self.fails(ferryctl("--url", self.b.url, "--data-dir", self.b.data_dir, "topics"), 1, "excludes")
        self.fails(ferryctl("--url", self.b.url, "--format", "xml", "topics"), 1)
        for url in ("ftp://127.0.0.1:1", "127.0.0.1:7070", "http://127.0.0.1:99999", "https://127.0.0.1:1", "http://"):
            with self.subTest(url=url):
                self.fails(ferryctl("--url", url, "topics"), 1, "bad --url")

    def test_offsets_of_another_data_directory_are_refused(self):
        offs = self.b.publish([{"topic": "e-epoch", "data": 1}])
        epoch = offs[0].split("-")[0]
        foreign = ("00000001" if epoch != "00000001" else "00000002") + "-0000000000000001"
        for run in (self.online, self.offline):
            with self.subTest(mode=run.__name__):
                self.fails(run("replay", "--topic", "e-epoch", "--from", foreign), 1, "another data directory")

    def test_unreachable_broker_is_exit_3_quickly(self):
        t0 = time.monotonic()
        r = ferryctl("--url", f"http://127.0.0.1:{closed_port()}", "topics")
        self.fails(r, 3, "connection refused")
        self.assertLess(time.monotonic() - t0, 3)
        # a listener that never answers: the read timeout ends it
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        try:
            t0 = time.monotonic()
            r = ferryctl("--url", f"http://127.0.0.1:{srv.getsockname()[1]}", "--timeout", "500", "topics")
            self.fails(r, 3, "did not answer")
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            srv.close()

    def test_missing_unreadable_or_foreign_data_directory_is_exit_3(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.fails(ferryctl("--data-dir", os.path.join(tmp, "missing"), "topics"), 3, "does not exist")
            self.fails(ferryctl("--data-dir", tmp, "topics"), 3, "not a Ferry data directory")
            f = os.path.join(tmp, "file")
            with open(f, "w"):
                pass
            self.fails(ferryctl("--data-dir", f, "replay", "--topic", "x"), 3, "not a directory")

    def test_corrupt_data_directory_is_exit_5(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "copy")
            shutil.copytree(self.b.data_dir, copy, ignore=shutil.ignore_patterns("LOCK"))
            for m in glob.glob(os.path.join(copy, "MANIFEST-*")):
                with open(m, "rb") as f:
                    data = bytearray(f.read())
                for i in range(0, len(data), 7):
                    data[i] ^= 0x5A
                with open(m, "wb") as f:
                    f.write(bytes(data))
            self.fails(ferryctl("--data-dir", copy, "topics"), 5, "corrupt")

    def test_help_of_every_command_exits_0_and_documents_exit_codes(self):
        for cmd in ([], ["replay"], ["tail"], ["topics"], ["consumers"], ["positions"], ["positions", "set"], ["dlq"],
                    ["dlq", "list"], ["dlq", "redrive"], ["publish"], ["stats"]):
            with self.subTest(cmd=cmd):
                r = ferryctl(*cmd, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("Exit codes:", r.stdout)
                self.assertIn("5  storage corruption", r.stdout)
        self.assertIn("time:<ISO-8601>", ferryctl("replay", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
