#!/usr/bin/env python3
"""A real HTTP/1.1 backend for Tracetap's tests, on Python's http.server (keep-alive, 100-continue).

Prints `PORT <n>` once listening on 127.0.0.1. Routes:
  /echo            JSON of the method, path, headers (in order), body digest and trailers it received
  /upload          reads the body in pieces (Content-Length or chunked) and returns its length and sha256
  /download?size=N streams N bytes with a Content-Length, in 1 MiB writes
  /chunked         a chunked response with a trailer
  /gzip            a JSON body with Content-Encoding: gzip
  /slow?ms=N       sleeps, then echoes
  /status/N        answers status N with no body
  /ws              101 Switching Protocols, then echoes raw bytes until the client closes
  /orders          POST creates an order (not idempotent: every POST makes a new one), and so does PUT (a PUT
                   that breaks RFC 9110); GET counts them. No authentication: any caller sees the count
"""
import gzip, hashlib, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs


ORDERS = []
ORDERS_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body_pieces(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.trailers = []
                    while True:
                        line = self.rfile.readline()
                        if line in (b"\r\n", b"\n", b""):
                            return
                        self.trailers.append(line.decode().strip())
                left = size
                while left:
                    piece = self.rfile.read(min(left, 1 << 20))
                    left -= len(piece)
                    yield piece
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(left, 1 << 20))
                if not piece:
                    return
                left -= len(piece)
                yield piece

    def reply(self, status, body=b"", ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self):
        self.trailers = []
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/upload":
            digest, length = hashlib.sha256(), 0
            for piece in self.body_pieces():
                digest.update(piece)
                length += len(piece)
            return self.reply(200, json.dumps({"body_len": length, "sha256": digest.hexdigest()}).encode())
        if url.path == "/download":
            size = int(query.get("size", ["0"])[0])
            for _ in self.body_pieces():
                pass
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = bytes(range(256)) * 4096
            while size > 0:
                self.wfile.write(block[: min(size, len(block))])
                size -= len(block)
            return
        if url.path == "/gzip":
            body = gzip.compress(json.dumps({"items": list(range(50)), "note": "compressed"}).encode())
            return self.reply(200, body, extra=[("Content-Encoding", "gzip")])
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Checksum: 42\r\n\r\n")
            return
        if url.path.startswith("/status/"):
            for _ in self.body_pieces():
                pass
            return self.reply(int(url.path.split("/")[2]))
        if url.path == "/ws":
            self.send_response(101)
            self.send_header("Upgrade", self.headers.get("Upgrade", "websocket"))
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
            return
        if url.path == "/orders":
            body = b"".join(self.body_pieces())
            with ORDERS_LOCK:
                if self.command in ("POST", "PUT"):
                    ORDERS.append(body.decode("utf-8", "replace"))
                    return self.reply(201, json.dumps({"order": len(ORDERS), "status": "created"}).encode())
                return self.reply(200, json.dumps({"orders": len(ORDERS)}).encode())
        if url.path == "/slow":
            time.sleep(int(query.get("ms", ["500"])[0]) / 1000)
        body = b"".join(self.body_pieces())
        info = {
            "method": self.command, "path": self.path, "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "client_port": self.client_address[1],
            "body_len": len(body), "body": body.decode("latin-1"), "trailers": self.trailers,
        }
        self.reply(200, json.dumps(info).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = route


if __name__ == "__main__":
    # backend.py [PORT] [--tls CERT KEY]
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        at = args.index("--tls")
        tls = args[at + 1:at + 3]
        del args[at:at + 3]
    server = ThreadingHTTPServer(("127.0.0.1", int(args[0]) if args else 0), Handler)
    server.daemon_threads = True
    if tls:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
