import Foundation
import Testing
import TracetapCore

/// RFC 9112 strictness over a real socket: a refused request gets its status and a closed connection,
/// and the upstream never sees it.
@Suite struct StrictParsingTests {
    static let malformed: [(String, String, Int)] = [
        ("Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("two differing Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("Transfer-Encoding not ending in chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
        ("bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
        ("NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400),
        ("control byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{7}c\r\n\r\n", 400),
        ("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("no Host in HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        ("HTTP/2 preface on the HTTP/1.1 port", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ]

    @Test(arguments: malformed)
    func refusedRequestsAreAnsweredAndClosedAndNeverForwarded(name: String, request: String, status: Int) throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))) { upstream, proxy, client in
            client.send(request)
            let response = try client.readResponse()
            #expect(response.status == status, "\(name)")
            #expect(response.header("Connection") == "close")
            #expect(response.text.contains("trace "))
            #expect(client.peerClosed(), "\(name): connection left open")
            let record = try #require(proxy.sink.wait(for: 1).first)
            #expect(record.status == status && record.failure == .malformedRequest)
            #expect(upstream.accepted.load(ordering: .relaxed) == 0, "\(name) reached the upstream")
        }
    }

    static let badChunks = ["zz\r\nhello\r\n0\r\n\r\n", "fffffffffffffffffff\r\n", "5\r\nhelloXX0\r\n\r\n"]

    @Test(arguments: badChunks)
    func aBadChunkIs400AndTheUpstreamNeverGetsAWholeRequest(chunks: String) throws {
        try withProxy(in: FakeUpstream { socket, upstream in
                let head = (try? socket.read(until: "\r\n\r\n")) ?? ""
                // A complete chunked body would end with the last-chunk and an empty trailer section.
                let body = (try? socket.read(until: "0\r\n\r\n")) ?? "<incomplete>"
                upstream.note(head + body)
                socket.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            }) { upstream, proxy, client in
            client.send("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(client.peerClosed())
            usleep(100_000)
            #expect(upstream.notes.allSatisfy { $0.hasSuffix("<incomplete>") })
        }
    }

    @Test func sizeLimitsHaveTheirOwnStatus() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))) { upstream, proxy, client in
            let longTarget = "/" + String(repeating: "a", count: 9000)
            let manyFields = (0..<101).map { "X-F\($0): v\r\n" }.joined()
            let bigHead = (0..<70).map { "X-B\($0): \(String(repeating: "b", count: 1000))\r\n" }.joined()
            for (request, status) in [("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", 414),
                                      ("GET / HTTP/1.1\r\nHost: a\r\n\(manyFields)\r\n", 431),
                                      ("GET / HTTP/1.1\r\nHost: a\r\n\(bigHead)\r\n", 431)] {
                let client = try proxy.connect()
                defer { client.close() }
                client.send(request)
                #expect(try client.readResponse().status == status)
                #expect(client.peerClosed())
            }
            // Just under the limits passes.
            let fine = try proxy.get("/" + String(repeating: "a", count: 8000), headers: (0..<98).map { "X-F\($0): v" })
            #expect(fine.status == 200)
            #expect(upstream.accepted.load(ordering: .relaxed) == 1)
        }
    }

    @Test func aSlowlorisClientGets408AndTheConnectionCloses() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")), { $0.headerTimeout = 0.5 }) { upstream, proxy, client in
            let started = Date()
            // One header byte every 100 ms: each arrives in time, but the head as a whole does not.
            var answered = false
            for byte in "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".utf8 {
                client.send([byte])
                usleep(100_000)
                if Date().timeIntervalSince(started) > 0.8 { answered = true; break }
            }
            #expect(answered)
            let response = try client.readResponse()
            #expect(response.status == 408)
            #expect(client.peerClosed())
            #expect(Date().timeIntervalSince(started) < 3)
            #expect(upstream.accepted.load(ordering: .relaxed) == 0)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosed() throws {
        try withProxy(in: FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")), { $0.idleTimeout = 0.4 }) { upstream, proxy, client in
            let client = try proxy.connect(timeout: 5)
            defer { client.close() }
            client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            let idleFrom = Date()
            #expect(client.peerClosed())
            let idled = Date().timeIntervalSince(idleFrom)
            #expect(idled > 0.3 && idled < 2)
        }
    }
}
