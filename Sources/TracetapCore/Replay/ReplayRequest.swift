import HTTPCodec
import TraceContext

/// The bytes of a captured request as it goes to the replay target: same method, target, headers (order
/// and case) and body, with the Host rewritten, fresh trace headers linked to the original trace, and
/// cookies the replay's own responses set carried over.
public enum ReplayRequest {
    /// Sent with every replayed request: the trace ID of the exchange it replays.
    public static let replayOfHeader = "X-Tracetap-Replay-Of"

    /// Never copied: the connection's own framing and hop-by-hop fields, and the old trace.
    public static let dropped: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-connection", "proxy-authorization", "traceparent", "tracestate", "expect", replayOfHeader.lowercased(),
    ]

    /// Whose request it is: the recorded credentials (cookies rewritten by the jar), or another identity's
    /// `Cookie` / `Authorization` in place of the recorded ones (none: anonymous).
    enum Credentials {
        case recorded
        case replaced(by: [(name: String, value: String)])
        static let credentialHeaders: Set<String> = ["cookie", "authorization"]
    }

    static func bytes(for e: CapturedExchange, authority: String, cookies: CookieJar, carried: CarriedValues, random: inout FastRandom,
                      credentials: Credentials = .recorded, extra: [(name: String, value: String)] = []) -> [UInt8] {
        var out = latin1("\(e.method) \(carried.target(e.target)) HTTP/1.1\r\nHost: \(authority)\r\n")
        for header in e.request?.headers ?? [] where !dropped.contains(header.name.lowercased()) {
            let name = header.name.lowercased()
            if case .replaced = credentials, Credentials.credentialHeaders.contains(name) { continue }
            let value = name == "cookie" ? cookies.rewrite(header.value) : carried.header(header.name, header.value)
            out += latin1("\(header.name): \(value)\r\n")
        }
        if case .replaced(let identity) = credentials {
            for header in identity { out += latin1("\(header.name): \(header.value)\r\n") }
        }
        for header in extra { out += latin1("\(header.name): \(header.value)\r\n") }
        let tag = TraceTag.make(traceparents: [], tracestates: [], requestIDs: [], random: &random)
        out += Array("traceparent: ".utf8) + tag.traceparent + Array("\r\n\(replayOfHeader): \(e.traceID)\r\n".utf8)
        let body = carried.body(e.request?.body ?? [])
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(e.method) { out += Array("Content-Length: \(body.count)\r\n".utf8) }
        return out + Array("\r\n".utf8) + body
    }

    /// Header text read back from a capture maps bytes to U+0000...U+00FF (Latin-1); this undoes it.
    public static func latin1(_ text: String) -> [UInt8] { text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }
}

/// Cookies the replayed responses set, so a recorded login-then-act flow works against a fresh backend:
/// each recorded `Cookie` header keeps its names, with the values the replay target gave out.
struct CookieJar {
    private var values: [String: String] = [:]

    mutating func remember(_ headers: [(name: String, value: String)]) {
        for header in headers where header.name.lowercased() == "set-cookie" {
            let pair = header.value.prefix { $0 != ";" }
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
            if !name.isEmpty { values[name] = String(pair[pair.index(after: equals)...]) }
        }
    }

    func rewrite(_ cookieHeader: String) -> String {
        guard !values.isEmpty else { return cookieHeader }
        return cookieHeader.split(separator: ";").map { part in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "="), let value = values[String(trimmed[..<equals])] else { return trimmed }
            return "\(trimmed[..<equals])=\(value)"
        }.joined(separator: "; ")
    }
}
