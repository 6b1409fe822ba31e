#!/usr/bin/env python3
"""Text is stored as sent, and every --json line is strict JSON: a property test of `ihs` against
Python's json module, the reference parser and the most common producer of JSON lines.

  text_test.py IHS_BINARY IHSD_BINARY

Random Unicode strings (every plane, controls, quotes, backslashes) are written by json.dumps,
half with ensure_ascii (so every non-ASCII character is a \\u escape, surrogate pairs included),
appended to a store directly and through ihsd, and read back with --json: what is read back equals
what was sent, and every output line parses with json.loads. Bounded: 400 strings, one ihsd.
"""
import json
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402
import tempfile
import time

IHS, IHSD = sys.argv[1], sys.argv[2]
CHECKS = Checks()
check = CHECKS.check


def run(args, stdin="", want=0, name=None):
    p = subprocess.run([IHS] + args, input=stdin.encode(), capture_output=True, timeout=120)
    check(name or " ".join(args[:2]), p.returncode == want,
          f"exit {p.returncode}, want {want}: {p.stderr.decode(errors='replace')[:500]}")
    return p


def strict_lines(name, out):
    """Every line must be one strict JSON value (UTF-8, no NaN, nothing after it)."""
    values = []
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        check(name + ": output is UTF-8", False, str(e))
        return values
    for line in text.splitlines():
        try:
            values.append(json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(
                ValueError("not JSON: " + c))))
        except ValueError as e:
            check(name + ": strict JSON", False, f"{e}: {line[:300]!r}")
    checks_ok = len(values) == len(text.splitlines())
    check(name + ": every line parses", checks_ok)
    return values


def random_text(rng):
    out = []
    for _ in range(rng.randrange(1, 30)):
        r = rng.randrange(6)
        if r == 0:
            cp = rng.randrange(0x00, 0x80)          # ASCII, controls included
        elif r == 1:
            cp = rng.choice([0x22, 0x5c, 0x2f, 0x27, 0x1b, 0x7f, 0x00])  # " \ / ' ESC DEL NUL
        elif r == 2:
            cp = rng.randrange(0x80, 0x800)
        elif r == 3:
            cp = rng.choice([rng.randrange(0x800, 0xD800), rng.randrange(0xE000, 0x10000)])
        else:
            cp = rng.randrange(0x10000, 0x110000)   # surrogate pairs when escaped
        if cp == 0:
            cp = 0x20  # NUL is refused in text (the store's rule), tested apart below
        out.append(chr(cp))
    return "".join(out)


def event_line(rng, n, stream, text, ascii_only):
    ev = {
        "id": "%032x" % (0x7e570000000000000000000000000000 + n),
        "streamId": stream,
        "occurredAt": "2026-11-01T10:00:00Z",
        "sourceSystem": text[:5],
        "touchpoint": {"channel": "email", "direction": "inbound", "type": "message",
                       "topics": [text[-3:]], "threadId": text},
        "content": {"subject": text[::-1], "text": text},
    }
    return json.dumps(ev, ensure_ascii=ascii_only)


def main():
    rng = random.Random(20261204)
    tmp = tempfile.mkdtemp()
    data = os.path.join(tmp, "data")
    streams = ["customer-o'neil", "customer-zo\u00eb", "kunde-\u00e9\u00e8", "\u9867\u5ba2-1",
               "emoji-\U0001F600", "plain-ascii"]
    sent = {}  # stream -> [texts in order]
    lines = []
    for n in range(400):
        stream = streams[n % len(streams)]
        text = random_text(rng)
        lines.append(event_line(rng, n, stream, text, ascii_only=(n % 2 == 0)))
        sent.setdefault(stream, []).append(text)

    # 1. Into a data directory, with acknowledgements as JSON.
    p = run(["append", "--data", data, "--json"], "\n".join(lines) + "\n", name="append --json")
    acks = strict_lines("append --json", p.stdout)
    check("one ack per event", len(acks) == len(lines), f"{len(acks)} acks")
    check("acks name the streams as sent",
          sorted({a.get("stream") for a in acks}) == sorted(streams),
          repr(sorted({a.get("stream") for a in acks})))

    def read_back(where, label):
        for stream, texts in sent.items():
            p = run(["read", *where, stream, "--json", "--limit", "1000"], name=f"{label} read")
            events = strict_lines(f"{label} read {stream!r}", p.stdout)
            got = [e.get("content", {}).get("text") for e in events]
            check(f"{label}: texts of {stream!r} read back as sent", got == texts,
                  next((f"sent {a!r}, read {b!r}" for a, b in zip(texts, got) if a != b),
                       f"{len(got)} of {len(texts)}"))
            subjects = [e.get("content", {}).get("subject") for e in events]
            check(f"{label}: subjects of {stream!r}", subjects == [t[::-1] for t in texts])
            threads = [e.get("touchpoint", {}).get("threadId") for e in events]
            check(f"{label}: thread ids of {stream!r}", threads == texts)

    read_back(["--data", data], "data")
    p = run(["tail", "--data", data, "--from", "0", "--limit", "1000", "--json"], name="tail")
    check("tail shows every event", len(strict_lines("tail --json", p.stdout)) == len(lines))
    for cmd in (["stats"], ["verify"], ["audit", "head"], ["audit", "pubkey"]):
        p = run([*cmd, "--data", data, "--json"], name=" ".join(cmd))
        strict_lines(" ".join(cmd) + " --json", p.stdout)
    p = run(["timeline", streams[0], "--data", data, "--json"], name="timeline")
    strict_lines("timeline --json", p.stdout)
    p = run(["audit", "replay", streams[1], "--data", data, "--position", "399", "--json"],
            name="replay")
    strict_lines("audit replay --json", p.stdout)

    # 2. What the store refuses, with exit 2 and nothing stored.
    head_before = json.loads(run(["stats", "--data", data, "--json"]).stdout)["events"]
    bad = {
        "lone surrogate": '{"id":"7e5700000000000000000000000fffff","streamId":"x",'
                          '"occurredAt":"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms",'
                          '"direction":"inbound","type":"message"},"content":{"text":"\\ud83d"}}',
        "NUL in text": '{"id":"7e5700000000000000000000000ffffe","streamId":"x",'
                       '"occurredAt":"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms",'
                       '"direction":"inbound","type":"message"},"content":{"text":"a\\u0000b"}}',
        "two event types": '{"id":"7e5700000000000000000000000ffffd","streamId":"x",'
                           '"occurredAt":"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms",'
                           '"direction":"inbound","type":"message"},'
                           '"partyProfile":{"kind":"customer"}}',
        "fractional enum": '{"id":"7e5700000000000000000000000ffffc","streamId":"x",'
                           '"occurredAt":"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms",'
                           '"direction":1.5,"type":"message"}}',
    }
    for name, line in bad.items():
        p = run(["append", "--data", data], line + "\n", want=2, name=f"{name} is refused (2)")
    p = subprocess.run([IHS, "append", "--data", data], input=b'{"streamId":"x"}\x00\n',
                       capture_output=True, timeout=60)
    check("a NUL after the object is refused (2)", p.returncode == 2, p.stderr.decode(errors="replace")[:200])
    p = subprocess.run([IHS, "append", "--data", data, "--stream", "x"],
                       input=b'{"id":"7e5700000000000000000000000ffffb","occurredAt":'
                             b'"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms","direction":'
                             b'"inbound","type":"message"},"content":{"text":"caf\xe9"}}\n',
                       capture_output=True, timeout=60)
    check("invalid UTF-8 is refused (2)", p.returncode == 2, p.stderr.decode(errors="replace")[:200])
    head_after = json.loads(run(["stats", "--data", data, "--json"]).stdout)["events"]
    check("nothing stored by bad input", head_before == head_after, f"{head_before} -> {head_after}")

    # 3. Through ihsd: the client parses the JSON, the server stores it.
    tokens = os.path.join(tmp, "tokens")
    wtok = json.loads(run(["token", "new", "--tokens", tokens, "--role", "writer", "--name", "w",
                           "--json"]).stdout)["token"]
    rtok = json.loads(run(["token", "new", "--tokens", tokens, "--role", "reader", "--name", "r",
                           "--json"]).stdout)["token"]
    served = os.path.join(tmp, "served")
    ihsd = subprocess.Popen([IHSD, "--data", served, "--listen", "127.0.0.1:0", "--tokens", tokens],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        addr = None
        deadline = time.time() + 30
        while addr is None and time.time() < deadline:
            line = ihsd.stdout.readline().decode()
            m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
            if m:
                addr = m.group(1)
            if "ready" in line and addr:
                break
        check("ihsd started", addr is not None)
        if addr:
            p = run(["append", "--connect", addr, "--token", wtok, "--json"],
                    "\n".join(lines) + "\n", name="append over RPC")
            check("acks over RPC", len(strict_lines("append --connect --json", p.stdout)) == len(lines))
            read_back(["--connect", addr, "--token", rtok], "rpc")
    finally:
        ihsd.terminate()
        ihsd.wait(timeout=30)

    return CHECKS.finish()


if __name__ == "__main__":
    sys.exit(main())
