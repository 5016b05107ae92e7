import Foundation

/// What differs between a recorded response and the replayed one: status, the headers that matter, and
/// the body: JSON field by field (arrays by position, numbers by value), text line by line, binary by hash.
public struct ResponseDiff: Sendable {
    public struct Difference: Sendable, CustomStringConvertible {
        /// `status`, `header Content-Type`, `body order.id`, `body line 3`, `body`.
        public var field: String
        public var recorded: String
        public var replayed: String
        public var description: String { "\(field): \(recorded) -> \(replayed)" }
    }

    /// Headers that differ between two runs of the same build: dates, the server, validators, cookie
    /// values, the connection's own fields, and the proxy's trace headers.
    public static let defaultIgnoredHeaders: Set<String> = [
        "date", "server", "etag", "last-modified", "expires", "age", "set-cookie", "content-length", "connection",
        "keep-alive", "transfer-encoding", "via", "x-request-id", "traceresponse", "traceparent", "tracestate",
    ]

    public var ignoredHeaders = ResponseDiff.defaultIgnoredHeaders
    /// JSON fields (dotted paths, `*` for every array element) whose values are noise.
    public var ignoredFields: [String] = []
    /// Regular expressions (ICU syntax) whose matches in a body are noise: `\d{4}-\d\d-\d\dT[^"]*`.
    public var ignoredPatterns: [String] = [] {
        didSet { compiledPatterns = ignoredPatterns.compactMap { try? NSRegularExpression(pattern: $0) } }
    }
    private var compiledPatterns: [NSRegularExpression] = []

    /// Whether `pattern` is a regular expression we can use.
    public static func isValidPattern(_ pattern: String) -> Bool { (try? NSRegularExpression(pattern: pattern)) != nil }

    public init() {}

    public func differences(recordedStatus: Int, recorded: CapturedExchange.Message?, replayedStatus: Int,
                            replayedHeaders: [(name: String, value: String)], replayedBody: [UInt8]) -> [Difference] {
        var found: [Difference] = []
        if recordedStatus != replayedStatus { found.append(Difference(field: "status", recorded: "\(recordedStatus)", replayed: "\(replayedStatus)")) }
        let before = Self.headerMap(recorded?.headers ?? [], ignoring: ignoredHeaders)
        let after = Self.headerMap(replayedHeaders, ignoring: ignoredHeaders)
        for name in Set(before.keys).union(after.keys).sorted() where before[name]?.value != after[name]?.value {
            found.append(Difference(field: "header \(before[name]?.name ?? after[name]?.name ?? name)",
                                    recorded: before[name]?.value ?? "(absent)", replayed: after[name]?.value ?? "(absent)"))
        }
        guard let recorded, !recorded.bodyTruncated else { return found }
        let replayedMessage = CapturedExchange.Message(version: "HTTP/1.1", headers: replayedHeaders, body: replayedBody,
                                                       bodySize: replayedBody.count, bodyTruncated: false)
        found += bodyDifferences(recorded.gunzipped ?? recorded.body, replayedMessage.gunzipped ?? replayedBody)
        return found
    }

    private static func headerMap(_ headers: [(name: String, value: String)], ignoring: Set<String>) -> [String: (name: String, value: String)] {
        var map: [String: (name: String, value: String)] = [:]
        for header in headers where !ignoring.contains(header.name.lowercased()) {
            let key = header.name.lowercased()
            map[key] = (header.name, map[key].map { $0.value + ", " + header.value } ?? header.value)
        }
        return map
    }

    /// The body with every match of the noise patterns replaced by one placeholder.
    private func masked(_ body: [UInt8]) -> [UInt8] {
        guard !compiledPatterns.isEmpty, let text = String(validating: body, as: UTF8.self) else { return body }
        let result = compiledPatterns.reduce(text) { text, pattern in
            pattern.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "(ignored)")
        }
        return Array(result.utf8)
    }

    private func bodyDifferences(_ rawA: [UInt8], _ rawB: [UInt8]) -> [Difference] {
        let (a, b) = (masked(rawA), masked(rawB))
        if let left = try? LineJSON.parse(a), let right = try? LineJSON.parse(b) {
            return JSONValue(left).removing(ignoredFields).differences(from: JSONValue(right).removing(ignoredFields), limit: 20)
                .map { Difference(field: "body \($0.path)", recorded: $0.this, replayed: $0.other) }
        }
        if a == b { return [] }
        if let left = String(validating: a, as: UTF8.self), let right = String(validating: b, as: UTF8.self) {
            let leftLines = left.split(separator: "\n", omittingEmptySubsequences: false)
            let rightLines = right.split(separator: "\n", omittingEmptySubsequences: false)
            for index in 0..<max(leftLines.count, rightLines.count) {
                let l = index < leftLines.count ? String(leftLines[index]) : "(no line)"
                let r = index < rightLines.count ? String(rightLines[index]) : "(no line)"
                if l != r { return [Difference(field: "body line \(index + 1)", recorded: String(l.prefix(80)), replayed: String(r.prefix(80)))] }
            }
        }
        return [Difference(field: "body", recorded: Self.digest(a), replayed: Self.digest(b))]
    }

    /// Size and FNV-1a 64 hash: enough to tell two binary bodies apart in a report.
    public static func digest(_ bytes: [UInt8]) -> String {
        "\(bytes.count) bytes, fnv1a \(String(FNV1a.hash(bytes), radix: 16))"
    }
}
