import Glibc

/// `tracetap ls` filters; every one set must match.
public struct ExchangeFilter: Sendable {
    /// `5xx`, `4xx`, or an exact status such as `404`.
    public var status: String?
    /// A glob (`/api/*`) matched against the path without the query.
    public var path: String?
    /// Paths matching these globs are left out (`/health`, `/static/*`).
    public var excluded: [String] = []
    public var method: String?
    /// A trace ID or its prefix.
    public var trace: String?
    /// Only exchanges that took longer, in microseconds.
    public var slowerThanMicros: Int?

    public init() {}

    public func matches(_ e: CapturedExchange) -> Bool {
        if let status, !Self.status(e.status, matches: status) { return false }
        if let path, fnmatch(path, e.path, 0) != 0 { return false }
        if excluded.contains(where: { fnmatch($0, e.path, 0) == 0 }) { return false }
        if let method, e.method.uppercased() != method.uppercased() { return false }
        if let trace, !e.traceID.hasPrefix(trace.lowercased()) { return false }
        if let slowerThanMicros, e.durationMicros <= slowerThanMicros { return false }
        return true
    }

    static func status(_ status: Int, matches pattern: String) -> Bool {
        let lower = pattern.lowercased()
        if lower.count == 3, lower.hasSuffix("xx"), let digit = Int(lower.prefix(1)) { return status / 100 == digit }
        return Int(pattern) == status
    }
}
