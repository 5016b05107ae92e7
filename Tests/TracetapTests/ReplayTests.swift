import Foundation
import Glibc
import Synchronization
import Testing
import TracetapCore

/// `tracetap replay` against real backends over loopback.
@Suite struct ReplayTests {
    /// A small app with a login session: POST /login sets a fresh session cookie, GET /me and POST /orders
    /// need it (401 otherwise). Orders get random IDs and timestamps: noise a replay must ignore.
    final class App: Sendable {
        let plan: String
        private let session = Mutex<String?>(nil)
        init(plan: String) { self.plan = plan }

        var handler: @Sendable (BlockingSocket, FakeUpstream) -> Void {
            { [self] socket, upstream in
                while let head = try? socket.read(until: "\r\n\r\n") {
                    var body: [UInt8] = []
                    if let length = FakeUpstream.contentLength(head), length > 0 { body = (try? socket.read(exactly: length)) ?? [] }
                    upstream.note(head + String(decoding: body, as: UTF8.self))
                    socket.send(respond(head))
                }
            }
        }

        private func respond(_ head: String) -> String {
            let line = head.components(separatedBy: "\r\n")[0]
            let current = session.withLock { $0 }
            let authorised = current.map { head.contains("Cookie: theme=dark; sid=\($0)") } ?? false
            func json(_ status: String, _ body: String, _ extra: String = "") -> String {
                "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nDate: \(Date())\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            switch line {
            case "POST /login HTTP/1.1":
                let sid = UUID().uuidString
                session.withLock { $0 = sid }
                return json("200 OK", #"{"user": "ann"}"#, "Set-Cookie: sid=\(sid); HttpOnly\r\n")
            case "GET /me HTTP/1.1":
                return authorised ? json("200 OK", #"{"user": "ann", "plan": "\#(plan)"}"#) : json("401 Unauthorized", #"{"error": "login"}"#)
            case "POST /orders HTTP/1.1":
                return authorised ? json("201 Created", #"{"id": "\#(UUID().uuidString)", "item": 1, "created_at": \#(Date().timeIntervalSince1970)}"#)
                    : json("401 Unauthorized", #"{"error": "login"}"#)
            default:
                return json("404 Not Found", "{}")
            }
        }
    }

    /// Records login, me, order through a capturing proxy in front of `app`; returns the store.
    static func record(against app: App) throws -> String {
        let store = temporaryStore()
        let upstream = try FakeUpstream(handler: app.handler)
        defer { upstream.stop() }
        let proxy = try TestProxy(upstreamPort: upstream.port) { $0.captureDirectory = store }
        let client = try proxy.connect()
        client.send("POST /login HTTP/1.1\r\nHost: shop\r\nContent-Length: 14\r\n\r\n{\"user\":\"ann\"}")
        let login = try client.readResponse()
        let sid = try #require(login.header("Set-Cookie")?.split(separator: ";").first?.dropFirst(4))
        client.send("GET /me HTTP/1.1\r\nHost: shop\r\nCookie: theme=dark; sid=\(sid)\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        client.send("POST /orders HTTP/1.1\r\nHost: shop\r\nCookie: theme=dark; sid=\(sid)\r\nContent-Length: 10\r\n\r\n{\"item\":1}")
        #expect(try client.readResponse().status == 201)
        client.close()
        proxy.stop()
        return store
    }

    @Test func aLoginFlowReplaysAgainstAFreshBackendAndRegressionsAreCaught() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let noise = ["--ignore-field", "id", "--ignore-field", "created_at"]

        let fresh = try FakeUpstream(handler: App(plan: "pro").handler)
        defer { fresh.stop() }
        let report = temporaryStore() + ".json"
        let (status, out, errors) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(fresh.port)", "--report", report] + noise)
        #expect(status == 0, "\(out)\(errors)")
        #expect(out.contains("3 requests: 2 identical, 1 differ only in noise, 0 regressions, 0 errors, 0 skipped"), "\(out)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        #expect((json["counts"] as? [String: Int]) == ["identical": 2, "noise-only": 1])

        // Without the noise masks the random order ID is a difference; with them, a changed plan still is.
        let changed = try FakeUpstream(handler: App(plan: "free").handler)
        defer { changed.stop() }
        let (badStatus, badOut, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(changed.port)"] + noise)
        #expect(badStatus == 1)
        #expect(badOut.contains(#"#2 GET /me 200 -> 200  REGRESSION  body plan: "pro" -> "free""#), "\(badOut)")
        #expect(badOut.contains(#"GET /me  1 of 1  first: body plan: "pro" -> "free""#))
        #expect(!badOut.contains("POST /orders 201 -> 201  REGRESSION"))
    }

    @Test func replayedRequestsAreByteExactWithAFreshTraceLinkedToTheOriginal() throws {
        let store = temporaryStore()
        let recorded = try FakeUpstream(handler: RulesTests.ok)
        defer { recorded.stop() }
        let proxy = try TestProxy(upstreamPort: recorded.port) { $0.captureDirectory = store }
        let body: [UInt8] = [0x00, 0xFF, 0x0D, 0x0A, 0x80, 0x41]
        let client = try proxy.connect()
        client.send(Array("PUT /blob?v=1&x=%20 HTTP/1.1\r\nHost: shop\r\nX-Custom:  spaced  \r\nx-lower: \u{e9}\r\nContent-Length: 6\r\n\r\n".utf8) + body)
        #expect(try client.readResponse().status == 200)
        client.close()
        proxy.stop()
        let original = try #require(CaptureReader(directory: store).find("1"))

        let target = try FakeUpstream(handler: RulesTests.ok)
        defer { target.stop() }
        let (status, _, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(target.port)"])
        #expect(status == 0)
        let seen = try #require(target.notes.first)
        let lines = seen.components(separatedBy: "\r\n")
        #expect(lines[0] == "PUT /blob?v=1&x=%20 HTTP/1.1")
        #expect(lines[1] == "Host: 127.0.0.1:\(target.port)")
        #expect(lines[2] == "X-Custom: spaced" && lines[3] == "x-lower: \u{e9}")
        #expect(lines.contains("X-Tracetap-Replay-Of: \(original.traceID)"))
        let traceparent = try #require(lines.first { $0.hasPrefix("traceparent: 00-") })
        #expect(!traceparent.contains(original.traceID))
        #expect(seen.hasSuffix(String(decoding: body, as: UTF8.self)))
    }

    @Test func usageErrorsExitTwo() throws {
        let (status, _, errors) = try Binary.run(["replay", "--capture", temporaryStore()])
        #expect(status == 2 && errors.contains("replay needs --target URL"))
        let (badTarget, _, targetErrors) = try Binary.run(["replay", "--target", "ftp://x"])
        #expect(badTarget == 2 && targetErrors.contains("is not an http:// URL"))
    }

    @Test func junitOutputIsAcceptedByAJUnitParser() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let changed = try FakeUpstream(handler: App(plan: "free").handler)
        defer { changed.stop() }
        let junit = temporaryStore() + ".xml"
        let (status, _, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(changed.port)",
                                             "--ignore-field", "id", "--ignore-field", "created_at", "--junit", junit])
        #expect(status == 1)
        // junitparser (PyPI), the parser CI tools built on Python use, reads it back.
        let script = """
            import sys
            from junitparser import JUnitXml, Failure
            xml = JUnitXml.fromfile(sys.argv[1])
            cases = [(suite.name, case.name, any(isinstance(r, Failure) for r in case.result)) for suite in xml for case in suite]
            print(len(cases), sum(1 for c in cases if c[2]))
            for suite, name, failed in cases:
                if failed: print(suite, "|", name)
            """
        let python = try ChildProcess(["python3", "-c", script, junit])
        #expect(python.waitForExit(seconds: 30) == 0, "\(python.stderr)")
        let lines = python.stdout.split(separator: "\n")
        #expect(lines.first == "3 1", "\(python.stdout)\(python.stderr)")
        #expect(lines.dropFirst().first == "GET /me | #2 GET /me")
    }

    @Test func recordedPacingIsKeptAndCanBeSpedUp() throws {
        let store = temporaryStore()
        let recorded = try FakeUpstream(handler: RulesTests.ok)
        defer { recorded.stop() }
        let proxy = try TestProxy(upstreamPort: recorded.port) { $0.captureDirectory = store }
        for i in 0..<3 {
            if i > 0 { usleep(300_000) }
            #expect(try proxy.get("/tick/\(i)").status == 200)
        }
        proxy.stop()

        func gaps(_ flags: [String]) throws -> [Double] {
            let arrivals = Mutex<[Date]>([])
            let target = try FakeUpstream { socket, upstream in
                while let head = try? socket.read(until: "\r\n\r\n") {
                    arrivals.withLock { $0.append(Date()) }
                    upstream.note(head)
                    socket.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                }
            }
            defer { target.stop() }
            let (status, out, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(target.port)"] + flags)
            #expect(status == 0, "\(out)")
            let times = arrivals.withLock { $0 }
            return zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) }
        }
        let recordedGaps = try gaps(["--pace", "recorded"])
        #expect(recordedGaps.count == 2 && recordedGaps.allSatisfy { $0 >= 0.27 && $0 < 0.6 }, "\(recordedGaps)")
        let doubled = try gaps(["--speed", "2x"])
        #expect(doubled.count == 2 && doubled.allSatisfy { $0 >= 0.12 && $0 < 0.3 }, "\(doubled)")
        let unpaced = try gaps(["--max"])
        #expect(unpaced.count == 2 && unpaced.allSatisfy { $0 < 0.1 }, "\(unpaced)")
    }

    @Test func replayViaAProxyRunsUnderItsFaultRules() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let fresh = try FakeUpstream(handler: App(plan: "pro").handler)
        defer { fresh.stop() }
        let book = try RuleBook(directory: try ruleFolder(#"{"rules": [{"name": "me-down", "match": {"path": "/me"}, "faults": [{"type": "abort", "status": 503}]}]}"#), seed: 1)
        let chaos = try TestProxy(upstreamPort: fresh.port) { $0.rules = book }
        defer { chaos.stop() }
        let (status, out, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(fresh.port)",
                                               "--via", "http://127.0.0.1:\(chaos.port)", "--ignore-field", "id", "--ignore-field", "created_at"])
        #expect(status == 1)
        #expect(out.contains("#2 GET /me 200 -> 503  REGRESSION  status: 200 -> 503"), "\(out)")
        #expect(chaos.sink.wait(for: 3).map(\.faults) == [[], ["me-down:abort"], []])
    }

    @Test func learnedNoiseHidesRandomIDsAndTimestampsButNotAChangedField() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let reference = try FakeUpstream(handler: App(plan: "pro").handler)
        defer { reference.stop() }
        let (learnStatus, learnOut, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(reference.port)", "--learn-noise"])
        #expect(learnStatus == 0)
        #expect(learnOut.contains("POST /orders: body created_at, body id"), "\(learnOut)")
        let session = try #require(CaptureReader(directory: store).sessions().first)
        let masks = try #require(try NoiseMasks.load(from: "\(store)/\(session)/noise.json"))
        #expect(masks.endpoints.keys.sorted() == ["POST /orders"])

        // No --ignore-field given: the learned masks apply by themselves.
        let changed = try FakeUpstream(handler: App(plan: "free").handler)
        defer { changed.stop() }
        let (status, out, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(changed.port)"])
        #expect(status == 1)
        #expect(out.contains("#3 POST /orders 201 -> 201  identical (noise aside)"), "\(out)")
        #expect(out.contains(#"#2 GET /me 200 -> 200  REGRESSION  body plan: "pro" -> "free""#))
    }

    /// Tests/Fixtures/chromium.har was recorded by headless Chromium (Tests/Fixtures/record-har.py) browsing
    /// the fixture backend: a page load and three fetch() calls, one a JSON POST.
    @Test func aChromiumRecordedHARReplaysAgainstAFreshBackend() throws {
        let har = Repo.root.appendingPathComponent("Tests/Fixtures/chromium.har").path
        let backend = try PythonBackend()
        defer { backend.stop() }
        // /echo answers with the request's own headers and client port: noise when replaying from elsewhere.
        let (status, out, errors) = try Binary.run(["replay", har, "--target", "http://127.0.0.1:\(backend.port)",
                                                    "--ignore-field", "client_port", "--ignore-field", "headers"])
        #expect(status == 0, "\(out)\(errors)")
        #expect(out.contains("#2 POST /orders 201 -> 201  identical"), "\(out)")
        #expect(out.contains("4 requests: 3 identical, 1 differ only in noise, 0 regressions, 0 errors, 0 skipped"), "\(out)")

        // What went out: the browser's own headers and body, byte for byte.
        let target = try FakeUpstream(handler: RulesTests.ok)
        defer { target.stop() }
        _ = try Binary.run(["replay", har, "--target", "http://127.0.0.1:\(target.port)", "--method", "POST"])
        let post = try #require(target.notes.first)
        #expect(post.hasPrefix("POST /orders HTTP/1.1\r\nHost: 127.0.0.1:\(target.port)\r\nAccept: */*\r\n"))
        #expect(post.contains("HeadlessChrome/") && post.contains("Origin: http://127.0.0.1:3000\r\n"))
        #expect(post.hasSuffix("\r\n\r\n{\"item\":1}"))
    }

    @Test func ourOwnHARExportReplaysToo() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let har = temporaryStore() + ".har"
        let (exportStatus, _, _) = try Binary.run(["export", "--capture", store, "--format", "har", "--show-secrets", "--out", har])
        #expect(exportStatus == 0)
        let fresh = try FakeUpstream(handler: App(plan: "pro").handler)
        defer { fresh.stop() }
        let (status, out, _) = try Binary.run(["replay", har, "--target", "http://127.0.0.1:\(fresh.port)", "--ignore-field", "id", "--ignore-field", "created_at"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("3 requests: 2 identical, 1 differ only in noise"), "\(out)")
    }

    /// Orders with generated IDs: POST /orders answers the new ID (JSON and Location), GET /orders/ID finds it.
    static func orderBook() -> @Sendable (BlockingSocket, FakeUpstream) -> Void {
        let ids = Mutex<Set<String>>([])
        return { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                if let length = FakeUpstream.contentLength(head), length > 0 { _ = try? socket.read(exactly: length) }
                upstream.note(head)
                let line = head.components(separatedBy: "\r\n")[0].split(separator: " ")
                let path = String(line[1])
                if line[0] == "POST" {
                    let id = String(UUID().uuidString.prefix(8)).lowercased()
                    ids.withLock { _ = $0.insert(id) }
                    let body = #"{"id": "\#(id)"}"#
                    socket.send("HTTP/1.1 201 Created\r\nLocation: /orders/\(id)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                } else if path.hasPrefix("/orders/"), ids.withLock({ $0.contains(String(path.dropFirst(8))) }) {
                    socket.send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"item\": 1}")
                } else {
                    socket.send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                }
            }
        }
    }

    @Test func carriedValuesLetAnIDFromAnEarlierResponseReachLaterRequests() throws {
        let store = temporaryStore()
        let original = try FakeUpstream(handler: Self.orderBook())
        defer { original.stop() }
        let proxy = try TestProxy(upstreamPort: original.port) { $0.captureDirectory = store }
        let client = try proxy.connect()
        client.send("POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\n\r\n{}")
        let created = try client.readResponse()
        let id = try #require(created.header("Location")?.split(separator: "/").last)
        client.send("GET /orders/\(id) HTTP/1.1\r\nHost: shop\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        client.close()
        proxy.stop()

        for (carry, expected) in [(nil, 1), ("json:$.id -> path", 0), ("header:Location -> path:/orders/{id}", 0)] as [(String?, Int32)] {
            let fresh = try FakeUpstream(handler: Self.orderBook())
            defer { fresh.stop() }
            let (status, out, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(fresh.port)",
                                                   "--ignore-field", "id", "--ignore-header", "Location"] + (carry.map { ["--carry", $0] } ?? []))
            #expect(status == expected, "\(carry ?? "no carry"): \(out)")
            if carry == nil { #expect(out.contains("#2 GET /orders/\(id) 200 -> 404  REGRESSION  status: 200 -> 404"), "\(out)") }
            else { #expect(fresh.notes.last?.hasPrefix("GET /orders/") == true && fresh.notes.last?.contains("/\(id) ") == false) }
        }
    }

    @Test func concurrentReplayKeepsEachConnectionsOrder() throws {
        let store = temporaryStore()
        let recorded = try FakeUpstream(handler: RulesTests.ok)
        defer { recorded.stop() }
        let proxy = try TestProxy(upstreamPort: recorded.port) { $0.captureDirectory = store }
        let clients = try (0..<4).map { _ in try proxy.connect() }
        for i in 0..<5 {
            for (k, client) in clients.enumerated() {
                client.send("GET /c\(k)/\(i) HTTP/1.1\r\nHost: shop\r\n\r\n")
                #expect(try client.readResponse().status == 200)
            }
        }
        for client in clients { client.close() }
        proxy.stop()
        let captured = CaptureReader(directory: store).exchanges(in: try #require(CaptureReader(directory: store).sessions().first)).exchanges
        #expect(Set(captured.map(\.connection)).count == 4)

        let arrivals = Mutex<[String]>([])
        let target = try FakeUpstream { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                usleep(50_000)
                arrivals.withLock { $0.append(String(head.split(separator: " ")[1])) }
                socket.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            }
        }
        defer { target.stop() }
        let started = Date()
        let (status, out, _) = try Binary.run(["replay", "--capture", store, "--target", "http://127.0.0.1:\(target.port)", "--concurrency", "4"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(status == 0 && out.contains("20 requests: 20 identical"), "\(out)")
        // Twenty 50 ms answers one after another take a second; four connections side by side, about a quarter.
        #expect(elapsed < 0.8, "\(elapsed)s")
        let seen = arrivals.withLock { $0 }
        for k in 0..<4 {
            #expect(seen.filter { $0.hasPrefix("/c\(k)/") } == (0..<5).map { "/c\(k)/\($0)" })
        }
        #expect(target.accepted.load(ordering: .relaxed) == 4)
    }

    @Test func replayToAnHTTPSTargetThroughLibcurl() throws {
        let store = temporaryStore()
        let plain = try PythonBackend()
        defer { plain.stop() }
        let proxy = try TestProxy(upstreamPort: plain.port) { $0.captureDirectory = store }
        let client = try proxy.connect()
        for target in ["/status/204", "/gzip", "/orders"] {
            client.send("GET \(target) HTTP/1.1\r\nHost: shop\r\n\r\n")
            #expect(try client.readResponse().status > 0)
        }
        client.close()
        proxy.stop()

        let certificate = try TestCertificate()
        let secure = try PythonBackend(tls: certificate)
        defer { secure.stop() }
        let (status, out, errors) = try Binary.run(["replay", "--capture", store, "--target", "https://localhost:\(secure.port)",
                                                    "--target-ca", certificate.certFile])
        #expect(status == 0, "\(out)\(errors)")
        #expect(out.contains("3 requests: 3 identical"), "\(out)")
        // An untrusted certificate is an error that says so, not a silent pass.
        let (untrusted, untrustedOut, _) = try Binary.run(["replay", "--capture", store, "--target", "https://localhost:\(secure.port)"])
        #expect(untrusted == 1 && untrustedOut.contains("ERROR") && untrustedOut.lowercased().contains("certificate"), "\(untrustedOut)")
    }

    @Test func handWrittenRegexMasksOnTheCommandLineAndInNoiseJSON() throws {
        let store = try Self.record(against: App(plan: "pro"))
        let fresh = try FakeUpstream(handler: App(plan: "pro").handler)
        defer { fresh.stop() }
        let target = ["replay", "--capture", store, "--target", "http://127.0.0.1:\(fresh.port)"]
        let (unmasked, _, _) = try Binary.run(target)
        #expect(unmasked == 1)  // the order's random ID and timestamp differ
        let (status, out, _) = try Binary.run(target + ["--ignore-pattern", "[0-9A-F]{8}-[0-9A-F-]{27}", "--ignore-pattern", #""created_at": [0-9.]+"#])
        #expect(status == 0 && out.contains("#3 POST /orders 201 -> 201  identical (noise aside)"), "\(out)")
        #expect(try Binary.run(target + ["--ignore-pattern", "(unclosed"]).0 == 2)

        let session = try #require(CaptureReader(directory: store).sessions().first)
        try #"{"endpoints": {"POST /orders": {"patterns": ["[0-9A-F]{8}-[0-9A-F-]{27}", "\"created_at\": [0-9.]+"]}}}"#
            .write(toFile: "\(store)/\(session)/noise.json", atomically: true, encoding: .utf8)
        let (fileStatus, fileOut, _) = try Binary.run(target)
        #expect(fileStatus == 0 && fileOut.contains("ignoring the noise learned in"), "\(fileOut)")
    }
}
