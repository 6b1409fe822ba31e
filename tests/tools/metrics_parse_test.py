"""ihsd's /metrics read by a Prometheus text-format parser nobody here wrote (Debian's
python3-prometheus-client), before and after a load: every family parses with its declared type,
histograms are well formed, and the counters move with the appends.

    python3 tests/tools/metrics_parse_test.py BIN_DIR WORK_DIR

Starts its own ihsd on loopback and ends it by its PID; bounded (every wait has a timeout).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

bin_dir, work = sys.argv[1], sys.argv[2]
ihs, ihsd = os.path.join(bin_dir, "ihs"), os.path.join(bin_dir, "ihsd")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
tokens = os.path.join(work, "tokens")
admin = json.loads(subprocess.check_output(
    [ihs, "token", "new", "--tokens", tokens, "--role", "admin", "--name", "ops", "--json"]))["token"]
writer = json.loads(subprocess.check_output(
    [ihs, "token", "new", "--tokens", tokens, "--role", "writer", "--name", "w", "--json"]))["token"]
server = subprocess.Popen([ihsd, "--data", os.path.join(work, "data"), "--tokens", tokens,
                           "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, text=True)
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


try:
    rpc = http = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            rpc = rpc or line.split()[2]
        if line.startswith("http on "):
            http = http or line.split()[2]
        if line.startswith("ready"):
            break
    assert rpc and http, "ihsd did not get ready"

    def scrape():
        req = urllib.request.Request(f"http://{http}/metrics",
                                     headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
                  "the content type is the text format 0.0.4")
            return {f.name: f for f in text_string_to_metric_families(r.read().decode())}

    before = scrape()
    lines = "".join(json.dumps({
        "streamId": f"c-{i % 7}", "occurredAt": 1700000000000000 + i, "sourceSystem": "crm",
        "touchpoint": {"channel": "email", "direction": "inbound", "type": "message"}}) + "\n"
        for i in range(50))
    for chunk in range(5):  # five appends of ten events, one per line group
        part = "".join(lines.splitlines(keepends=True)[chunk * 10:(chunk + 1) * 10])
        subprocess.run([ihs, "append", "--connect", rpc, "--token", writer, "--new-ids"],
                       input=part, text=True, check=True, stdout=subprocess.DEVNULL, timeout=60)
    after = scrape()

    expected = {"ihs_events": "gauge", "ihs_appends": "counter", "ihs_appended_events": "counter",
                "ihs_group_commit_appends": "histogram",
                "ihs_group_commit_write_seconds": "histogram", "ihs_rpc_calls": "counter",
                "ihs_projection_lag_events": "gauge", "ihs_console_sessions": "gauge"}
    for name, kind in expected.items():
        check(name in after and after[name].type == kind, f"{name} parses as a {kind}")

    def value(families, name, suffix="", labels=None):
        for s in families[name].samples:
            if s.name == name + suffix and (labels is None or all(
                    s.labels.get(k) == v for k, v in labels.items())):
                return s.value
        return None

    check(value(after, "ihs_events") - value(before, "ihs_events") == 50, "ihs_events grew by 50")
    check(value(after, "ihs_appended_events", "_total") -
          value(before, "ihs_appended_events", "_total") == 50,
          "ihs_appended_events_total grew by 50")
    check(value(after, "ihs_appends", "_total") - value(before, "ihs_appends", "_total") >= 5,
          "ihs_appends_total counted the appends (each line is its own append or more)")
    appends_ok = sum(s.value for s in after["ihs_rpc_calls"].samples
                     if s.labels.get("method") in ("append", "appendMulti")
                     and s.labels.get("outcome") == "ok")
    check(appends_ok >= 5, "ihs_rpc_calls_total counted the appends by method and outcome")
    buckets = [s for s in after["ihs_group_commit_appends"].samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    check(counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf",
          "the group-commit histogram's buckets are cumulative and end at +Inf")
    check(value(after, "ihs_group_commit_appends", "_count") == counts[-1],
          "its _count equals its +Inf bucket")
finally:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
sys.exit(1 if failures else 0)
