#!/usr/bin/env python3
"""Resource limits of the release proxy, on loopback:

    Tests/Benchmarks/limits.py

1. 10,000 concurrent connections, each sending a request (keep-alive) and reading its answer, then all
   held open at once: how many were answered, the proxy's RSS with them open.
2. The file-descriptor limit: the proxy started with a limit of 1,024 while 2,000 clients connect and stay.
   It must not crash, must serve as many as its descriptors allow (each with its upstream connection),
   must say so on stderr, must leave the excess waiting in the listen queue, and must serve new requests
   once the clients are gone.
3. Backpressure: 20 clients ask for 1 MiB each and never read; the proxy's RSS must stay bounded (it
   stops reading from the upstream instead of buffering), and another client is served meanwhile.

Prints a JSON report; exits 1 if a check fails."""
import json, os, resource, selectors, socket, subprocess, sys, tempfile, time
from harness import BINARY, free_port, nginx_backend, rss_kib, stop_all, wait_port









def get(port, path="/small", timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def start_proxy(port, backend, work, nofile=None):
    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    log = open(f"{work}/proxy-{port}.log", "w")
    proxy = subprocess.Popen([BINARY, "proxy", "--quiet", "--admin", "off", "--no-capture", "--no-rules", "--listen", f"127.0.0.1:{port}",
                              "--upstream", f"http://127.0.0.1:{backend}", "--idle-timeout", "120s"], stderr=log, preexec_fn=limit)
    assert wait_port(port), "the proxy did not start"
    return proxy


def many_connections(port, count, seconds=120):
    """Opens `count` connections, sends a request on each, reads each answer; returns (answered, sockets)."""
    selector = selectors.DefaultSelector()
    sockets, answered, refused = [], 0, 0
    request = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            refused += 1
            continue
        sockets.append(s)
        selector.register(s, selectors.EVENT_WRITE, b"")
    end = time.time() + seconds
    pending = len(sockets)
    while pending and time.time() < end:
        for key, events in selector.select(timeout=1):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                try:
                    s.send(request)
                    selector.modify(s, selectors.EVENT_READ, b"")
                except OSError:
                    selector.unregister(s)
                    pending -= 1
            elif events & selectors.EVENT_READ:
                try:
                    data = key.data + s.recv(4096)
                except OSError:
                    data = None
                if not data:
                    selector.unregister(s)
                    pending -= 1
                elif b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= 100:
                    answered += data.startswith(b"HTTP/1.1 200")
                    selector.unregister(s)
                    pending -= 1
                else:
                    selector.modify(s, selectors.EVENT_READ, data)
    return answered, sockets


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 12_000:
        sys.exit(f"limits: needs a file-descriptor limit of at least 12,000 (the hard limit is {hard})")
    work = tempfile.mkdtemp(prefix="tracetap-limits-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    processes, report, ok = [], {}, True
    try:
        backend, nginx = nginx_backend(work, {"small": 100, "1m": 1 << 20}, connections=20_000)
        processes.append(nginx)

        # 1. Ten thousand at once.
        port = free_port()
        proxy = start_proxy(port, backend, work, nofile=hard)
        processes.append(proxy)
        rss_before = rss_kib(proxy.pid)
        started = time.time()
        answered, sockets = many_connections(port, 10_000)
        report["10k"] = {"answered": answered, "seconds": round(time.time() - started, 1), "rss_kib_idle": rss_before,
                         "rss_kib_with_10k_open": rss_kib(proxy.pid), "proxy_alive": proxy.poll() is None}
        for s in sockets:
            s.close()
        ok &= answered == 10_000 and proxy.poll() is None
        proxy.terminate()
        proxy.wait(timeout=20)

        # 2. The descriptor limit.
        port = free_port()
        proxy = start_proxy(port, backend, work, nofile=1024)
        processes.append(proxy)
        answered, sockets = many_connections(port, 2_000, seconds=20)
        alive = proxy.poll() is None
        for s in sockets:
            s.close()
        time.sleep(1)
        after = get(port) if alive else 0
        log = open(f"{work}/proxy-{port}.log").read()
        report["fd_limit_1024"] = {"clients": 2_000, "answered_while_over": answered, "proxy_alive": alive,
                                   "said_so": "limit reached" in log, "request_after": after}
        ok &= alive and "limit reached" in log and after == 200 and answered > 0
        proxy.terminate()
        proxy.wait(timeout=20)

        # 3. Clients that stop reading.
        port = free_port()
        proxy = start_proxy(port, backend, work, nofile=hard)
        processes.append(proxy)
        rss_before = rss_kib(proxy.pid)
        stalled = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /1m HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(s)
        time.sleep(3)
        rss_stalled = rss_kib(proxy.pid)
        other = get(port)
        report["stalled_readers"] = {"clients": 20, "mib_requested": 20, "rss_kib_before": rss_before, "rss_kib_stalled": rss_stalled,
                                     "growth_kib": rss_stalled - rss_before, "other_client": other}
        # Without backpressure the proxy would hold most of the 20 MiB; with it, a few socket buffers.
        ok &= rss_stalled - rss_before < 12 * 1024 and other == 200
        for s in stalled:
            s.close()
    finally:
        stop_all(processes, work)
    print(json.dumps(report, indent=1))
    print("limits: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
