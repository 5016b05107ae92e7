import Foundation
import Glibc
import Testing
@testable import TracetapCore

/// A folder with one rule file, `rules.json`.
func ruleFolder(_ json: String) throws -> String {
    let folder = temporaryStore()
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try json.write(toFile: folder + "/rules.json", atomically: false, encoding: .utf8)
    return folder
}

/// Fault rules over real sockets: what the client and the upstream actually saw.
@Suite struct RulesTests {
    static func proxy(_ rules: String, upstreamPort: Int, seed: UInt64 = 1) throws -> TestProxy {
        let book = try RuleBook(directory: try ruleFolder(rules), seed: seed)
        return try TestProxy(upstreamPort: upstreamPort) { $0.rules = book }
    }

    static let ok = FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    @Test func delayHoldsOnlyMatchingRequests() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(#"{"rules": [{"name": "slow", "match": {"path": "/slow*"}, "faults": [{"type": "delay", "ms": 300}]}]}"#,
                                   upstreamPort: upstream.port)
        defer { proxy.stop() }
        var started = Date()
        #expect(try proxy.get("/slow/x").status == 200)
        let delayed = Date().timeIntervalSince(started)
        started = Date()
        #expect(try proxy.get("/fast").status == 200)
        let undelayed = Date().timeIntervalSince(started)
        #expect(delayed >= 0.3 && delayed < 2, "\(delayed)")
        #expect(undelayed < 0.2, "\(undelayed)")
        let records = proxy.sink.wait(for: 2)
        #expect(records.map(\.faults) == [["slow:delay"], []])
        #expect(upstream.notes.count == 2)
    }

    @Test func abortAnswersWithoutCallingTheUpstream() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(#"{"rules": [{"name": "down", "match": {"method": "POST", "path": "/pay"}, "faults": [{"type": "abort", "status": 503, "body": "come back later\n"}]}]}"#,
                                   upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}GET /pay HTTP/1.1\r\nHost: a\r\n\r\n")
        let aborted = try client.readResponse()
        #expect(aborted.status == 503 && aborted.text == "come back later\n")
        #expect(aborted.header("traceresponse") != nil)
        #expect(try client.readResponse().status == 200)  // GET does not match; same connection kept
        #expect(upstream.notes.count == 1 && upstream.notes.first?.hasPrefix("GET /pay") == true)
        #expect(proxy.sink.wait(for: 2).first?.faults == ["down:abort"])
    }

    @Test func timeoutAnswers504OrJustCloses() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy("""
            {"rules": [
              {"name": "hang", "match": {"path": "/hang"}, "faults": [{"type": "timeout", "ms": 200}]},
              {"name": "drop", "match": {"path": "/drop"}, "faults": [{"type": "timeout", "ms": 200, "action": "close"}]}
            ]}
            """, upstreamPort: upstream.port)
        defer { proxy.stop() }
        let started = Date()
        let held = try proxy.get("/hang")
        #expect(held.status == 504 && held.text.contains("fault rule hang held the request for 200 ms"))
        #expect(Date().timeIntervalSince(started) >= 0.2)
        let client = try proxy.connect()
        defer { client.close() }
        client.send("GET /drop HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(client.readToEnd().isEmpty)
        #expect(upstream.accepted.load(ordering: .relaxed) == 0)
        #expect(proxy.sink.wait(for: 2).map(\.failure) == [.faultTimeout, .faultTimeout])
    }

    @Test func everyAfterAndLimitPickExactlyTheRightRequests() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        // Skip the first match, then every 2nd, at most 2 times: requests 2 and 4 of 8.
        let proxy = try Self.proxy(#"{"rules": [{"name": "some", "every": 2, "after": 1, "limit": 2, "faults": [{"type": "abort", "status": 418}]}]}"#,
                                   upstreamPort: upstream.port)
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        var statuses: [Int] = []
        for i in 1...8 {
            client.send("GET /n/\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
            statuses.append(try client.readResponse().status)
        }
        #expect(statuses == [200, 418, 200, 418, 200, 200, 200, 200])
        #expect(proxy.server.config.rules?.rules.first?.hits == 2)
    }

    @Test func matchOnMethodRegexQueryAndHeaders() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy("""
            {"rules": [{"name": "picky", "match": {"method": "GET", "path_regex": "^/api/v[0-9]+/orders",
              "query": {"debug": "1"}, "headers": {"X-Role": "admin"}}, "faults": [{"type": "abort", "status": 451}]}]}
            """, upstreamPort: upstream.port)
        defer { proxy.stop() }
        func status(_ target: String, _ headers: [String] = ["X-Role: super-admin"], method: String = "GET") throws -> Int {
            try proxy.get(target, headers: headers, method: method).status
        }
        #expect(try status("/api/v2/orders?debug=1") == 451)
        #expect(try status("/api/v2/orders?debug=1", method: "DELETE") == 200)
        #expect(try status("/api/vX/orders?debug=1") == 200)
        #expect(try status("/api/v2/orders?debug=0") == 200)
        #expect(try status("/api/v2/orders?debug=1", ["X-Role: guest"]) == 200)
        #expect(try status("/api/v2/orders?debug=1", []) == 200)
    }

    @Test func theSameSeedMakesTheSameChoices() throws {
        let rules = #"{"rules": [{"name": "coin", "probability": 0.5, "faults": [{"type": "abort", "status": 500}]}]}"#
        func decisions(seed: UInt64) throws -> [Int] {
            let upstream = try FakeUpstream(handler: Self.ok)
            defer { upstream.stop() }
            let proxy = try Self.proxy(rules, upstreamPort: upstream.port, seed: seed)
            defer { proxy.stop() }
            let client = try proxy.connect()
            defer { client.close() }
            return try (0..<64).map { i in
                client.send("GET /\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
                return try client.readResponse().status
            }
        }
        let first = try decisions(seed: 42)
        #expect(try decisions(seed: 42) == first)
        #expect(try decisions(seed: 43) != first)
        #expect(first.contains(500) && first.contains(200))
    }

    @Test func aBrokenFileKeepsTheLastGoodRules() throws {
        let folder = try ruleFolder(#"{"rules": [{"name": "a", "match": {"path": "/a"}, "faults": [{"type": "abort", "status": 401}]}]}"#)
        let book = try RuleBook(directory: folder, seed: 1)
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try TestProxy(upstreamPort: upstream.port) { $0.rules = book }
        defer { proxy.stop() }
        #expect(try proxy.get("/a").status == 401)

        try "{\"rules\": [\n  {\"name\": \"b\", \"faults\": [{\"type\": \"delay\"}]}\n]}".write(toFile: folder + "/rules.json", atomically: false, encoding: .utf8)
        let error = try #require(book.reloadIfChanged())
        #expect(error.description == "\(folder)/rules.json:2: delay needs \"ms\"")
        #expect(try proxy.get("/a").status == 401)  // still the old rules

        try #"{"rules": [{"name": "b", "match": {"path": "/b"}, "faults": [{"type": "abort", "status": 402}]}]}"#
            .write(toFile: folder + "/rules.json", atomically: false, encoding: .utf8)
        #expect(book.reloadIfChanged() == nil)
        #expect(try proxy.get("/a").status == 200)
        #expect(try proxy.get("/b").status == 402)
    }

    @Test(arguments: [
        ("{\"rules\": [\n{\"name\": \"x\",\n \"faults\": [{\"type\": \"delay\", \"ms\": 10}],\n \"every\": 0}]}", 4, "every must be a whole number from 1"),
        ("{\"rules\": [\n{\"name\": \"x\" \"faults\": []}]}", 2, "expected ',' or '}' in an object"),
        ("{\"rules\": [\n{\"name\": \"x\",\n \"match\": {\"pth\": \"/\"},\n \"faults\": [{\"type\": \"abort\"}]}]}", 3, "unknown key \"pth\""),
        ("{\"rules\": [\n{\"name\": \"x\", \"faults\": [\n{\"type\": \"duplicate\", \"count\": 1}]}]}", 3, "count must be a whole number from 2 to 100"),
        ("{\"rules\": [\n{\"name\": \"x\",\n \"match\": {\"path_regex\": \"([\"},\n \"faults\": [{\"type\": \"abort\"}]}]}", 3, "bad path_regex"),
    ])
    func mistakesNameFileLineAndReason(json: String, line: Int, reason: String) throws {
        let folder = try ruleFolder(json)
        do {
            _ = try RuleLoader.load(directory: folder)
            Issue.record("loaded a broken file")
        } catch {
            #expect(error.file == folder + "/rules.json")
            #expect(error.line == line, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
        }
    }

    @Test func theBinaryRefusesABrokenRuleFolderAndChecksFiles() throws {
        let folder = try ruleFolder("{\"rules\": [\n{\"name\": \"x\", \"faults\": [{\"type\": \"explode\"}]}]}")
        let (status, _, errors) = try Binary.run(["proxy", "--listen", "127.0.0.1:0", "--admin", "off", "--no-capture", "--rules", folder])
        #expect(status == 2)
        #expect(errors.contains("\(folder)/rules.json:2: unknown fault type \"explode\""))
        let (checkStatus, _, checkErrors) = try Binary.run(["rules", "check", folder])
        #expect(checkStatus == 2 && checkErrors.contains("rules.json:2"))
        let good = try ruleFolder(#"{"rules": [{"name": "slow", "faults": [{"type": "delay", "ms": 5}]}]}"#)
        let (okStatus, out, _) = try Binary.run(["rules", "check", good])
        #expect(okStatus == 0 && out.contains("1 rules OK"))
    }

    @Test func editingAFileTakesEffectWithinASecondWithoutDroppingConnections() throws {
        let folder = try ruleFolder(#"{"rules": []}"#)
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try ProxyProcess(upstreamPort: upstream.port, ["--rules", folder])
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        try #"{"rules": [{"name": "teapot", "faults": [{"type": "abort", "status": 418}]}]}"#
            .write(toFile: folder + "/rules.json", atomically: true, encoding: .utf8)
        #expect(proxy.child.waitForOutput("loaded 1 rules", seconds: 3))
        client.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse().status == 418)
        #expect(proxy.child.waitForOutput("faults=teapot:abort"))
    }

    /// One admin call on a fresh connection: status and JSON body.
    static func admin(_ proxy: TestProxy, _ method: String, _ path: String, body: String = "") throws -> (Int, [String: Any]) {
        let admin = try BlockingSocket.connect(port: try #require(proxy.server.adminPort))
        defer { admin.close() }
        admin.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let response = try admin.readResponse()
        return (response.status, try response.json())
    }

    @Test func theAdminAPIListsCountsTogglesAndAddsTemporaryRules() throws {
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try Self.proxy(#"{"rules": [{"name": "teapot", "match": {"path": "/tea"}, "faults": [{"type": "abort", "status": 418}]}]}"#,
                                   upstreamPort: upstream.port, seed: 99)
        defer { proxy.stop() }
        #expect(try proxy.get("/tea").status == 418)
        #expect(try proxy.get("/coffee").status == 200)
        var (status, json) = try Self.admin(proxy, "GET", "/api/rules")
        var rules = json["rules"] as? [[String: Any]] ?? []
        #expect(status == 200 && json["seed"] as? Int == 99)
        #expect(rules.count == 1 && rules[0]["matched"] as? Int == 1 && rules[0]["applied"] as? Int == 1)

        (status, _) = try Self.admin(proxy, "POST", "/api/rules/teapot/disable")
        #expect(status == 200)
        #expect(try proxy.get("/tea").status == 200)
        (status, _) = try Self.admin(proxy, "POST", "/api/rules/teapot/enable")
        #expect(try proxy.get("/tea").status == 418)

        (status, json) = try Self.admin(proxy, "POST", "/api/rules", body: #"{"name": "slow-coffee", "match": {"path": "/coffee"}, "faults": [{"type": "abort", "status": 503}]}"#)
        #expect(status == 201 && json["name"] as? String == "slow-coffee")
        #expect(try proxy.get("/coffee").status == 503)
        (status, json) = try Self.admin(proxy, "POST", "/api/rules", body: "{\"name\": \"bad\",\n \"faults\": [{\"type\": \"delay\"}]}")
        #expect(status == 400 && (json["error"] as? String)?.contains(":2: delay needs \"ms\"") == true)
        (status, json) = try Self.admin(proxy, "GET", "/api/rules")
        rules = json["rules"] as? [[String: Any]] ?? []
        #expect(rules.map { $0["name"] as? String } == ["teapot", "slow-coffee"])
        (status, _) = try Self.admin(proxy, "DELETE", "/api/rules/slow-coffee")
        #expect(status == 200)
        #expect(try proxy.get("/coffee").status == 200)
        (status, _) = try Self.admin(proxy, "DELETE", "/api/rules/teapot")
        #expect(status == 404)  // file rules are changed in their files
    }

    @Test func theSeedIsStoredWithTheCapture() throws {
        let store = temporaryStore()
        let folder = try ruleFolder(#"{"rules": [{"name": "coin", "probability": 0.5, "faults": [{"type": "abort", "status": 500}]}]}"#)
        let upstream = try FakeUpstream(handler: Self.ok)
        defer { upstream.stop() }
        let proxy = try ProxyProcess(upstreamPort: upstream.port, ["--rules", folder, "--seed", "4242", "--capture", store])
        #expect(proxy.child.waitForOutput("seed 4242"), "\(proxy.child.stderr)")  // the line after the one ProxyProcess waits for
        let client = try proxy.connect()
        client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse().status > 0)
        client.close()
        proxy.stop()
        let (status, out, _) = try Binary.run(["ls", "--capture", store])
        #expect(status == 0 && out.contains("fault rules seed 4242 (repeat with --seed 4242)"), "\(out)")
    }

    @Test func theShippedExamplesLoadAndCoverEveryFault() throws {
        let rules = try RuleLoader.load(directory: Repo.root.appendingPathComponent("Rules/examples").path)
        let kinds = Set(rules.flatMap { $0.faultDescriptions.map { String($0.prefix { $0 != " " }) } })
        #expect(kinds == Set(FaultTypes.all.map { $0.type }))
        #expect(rules.contains { $0.match.sql != nil && $0.faultDescriptions == ["timeout 30000ms then SQLSTATE 57014"] })
        // The default folder holds no active rules: a plain `tracetap proxy` breaks nothing.
        #expect(try RuleLoader.load(directory: Repo.root.appendingPathComponent("Rules").path).isEmpty)
    }

    /// The README's tour: the shipped duplicate example exposes the fixture backend's non-idempotent POST.
    @Test func aDuplicateExposesANonIdempotentPostOnARealBackend() throws {
        let backend = try PythonBackend()
        defer { backend.stop() }
        let store = temporaryStore()
        let proxy = try ProxyProcess(upstreamPort: backend.port, ["--rules", Repo.root.appendingPathComponent("Rules/examples").path, "--capture", store])
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        client.send("POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n{\"item\":1}")
        let created = try client.readResponse()
        #expect(created.status == 201 && created.text.contains(#""order": 1"#))
        #expect(proxy.child.waitForOutput("copy=3/3 DIFFER \"copy 2: order: 2 vs 1\""))
        client.send("GET /orders HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse().text == #"{"orders": 3}"#)
        proxy.stop()
        // The three copies side by side in the capture.
        let trace = try #require(created.header("traceresponse")?.split(separator: "-")[1])
        let (status, out, _) = try Binary.run(["show", String(trace), "--capture", store])
        #expect(status == 0)
        #expect(out.contains("duplicate: copy 3 of 3; responses DIFFER: copy 2: order: 2 vs 1"), "\(out)")
        for copy in 1...3 { #expect(out.contains("copy \(copy)  #\(copy)  201  ") && out.contains(#"{"order": \#(copy), "status": "created"}"#)) }
    }
}
