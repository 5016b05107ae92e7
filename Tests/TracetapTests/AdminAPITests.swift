import Foundation
import Glibc
import Testing
@testable import TracetapCore

/// The admin API behind the web UI, endpoint by endpoint, over real sockets.
@Suite struct AdminAPITests {
    static func proxy(upstream: FakeUpstream, capture: Bool = true, _ configure: (inout ProxyConfig) -> Void = { _ in }) throws -> (TestProxy, AdminClient) {
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: upstream.port) {
            $0.captureDirectory = capture ? store : nil
            configure(&$0)
        }
        return (proxy, AdminClient(port: try #require(proxy.server.adminPort)))
    }

    @Test func theUIIsServedFromTheBinaryWithAStrictContentSecurityPolicy() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        let page = try admin.request("GET", "/")
        #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
        #expect(page.header("Content-Security-Policy")?.contains("script-src 'self'") == true)
        #expect(page.header("Content-Security-Policy")?.contains("default-src 'none'") == true)
        #expect(page.text.contains("<script src=\"/ui/app.js\" defer></script>") && !page.text.contains("http://") && !page.text.contains("https://"))
        let script = try admin.request("GET", "/ui/app.js")
        #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8" && script.text.contains("new EventSource("))
        let style = try admin.request("GET", "/ui/app.css")
        #expect(style.status == 200 && style.header("Content-Type") == "text/css; charset=utf-8")
        #expect(try admin.request("POST", "/").status == 405)
        #expect(try admin.request("GET", "/nothing-here").status == 404)
    }

    @Test func theLiveFeedListsExchangesAndStreamsNewOnesAsTheyHappen() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        #expect(try proxy.get("/json").status == 200)
        #expect(try proxy.get("/missing").status == 404)
        let listed = try admin.waitFor("/api/exchanges") { ($0["exchanges"] as? [Any])?.count == 2 }
        let exchanges = try #require(listed["exchanges"] as? [[String: Any]])
        #expect(exchanges.map { $0["target"] as? String } == ["/json", "/missing"])
        #expect(exchanges.map { $0["status"] as? Int } == [200, 404])
        #expect(exchanges.map { $0["seq"] as? Int } == [1, 2])
        #expect(exchanges[0]["content_type"] as? String == "application/json" && exchanges[0]["response_bytes"] as? Int == ShopUpstream.json.utf8.count)
        #expect((exchanges[0]["trace_id"] as? String)?.count == 32 && (exchanges[0]["span_id"] as? String)?.count == 16)

        // A stream from after the second: the third exchange arrives as it happens.
        let stream = try BlockingSocket.connect(port: admin.port)
        defer { stream.close() }
        stream.send("GET /api/events?after=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let head = try stream.read(until: "\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200") && head.contains("Content-Type: text/event-stream"))
        #expect(try proxy.get("/blob").status == 200)
        let text = try stream.read(until: "\"target\":\"/blob\"") + stream.read(until: "\n\n")
        #expect(text.hasPrefix("retry: 1000\n\n"), "\(text)")
        #expect(text.contains("id: 3\nevent: exchange\ndata: {\"seq\":3,"), "\(text)")

        // A reconnecting EventSource says where it was; it gets what came after.
        let resumed = try BlockingSocket.connect(port: admin.port)
        defer { resumed.close() }
        resumed.send("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 1\r\n\r\n")
        let replay = try resumed.read(until: "id: 3\n")
        #expect(replay.contains("id: 2\nevent: exchange") && !replay.contains("id: 1\n"))
    }

    @Test func theFeedKeepsTheNewestAndSaysWhatAReaderMissed() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream, capture: false) { $0.liveFeedCapacity = 3 }
        defer { proxy.stop() }
        for i in 1...5 { #expect(try proxy.get("/n\(i)").status == 200) }
        let listed = try admin.waitFor("/api/exchanges") { ($0["exchanges"] as? [[String: Any]])?.last?["seq"] as? Int == 5 }
        #expect((listed["exchanges"] as? [[String: Any]])?.map { $0["target"] as? String } == ["/n3", "/n4", "/n5"])
        #expect(listed["missed"] as? Bool == true && listed["session"] is NSNull)
        let after = try admin.json("GET", "/api/exchanges?after=4")
        #expect((after["exchanges"] as? [[String: Any]])?.map { $0["seq"] as? Int } == [5] && after["missed"] as? Bool == false)
        let stream = try BlockingSocket.connect(port: admin.port)
        defer { stream.close() }
        stream.send("GET /api/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let text = try stream.read(until: "id: 5\n")
        #expect(text.contains("event: missed\ndata: {\"after\":0}") && text.contains("id: 3\n") && !text.contains("id: 2\n"))
        // Capture off: the list works, the stored parts say why they are not there.
        #expect(try admin.request("GET", "/api/sessions").status == 409)
    }

    @Test func sessionsAndExchangeDetailsComeFromTheCaptureWithSecretsMasked() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        #expect(try proxy.get("/json", headers: ["Cookie: sid=abc123; theme=dark", "Authorization: Bearer tok3n"]).status == 200)
        #expect(try proxy.get("/image.png").status == 200)
        let sessions = try admin.json("GET", "/api/sessions")
        let current = try #require(sessions["current"] as? String)
        #expect((sessions["sessions"] as? [[String: Any]])?.first?["name"] as? String == current)
        let listed = try admin.waitFor("/api/sessions/current/exchanges") { ($0["exchanges"] as? [Any])?.count == 2 }
        #expect(listed["session"] as? String == current)
        let first = try #require((listed["exchanges"] as? [[String: Any]])?.first)
        let spanID = try #require(first["span_id"] as? String)

        let detail = try admin.json("GET", "/api/sessions/current/exchanges/\(spanID)")
        #expect(detail["method"] as? String == "GET" && detail["target"] as? String == "/json" && detail["status"] as? Int == 200)
        #expect(detail["masked"] as? Bool == true && detail["session"] as? String == current)
        let request = try #require(detail["request"] as? [String: Any])
        let requestHeaders = (request["headers"] as? [[String]] ?? []).map { $0.joined(separator: ": ") }
        #expect(requestHeaders.contains("Cookie: sid=[masked]; theme=[masked]") && requestHeaders.contains("Authorization: [masked]"))
        let response = try #require(detail["response"] as? [String: Any])
        let body = String(decoding: Data(base64Encoded: response["body_base64"] as? String ?? "") ?? Data(), as: UTF8.self)
        #expect(body.contains("\"password\":\"[masked]\"") && !body.contains("hunter2") && body.contains("Lyon"))
        #expect((response["headers"] as? [[String]] ?? []).contains(["Set-Cookie", "sid=[masked]; Path=/; HttpOnly"]))
        #expect((detail["curl"] as? String)?.contains("curl -sS -X $'GET'") == true && (detail["curl"] as? String)?.contains("tok3n") == false)
        #expect((detail["timings_us"] as? [String: Int])?["response_complete"] ?? -1 >= 0)
        // The phases the timing bar draws are the proxy's spans of the trace, from the exchange's start.
        let phases = detail["phases"] as? [[String: Any]] ?? []
        // (connect only when opening the connection took a measurable microsecond)
        #expect(phases.compactMap { $0["name"] as? String }.filter { $0 != "connect" } == ["read request", "send", "wait for upstream", "receive"], "\(phases)")
        #expect(phases.last?["end_us"] as? Int == (detail["timings_us"] as? [String: Int])?["response_complete"])

        let revealed = try admin.json("GET", "/api/sessions/current/exchanges/\(spanID)?reveal=1")
        let revealedBody = String(decoding: Data(base64Encoded: (revealed["response"] as? [String: Any])?["body_base64"] as? String ?? "") ?? Data(), as: UTF8.self)
        #expect(revealed["masked"] as? Bool == false && revealedBody == ShopUpstream.json)
        #expect(((revealed["request"] as? [String: Any])?["headers"] as? [[String]] ?? []).contains(["Authorization", "Bearer tok3n"]))

        // The same through the session's own name; unknown IDs and names are 404s, never paths.
        #expect(try admin.request("GET", "/api/sessions/\(current)/exchanges/\(spanID)").status == 200)
        #expect(try admin.request("GET", "/api/sessions/current/exchanges/0123456789abcdef").status == 404)
        #expect(try admin.request("GET", "/api/sessions/..%2F..%2Fetc/exchanges").status == 404)
        #expect(try admin.request("GET", "/api/sessions/../exchanges").status == 404)
        #expect(try admin.request("POST", "/api/sessions").status == 405)
    }

    @Test func aTraceJoinsTheProxyPhasesAndTheBackendsServerTiming() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        #expect(try proxy.get("/timed", headers: ["traceparent: 00-\(traceID)-00f067aa0ba902b7-01"]).status == 200)
        #expect(try proxy.get("/json", headers: ["traceparent: 00-\(traceID)-00f067aa0ba902b8-01"]).status == 200)
        let trace = try admin.waitFor("/api/sessions/current/traces/\(traceID)") { ($0["exchanges"] as? [Any])?.count == 2 }
        // Each request of the trace comes with the start of its response body, secrets masked.
        let previews = (trace["exchanges"] as? [[String: Any]] ?? []).map { $0["response_preview"] as? String ?? "<none>" }
        #expect(previews.count == 2 && previews[0] == "timed" && previews[1].contains("ann") && previews[1].contains("[masked]") && !previews[1].contains("hunter2"), "\(previews)")
        let spans = try #require(trace["spans"] as? [[String: Any]])
        #expect(Set(spans.compactMap { $0["source"] as? String }) == ["proxy", "server-timing"])
        #expect(spans.contains { $0["name"] as? String == "wait for upstream" })
        let db = try #require(spans.first { ($0["name"] as? String)?.hasPrefix("db") == true })
        let start = UInt64(db["start_unix_nano"] as? String ?? "") ?? 0, end = UInt64(db["end_unix_nano"] as? String ?? "") ?? 0
        #expect(end - start == 12_500_000)
        #expect(spans.allSatisfy { $0["trace_id"] as? String == traceID })
        #expect(try admin.request("GET", "/api/sessions/current/traces/00000000000000000000000000000001").status == 404)
    }

    @Test func theHARDownloadIsTheWholeSessionMasked() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        for path in ["/json", "/blob", "/missing"] { _ = try proxy.get(path) }
        _ = try admin.waitFor("/api/sessions/current/exchanges") { ($0["exchanges"] as? [Any])?.count == 3 }
        let har = try admin.request("GET", "/api/sessions/current/har")
        #expect(har.status == 200 && har.header("Content-Disposition")?.hasPrefix("attachment; filename=\"tracetap-") == true)
        let log = try #require(try har.json()["log"] as? [String: Any])
        #expect(log["version"] as? String == "1.2" && (log["entries"] as? [Any])?.count == 3)
        #expect(!har.text.contains("hunter2") && !har.text.contains("s3cretcookie"))
    }

    @Test func aCapturedRequestIsReplayedOnceOrAsARace() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream)
        defer { proxy.stop() }
        #expect(try proxy.get("/json").status == 200)
        let listed = try admin.waitFor("/api/sessions/current/exchanges") { ($0["exchanges"] as? [Any])?.count == 1 }
        let spanID = try #require((listed["exchanges"] as? [[String: Any]])?.first?["span_id"] as? String)

        let once = try admin.json("POST", "/api/replay", body: #"{"session": "current", "span_id": "\#(spanID)"}"#)
        #expect(once["mode"] as? String == "once" && once["status"] as? Int == 200 && once["recorded_status"] as? Int == 200)
        #expect(once["verdict"] as? String == "identical", "\(once)")

        let race = try admin.json("POST", "/api/replay", body: #"{"session": "current", "span_id": "\#(spanID)", "count": 3, "mode": "concurrent"}"#)
        let copies = try #require(race["copies"] as? [[String: Any]])
        #expect(race["mode"] as? String == "concurrent" && copies.map { $0["copy"] as? Int } == [1, 2, 3])
        #expect(copies.allSatisfy { $0["status"] as? Int == 200 } && race["distinct_bodies"] as? Int == 1 && race["successes"] as? Int == 3)
        // Replays go through this proxy: traced and listed like any request (1 + 1 + 3).
        _ = try admin.waitFor("/api/exchanges") { ($0["exchanges"] as? [Any])?.count == 5 }
        #expect(upstream.notes.filter { $0.contains("X-Tracetap-Race: ") }.count == 3)

        #expect(try admin.request("POST", "/api/replay", body: #"{"span_id": "\#(spanID)", "count": 1000}"#).status == 400)
        #expect(try admin.request("POST", "/api/replay", body: "not json").status == 400)
        #expect(try admin.request("POST", "/api/replay", body: #"{"span_id": "0000000000000001"}"#).status == 404)
        #expect(try admin.request("GET", "/api/replay").status == 405)
    }

    @Test func aBookWithoutAFolderTakesRulesFromTheAPIOnly() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream, capture: false) { $0.rules = RuleBook(seed: 1) }
        defer { proxy.stop() }
        let listed = try admin.json("GET", "/api/rules")
        #expect(listed["directory"] is NSNull && (listed["rules"] as? [Any])?.isEmpty == true)
        #expect(proxy.server.config.rules?.reloadIfChanged() == nil)
        _ = try admin.json("POST", "/api/rules", body: #"{"name": "down", "match": {"path": "/json"}, "faults": [{"type": "abort", "status": 503}]}"#)
        #expect(try proxy.get("/json").status == 503)
        #expect(try proxy.get("/blob").status == 200)
    }

    @Test func onLoopbackForeignHostsAndOriginsAreRefused() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream) { $0.rules = try? RuleBook(directory: ruleFolder(#"{"rules": []}"#), seed: 1) }
        defer { proxy.stop() }
        // DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 sends its own name as Host.
        var rebound = admin
        rebound.host = "evil.example"
        #expect(try rebound.request("GET", "/api/sessions").status == 403)
        #expect(try rebound.request("GET", "/").status == 403)
        // Names that only look like loopback addresses resolve wherever their owner wants.
        for name in ["127.0.0.1.evil.example", "127.a.b.c", "127.0.0.256"] {
            rebound.host = name
            #expect(try rebound.request("GET", "/api/status").status == 403, "\(name)")
            #expect(!HostPort(host: name, port: 9901).isLoopback, "\(name)")
        }
        #expect(try AdminClient(port: admin.port, host: "[::1]").request("GET", "/api/status").status == 200)
        #expect(try AdminClient(port: admin.port, host: "localhost").request("GET", "/api/status").status == 200)
        // Another site's form or fetch cannot change anything.
        let rule = #"{"name": "x", "faults": [{"type": "delay", "ms": 1}]}"#
        #expect(try admin.request("POST", "/api/rules", body: rule, extra: ["Origin: http://evil.example"]).status == 403)
        #expect(try admin.request("POST", "/api/rules", body: rule, extra: ["Origin: null"]).status == 403)
        #expect(try admin.request("POST", "/api/rules", body: rule, extra: ["Origin: http://127.0.0.1:\(admin.port)"]).status == 201)
    }

    @Test func offLoopbackEveryRouteWantsTheTokenAndABrowserGetsItAsACookie() throws {
        let upstream = try ShopUpstream.start()
        defer { upstream.stop() }
        let (proxy, admin) = try Self.proxy(upstream: upstream) { $0.admin = HostPort(host: "0.0.0.0", port: 0) }
        defer { proxy.stop() }
        let token = try #require(proxy.server.adminToken)
        #expect(token.count == 32 && token.allSatisfy(\.isHexDigit))
        #expect(try proxy.get("/json").status == 200)
        let routes = ["/", "/ui/app.js", "/ui/app.css", "/api/status", "/api/events", "/api/exchanges", "/api/sessions",
                      "/api/sessions/current/exchanges", "/api/sessions/current/har", "/api/rules"]
        for route in routes {
            let refused = try admin.request("GET", route)
            #expect(refused.status == 401, "\(route)")
            #expect(!refused.text.contains("/json") && !refused.text.contains("hunter2"), "\(route)")
        }
        #expect(try admin.request("POST", "/v1/traces", body: "{}", extra: ["Content-Type: application/json"]).status == 401)
        #expect(try admin.request("POST", "/api/replay", body: "{}").status == 401)
        let nearMiss = token.dropLast() + (token.hasSuffix("0") ? "1" : "0")
        #expect(try admin.request("GET", "/api/status", extra: ["Authorization: Bearer \(nearMiss)"]).status == 401)

        var scripted = admin
        scripted.headers = ["Authorization: Bearer \(token)"]
        _ = try scripted.waitFor("/api/sessions/current/exchanges") { ($0["exchanges"] as? [Any])?.count == 1 }
        for route in ["/", "/ui/app.js", "/api/status", "/api/exchanges", "/api/sessions/current/har"] {
            #expect(try scripted.request("GET", route).status == 200, "\(route)")
        }

        // A browser opens the link printed at start: the token becomes a cookie and leaves the address bar.
        #expect(try admin.request("GET", "/?token=wrong").status == 401)
        let opened = try admin.request("GET", "/?token=\(token)")
        #expect(opened.status == 303 && opened.header("Location") == "/")
        let cookie = try #require(opened.header("Set-Cookie"))
        #expect(cookie == "tracetap_token=\(token); Path=/; HttpOnly; SameSite=Strict")
        var browser = admin
        browser.headers = ["Cookie: other=1; tracetap_token=\(token)"]
        #expect(try browser.request("GET", "/").status == 200)
        #expect(try browser.request("GET", "/api/sessions/current/exchanges").status == 200)
    }

    @Test func theProxyPrintsTheTokenItMadeForANonLoopbackAdminPort() throws {
        let child = try ChildProcess([Repo.binary, "proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
                                      "--admin", "0.0.0.0:0", "--no-capture", "--no-rules"])
        defer { child.stop() }
        #expect(child.waitForOutput("admin token ", seconds: 15), "\(child.stderr)")
        let line = try #require(child.stderr.split(separator: "\n").first { $0.contains("admin token ") })
        let token = String(line.split(separator: " ")[3].prefix { $0 != ":" })
        let port = try #require(ProxyProcess.port(after: "admin on http://0.0.0.0:", in: child.stderr))
        #expect(line.contains("/?token=\(token)"))
        #expect(try AdminClient(port: port).request("GET", "/api/status").status == 401)
        #expect(try AdminClient(port: port, headers: ["Authorization: Bearer \(token)"]).request("GET", "/api/status").status == 200)
    }
}
