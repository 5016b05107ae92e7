import Foundation

/// Reads a HAR 1.2 file (Chrome DevTools, Firefox, Playwright, or `tracetap export --format har`) as
/// captured exchanges, so it replays like a session.
public enum HARImport {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func load(path: String) throws(Failure) -> [CapturedExchange] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "cannot read \(path)") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let log = root["log"] as? [String: Any],
              let entries = log["entries"] as? [[String: Any]] else {
            throw Failure(description: "\(path) is not a HAR file (no log.entries)")
        }
        let name = (path as NSString).lastPathComponent
        var exchanges: [CapturedExchange] = []
        for (index, entry) in entries.enumerated() {
            guard let exchange = CapturedExchange(harEntry: entry, source: name, sequence: index + 1) else {
                throw Failure(description: "\(path): entry \(index + 1) has no request method or URL")
            }
            exchanges.append(exchange)
        }
        // HAR lists entries by start time already; a stable sort keeps ties in file order.
        return exchanges.enumerated().sorted { ($0.element.startedUnix, $0.offset) < ($1.element.startedUnix, $1.offset) }.map(\.element)
    }
}

extension CapturedExchange {
    init?(harEntry entry: [String: Any], source: String, sequence: Int) {
        guard let request = entry["request"] as? [String: Any], let method = request["method"] as? String,
              let url = request["url"] as? String, let components = URLComponents(string: url) else { return nil }
        let response = entry["response"] as? [String: Any]
        self.session = source
        self.sequence = sequence
        started = entry["startedDateTime"] as? String ?? ""
        startedUnix = Self.unixTime(started)
        traceID = entry["_traceId"] as? String ?? ""
        spanID = entry["_spanId"] as? String ?? ""
        requestID = entry["_requestId"] as? String ?? ""
        client = ""
        // HAR's optional `connection` is a string (Chrome: the socket ID); numbers are kept, anything else hashed.
        let connectionText = entry["connection"] as? String ?? ""
        connection = UInt64(connectionText) ?? UInt64(truncatingIfNeeded: connectionText.hashValue)
        upstream = components.host.map { "\($0)\(components.port.map { ":\($0)" } ?? "")" } ?? ""
        upstreamReused = false
        self.method = method
        // The target as sent: path and query exactly as the URL has them (already percent-encoded).
        target = (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath)
            + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
        let postData = request["postData"] as? [String: Any]
        let requestBody = Array((postData?["text"] as? String ?? "").utf8)
        self.request = Message(version: Self.version(request["httpVersion"]), headers: Self.headers(request["headers"]),
                               body: requestBody, bodySize: requestBody.count, bodyTruncated: false)
        let status = response?["status"] as? Int ?? 0
        responseStatus = status
        responseReason = response?["statusText"] as? String ?? ""
        if let response, status > 0 {
            let content = response["content"] as? [String: Any]
            let text = content?["text"] as? String ?? ""
            let body = content?["encoding"] as? String == "base64" ? [UInt8](Data(base64Encoded: text) ?? Data()) : Array(text.utf8)
            // Browsers store the body decoded, under the headers as sent; the comparison decodes the replayed
            // gzip body and, since this one is not gzip data, takes it as it is.
            self.response = Message(version: Self.version(response["httpVersion"]), headers: Self.headers(response["headers"]), body: body,
                                    bodySize: body.count, bodyTruncated: text.isEmpty && (content?["size"] as? Int ?? 0) > 0)
        } else {
            self.response = nil
        }
        self.status = status
        error = status == 0 ? "no-response" : nil
        errorMessage = nil
        timings = [:]
        faults = []
        duplicate = nil
    }

    /// HTTP/2 and HTTP/3 pseudo-headers (`:method`, `:authority`) are not HTTP/1.1 fields; `Host` comes from the target.
    private static func headers(_ value: Any?) -> [(name: String, value: String)] {
        ((value as? [[String: Any]]) ?? []).compactMap { header in
            guard let name = header["name"] as? String, let value = header["value"] as? String, !name.hasPrefix(":") else { return nil }
            return (name, value)
        }
    }

    private static func version(_ value: Any?) -> String {
        let text = (value as? String ?? "").uppercased()
        return text.hasPrefix("HTTP/1.") ? text : "HTTP/1.1"
    }

    private static func unixTime(_ text: String) -> Double {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970 ?? 0
    }
}
