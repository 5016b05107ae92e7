/// A message the codec refuses, with the status a server answers it with.
public struct HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let reason: String

    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status) \(reason)" }
}

/// Limits on what a peer may send before it gets an error instead of memory (RFC 9112 §3, RFC 6585 §5).
public struct HeadLimits: Sendable {
    public var maxStartLine = 8 * 1024
    public var maxHeadBytes = 64 * 1024
    public var maxFields = 100

    public init(maxStartLine: Int = 8 * 1024, maxHeadBytes: Int = 64 * 1024, maxFields: Int = 100) {
        self.maxStartLine = maxStartLine
        self.maxHeadBytes = maxHeadBytes
        self.maxFields = maxFields
    }
}
