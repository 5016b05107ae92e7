import Foundation
import Glibc
import Synchronization
import Testing
import TracetapCore

/// When the upstream fails, the client learns what failed and which trace it was.
@Suite struct UpstreamFailureTests {
    func traceID(_ response: TestResponse) throws -> Substring {
        try #require(response.header("traceresponse")?.split(separator: "-")[1])
    }

    @Test func aRefusedUpstreamIsA502NamingTheTrace() throws {
        let proxy = try TestProxy(upstreamPort: unusedPort())
        defer { proxy.stop() }
        let response = try proxy.get("/x")
        #expect(response.status == 502)
        #expect(response.text.contains("Connection refused"))
        let trace = try traceID(response)
        #expect(response.text.contains("trace \(trace)"))
        #expect(proxy.sink.wait(for: 1).first?.failure == .upstreamRefused)
    }

    @Test func aConnectThatHangsIsA502AfterTheConnectTimeout() throws {
        // A listener that never accepts, its queue already full: further SYNs go unanswered.
        let upstream = try FakeUpstream(backlog: 0, acceptsConnections: false) { _, _ in }
        defer { upstream.stop() }
        let fillers = (0..<3).map { _ in Self.startConnect(port: upstream.port) }
        defer { fillers.forEach { close($0) } }
        usleep(50_000)

        let proxy = try TestProxy(upstreamPort: upstream.port) { $0.connectTimeout = 0.3 }
        defer { proxy.stop() }
        let started = Date()
        let response = try proxy.get("/")
        #expect(response.status == 502)
        #expect(response.text.contains("timed out"))
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(proxy.sink.wait(for: 1).first?.failure == .upstreamConnectTimeout)
    }

    /// A non-blocking connect left pending.
    static func startConnect(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }

    @Test func anUpstreamThatNeverAnswersIsA504() throws {
        let silent = try FakeUpstream { socket, _ in
            _ = try? socket.read(until: "\r\n\r\n")
            usleep(2_000_000)
        }
        try withProxy(in: silent, { $0.responseTimeout = 0.3 }) { _, proxy, _ in
            let response = try proxy.get("/hang")
            #expect(response.status == 504)
            let trace = try traceID(response)
            #expect(response.text.contains("did not answer") && response.text.contains("trace \(trace)"))
            #expect(proxy.sink.wait(for: 1).first?.failure == .upstreamResponseTimeout)
        }
    }

    /// The upstream answers one request per connection, keeps it open, and closes it when the next
    /// request arrives: the race every keep-alive pool meets.
    static func closesReusedConnections(socket: BlockingSocket, upstream: FakeUpstream) {
        guard let head = try? socket.read(until: "\r\n\r\n") else { return }
        upstream.note(String(head.prefix { $0 != " " }))
        socket.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if let next = try? socket.read(until: "\r\n\r\n") {
            upstream.note(String(next.prefix { $0 != " " }) + " (dropped)")
        }
    }

    @Test func aSafeRequestOnAStalePooledConnectionIsRetriedOnce() throws {
        try withProxy(in: FakeUpstream(handler: Self.closesReusedConnections), { $0.threads = 1 }) { upstream, proxy, client in
            client.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
            let statuses = try [client.readResponse().status, client.readResponse().status]
            #expect(statuses == [200, 200])
            let records = proxy.sink.wait(for: 2)
            #expect(records.last?.retried == true)
            #expect(upstream.notes == ["GET", "GET (dropped)", "GET"])
        }
    }

    @Test func anUnsafeRequestIsNeverResentAndTheClientIsTold() throws {
        try withProxy(in: FakeUpstream(handler: Self.closesReusedConnections), { $0.threads = 1 }) { upstream, proxy, client in
            client.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            client.send("POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
            let response = try client.readResponse()
            #expect(response.status == 502)
            #expect(response.text.contains("upstream closed the connection before sending a response"))
            usleep(100_000)
            #expect(upstream.notes == ["GET", "POST (dropped)"])
            #expect(proxy.sink.wait(for: 2).last?.retried == false)
        }
    }

    @Test func anUpstreamKilledAndRestartedUnderLoadLeavesEveryExchangeAnsweredAndRecorded() throws {
        let port = unusedPort()
        var backend = try PythonBackend(arguments: [String(port)])
        let proxy = try TestProxy(upstreamPort: port)
        defer { proxy.stop() }
        let sent = Atomic<Int>(0)
        let statuses = Mutex<[Int: Int]>([:])
        let closes = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let done = DispatchGroup()
        for worker in 0..<4 {
            done.enter()
            Thread {
                defer { done.leave() }
                var client = try? proxy.connect(timeout: 5)
                // Bounded: at most 2,000 requests a worker, until told to stop.
                for i in 0..<2_000 where !stop.load(ordering: .relaxed) {
                    if client == nil { client = try? proxy.connect(timeout: 5) }
                    guard let connection = client else { continue }
                    connection.send("GET /echo?w=\(worker)&i=\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
                    sent.add(1, ordering: .relaxed)
                    if let response = try? connection.readResponse() {
                        statuses.withLock { $0[response.status, default: 0] += 1 }
                        if response.header("Connection") == "close" { connection.close(); client = nil }
                    } else {
                        // A clean close: the proxy ended the connection instead of answering (never half an answer).
                        closes.add(1, ordering: .relaxed)
                        connection.close()
                        client = nil
                    }
                    usleep(2_000)
                }
                client?.close()
            }.start()
        }
        usleep(800_000)
        backend.child.signal(SIGKILL)  // mid-load: connections reset, the port refuses
        _ = backend.child.waitForExit(seconds: 5)
        usleep(400_000)
        backend = try PythonBackend(arguments: [String(port)])  // back on the same port
        defer { backend.stop() }
        usleep(800_000)
        stop.store(true, ordering: .relaxed)
        #expect(done.wait(timeout: .now() + 30) == .success)

        let seen = statuses.withLock { $0 }
        let answered = seen.values.reduce(0, +)
        // Every request got an answer or a clean close; answers are 200 or the proxy's own 502/504.
        #expect(answered + closes.load(ordering: .relaxed) == sent.load(ordering: .relaxed), "\(seen)")
        #expect(Set(seen.keys).isSubset(of: [200, 502, 504]), "\(seen)")
        #expect((seen[200] ?? 0) > 0 && (seen[502] ?? 0) + closes.load(ordering: .relaxed) > 0, "the outage was not seen: \(seen)")
        // And every exchange the proxy handled has its record, saying what happened.
        let records = proxy.sink.wait(for: sent.load(ordering: .relaxed), seconds: 10)
        #expect(records.count == sent.load(ordering: .relaxed), "\(records.count) records for \(sent.load(ordering: .relaxed)) requests")
        #expect(records.filter { $0.status == 502 }.allSatisfy { $0.failure != nil })
        // After the restart the proxy serves again.
        #expect(try proxy.get("/echo").status == 200)
    }
}
