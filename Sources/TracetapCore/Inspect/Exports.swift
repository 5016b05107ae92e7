import Foundation

/// `tracetap export`: HAR 1.2, curl commands, JSON Lines. Every format goes through `SecretMask`.
public enum Export {
    public enum Format: String, Sendable, CaseIterable { case har, curl, jsonl, otlp }

    /// `spans`: the session's stored spans (OTLP export only).
    public static func render(_ exchanges: [CapturedExchange], as format: Format, mask: SecretMask, spans: [Span] = []) -> [UInt8] {
        switch format {
        case .otlp: return otlp(exchanges, spans: spans)
        case .har: return har(exchanges, mask: mask)
        case .curl: return Array(exchanges.map { curl($0, mask: mask) }.joined().utf8)
        case .jsonl: return exchanges.flatMap { jsonl($0, mask: mask) }
        }
    }

    // MARK: HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/)

    static func har(_ exchanges: [CapturedExchange], mask: SecretMask) -> [UInt8] {
        let log: [String: Any] = [
            "log": [
                "version": "1.2",
                "creator": ["name": "tracetap", "version": "0.1"],
                "pages": [Any](),
                "entries": exchanges.map { harEntry($0, mask: mask) },
            ] as [String: Any],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: log, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return [UInt8](data) + [UInt8(ascii: "\n")]
    }

    static func harEntry(_ e: CapturedExchange, mask: SecretMask) -> [String: Any] {
        let timings = harTimings(e)
        let total = ["blocked", "dns", "connect", "send", "wait", "receive"].compactMap { timings[$0] }.filter { $0 >= 0 }.reduce(0, +)
        var entry: [String: Any] = [
            "startedDateTime": e.started,
            "time": total,
            "request": harRequest(e, mask: mask),
            "response": harResponse(e, mask: mask),
            "cache": [String: Any](),
            "timings": timings,
            "serverIPAddress": String(e.upstream.prefix { $0 != ":" }),
            "connection": String(e.connection),
            "_traceId": e.traceID,
            "_spanId": e.spanID,
            "_requestId": e.requestID,
            "_tracetapId": e.id,
        ]
        if let error = e.error { entry["_error"] = "\(error): \(e.errorMessage ?? "")" }
        return entry
    }

    /// The proxy's view of the upstream leg, in milliseconds: connect (including TLS, also given as
    /// `ssl`), send (request bytes written), wait (to the first response byte), receive (to the last).
    /// -1 where a phase did not happen; send, wait and receive are never negative, as HAR requires.
    static func harTimings(_ e: CapturedExchange) -> [String: Double] {
        func ms(_ micros: Int) -> Double { Double(micros) / 1000 }
        let t = e.timings
        let connect = t["connect"] ?? -1
        let connectEnd = (t["head_received"] ?? 0) + max(connect, 0)
        let sent = t["request_sent"] ?? -1
        let first = t["first_response_byte"] ?? -1
        let complete = t["response_complete"] ?? -1
        var result: [String: Double] = [
            "blocked": -1, "dns": -1,
            "connect": connect > 0 ? ms(connect) : -1,
            "ssl": (t["tls"] ?? -1) >= 0 ? ms(t["tls"]!) : -1,
            "send": sent >= 0 ? ms(max(0, sent - connectEnd)) : 0,
            "wait": sent >= 0 && first >= 0 ? ms(first - sent) : 0,
            "receive": first >= 0 && complete >= 0 ? ms(complete - first) : 0,
        ]
        // Nothing reached the upstream: like Chrome, put the whole time in `blocked`.
        if sent < 0 && complete >= 0 { result["blocked"] = ms(complete) }
        return result
    }

    static func harRequest(_ e: CapturedExchange, mask: SecretMask) -> [String: Any] {
        let message = e.request
        let headers = mask.headers(message?.headers ?? [])
        var request: [String: Any] = [
            "method": e.method,
            "url": absoluteURL(e),
            "httpVersion": message?.version ?? "HTTP/1.1",
            "cookies": cookies(headers.filter { $0.name.lowercased() == "cookie" }.flatMap { $0.value.split(separator: ";") }),
            "headers": headers.map { ["name": $0.name, "value": $0.value] },
            "queryString": queryString(e.target),
            "headersSize": headersSize(startLine: "\(e.method) \(e.target) \(message?.version ?? "HTTP/1.1")", headers: message?.headers ?? []),
            "bodySize": message?.bodySize ?? 0,
        ]
        if let message, message.bodySize > 0 {
            let body = mask.body(message.body)
            var postData: [String: Any] = ["mimeType": message.header("content-type") ?? "application/octet-stream", "params": [Any]()]
            if let text = String(validating: body, as: UTF8.self) { postData["text"] = text } else {
                postData["text"] = Data(body).base64EncodedString()
                postData["_encoding"] = "base64"
            }
            if message.bodyTruncated { postData["_truncated"] = true }
            request["postData"] = postData
        }
        return request
    }

    static func harResponse(_ e: CapturedExchange, mask: SecretMask) -> [String: Any] {
        guard let message = e.response else {
            return ["status": e.status, "statusText": "", "httpVersion": "", "cookies": [Any](), "headers": [Any](),
                    "content": ["size": 0, "mimeType": "x-unknown"], "redirectURL": "", "headersSize": -1, "bodySize": -1,
                    "_error": e.errorMessage ?? ""]
        }
        let headers = mask.headers(message.headers)
        // HAR's content is the decoded body; `compression` is what the encoding saved.
        let decoded = message.gunzipped
        let body = mask.body(decoded ?? message.body)
        var content: [String: Any] = ["size": decoded?.count ?? message.bodySize, "mimeType": message.header("content-type") ?? "x-unknown"]
        if let decoded { content["compression"] = decoded.count - message.bodySize }
        if !body.isEmpty {
            if let text = String(validating: body, as: UTF8.self) { content["text"] = text } else {
                content["text"] = Data(body).base64EncodedString()
                content["encoding"] = "base64"
            }
        }
        if message.bodyTruncated { content["_truncated"] = true }
        return [
            "status": e.responseStatus,
            "statusText": e.responseReason,
            "httpVersion": message.version,
            "cookies": cookies(headers.filter { $0.name.lowercased() == "set-cookie" }.compactMap { $0.value.split(separator: ";").first }),
            "headers": headers.map { ["name": $0.name, "value": $0.value] },
            "content": content,
            "redirectURL": message.header("location") ?? "",
            "headersSize": headersSize(startLine: "\(message.version) \(e.responseStatus) \(e.responseReason)", headers: message.headers),
            "bodySize": message.bodySize,
        ]
    }

    /// Bytes up to and including the blank line after the headers.
    static func headersSize(startLine: String, headers: [(name: String, value: String)]) -> Int {
        startLine.utf8.count + 2 + headers.reduce(0) { $0 + $1.name.utf8.count + 2 + $1.value.utf8.count + 2 } + 2
    }

    static func cookies<S: StringProtocol>(_ pairs: [S]) -> [[String: Any]] {
        pairs.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return ["name": parts.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "",
                    "value": parts.count > 1 ? String(parts[1]) : ""]
        }
    }

    static func queryString(_ target: String) -> [[String: String]] {
        guard let question = target.firstIndex(of: "?") else { return [] }
        return target[target.index(after: question)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            return ["name": parts.first ?? "", "value": parts.count > 1 ? parts[1] : ""]
        }
    }

    /// The URL the client asked for: its Host (the proxy, as the client saw it) and the target.
    static func absoluteURL(_ e: CapturedExchange) -> String {
        if e.target.hasPrefix("http://") || e.target.hasPrefix("https://") { return e.target }
        return "http://\(e.request?.header("host") ?? e.upstream)\(e.target)"
    }

    // MARK: curl

    /// Headers curl writes itself, or that only make sense on the original connection.
    static let curlSkips: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "expect"]

    static func curl(_ e: CapturedExchange, mask: SecretMask) -> String {
        var parts = ["curl", "-sS", "-X", shellQuote(e.method), shellQuote(absoluteURL(e))]
        for header in mask.headers(e.request?.headers ?? []) where !curlSkips.contains(header.name.lowercased()) {
            parts += ["-H", shellQuote("\(header.name): \(header.value)")]
        }
        if let body = e.request?.body, !body.isEmpty { parts += ["--data-binary", shellQuote(mask.body(body))] }
        return "# \(e.id) trace \(e.traceID)\(e.request?.bodyTruncated == true ? " (body truncated in the capture)" : "")\n"
            + parts.joined(separator: " ") + "\n"
    }

    /// Bash ANSI-C quoting: byte-exact for any input.
    static func shellQuote(_ text: String) -> String { shellQuote(Array(text.utf8)) }

    static func shellQuote(_ bytes: [UInt8]) -> String {
        var out = "$'"
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "'"): out += "\\'"
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "\\x%02x", byte)
            }
        }
        return out + "'"
    }

    // MARK: JSON Lines

    /// One exchange as a JSON object: a JSON Lines line, and the start of the web UI's exchange detail.
    /// Bodies are base64 as stored, or with `decodedBodiesUpTo`, gzip undone and cut at that many bytes.
    static func jsonObject(_ e: CapturedExchange, mask: SecretMask, decodedBodiesUpTo limit: Int? = nil) -> [String: Any] {
        func message(_ m: CapturedExchange.Message?) -> Any {
            guard let m else { return NSNull() }
            let decoded = limit == nil ? nil : m.gunzipped
            let body = mask.body(decoded ?? m.body)
            var object: [String: Any] = ["version": m.version, "headers": mask.headers(m.headers).map { [$0.name, $0.value] },
                                         "body_base64": Data(body.prefix(limit ?? body.count)).base64EncodedString(), "body_size": m.bodySize,
                                         "body_truncated": m.bodyTruncated || body.count > (limit ?? body.count)]
            if limit != nil { object["decoded_from"] = decoded == nil ? NSNull() : "gzip" }
            return object
        }
        return [
            "id": e.id, "seq": e.sequence, "session": e.session, "started": e.started, "trace_id": e.traceID,
            "span_id": e.spanID, "request_id": e.requestID, "client": e.client, "upstream": e.upstream,
            "method": e.method, "target": e.target, "status": e.status, "error": e.error ?? NSNull(),
            "error_message": e.errorMessage ?? NSNull(), "request": message(e.request), "response": message(e.response),
            "timings_us": e.timings, "faults": e.faults,
        ]
    }

    static func jsonl(_ e: CapturedExchange, mask: SecretMask) -> [UInt8] {
        let object = jsonObject(e, mask: mask)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return [UInt8](data) + [UInt8(ascii: "\n")]
    }

    /// Every trace of the exchanges as one OTLP/JSON ExportTraceServiceRequest: the proxy's spans, the
    /// backend's, Server-Timing metrics where no backend spans came, and the SQL statements.
    static func otlp(_ exchanges: [CapturedExchange], spans: [Span]) -> [UInt8] {
        var seen: Set<String> = []
        var all: [Span] = []
        for e in exchanges where seen.insert(e.traceID).inserted {
            all += TraceView.assemble(traceID: e.traceID, exchanges: exchanges, spans: spans).spans
        }
        return Array((OTLPEncoder.request(all) + "\n").utf8)
    }
}
