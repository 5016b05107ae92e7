import Foundation
import Testing
@testable import TracetapCore

/// One request through the proxy yields one trace: the proxy's phases and the backend's own spans, sent by
/// the real OpenTelemetry SDK to the proxy's admin port, joined by the traceparent the proxy sent.
@Suite struct TraceTests {
    @Test func theBackendsSpansJoinTheProxysTrace() throws {
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: 1) { $0.captureDirectory = store }
        let adminPort = try #require(proxy.server.adminPort)
        proxy.stop()
        // The proxy must know the app's port and the app the proxy's admin port: start the proxy first on
        // a port chosen up front.
        let app = try PythonBackend(script: Repo.tracedAppScript, arguments: ["--otlp", "http://127.0.0.1:\(adminPort)/v1/traces"])
        defer { app.stop() }
        let traced = try TestProxy(upstreamPort: app.port) {
            $0.captureDirectory = store
            $0.admin = HostPort(host: "127.0.0.1", port: adminPort)
        }
        let response = try traced.get("/orders")
        #expect(response.status == 200)
        let traceID = String(try #require(response.header("traceresponse")).split(separator: "-")[1])
        let session = try #require(traced.server.captureSessionPath)
        #expect(waitUntil(seconds: 10) { SpanFile.read(sessionPath: session).filter { $0.traceID == traceID }.count == 3 })
        traced.stop()

        let spans = SpanFile.read(sessionPath: session)
        #expect(Set(spans.map(\.name)) == ["GET /orders", "controller list_orders", "service load_orders"])
        #expect(spans.allSatisfy { $0.service == "shop" && $0.source == .otlp })
        let server = try #require(spans.first { $0.name == "GET /orders" })
        let exchange = try #require(CaptureReader(directory: store).find(traceID))
        // The app continued the proxy's span: its request span's parent is the span the proxy sent upstream.
        #expect(server.parentSpanID == exchange.spanID)
        #expect(server.attribute("http.response.status_code") == .int(200))

        let (status, out, errors) = try Binary.run(["trace", traceID, "--capture", store])
        #expect(status == 0, "\(errors)")
        let lines = out.components(separatedBy: "\n")
        func line(_ name: String) -> String? { lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name) } }
        func depth(_ name: String) -> Int? { line(name).map { $0.prefix { $0 == " " }.count / 2 } }
        #expect(lines[0].hasPrefix("trace \(traceID)") && lines[0].contains("3 otlp") && lines[0].contains("proxy"), "\(out)")
        #expect(depth("proxy GET /orders") == 0, "\(out)")
        #expect(depth("wait for upstream") == 1, "\(out)")
        #expect(depth("GET /orders [shop]") == 1, "\(out)")
        #expect(depth("controller list_orders [shop]") == 2, "\(out)")
        #expect(depth("service load_orders [shop]") == 3, "\(out)")
        // Parent before child, and the service call (10 ms of sleep) inside the controller.
        let order = ["proxy GET /orders", "GET /orders [shop]", "controller list_orders", "service load_orders"].compactMap { name in lines.firstIndex { $0.contains(name) } }
        #expect(order == order.sorted() && order.count == 4, "\(out)")
        let service = try #require(spans.first { $0.name == "service load_orders" })
        let controller = try #require(spans.first { $0.name == "controller list_orders" })
        #expect(service.parentSpanID == controller.spanID && controller.parentSpanID == server.spanID)
        #expect(service.durationNanos >= 10_000_000 && service.startNanos >= controller.startNanos && service.endNanos <= controller.endNanos)

        // The same trace as OTLP JSON reads back to the same spans.
        let (_, json, _) = try Binary.run(["trace", traceID, "--capture", store, "--json"])
        let decoded = try OTLPDecoder.decodeJSON(Array(json.utf8))
        #expect(decoded.spans.count == out.components(separatedBy: "\n").count - 2, "\(json)")
        #expect(Set(decoded.spans.map(\.traceID)) == [traceID])
        // And the whole session: every trace, as one OTLP request.
        let (exported, sessionJSON, _) = try Binary.run(["export", "--capture", store, "--format", "otlp"])
        #expect(exported == 0)
        let whole = try OTLPDecoder.decodeJSON(Array(sessionJSON.utf8))
        #expect(Set(whole.spans.map(\.spanID)) == Set(decoded.spans.map(\.spanID)))
    }

    /// The proxy's phases on the time axis: `connect` is a duration from the head, so a request whose head
    /// took 50 ms (a race copy held before its last byte) is sent after those 50 ms, not from its first byte.
    @Test func theProxyPhasesFollowEachOther() throws {
        func facts(connect: Int, reused: Bool) -> ExchangeFacts {
            ExchangeFacts(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", parentSpanID: "", method: "GET", path: "/",
                          status: 200, error: nil, exchangeID: "1", startNanos: 1_000_000_000,
                          timings: ["head_received": 50_000, "body_received": 50_000, "connect": connect, "tls": -1, "request_sent": 50_300,
                                    "first_response_byte": 53_000, "response_complete": 53_100], upstreamReused: reused)
        }
        func phases(_ spans: [Span]) -> [String] {
            spans.dropFirst().map { "\($0.name) \(($0.startNanos - 1_000_000_000) / 1000)-\(($0.endNanos - 1_000_000_000) / 1000)" }
        }
        #expect(phases(TraceView.proxySpans(facts(connect: 0, reused: true)))
                == ["read request 0-50000", "send 50000-50300", "wait for upstream 50300-53000", "receive 53000-53100"])
        #expect(phases(TraceView.proxySpans(facts(connect: 200, reused: false)))
                == ["read request 0-50000", "connect 50000-50200", "send 50200-50300", "wait for upstream 50300-53000", "receive 53000-53100"])
    }

    /// PostgreSQL, the traced Flask app using psycopg through the proxy's database leg, the proxy in front.
    @Test func oneRequestIsOneTraceFromTheProxyToTheDatabase() throws {
        let postgres = try TestPostgres()
        defer { postgres.stop() }
        let store = temporaryStore()
        let (adminPort, databasePort) = (unusedPort(), unusedPort())
        func configure(_ config: inout ProxyConfig) {
            config.captureDirectory = store
            config.admin = HostPort(host: "127.0.0.1", port: adminPort)
            config.databaseLegs = [(HostPort(host: "127.0.0.1", port: databasePort), HostPort(host: "127.0.0.1", port: postgres.port))]
        }
        // The app connects to the database at start: the leg must be up first.
        let setup = try TestProxy(upstreamPort: 1, configure)
        let app = try PythonBackend(script: Repo.tracedAppScript,
                                    arguments: ["--otlp", "http://127.0.0.1:\(adminPort)/v1/traces",
                                                "--db", "host=127.0.0.1 port=\(databasePort) user=tracetap dbname=postgres sslmode=prefer"])
        defer { app.stop() }
        setup.stop()
        let proxy = try TestProxy(upstreamPort: app.port, configure)
        let response = try proxy.get("/db/orders")
        #expect(response.status == 200, "\(response.text)")
        let traceID = String(try #require(response.header("traceresponse")).split(separator: "-")[1])
        let session = try #require(proxy.server.captureSessionPath)
        #expect(waitUntil(seconds: 10) { SpanFile.read(sessionPath: session).filter { $0.traceID == traceID }.count >= 4 })
        // Two buyers at once: two transactions, interleaved.
        let buyers = [try proxy.connect(), try proxy.connect()]
        for buyer in buyers { buyer.send("POST /db/buy HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n\r\n") }
        let bought = try buyers.map { try $0.readResponse() }
        for buyer in buyers { buyer.close() }
        #expect(waitUntil(seconds: 10) { SpanFile.read(sessionPath: session).filter { $0.source == .sql }.count >= 10 })

        // The same trace in the web UI: one waterfall from the proxy to the database, nested as the CLI shows it.
        let browser = try Browser()
        defer { browser.close() }
        try browser.navigate("http://127.0.0.1:\(adminPort)/#/trace/current/\(traceID)")
        try browser.waitFor("document.querySelectorAll('.span-row.src-sql').length >= 2")
        let rows = try browser.evaluate("""
            Array.from(document.querySelectorAll('.span-row .span-name')).map(n => parseInt(n.style.paddingLeft) / 14 + ' ' + n.textContent)
            """) as? [String] ?? []
        #expect(rows.first == "0 proxy proxy GET /db/orders", "\(rows)")
        #expect(rows.contains("2 backend controller db_orders") && rows.contains("3 backend service load_orders"), "\(rows)")
        #expect(rows.contains("4 database SELECT id, item FROM orders WHERE user_id = $1"), "\(rows)")
        _ = try browser.evaluate("Array.from(document.querySelectorAll('.span-row.src-sql')).find(r => r.textContent.includes('user_id')).click()")
        try browser.waitFor("document.querySelector('#span-attributes table')")
        let attributes = try browser.evaluate("Array.from(document.querySelectorAll('#span-attributes tr')).map(r => r.textContent)") as? [String] ?? []
        #expect(attributes.contains("db.rows2") && attributes.contains("sourcedatabase"), "\(attributes)")
        try browser.screenshotIfAsked("trace")
        proxy.stop()

        let (status, out, errors) = try Binary.run(["trace", traceID, "--capture", store])
        #expect(status == 0, "\(errors)")
        let lines = out.components(separatedBy: "\n")
        func depth(_ name: String) -> Int? {
            lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name) }.map { $0.prefix { $0 == " " }.count / 2 }
        }
        #expect(depth("proxy GET /db/orders") == 0, "\(out)")
        #expect(depth("GET /db/orders [shop]") == 1, "\(out)")
        #expect(depth("controller db_orders [shop]") == 2, "\(out)")
        #expect(depth("service load_orders [shop]") == 3, "\(out)")
        // The commented statement under the span that ran it, parameters as the driver sent them ($1);
        // the uncommented one attributed by time, under the proxy span, marked probable.
        #expect(depth("SELECT id, item FROM orders WHERE user_id = $1 [sql]") == 4, "\(out)")
        #expect(depth("SELECT count(*) FROM orders [sql, probable]") == 1, "\(out)")
        let statement = try #require(SpanFile.read(sessionPath: session).first { $0.traceID == traceID && $0.source == .sql })
        #expect(statement.attribute("db.rows") == .int(2) && statement.attribute("db.operation") == .string("SELECT"))
        #expect(statement.durationNanos > 0 && statement.durationNanos < 1_000_000_000)
        let service = try #require(SpanFile.read(sessionPath: session).first { $0.name == "service load_orders" && $0.traceID == traceID })
        #expect(statement.parentSpanID == service.spanID)
        #expect(statement.startNanos >= service.startNanos && statement.endNanos <= service.endNanos + 1_000_000)

        // Each buyer's trace holds its own transaction, BEGIN and COMMIT included, and both read the
        // same last item: the double sale is there to see.
        #expect(bought.map(\.status) == [201, 201], "\(bought.map(\.text))")
        var transactions: Set<String> = []
        for buyer in bought {
            let buyerTrace = String(try #require(buyer.header("traceresponse")).split(separator: "-")[1])
            let (_, buyOut, _) = try Binary.run(["trace", buyerTrace, "--capture", store])
            let sql = buyOut.components(separatedBy: "\n").filter { $0.contains("[sql") }
            #expect(sql.count == 4, "\(buyOut)")
            #expect(sql.first?.contains("BEGIN") == true && sql.last?.contains("COMMIT") == true, "\(buyOut)")
            #expect(sql.contains { $0.contains("SELECT left_count FROM stock WHERE item = ?") }, "\(buyOut)")
            let tx = try #require(sql.first.flatMap { $0.range(of: "tx ") }.map { String(sql.first![$0.upperBound...].prefix { $0 != "]" }) })
            #expect(sql.allSatisfy { $0.contains("tx \(tx)]") }, "\(buyOut)")
            transactions.insert(tx)
        }
        #expect(transactions.count == 2)
    }

    @Test func everySpanGoesOnToACollector() throws {
        let collector = try PythonBackend(script: Repo.root.appendingPathComponent("Tests/Fixtures/otlp/collector.py").path)
        defer { collector.stop() }
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try TestProxy(upstreamPort: backend.port) {
            $0.captureDirectory = nil
            $0.otlpExport = "http://127.0.0.1:\(collector.port)"
        }
        let response = try proxy.get("/export-me")
        let traceID = String(try #require(response.header("traceresponse")).split(separator: "-")[1])
        // Spans the backend sends to the proxy go on too.
        let admin = try BlockingSocket.connect(port: try #require(proxy.server.adminPort))
        let fixture = try OTLPDecoderTests.fixture("trace.json")
        admin.send(Array("POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(fixture.count)\r\n\r\n".utf8) + fixture)
        #expect(try admin.readResponse().status == 200)
        admin.close()
        proxy.stop()  // sends what is queued
        #expect(waitUntil(seconds: 10) { collector.child.stdout.components(separatedBy: "\n").count >= 10 })
        let received = collector.child.stdout.split(separator: "\n").dropFirst().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!received.contains { $0["error"] != nil }, "\(received)")
        let proxySpans = received.filter { $0["trace"] as? String == traceID }
        #expect(Set(proxySpans.compactMap { $0["name"] as? String }).isSuperset(of: ["proxy GET /export-me", "wait for upstream", "receive"]), "\(proxySpans)")
        #expect(proxySpans.allSatisfy { $0["service"] as? String == "tracetap" })
        let root = try #require(proxySpans.first { $0["name"] as? String == "proxy GET /export-me" })
        #expect(proxySpans.filter { $0["parent"] as? String == root["span"] as? String }.count >= 3)
        #expect(Set(received.compactMap { $0["name"] as? String }).isSuperset(of: ["GET /orders", "load orders", "send email"]))
    }

    @Test func spansArrivingBeforeTheCaptureFolderExistsAreKept() {
        // The capture writer makes the folders on its own thread; spans may come first (seen on CI).
        let session = temporaryStore() + "/2026-11-23T00-00-00.000Z"
        let store = SpanStore(sessionPath: session)
        store.add([Span(traceID: String(repeating: "a", count: 32), spanID: String(repeating: "b", count: 16), name: "early", startNanos: 1, endNanos: 2, source: .otlp)])
        store.finish()
        #expect(SpanFile.read(sessionPath: session).map(\.name) == ["early"])
    }

    @Test func serverTimingBecomesSpansWhenNoOTLPArrives() throws {
        let store = temporaryStore()
        let app = try PythonBackend(script: Repo.tracedAppScript, arguments: ["--otlp", "http://127.0.0.1:1/v1/traces"])
        defer { app.stop() }
        let proxy = try TestProxy(upstreamPort: app.port) { $0.captureDirectory = store }
        let response = try proxy.get("/timing-only")
        let traceID = String(try #require(response.header("traceresponse")).split(separator: "-")[1])
        proxy.stop()
        let (status, out, _) = try Binary.run(["trace", traceID, "--capture", store])
        #expect(status == 0)
        #expect(out.contains("db [server-timing]") && out.contains("app (render) [server-timing]"), "\(out)")
        #expect(out.components(separatedBy: "\n").contains { $0.contains("db [server-timing]") && $0.contains("12.5 ms") }, "\(out)")
        #expect(out.components(separatedBy: "\n").contains { $0.contains("app (render)") && $0.contains("30.0 ms") }, "\(out)")
    }

    @Test func theReceiverSpeaksOTLP() throws {
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: 1) { $0.captureDirectory = store }
        defer { proxy.stop() }
        let adminPort = try #require(proxy.server.adminPort)
        func post(_ contentType: String, _ body: [UInt8], encoding: String? = nil) throws -> TestResponse {
            let client = try BlockingSocket.connect(port: adminPort)
            defer { client.close() }
            client.send(Array("POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\n\(encoding.map { "Content-Encoding: \($0)\r\n" } ?? "")Content-Length: \(body.count)\r\n\r\n".utf8) + body)
            return try client.readResponse()
        }
        let protobuf = try OTLPDecoderTests.fixture("trace.pb")
        let ok = try post("application/x-protobuf", protobuf)
        #expect(ok.status == 200 && ok.header("Content-Type") == "application/x-protobuf" && ok.body.isEmpty)
        let json = try post("application/json; charset=utf-8", try OTLPDecoderTests.fixture("trace.json"))
        #expect(json.status == 200 && json.text == "{}")
        // gzip, as the Collector's otlphttp exporter sends by default.
        let gzipPath = NSTemporaryDirectory() + "trace-\(UUID().uuidString).pb.gz"
        _ = try ChildProcess.run(["python3", "-c", "import gzip,sys; open(sys.argv[2],'wb').write(gzip.compress(open(sys.argv[1],'rb').read()))",
                                  Repo.root.appendingPathComponent("Tests/Fixtures/otlp/trace.pb").path, gzipPath])
        let gzipped = [UInt8](try Data(contentsOf: URL(fileURLWithPath: gzipPath)))
        #expect(gzipped.starts(with: [0x1f, 0x8b]))
        #expect(try post("application/x-protobuf", gzipped, encoding: "gzip").status == 200)
        #expect(try post("application/x-protobuf", Array(gzipped.dropLast(9)), encoding: "gzip").status == 400)
        let bad = try post("application/x-protobuf", [0x0a, 0x7f])
        #expect(bad.status == 400 && bad.header("Content-Type") == "application/x-protobuf")
        #expect(try post("text/plain", [1]).status == 415)
        let partial = try post("application/json", Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","spanId":"1"}]}]}]}"#.utf8))
        #expect(partial.status == 200 && partial.text.contains(#""rejectedSpans":"1""#))
        // Fixture spans three times (protobuf, JSON, gzip); the rejected one is not stored.
        #expect(waitUntil(seconds: 10) { SpanFile.read(sessionPath: proxy.server.captureSessionPath!).count == 9 })
    }
}
