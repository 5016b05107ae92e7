import HTTPCodec

/// The admin API's routes. JSON in and out; when a token is configured every call must carry it
/// (`Authorization: Bearer TOKEN`).
struct AdminAPI {
    struct Reply {
        var status: Int
        var contentType = "application/json"
        var body: [UInt8]

        init(status: Int, json: String) {
            self.status = status
            body = Array(json.utf8)
        }

        init(status: Int, contentType: String, body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    let loop: ProxyLoop

    func respond(to request: RequestHead, body: [UInt8]) -> Reply {
        if let token = loop.config.adminToken {
            let expected = Array("Bearer \(token)".utf8)
            guard let given = request.headers.first(Array("authorization".utf8)), Self.constantTimeEqual(given, expected) else {
                return Reply(status: 401, json: AdminAPI.errorJSON("missing or wrong admin token"))
            }
        }
        let path = String(decoding: request.target.prefix { $0 != 63 }, as: UTF8.self)
        let method = request.methodString
        switch (method, path) {
        case ("GET", "/api/status"):
            return Reply(status: 200, json: statusJSON())
        case (_, "/api/status"):
            return Reply(status: 405, json: AdminAPI.errorJSON("use GET"))
        case ("POST", OTLPReceiver.path):
            return OTLPReceiver(store: loop.shared.spans).receive(contentType: request.headers.first(Array("content-type".utf8)).map { String(decoding: $0, as: UTF8.self) } ?? "",
                                                                 contentEncoding: request.headers.first(Array("content-encoding".utf8)).map { String(decoding: $0, as: UTF8.self) } ?? "",
                                                                 body: body)
        case (_, OTLPReceiver.path):
            return Reply(status: 405, json: AdminAPI.errorJSON("use POST"))
        case (_, _) where path == "/api/rules" || path.hasPrefix("/api/rules/"):
            return RulesAPI(book: loop.config.rules).respond(method: method, path: path, body: body)
        default:
            return Reply(status: 404, json: AdminAPI.errorJSON("no such endpoint"))
        }
    }

    private func statusJSON() -> String {
        let s = loop.shared.stats.snapshot
        let config = loop.config
        let uptime = Sockets.wallClockSeconds() - loop.shared.stats.startedAt
        return """
        {"uptime_s":\(Int(uptime * 1000) / 1000),"listen":\(JSONText.quote(config.listen.description)),\
        "threads":\(config.threads),"exchanges":\(s.exchanges),"errors":\(s.errors),\
        "clients":{"open":\(s.clientConnections),"total":\(s.clientConnectionsTotal)},\
        "upstream":{"url":\(JSONText.quote(config.upstream.description)),"open":\(s.upstreamOpen),"idle":\(s.upstreamIdle),\
        "connects":\(s.upstreamConnects),"reuses":\(s.upstreamReuses),"retries":\(s.upstreamRetries)},\
        "bytes":{"from_clients":\(s.bytesFromClients),"response_bodies":\(s.responseBodyBytes)},\
        "accept_failures":\(s.acceptFailures),\
        "capture":\(loop.shared.capture.map { "{\"session\":\(JSONText.quote($0.sessionPath)),\"written\":\(s.captureWritten),\"lost\":\(s.captureFailed),\"files_removed\":\(s.captureFilesRemoved)}" } ?? "null")}
        """
    }

    /// Compares every byte whatever the first difference, so the time taken says nothing about the token.
    static func constantTimeEqual(_ given: ArraySlice<UInt8>, _ expected: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: given.count ^ expected.count)
        for (index, byte) in expected.enumerated() {
            difference |= byte ^ (index < given.count ? given[given.startIndex + index] : 0)
        }
        return difference == 0
    }

    static func errorJSON(_ message: String) -> String { "{\"error\":\(JSONText.quote(message))}" }
}

enum JSONText {
    /// A JSON string literal (RFC 8259 §7).
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
