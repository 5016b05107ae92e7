import Foundation
import Testing
import TracetapCore

/// End to end through a real backend (Python's http.server, Tests/Fixtures/backend.py) over loopback.
@Suite struct ForwardingTests {
    /// The headers the backend received, as [name, value] pairs in order.
    func backendHeaders(_ response: TestResponse) throws -> [(String, String)] {
        let pairs = try #require(try response.json()["headers"] as? [[String]])
        return pairs.map { ($0[0], $0[1]) }
    }

    func value(_ headers: [(String, String)], _ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    @Test func tagsEveryRequestAndEchoesTheTraceToTheClient() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            let response = try proxy.get("/echo?x=1", headers: ["X-Forwarded-For: 10.1.2.3", "User-Agent: t"])
            #expect(response.status == 200)
            let seen = try backendHeaders(response)
            let traceparent = try #require(value(seen, "traceparent").first)
            #expect(traceparent.count == 55 && traceparent.hasPrefix("00-") && traceparent.hasSuffix("-03"))
            #expect(value(seen, "X-Request-ID").first?.count == 32)
            #expect(value(seen, "Via") == ["1.1 tracetap"])
            #expect(value(seen, "X-Forwarded-For") == ["10.1.2.3, 127.0.0.1"])
            #expect(value(seen, "X-Forwarded-Proto") == ["http"])
            #expect(value(seen, "X-Forwarded-Host") == ["test.local"])
            #expect(value(seen, "Host") == ["127.0.0.1:\(backend.port)"])
            #expect(value(seen, "User-Agent") == ["t"])
            // The client sees the same trace: traceresponse carries the proxy's span, as sent upstream.
            #expect(response.header("traceresponse") == traceparent)
            #expect(response.header("X-Request-ID") == value(seen, "X-Request-ID").first)
            #expect(response.header("Via") == "1.1 tracetap")

            let record = try #require(proxy.sink.wait(for: 1).first)
            #expect(record.trace.traceID.description == String(traceparent.dropFirst(3).prefix(32)))
            #expect(record.status == 200)
            #expect(record.failure == nil)
            let t = record.timings
            #expect(t.headReceived >= 0 && t.bodyReceived >= t.headReceived && t.connect >= 0)
            #expect(t.requestSent >= t.bodyReceived && t.firstResponseByte >= t.requestSent && t.responseComplete >= t.firstResponseByte)
            #expect(record.clientAddress == "127.0.0.1")
            #expect(!record.upstreamReused)
        }
    }

    @Test func continuesAnIncomingTraceAndKeepsTracestateAndRequestID() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let response = try proxy.get("/echo", headers: ["traceparent: \(incoming)", "tracestate: vendor=1", "X-Request-ID: my-request-1"])
            let seen = try backendHeaders(response)
            let sent = try #require(value(seen, "traceparent").first)
            #expect(sent.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
            #expect(!sent.contains("00f067aa0ba902b7"))
            #expect(sent.hasSuffix("-01"))
            #expect(value(seen, "tracestate") == ["vendor=1"])
            #expect(value(seen, "X-Request-ID") == ["my-request-1"])
            #expect(response.header("traceresponse") == sent)
            #expect(proxy.sink.wait(for: 1).first?.trace.parentSpanID?.description == "00f067aa0ba902b7")

            let restarted = try proxy.get("/echo", headers: ["traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01", "tracestate: vendor=1"])
            let restartedSeen = try backendHeaders(restarted)
            #expect(value(restartedSeen, "traceparent").first?.contains("00000000000000000000000000000000") == false)
            #expect(value(restartedSeen, "tracestate").isEmpty)
        }
    }

    @Test func keepAliveReusesOneUpstreamConnection() throws {
        try withProxy(in: PythonBackend(), { $0.threads = 1 }) { backend, proxy, client in
            for i in 0..<20 {
                client.send("GET /echo?n=\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(try response.json()["path"] as? String == "/echo?n=\(i)")
            }
            let stats = proxy.server.stats.snapshot
            #expect(stats.upstreamConnects == 1)
            #expect(stats.upstreamReuses == 19)
            #expect(stats.clientConnectionsTotal == 1)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("GET /slow?ms=150 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /echo?third HTTP/1.1\r\nHost: a\r\n\r\n")
            let first = try client.readResponse()
            let second = try client.readResponse()
            let third = try client.readResponse()
            #expect(try first.json()["path"] as? String == "/slow?ms=150")
            #expect(try second.json()["body"] as? String == "hello")
            #expect(try third.json()["path"] as? String == "/echo?third")
        }
    }

    @Test func forwardsContentLengthAndChunkedRequestBodiesWithTrailers() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
            #expect(try client.readResponse().json()["body"] as? String == "hello world")
            client.send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n")
            let chunked = try client.readResponse().json()
            #expect(chunked["body"] as? String == "hello world")
            #expect(chunked["trailers"] as? [String] == ["X-Sum: 9"])
            let headers = try #require(chunked["headers"] as? [[String]])
            #expect(headers.contains(["Transfer-Encoding", "chunked"]))
            #expect(!headers.contains { $0[0].lowercased() == "content-length" })
        }
    }

    @Test func forwardsChunkedResponsesWithTrailers() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            let response = try proxy.get("/chunked")
            #expect(response.text == "hello chunked world")
            #expect(response.header("Transfer-Encoding") == "chunked")
            #expect(response.trailers == "X-Checksum: 42\r\n")
        }
    }

    @Test func headAnd204And304CarryNoBodyAndKeepTheConnection() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n")
            let head = try client.readResponse(forHead: true)
            #expect(head.status == 200)
            #expect(Int(head.header("Content-Length") ?? "") ?? 0 > 0)
            #expect(head.body.isEmpty)
            for status in [204, 304] {
                client.send("GET /status/\(status) HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == status)
                #expect(response.body.isEmpty)
            }
            client.send("GET /echo?after HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse().json()["path"] as? String == "/echo?after")
        }
    }

    @Test func expect100ContinueIsRelayedBeforeTheBody() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let interim = try client.read(until: "\r\n\r\n")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
            client.send("ping")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(try response.json()["body"] as? String == "ping")
        }
    }

    @Test func upgradeBecomesATwoWayTunnelThatStaysOpen() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let head = try client.read(until: "\r\n\r\n")
            #expect(head.hasPrefix("HTTP/1.1 101 "))
            #expect(head.lowercased().contains("upgrade: websocket"))
            #expect(head.lowercased().contains("connection: upgrade"))
            for message in ["one", "two", String(repeating: "x", count: 100_000)] {
                client.send(message)
                #expect(String(decoding: try client.read(exactly: message.utf8.count), as: UTF8.self) == message)
            }
            usleep(300_000)
            client.send("still open")
            #expect(String(decoding: try client.read(exactly: 10), as: UTF8.self) == "still open")
            client.close()
            let record = try #require(proxy.sink.wait(for: 1).first)
            #expect(record.upgraded && record.status == 101)
        }
    }

    @Test func absoluteFormTargetsStillGoToTheConfiguredUpstream() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            let response = try proxy.get("http://169.254.169.254/latest/meta-data?x=1")
            let json = try response.json()
            #expect(json["path"] as? String == "/latest/meta-data?x=1")
            #expect(value(try backendHeaders(response), "Host") == ["127.0.0.1:\(backend.port)"])
        }
    }

    @Test func http10ClientsGetAClosedConnectionUnlessTheyAskForKeepAlive() throws {
        try withProxy(in: PythonBackend()) { backend, proxy, client in
            client.send("GET /chunked HTTP/1.0\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.text == "hello chunked world")
            #expect(response.header("Transfer-Encoding") == nil)
            #expect(client.peerClosed())
        }
    }
}
