import Foundation
import Testing
import TracetapCore

/// Exact bytes on both sides, against a scripted upstream.
@Suite struct ByteExactTests {
    @Test func hopByHopHeadersAreStrippedBothWaysAndTheRestKeepOrderAndCase() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering(
                "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n"
                + "Trailer: X-T\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nX-MiXeD: v\r\nContent-Length: 2\r\n\r\nok"))) { upstream, proxy, client in
            let response = try proxy.get("/p?q=1", headers: [
                "Connection: keep-alive, X-Req-Hop", "X-Req-Hop: secret", "Keep-Alive: timeout=5", "TE: trailers",
                "Trailer: X-T", "Proxy-Authorization: Basic Zm9v", "Proxy-Connection: keep-alive", "x-lower: a", "X-UPPER: b", "X-Dup: 1", "X-Dup: 2",
            ])
            #expect(response.status == 200 && response.text == "ok")
            let seen = try #require(upstream.notes.first)
            for hop in ["X-Req-Hop", "Keep-Alive", "TE:", "Trailer", "Proxy-Authorization", "Proxy-Connection", "Connection"] {
                #expect(!seen.lowercased().contains(hop.lowercased()), "\(hop) reached the upstream")
            }
            #expect(seen.hasPrefix("GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:\(upstream.port)\r\n"))
            #expect(seen.contains("\r\nx-lower: a\r\nX-UPPER: b\r\nX-Dup: 1\r\nX-Dup: 2\r\n"))

            for hop in ["X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Connection"] {
                #expect(!response.rawHead.lowercased().contains(hop.lowercased() + ":"), "\(hop) reached the client")
            }
            #expect(response.rawHead.contains("\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nX-MiXeD: v\r\n"))
        }
    }

    @Test func aCloseDelimitedResponseIsRechunkedSoTheClientKeepsItsConnection() throws {
        try withProxy(in: FakeUpstream { socket, upstream in
                _ = try? socket.read(until: "\r\n\r\n")
                socket.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length, ends at close")
            }) { upstream, proxy, client in
            for _ in 0..<2 {
                client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.header("Transfer-Encoding") == "chunked")
                #expect(response.text == "no length, ends at close")
            }
            #expect(upstream.accepted.load(ordering: .relaxed) == 2)
        }
    }

    @Test func http10ClientsGetACloseDelimitedBody() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))) { upstream, proxy, client in
            client.send("GET / HTTP/1.0\r\n\r\n")
            let raw = String(decoding: client.readToEnd(), as: UTF8.self)
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(!raw.lowercased().contains("transfer-encoding"))
            #expect(raw.hasSuffix("\r\n\r\nhello"))
        }
    }

    @Test func anAmbiguousUpstreamResponseIsA502NotAForward() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))) { upstream, proxy, client in
            let response = try proxy.get("/")
            #expect(response.status == 502)
            let trace = try #require(response.header("traceresponse")?.split(separator: "-")[1])
            #expect(response.text.contains("malformed") && response.text.contains("trace \(trace)"))
            #expect(proxy.sink.wait(for: 1).first?.failure == .upstreamMalformed)
        }
    }

    @Test func aTruncatedUpstreamBodyClosesTheClientInsteadOfPretending() throws {
        try withProxy(in: FakeUpstream { socket, _ in
                _ = try? socket.read(until: "\r\n\r\n")
                socket.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
            }) { upstream, proxy, client in
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try client.read(until: "\r\n\r\n")
            #expect(head.contains("Content-Length: 100"))
            let rest = client.readToEnd()
            #expect(String(decoding: rest, as: UTF8.self) == "only ten b")
            let record = try #require(proxy.sink.wait(for: 1).first)
            #expect(record.failure == .upstreamClosedEarly)
            #expect(record.responseBodyBytes == 10)
        }
    }
}
