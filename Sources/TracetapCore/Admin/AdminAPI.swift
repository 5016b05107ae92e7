import HTTPCodec

/// The admin port's routes: the web UI, and the JSON API it is built on (the same one scripts use).
/// Every route passes `AdminAuth` first. Anything that reads the capture store or sends requests runs off
/// the event loop (`.deferred`); the live list is a Server-Sent Events stream (`.stream`).
struct AdminAPI {
    struct Reply: Sendable {
        var status: Int
        var contentType = "application/json"
        var headers: [(name: String, value: String)] = []
        var body: [UInt8]

        init(status: Int, json: String) {
            self.status = status
            body = Array(json.utf8)
        }

        init(status: Int, contentType: String, body: [UInt8], headers: [(name: String, value: String)] = []) {
            self.status = status
            self.contentType = contentType
            self.body = body
            self.headers = headers
        }

        static func error(_ status: Int, _ message: String) -> Reply { Reply(status: status, json: AdminAPI.errorJSON(message)) }
    }

    enum Outcome {
        case reply(Reply)
        /// Work that may block (disk, the network): run on a worker thread, answered when done.
        case deferred(@Sendable () -> Reply)
        /// `/api/events`: the live feed from just after this sequence number.
        case stream(after: UInt64)
    }

    let loop: ProxyLoop

    func respond(to request: RequestHead, body: [UInt8]) -> Outcome {
        let target = String(decoding: request.target, as: UTF8.self)
        let path = String(target.prefix { $0 != "?" })
        let query = AdminQuery(target)
        let method = request.methodString
        let auth = AdminAuth(token: loop.config.adminToken)
        if let refusal = auth.check(request, method: method, path: path, query: query) { return .reply(refusal) }
        if let page = WebUI.asset(path) {
            guard method == "GET" || method == "HEAD" else { return .reply(.error(405, "use GET")) }
            return .reply(page)
        }
        switch (method, path) {
        case ("GET", "/api/status"):
            return .reply(Reply(status: 200, json: statusJSON()))
        case ("GET", "/api/events"):
            // A reconnecting EventSource says where it was with Last-Event-ID.
            let after = query.number("after") ?? UInt64(request.headerText("last-event-id")) ?? 0
            return loop.shared.feed == nil ? .reply(.error(409, "the live feed is off")) : .stream(after: after)
        case ("GET", "/api/exchanges"):
            return .reply(Reply(status: 200, json: liveJSON(after: query.number("after") ?? 0)))
        case ("POST", OTLPReceiver.path):
            return .reply(OTLPReceiver(store: loop.shared.spans).receive(contentType: request.headerText("content-type"),
                                                                         contentEncoding: request.headerText("content-encoding"), body: body))
        case ("POST", "/api/replay"):
            return ReplayAPI(proxy: loop.shared.replayTarget, sessions: sessions).start(body)
        case (_, "/api/status"), (_, "/api/events"), (_, "/api/exchanges"):
            return .reply(.error(405, "use GET"))
        case (_, OTLPReceiver.path), (_, "/api/replay"):
            return .reply(.error(405, "use POST"))
        case (_, _) where path == "/api/rules" || path.hasPrefix("/api/rules/"):
            return .reply(RulesAPI(book: loop.config.rules).respond(method: method, path: path, body: body))
        case (_, _) where path == "/api/sessions" || path.hasPrefix("/api/sessions/"):
            guard method == "GET" else { return .reply(.error(405, "use GET")) }
            return sessions.respond(path: path, query: query)
        default:
            return .reply(.error(404, "no such endpoint"))
        }
    }

    private var sessions: SessionsAPI {
        SessionsAPI(directory: loop.config.captureDirectory, current: loop.shared.capture?.session)
    }

    private func liveJSON(after: UInt64) -> String {
        guard let feed = loop.shared.feed else { return AdminAPI.errorJSON("the live feed is off") }
        let (entries, missed) = feed.entries(after: after, limit: feed.capacity)
        return "{\"session\":\(loop.shared.capture.map { JSONText.quote($0.session) } ?? "null"),\"missed\":\(missed),\"exchanges\":["
            + entries.map(\.json).joined(separator: ",") + "]}"
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

    static func errorJSON(_ message: String) -> String { "{\"error\":\(JSONText.quote(message))}" }
}

extension RequestHead {
    func headerText(_ lowercaseName: String) -> String {
        headers.first(Array(lowercaseName.utf8)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// A request target's query parameters, percent-decoded (`+` as space, as forms send them).
struct AdminQuery: Sendable {
    private var values: [String: String] = [:]

    init(_ target: String) {
        guard let mark = target.firstIndex(of: "?") else { return }
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            if values[name] == nil { values[name] = parts.count > 1 ? Self.decode(parts[1]) : "" }
        }
    }

    subscript(name: String) -> String? { values[name] }

    func number(_ name: String) -> UInt64? { values[name].flatMap { UInt64($0) } }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), let end = utf8.index(index, offsetBy: 3, limitedBy: utf8.endIndex),
               let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index = end
                continue
            }
            bytes.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
            index = utf8.index(after: index)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum JSONText {
    /// A JSON string literal (RFC 8259 §7): text with nothing to escape (nearly all of it) is copied whole,
    /// the rest goes through the capture writer's escaper.
    static func quote(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) else { return "\"" + text + "\"" }
        var out = LineBuffer(capacity: text.utf8.count + 16)
        append(text, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// `text` as a JSON string literal, appended.
    static func append(_ text: String, into out: inout LineBuffer) {
        var text = text
        text.withUTF8 { JSONBytes.string($0, utf8: true, into: &out) }
    }
}
