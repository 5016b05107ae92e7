import HTTPCodec
import TraceContext

/// What happened to one request: identity, heads, sizes, timings and outcome. Observers (the access log,
/// the stats, later the capture store) receive it when the exchange ends.
public struct ExchangeRecord: Sendable {
    public enum Failure: String, Sendable {
        case malformedRequest = "malformed-request"
        case requestTimeout = "request-timeout"
        case clientAborted = "client-aborted"
        case upstreamRefused = "upstream-refused"
        case upstreamConnectTimeout = "upstream-connect-timeout"
        case upstreamResponseTimeout = "upstream-timeout"
        case upstreamReset = "upstream-reset"
        case upstreamMalformed = "upstream-malformed"
        case upstreamClosedEarly = "upstream-closed"
        case dns = "dns"
        case tls = "tls"
        case upstreamError = "upstream-error"
        /// A `timeout` fault rule held the request and gave up on purpose.
        case faultTimeout = "fault-timeout"
        /// A `reset` fault rule closed the client connection with a TCP RST.
        case faultReset = "fault-reset"
    }

    public var id: UInt64
    public var startedAt: Double
    public var trace: TraceTag
    public var request: RequestHead?
    public var response: ResponseHead?
    /// The status the client received; 0 when it received none (reset, aborted).
    public var status = 0
    public var failure: Failure?
    public var failureMessage: String?
    public var timings = ExchangeTimings()
    public var clientAddress: String
    /// The client connection it came on, unique within a run: replay keeps each connection's order.
    public var connection: UInt64
    public var upstreamAddress: String
    public var upstreamReused = false
    public var retried = false
    public var requestBodyBytes: UInt64 = 0
    public var responseBodyBytes: UInt64 = 0
    public var upgraded = false
    /// Body bytes kept for the capture store (empty when capture is off).
    public var requestBody = CapturedBody()
    public var responseBody = CapturedBody()
    /// The faults rules applied to this exchange, as `rule:type`.
    public var faults: [String] = []
    /// Set on each request of a `duplicate` fault's group.
    public var duplicate: DuplicateMark?
}

/// One request of a `duplicate` group: which copy it is, and whether the group's responses differ.
public struct DuplicateMark: Sendable, Equatable {
    /// The record ID of the first copy, the one the client was answered from.
    public var group: UInt64
    /// 1 for the first copy.
    public var copy: Int
    public var of: Int
    public var concurrent: Bool
    /// How the responses differ (`status 201 vs 409`, `body of copy 2`), nil when they agree.
    public var difference: String?
}

/// The first `cap` bytes of a body; the rest is counted, not kept.
public struct CapturedBody: Sendable {
    public var bytes: [UInt8] = []
    public var size: UInt64 = 0
    public var truncated: Bool { size > UInt64(bytes.count) }

    public init() {}

    /// Sizes the buffer once when the length is declared, instead of growing it by doubling.
    mutating func expect(_ framing: BodyFraming, cap: Int) {
        if cap > 0, case .contentLength(let length) = framing { bytes.reserveCapacity(Int(min(length, UInt64(cap)))) }
    }

    /// The first `cap` bytes, the size kept.
    func prefix(_ cap: Int) -> CapturedBody {
        var copy = CapturedBody()
        copy.size = size
        copy.bytes = Array(bytes.prefix(cap))
        return copy
    }

    mutating func append(_ data: UnsafeRawBufferPointer, cap: Int) {
        size += UInt64(data.count)
        let room = cap - bytes.count
        if room > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: data.prefix(room))) }
    }
}

extension ExchangeRecord.Failure {
    /// The failure for an upstream connection that could not be opened.
    init(connectError kind: SocketError.Kind) {
        switch kind {
        case .refused: self = .upstreamRefused
        case .timeout: self = .upstreamConnectTimeout
        case .dns: self = .dns
        case .tls: self = .tls
        case .reset: self = .upstreamReset
        case .other: self = .upstreamError
        }
    }
}

/// Microseconds from the first byte of the request head; -1 where a phase did not happen.
public struct ExchangeTimings: Sendable, Equatable {
    public var headReceived: Int64 = -1
    public var bodyReceived: Int64 = -1
    /// Time to open the upstream connection; 0 when a pooled one was reused.
    public var connect: Int64 = -1
    /// The TLS handshake, part of `connect`; -1 over plain TCP or a reused connection.
    public var tls: Int64 = -1
    public var requestSent: Int64 = -1
    public var firstResponseByte: Int64 = -1
    public var responseComplete: Int64 = -1

    /// Waiting for the upstream: from the request's last byte to the response's first.
    public var wait: Int64 { requestSent >= 0 && firstResponseByte >= 0 ? firstResponseByte - requestSent : -1 }
    public var receive: Int64 { firstResponseByte >= 0 && responseComplete >= 0 ? responseComplete - firstResponseByte : -1 }
}

/// Receives each finished exchange; runs on the loop thread that served it, so it must be quick.
protocol ExchangeObserver: AnyObject {
    func exchangeFinished(_ record: ExchangeRecord)
}
