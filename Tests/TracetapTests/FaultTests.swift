import Foundation
import Glibc
import Synchronization
import Testing
import TracetapCore

/// Each fault over real sockets: what the client and the backend actually saw.
@Suite struct FaultTests {
    static func proxy(_ rules: String, upstreamPort: Int, _ configure: (inout ProxyConfig) -> Void = { _ in }) throws -> TestProxy {
        let book = try RuleBook(directory: try ruleFolder(rules), seed: 7)
        return try TestProxy(upstreamPort: upstreamPort) {
            $0.rules = book
            configure(&$0)
        }
    }

    static func rule(_ match: String, _ fault: String) -> String {
        #"{"rules": [{"name": "r", "match": \#(match), "faults": [\#(fault)]}]}"#
    }

    static let ok = RulesTests.ok

    /// A response of `size` bytes of 'x'.
    static func sized(_ size: Int) -> @Sendable (BlockingSocket, FakeUpstream) -> Void {
        FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n" + String(repeating: "x", count: size))
    }

    @Test func delayBeforeTheResponseLetsTheBackendAnswerFirst() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule(#"{"path": "/r"}"#, #"{"type": "delay", "ms": 300, "phase": "response"}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let started = Date()
        let response = try proxy.get("/r")
        let elapsed = Date().timeIntervalSince(started)
        #expect(response.status == 200 && response.text == "ok")
        #expect(elapsed >= 0.3 && elapsed < 2, "\(elapsed)")
        let record = try #require(proxy.sink.wait(for: 1).first)
        // The backend answered at once; the proxy held its answer.
        #expect(record.timings.firstResponseByte < 200_000, "\(record.timings)")
        #expect(record.timings.responseComplete >= 300_000, "\(record.timings)")
        #expect(record.faults == ["r:delay"])
    }

    @Test func timeoutAfterForwardingDropsTheBackendsAnswer() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule(#"{"method": "POST"}"#, #"{"type": "timeout", "ms": 250, "phase": "response"}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let started = Date()
        let response = try proxy.get("/pay", method: "POST")
        #expect(response.status == 504 && response.text.contains("dropped the upstream's answer for 250 ms"))
        #expect(Date().timeIntervalSince(started) >= 0.25)
        #expect(upstream.notes.count == 1)  // the backend did the work; the client never heard
        #expect(proxy.sink.wait(for: 1).first?.failure == .faultTimeout)
    }

    @Test func resetBeforeAnyResponseByteAfterTheBackendActed() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule(#"{"path": "/pay"}"#, #"{"type": "reset"}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        let (bytes, reset) = client.readUntilClosed()
        #expect(bytes.isEmpty)
        #expect(reset, "expected a TCP RST, got a clean close")
        #expect(upstream.notes.count == 1)
        let record = try #require(proxy.sink.wait(for: 1).first)
        #expect(record.failure == .faultReset && record.faults == ["r:reset"])
    }

    @Test func resetAfterSomeBytesOfTheResponse() throws {
        let upstream = try FakeUpstream(handler: Self.sized(5000))
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule("{}", #"{"type": "reset", "after_bytes": 100}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        let (bytes, reset) = client.readUntilClosed()
        #expect(bytes.count == 100 && reset, "\(bytes.count) bytes, reset \(reset)")
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    @Test func aResetPointBeyondTheResponseResetsAfterItsLastByte() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule("{}", #"{"type": "reset", "after_bytes": 100000}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        for _ in 0..<5 {
            let client = try proxy.connect(timeout: 5)
            defer { client.close() }
            client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            let (bytes, reset) = client.readUntilClosed()
            #expect(String(decoding: bytes, as: UTF8.self).hasSuffix("\r\n\r\nok") && reset)
        }
        #expect(proxy.sink.wait(for: 5).allSatisfy { $0.failure == .faultReset && $0.status == 200 })
    }

    @Test func throttleLimitsTheResponseAndTheRequestBody() throws {
        let upstream = try FakeUpstream(handler: Self.sized(20_000))
        defer { upstream.stop() }
        let proxy = try Self.proxy("""
            {"rules": [
              {"name": "down", "match": {"path": "/down"}, "faults": [{"type": "throttle", "bytes_per_second": 40000}]},
              {"name": "up", "match": {"path": "/up"}, "faults": [{"type": "throttle", "bytes_per_second": 40000, "direction": "request"}]}
            ]}
            """, upstreamPort: upstream.port)
        defer { proxy.stop() }
        var started = Date()
        let response = try proxy.get("/down")
        let downTime = Date().timeIntervalSince(started)
        #expect(response.body.count == 20_000)
        #expect(downTime >= 0.4 && downTime < 3, "20 kB at 40 kB/s took \(downTime)s")
        // The record's timing is what the client saw, not when the proxy queued the last byte.
        #expect(try #require(proxy.sink.wait(for: 1).first).timings.responseComplete >= 400_000)

        let client = try proxy.connect()
        defer { client.close() }
        started = Date()
        client.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n" + String(repeating: "u", count: 20_000))
        #expect(try client.readResponse().status == 200)
        let upTime = Date().timeIntervalSince(started)
        #expect(upTime >= 0.4 && upTime < 3, "20 kB up at 40 kB/s took \(upTime)s")
        #expect(upstream.notes.last?.hasSuffix(String(repeating: "u", count: 100)) == true)
    }

    @Test func sliceSendsTheResponseInSmallDelayedPieces() throws {
        let upstream = try FakeUpstream(handler: Self.sized(200))
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule("{}", #"{"type": "slice", "size": 64, "delay_ms": 40}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        let started = Date()
        client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try client.read(until: "\r\n\r\n")
        let reads = client.readsTimed(total: 200)
        let total = head.utf8.count + 200
        #expect(reads.allSatisfy { $0.count <= 64 }, "\(reads.map(\.count))")
        #expect(reads.map(\.count).reduce(0, +) + head.utf8.count >= 200)
        // At least ceil(total / 64) pieces, 40 ms apart.
        let pieces = (total + 63) / 64
        let elapsed = (reads.last?.at ?? started).timeIntervalSince(started)
        #expect(elapsed >= Double(pieces - 1) * 0.04 * 0.9, "\(pieces) pieces in \(elapsed)s")
    }

    @Test func modifySetsAndRemovesHeadersAndReplacesTheStatus() throws {
        let upstream = try FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Powered-By: php\r\nCache-Control: max-age=60\r\n\r\nok"))
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule("{}", """
            {"type": "modify", "request": {"set": {"X-User": "banned"}, "remove": ["Cookie"]},
             "response": {"set": {"Cache-Control": "no-store"}, "remove": ["x-powered-by"]}, "status": 503}
            """), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let response = try proxy.get("/", headers: ["Cookie: session=1", "X-User: alice"])
        #expect(response.status == 503 && response.rawHead.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(response.header("Cache-Control") == "no-store" && response.header("X-Powered-By") == nil)
        #expect(response.text == "ok")
        let seen = try #require(upstream.notes.first).lowercased()
        #expect(seen.contains("x-user: banned\r\n") && !seen.contains("alice") && !seen.contains("cookie"))
    }

    @Test func matchOnBodyTextAndJSONField() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy("""
            {"rules": [
              {"name": "text", "match": {"body": "DROP TABLE"}, "faults": [{"type": "abort", "status": 400}]},
              {"name": "json", "match": {"body": {"json": {"order.item": 7, "express": true}}}, "faults": [{"type": "abort", "status": 409}]}
            ]}
            """, upstreamPort: upstream.port)
        defer { proxy.stop() }
        func post(_ body: String) throws -> Int {
            let client = try proxy.connect()
            defer { client.close() }
            client.send("POST /o HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return try client.readResponse().status
        }
        #expect(try post("name=x'; DROP TABLE users") == 400)
        #expect(try post(#"{"order": {"item": 7.0}, "express": true}"#) == 409)
        #expect(try post(#"{"order": {"item": 8}, "express": true}"#) == 200)
        #expect(try post(#"{"order": {"item": 7}}"#) == 200)
        #expect(try post("not json") == 200)
        // Bodies that did not match were forwarded whole.
        #expect(upstream.notes.count == 3 && upstream.notes.last?.hasSuffix("not json") == true)
    }

    /// A backend whose POST is not idempotent: every request creates a new order.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    static func orders() -> (@Sendable (BlockingSocket, FakeUpstream) -> Void, Counter) {
        let counter = Counter()
        return ({ socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                if let length = FakeUpstream.contentLength(head), length > 0 { _ = try? socket.read(exactly: length) }
                upstream.note(head)
                let order = counter.value.add(1, ordering: .relaxed).newValue
                let body = #"{"order": \#(order), "status": "created"}"#
                socket.send("HTTP/1.1 201 Created\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            }
        }, counter)
    }

    @Test func duplicateSequentialExposesANonIdempotentPost() throws {
        let (handler, counter) = Self.orders()
        let upstream = try FakeUpstream(handler: handler)
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule(#"{"method": "POST", "path": "/orders"}"#, #"{"type": "duplicate", "count": 3}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n{\"item\":1}")
        let response = try client.readResponse()
        #expect(response.status == 201 && response.text.contains(#""order": 1"#))  // the client sees the first
        let records = proxy.sink.wait(for: 3)
        #expect(counter.value.load(ordering: .relaxed) == 3)
        #expect(upstream.notes.map { $0.components(separatedBy: "X-Tracetap-Duplicate: ").last?.prefix(3) } == ["1/3", "2/3", "3/3"])
        #expect(records.map { $0.duplicate?.copy } == [1, 2, 3])
        #expect(Set(records.map(\.trace.traceID)).count == 1 && Set(records.map(\.trace.spanID)).count == 3)
        #expect(records.allSatisfy { $0.duplicate?.difference == "copy 2: order: 2 vs 1" }, "\(records.map { $0.duplicate?.difference })")
        #expect(records.allSatisfy { $0.requestBodyBytes == 10 })
    }

    @Test func duplicateConcurrentSendsTogetherAndIgnoresNoise() throws {
        let arrivals = Mutex<[Date]>([])
        let upstream = try FakeUpstream { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                arrivals.withLock { $0.append(Date()) }
                upstream.note(head)
                usleep(200_000)
                let body = #"{"id": "\#(UUID().uuidString)", "ok": true}"#
                socket.send("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            }
        }
        defer { upstream.stop() }
        let proxy = try Self.proxy(Self.rule("{}", #"{"type": "duplicate", "count": 4, "mode": "concurrent", "ignore": ["id"]}"#), upstreamPort: upstream.port)
        defer { proxy.stop() }
        let started = Date()
        #expect(try proxy.get("/x").status == 200)
        let records = proxy.sink.wait(for: 4)
        let elapsed = Date().timeIntervalSince(started)
        let times = arrivals.withLock { $0 }
        #expect(times.count == 4)
        #expect((times.max()!.timeIntervalSince(times.min()!)) < 0.15, "copies arrived \(times) apart")
        #expect(elapsed < 0.6, "four 200 ms requests at once took \(elapsed)s")
        #expect(records.count == 4 && records.allSatisfy { $0.duplicate?.concurrent == true && $0.duplicate?.difference == nil })
    }

    @Test func headerFaultsOnlyWhenAllowedAndNeverForwarded() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let allowed = try TestProxy(upstreamPort: upstream.port) { $0.allowHeaderFaults = true }
        defer { allowed.stop() }
        let plain = try TestProxy(upstreamPort: upstream.port)
        defer { plain.stop() }
        #expect(try allowed.get("/", headers: ["X-Tracetap-Fault: abort=503"]).status == 503)
        #expect(try plain.get("/", headers: ["X-Tracetap-Fault: abort=503"]).status == 200)
        let started = Date()
        #expect(try allowed.get("/", headers: ["X-Tracetap-Fault: delay=250ms"]).status == 200)
        #expect(Date().timeIntervalSince(started) >= 0.25)
        #expect(try allowed.get("/dup", headers: ["X-Tracetap-Fault: duplicate=2"]).status == 200)
        #expect(allowed.sink.wait(for: 4).compactMap(\.duplicate).count == 2)
        #expect(upstream.notes.allSatisfy { !$0.lowercased().contains("x-tracetap-fault") })
        #expect(upstream.notes.count == 4)  // plain's one, delay's one, and two copies
    }
}
