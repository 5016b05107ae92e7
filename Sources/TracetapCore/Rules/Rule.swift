import Glibc
import HTTPCodec
import Synchronization

/// When a rule applies. Every field that is set must match.
public struct RuleMatch: Sendable {
    public var method: String?
    /// A glob (`fnmatch`) against the path without the query.
    public var path: String?
    /// A POSIX extended regular expression against the path and query.
    public var pathRegex: String?
    /// Query parameters that must be present with these values.
    public var query: [String: String] = [:]
    /// Headers (lowercase names) whose value must contain the given text.
    public var headers: [String: String] = [:]
    /// Text the request body must contain.
    public var bodyContains: String?
    /// JSON fields (dotted paths) the request body must hold with these values.
    public var bodyJSON: [(path: String, value: JSONValue)] = []
    /// A glob (case-insensitive) against database statements: such a rule applies to the database legs only.
    public var sql: String?

    /// Whether deciding needs the request body, which the exchange then reads first.
    var needsBody: Bool { bodyContains != nil || !bodyJSON.isEmpty }
}

extension RuleMatch: CustomStringConvertible {
    /// `POST /orders*, header x-role contains admin`; `every request` when nothing is set.
    public var description: String {
        var parts: [String] = []
        if let sql { parts.append("SQL \(sql)") }
        let request = [method, path].compactMap { $0 }.joined(separator: " ")
        if !request.isEmpty { parts.append(request) }
        if let pathRegex { parts.append("path ~ \(pathRegex)") }
        parts += query.sorted { $0.key < $1.key }.map { "query \($0.key)=\($0.value)" }
        parts += headers.sorted { $0.key < $1.key }.map { "header \($0.key) contains \($0.value)" }
        if let bodyContains { parts.append("body contains \(bodyContains)") }
        parts += bodyJSON.map { "body \($0.path) = \($0.value)" }
        return parts.isEmpty ? "every request" : parts.joined(separator: ", ")
    }
}

/// A named rule from a rule file, with its counters shared by every loop thread.
public final class Rule: Sendable {
    public let name: String
    public let file: String
    public let match: RuleMatch
    let faults: [any Fault]
    public let probability: Double
    /// Apply to every Nth matching request only.
    public let every: Int
    /// Skip the first N matching requests.
    public let after: Int
    /// Apply at most this many times.
    public let limit: Int?
    private let regex: CompiledRegex?
    let matched = Atomic<Int>(0)
    let applied = Atomic<Int>(0)
    /// Switched by the admin API; a file reload starts again from the file's `enabled`.
    let enabled: Atomic<Bool>

    init(name: String, file: String, match: RuleMatch, faults: [any Fault], probability: Double, every: Int, after: Int, limit: Int?, enabled: Bool = true) throws(RuleError) {
        self.name = name
        self.enabled = Atomic(enabled)
        self.file = file
        self.match = match
        self.faults = faults
        self.probability = probability
        self.every = every
        self.after = after
        self.limit = limit
        regex = try match.pathRegex.map { pattern throws(RuleError) in
            guard let compiled = CompiledRegex(pattern) else { throw RuleError(file: file, line: 0, reason: "bad path_regex '\(pattern)'") }
            return compiled
        }
    }

    /// A database statement (SQL text as sent, comments included).
    func matches(sql: String) -> Bool {
        guard isEnabled, let glob = match.sql else { return false }
        return fnmatch(glob.lowercased(), sql.lowercased(), 0) == 0
    }

    /// One line per fault, for `rules check` and the admin API.
    public var faultDescriptions: [String] {
        faults.map { fault in
            // A held statement ends as the database's own statement timeout would.
            if match.sql != nil, let timeout = fault as? Timeout { return "timeout \(timeout.ms)ms then SQLSTATE 57014" }
            return fault.description
        }
    }
    public var hits: Int { applied.load(ordering: .relaxed) }
    public var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// `body` is nil when the request has none or it was not read (a body-matching rule then does not match).
    func matches(_ request: RequestHead, body: [UInt8]?) -> Bool {
        guard isEnabled, match.sql == nil else { return false }
        let target = request.targetString
        let path = String(target.prefix { $0 != "?" })
        if let method = match.method, request.methodString.uppercased() != method.uppercased() { return false }
        if let glob = match.path, fnmatch(glob, path, 0) != 0 { return false }
        if let regex, !regex.matches(target) { return false }
        if !match.query.isEmpty {
            let pairs = target.split(separator: "?", maxSplits: 1).dropFirst().first?.split(separator: "&") ?? []
            let query = Dictionary(pairs.map { pair -> (String, String) in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
            }, uniquingKeysWith: { first, _ in first })
            for (key, value) in match.query where query[key] != value { return false }
        }
        for (name, text) in match.headers {
            guard let value = request.headers.first(Array(name.utf8)), String(decoding: value, as: UTF8.self).contains(text) else { return false }
        }
        if match.needsBody {
            guard let body else { return false }
            if let text = match.bodyContains, !body.containsSubsequence(Array(text.utf8)) { return false }
            if !match.bodyJSON.isEmpty {
                guard let json = try? LineJSON.parse(body) else { return false }
                for (path, value) in match.bodyJSON where json.value(at: path).map(JSONValue.init) != value { return false }
            }
        }
        return true
    }

    /// Counts a matching request and says whether this one gets the faults.
    func admits(random: Double) -> Bool {
        let n = matched.add(1, ordering: .relaxed).newValue
        guard n > after, (n - after - 1) % every == 0, random < probability else { return false }
        guard let limit else {
            applied.add(1, ordering: .relaxed)
            return true
        }
        // Exact across threads: take a slot only while one is left.
        var current = applied.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = applied.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}

/// A rule file's mistake: where and why.
public struct RuleError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int
    public let reason: String
    public var description: String { line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)" }
}

/// A compiled POSIX extended regular expression.
final class CompiledRegex: @unchecked Sendable {
    // regexec is thread-safe on a compiled pattern (POSIX); the pattern is never changed after init.
    private var compiled = regex_t()

    init?(_ pattern: String) {
        guard regcomp(&compiled, pattern, REG_EXTENDED | REG_NOSUB) == 0 else { return nil }
    }

    deinit { regfree(&compiled) }

    func matches(_ text: String) -> Bool { regexec(&compiled, text, 0, nil, 0) == 0 }
}
