#!/usr/bin/env python3
"""Soak: mixed traffic through the release proxy for a long time, and what must hold at the end.

    Tests/Benchmarks/soak.py [--seconds 600]

Backend: nginx (one worker) serving /small (100 B) and /1m (1 MiB). Four wrk loads at once, as fast as they
go: small over 32 keep-alive connections, 1 MiB over 4, small with `Connection: close` on every request
over 8, and /fault/small over 4, where a rule aborts (503), resets or delays 5% of the requests
(probability 0.05 each). The proxy records everything (capture on, the default 1 MiB body cap).

Reports, and exits 1 unless all hold: errors that were not injected (non-2xx outside /fault, socket
errors) are 0; RSS at the end within 10% of RSS a quarter into the run (sampled every 10 s); open file descriptors back to the
idle count once pooled upstream connections idled out; every exchange the proxy counted is on disk (written == exchanges, none lost)."""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request
from harness import BINARY, free_port, nginx_backend, rss_kib, stop_all, wait_port









def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def status(admin):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/status", timeout=5))


def wrk(url, connections, seconds, headers=()):
    # A 10 s timeout: with --capture-lossless a request may wait seconds for the disk, which is not an error.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    for h in headers:
        command += ["-H", h]
    return subprocess.Popen(command + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(text):
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text)) if "Socket errors" in text else 0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    return {"requests": requests, "non_2xx": non2xx, "socket_errors": socket_errors, "per_second": rate}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--big-conns", type=int, default=4, help="connections asking for 1 MiB (0: none)")
    parser.add_argument("--lossless", action="store_true", help="run the proxy with --capture-lossless")
    options = parser.parse_args()
    if not shutil.which("wrk") or not os.path.exists("/usr/sbin/nginx"):
        sys.exit("soak: needs wrk and nginx (../shared/bench/setup.sh installs them)")
    work = tempfile.mkdtemp(prefix="tracetap-soak-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    os.makedirs(os.path.join(work, "rules"))
    json.dump({"rules": [
        {"name": "abort", "match": {"path": "/fault/*"}, "probability": 0.05, "faults": [{"type": "abort", "status": 503}]},
        {"name": "reset", "match": {"path": "/fault/*"}, "probability": 0.05, "faults": [{"type": "reset"}]},
        {"name": "delay", "match": {"path": "/fault/*"}, "probability": 0.05, "faults": [{"type": "delay", "ms": 50}]},
    ]}, open(os.path.join(work, "rules/soak.json"), "w"))
    port, admin = free_port(), free_port()
    processes = []
    try:
        backend, nginx = nginx_backend(work, {"small": 100, "1m": 1 << 20, "fault/small": 100})
        processes.append(nginx)
        proxy = subprocess.Popen([BINARY, "proxy", "--quiet", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                                  "--upstream", f"http://127.0.0.1:{backend}", "--capture", f"{work}/captures", "--rules", f"{work}/rules",
                                  "--seed", "7", "--upstream-idle", "2s"] + (["--capture-lossless"] if options.lossless else []),
                                 stderr=open(f"{work}/proxy.log", "w"))
        processes.append(proxy)
        assert wait_port(port), "the proxy did not start"
        idle_fds = fds(proxy.pid)
        base = f"http://127.0.0.1:{port}"
        loads = {
            "small keep-alive (32 conns)": wrk(base + "/small", 32, options.seconds),
            f"1 MiB keep-alive ({options.big_conns} conns)": wrk(base + "/1m", options.big_conns, options.seconds),
            "small Connection: close (8 conns)": wrk(base + "/small", 8, options.seconds, ["Connection: close"]),
            "faults 5% abort/reset/delay (4 conns)": wrk(base + "/fault/small", 4, options.seconds),
        }
        if options.big_conns == 0:
            loads.pop("1 MiB keep-alive (0 conns)").kill()
        # RSS every 10 s: growth that keeps going is a leak; a rise that levels off is buffers reaching their
        # working size. "Flat" compares the end with the first sample after a quarter of the run.
        samples = []
        deadline = time.time() + options.seconds
        while time.time() < deadline - 1:
            time.sleep(min(10, max(0, deadline - time.time() - 1)))
            samples.append(rss_kib(proxy.pid))
        rss_start = samples[max(0, len(samples) // 4)] if samples else rss_kib(proxy.pid)
        results = {}
        for name, load in loads.items():
            out, _ = load.communicate(timeout=options.seconds + 120)
            results[name] = parse_wrk(out)
        rss_end = rss_kib(proxy.pid)
        time.sleep(5)  # pooled upstream connections idle out (--upstream-idle 2s); the writer catches up
        end_fds = fds(proxy.pid)
        end_status = status(admin)
        capture = end_status["capture"]
        unexpected = sum(r["non_2xx"] + r["socket_errors"] for n, r in results.items() if not n.startswith("faults"))
        total = sum(r["requests"] for r in results.values())
        report = {
            "seconds": options.seconds, "requests": total, "per_second": round(sum(r["per_second"] for r in results.values())),
            "loads": results, "errors_not_injected": unexpected,
            "faults_injected": results["faults 5% abort/reset/delay (4 conns)"]["non_2xx"] + results["faults 5% abort/reset/delay (4 conns)"]["socket_errors"],
            "rss_kib": {"at_a_quarter": rss_start, "end": rss_end, "change": round((rss_end - rss_start) / rss_start, 3), "every_10s": samples},
            "fds": {"idle": idle_fds, "end": end_fds},
            "exchanges": end_status["exchanges"], "captured": capture["written"], "capture_lost": capture["lost"],
        }
        print(json.dumps(report, indent=1))
        ok = (unexpected == 0 and abs(rss_end - rss_start) <= 0.10 * rss_start and end_fds <= idle_fds
              and capture["lost"] == 0 and capture["written"] == end_status["exchanges"])
        print("soak: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        stop_all(processes, work)


if __name__ == "__main__":
    sys.exit(main())
