import Foundation
import Glibc
import Testing
import TracetapCore

/// `tracetap ls`, `show` and `export` on a store the proxy binary wrote.
@Suite struct CaptureCLITests {
    /// Runs traffic through a proxy process recording into a fresh store; returns the store. The login goes
    /// to /upload, which answers with a digest, so a secret in any output can only come from the request.
    static func recordedStore() throws -> String {
        let store = temporaryStore()
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try ProxyProcess(upstreamPort: backend.port, ["--capture", store])
        let client = try proxy.connect()
        defer { client.close() }
        let login = #"{"user":"ann","password":"hunter2","nested":{"token":"t0k"}}"#
        for request in [
            "POST /upload HTTP/1.1\r\nHost: shop\r\nX-Request-ID: login\"7\\a\r\nAuthorization: Bearer s3cret\r\nCookie: sid=abc; theme=dark\r\nContent-Type: application/json\r\nContent-Length: \(login.utf8.count)\r\n\r\n\(login)",
            "GET /api/items?page=2&q=a%20b HTTP/1.1\r\nHost: shop\r\n\r\n",
            "GET /status/503 HTTP/1.1\r\nHost: shop\r\n\r\n",
            "GET /slow?ms=300 HTTP/1.1\r\nHost: shop\r\n\r\n",
            "GET /gzip HTTP/1.1\r\nHost: shop\r\nAccept-Encoding: gzip\r\n\r\n",
        ] {
            client.send(request)
            _ = try client.readResponse()
        }
        proxy.stop()
        return store
    }

    @Test func lsListsAndFilters() throws {
        let store = try Self.recordedStore()
        func ls(_ extra: [String]) throws -> [String] {
            let (status, out, errors) = try Binary.run(["ls", "--capture", store] + extra)
            #expect(status == 0, "\(errors)")
            return out.split(separator: "\n").dropFirst(2).map(String.init)
        }
        #expect(try ls([]).count == 5)
        #expect(try ls(["--status", "5xx"]).map { $0.contains("/status/503") } == [true])
        #expect(try ls(["--path", "/api/*"]).map { $0.contains("/api/items?page=2") } == [true])
        #expect(try ls(["--method", "post"]).map { $0.contains("/upload") } == [true])
        #expect(try ls(["--slower", "200ms"]).map { $0.contains("/slow") } == [true])
        let trace = try #require(try ls([]).first?.split(separator: " ").last.map(String.init))
        #expect(try ls(["--trace", String(trace.prefix(8))]).count == 1)
    }

    @Test func showPrintsHeadersPrettyJSONAndTimingsWithSecretsMasked() throws {
        let store = try Self.recordedStore()
        let (status, out, errors) = try Binary.run(["show", "1", "--capture", store])
        #expect(status == 0, "\(errors)")
        #expect(out.contains("> POST /upload HTTP/1.1"))
        #expect(out.contains("> Authorization: [masked]"))
        #expect(out.contains("> Cookie: sid=[masked]; theme=[masked]"))
        #expect(out.contains("\"password\" : \"[masked]\""))
        #expect(out.contains("\"token\" : \"[masked]\""))
        #expect(out.contains("\"user\" : \"ann\""))
        #expect(!out.contains("hunter2") && !out.contains("s3cret"))
        #expect(out.contains("first response byte"))
        let (_, revealed, _) = try Binary.run(["show", "1", "--capture", store, "--show-secrets"])
        #expect(revealed.contains("Authorization: Bearer s3cret") && revealed.contains("hunter2"))
        let (missing, _, message) = try Binary.run(["show", "99", "--capture", store])
        #expect(missing == 2 && message.contains("no exchange '99'"))

        // The same exchange by session and number, by its request ID (escaped in the file) and by its trace ID.
        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let traceID = try #require(reader.exchanges(in: session).exchanges.first?.traceID)
        for id in ["\(session):1", #"login"7\a"#, traceID] {
            let (found, shown, errors) = try Binary.run(["show", id, "--capture", store])
            #expect(found == 0 && shown.contains("> POST /upload HTTP/1.1") && shown.contains(#"> X-Request-ID: login"7\a"#), "\(id): \(errors)")
        }
    }

    @Test func harExportIsValidHAR12() throws {
        let store = try Self.recordedStore()
        let (status, out, errors) = try Binary.run(["export", "--capture", store, "--format", "har"])
        #expect(status == 0, "\(errors)")
        #expect(!out.contains("hunter2") && !out.contains("s3cret") && !out.contains("sid=abc"))
        let root = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let log = try #require(root["log"] as? [String: Any])
        #expect(log["version"] as? String == "1.2")
        let creator = try #require(log["creator"] as? [String: Any])
        #expect(creator["name"] is String && creator["version"] is String)
        let entries = try #require(log["entries"] as? [[String: Any]])
        #expect(entries.count == 5)
        let iso = try Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#)
        for entry in entries {
            #expect((entry["startedDateTime"] as? String)?.wholeMatch(of: iso) != nil)
            let timings = try #require(entry["timings"] as? [String: Double])
            for key in ["send", "wait", "receive"] { #expect((timings[key] ?? -1) >= 0, "\(key) must be non-negative") }
            for key in ["blocked", "dns", "connect", "ssl"] { #expect((timings[key] ?? -1) >= -1) }
            let sum = ["blocked", "dns", "connect", "send", "wait", "receive"].compactMap { timings[$0] }.filter { $0 >= 0 }.reduce(0, +)
            #expect(abs((entry["time"] as? Double ?? -1) - sum) < 0.001)
            #expect(entry["cache"] is [String: Any])
            let request = try #require(entry["request"] as? [String: Any])
            for key in ["method", "url", "httpVersion"] { #expect(request[key] is String, "request.\(key)") }
            for key in ["cookies", "headers", "queryString"] { #expect(request[key] is [[String: Any]], "request.\(key)") }
            for key in ["headersSize", "bodySize"] { #expect(request[key] is Int, "request.\(key)") }
            #expect((request["url"] as? String)?.hasPrefix("http://shop/") == true)
            let response = try #require(entry["response"] as? [String: Any])
            for key in ["status", "headersSize", "bodySize"] { #expect(response[key] is Int, "response.\(key)") }
            for key in ["statusText", "httpVersion", "redirectURL"] { #expect(response[key] is String, "response.\(key)") }
            let content = try #require(response["content"] as? [String: Any])
            #expect(content["size"] is Int && content["mimeType"] is String)
        }
        let login = try #require(entries.first?["request"] as? [String: Any])
        #expect((login["cookies"] as? [[String: String]])?.map { $0["name"] ?? "" } == ["sid", "theme"])
        let postData = try #require(login["postData"] as? [String: Any])
        #expect(postData["mimeType"] as? String == "application/json")
        #expect((postData["text"] as? String)?.contains("[masked]") == true)
        let items = try #require(entries[1]["request"] as? [String: Any])
        #expect((items["queryString"] as? [[String: String]]) == [["name": "page", "value": "2"], ["name": "q", "value": "a b"]])
        #expect(((entries[2]["response"] as? [String: Any])?["status"] as? Int) == 503)
    }

    @Test func gzipBodiesAreStoredAsSentAndShownDecoded() throws {
        let store = try Self.recordedStore()
        let (_, out, _) = try Binary.run(["show", "5", "--capture", store])
        #expect(out.contains("< Content-Encoding: gzip"))
        #expect(out.contains("(gzip: ") && out.contains("shown decoded)"))
        #expect(out.contains("\"note\" : \"compressed\""))

        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let stored = try #require(reader.exchanges(in: session).exchanges.last?.response)
        #expect(stored.body.starts(with: [0x1f, 0x8b]))  // as sent

        let (_, har, _) = try Binary.run(["export", "--capture", store, "--format", "har"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(har.utf8)) as? [String: Any])
        let entries = try #require((root["log"] as? [String: Any])?["entries"] as? [[String: Any]])
        let response = try #require(entries.last?["response"] as? [String: Any])
        let content = try #require(response["content"] as? [String: Any])
        let text = try #require(content["text"] as? String)
        #expect(text.contains("\"note\": \"compressed\""))
        #expect(content["size"] as? Int == text.utf8.count)
        #expect(response["bodySize"] as? Int == stored.body.count)
        #expect(content["compression"] as? Int == text.utf8.count - stored.body.count)
    }

    @Test func aStoreThatCannotBeWrittenIsReportedOnStderrAndInTheAdminStatus() throws {
        let base = temporaryStore()
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: base + "/file", contents: Data()))
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try ProxyProcess(upstreamPort: backend.port, ["--capture", base + "/file/store"])
        defer { proxy.stop() }
        let client = try proxy.connect()
        defer { client.close() }
        for _ in 0..<3 {
            client.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
        }
        #expect(proxy.child.waitForOutput("tracetap: capture: cannot create"))
        #expect(proxy.child.stderr.contains("forwarding continues"))
        let admin = try BlockingSocket.connect(port: try #require(proxy.adminPort))
        defer { admin.close() }
        #expect(waitUntil {
            admin.send("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let status = try? admin.readResponse().json()
            return (status?["capture"] as? [String: Any])?["lost"] as? Int == 3
        })
    }

    @Test func curlAndJSONLExports() throws {
        let store = try Self.recordedStore()
        let (_, curl, _) = try Binary.run(["export", "--capture", store, "--format", "curl"])
        let commands = curl.split(separator: "\n").filter { $0.hasPrefix("curl ") }
        #expect(commands.count == 5)
        #expect(commands.first?.contains("-X $'POST' $'http://shop/upload'") == true)
        #expect(commands.first?.contains("-H $'Authorization: [masked]'") == true)
        #expect(!curl.contains("s3cret"))

        let (_, jsonl, _) = try Binary.run(["export", "--capture", store, "--format", "jsonl", "--show-secrets"])
        let lines = jsonl.split(separator: "\n")
        #expect(lines.count == 5)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["method"] as? String == "POST")
        let request = try #require(first["request"] as? [String: Any])
        let body = try #require(Data(base64Encoded: request["body_base64"] as? String ?? ""))
        #expect(String(decoding: body, as: UTF8.self).contains("hunter2"))
    }
}
