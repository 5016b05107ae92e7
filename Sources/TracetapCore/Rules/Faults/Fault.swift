import HTTPCodec

/// One fault: a small type read from a rule file (or an `X-Tracetap-Fault` header) that changes an
/// exchange by adding its effect to the exchange's `FaultPlan`. `Exchange` carries the plan out at each
/// point of the exchange: before forwarding, while forwarding, when the response starts, while it flows.
protocol Fault: Sendable, CustomStringConvertible {
    /// The `type` in rule files and the name in `X-Tracetap-Fault`.
    static var type: String { get }
    /// Keys of the rule-file object besides `type` and `comment`.
    static var keys: [String] { get }
    init(_ fields: RuleFields) throws(RuleError)
    /// The value of `type=value` in an `X-Tracetap-Fault` header; nil when malformed or not offered.
    init?(headerValue: String)
    /// Adds this fault's effect; `draw(n)` is a seeded random whole number from 0 to n.
    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int)
}

extension Fault {
    var kind: String { Self.type }
}

enum FaultTypes {
    static let all: [any Fault.Type] = [Delay.self, Timeout.self, Abort.self, Reset.self, Throttle.self, Slice.self, Duplicate.self, Modify.self, SQLError.self]
    /// What a rule that matches database statements (`match.sql`) may do to them.
    static let database: [any Fault.Type] = [Delay.self, Timeout.self, SQLError.self]

    static func named(_ type: String) -> (any Fault.Type)? { all.first { $0.type == type } }
}

/// What the faults chosen for one exchange ask of it.
struct FaultPlan {
    /// Wait before forwarding the request.
    var requestDelayMs = 0
    /// Wait before passing on the response once its first byte arrived.
    var responseDelayMs = 0
    /// Answer this without calling the upstream (`abort`).
    var answer: (status: Int, body: [UInt8])?
    /// Give up after `ms`: answer 504 or close; `forward`: send the request anyway and drop its answer.
    var giveUp: (ms: Int, respond: Bool, forward: Bool)?
    /// Reset the client connection after this many response bytes (head included).
    var resetAfterBytes: Int?
    /// Bandwidth limits in bytes per second.
    var requestBytesPerSecond: Int?
    var responseBytesPerSecond: Int?
    /// Write the response in pieces of `size` bytes, `delayMs` apart.
    var slice: (size: Int, delayMs: Int)?
    var duplicate: Duplicate?
    var requestEdits = HeaderEdits()
    var responseEdits = HeaderEdits()
    var status: Int?
    /// A database statement answered with this error instead of running.
    var sqlError: (sqlstate: String, message: String)?

    /// Whether the client's output must be paced or cut while the response is written.
    var shapesResponse: Bool { resetAfterBytes != nil || responseBytesPerSecond != nil || slice != nil }
}

/// Header lines to set (replacing any of the same name) and to remove.
struct HeaderEdits: Sendable {
    var assignments: [(name: String, value: String)] = []
    var removals: [String] = []

    var isEmpty: Bool { assignments.isEmpty && removals.isEmpty }

    mutating func merge(_ other: HeaderEdits) {
        assignments += other.assignments
        removals += other.removals
    }

    func apply(to headers: inout HeaderFields) {
        for name in removals { headers.remove(Array(name.lowercased().utf8)) }
        for (name, value) in assignments { headers.set(name: Array(name.utf8), value: Array(value.utf8)) }
    }
}

/// `X-Tracetap-Fault: delay=300ms, duplicate=2, abort=503` (comma-separated `type=value` items). A malformed
/// or unknown item is ignored: the header is a debugging aid for one request, not a rule file.
enum HeaderFaults {
    static func parse(_ text: String) -> [any Fault] {
        text.split(separator: ",").compactMap { item in
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let type = FaultTypes.named(parts[0].lowercased()) else { return nil }
            return type.init(headerValue: parts[1])
        }
    }

    /// `300`, `300ms` or `1.5s`, in milliseconds.
    static func millis(_ text: String) -> Int? {
        let (number, scale): (Substring, Double) = text.hasSuffix("ms") ? (text.dropLast(2), 1)
            : text.hasSuffix("s") ? (text.dropLast(1), 1000) : (text[...], 1)
        guard let value = Double(number), value >= 0, value * scale <= 3_600_000 else { return nil }
        return Int(value * scale)
    }
}
