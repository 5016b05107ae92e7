import Foundation
import TraceContext

/// `tracetap race`: N copies of one request that reach the backend at the same instant. Every copy is sent
/// on its own connection except its last byte; once all are written, the last bytes go out together, so
/// the server sees N complete requests within microseconds (last-byte synchronisation).
public struct RaceProbe: Sendable {
    public struct Round: Sendable {
        /// Each copy's answer, in copy order.
        public var responses: [(copy: Int, status: Int, body: [UInt8])] = []
        /// Failures to connect or read, per copy.
        public var errors: [String] = []
        /// From the first released last byte to the last one (0 for a sequential round).
        public var releaseSpreadMicros: Double = 0
        /// The body of the state check sent after the round (`check`), when there is one.
        public var checkBody: [UInt8]?
        /// Every copy of the round carries this trace (its own span): through the proxy the round is one
        /// trace, its copies side by side.
        public var traceID: String
        public var statuses: [Int] { responses.map(\.status) }
        public var distinctBodies: Int { Set(responses.map(\.body)).count }
        public var successes: Int { statuses.filter { (200..<300).contains($0) }.count }
    }

    public var target: UpstreamURL
    public var method = "GET"
    /// Path and query.
    public var path = "/"
    public var headers: [(name: String, value: String)] = []
    public var body: [UInt8] = []
    public var copies = 20
    /// More successes than this in a round is a finding (the resource exists this many times).
    public var maxSuccesses = 1
    /// Sent before each round, to put the backend back in its starting state (`POST /stock?n=1`).
    public var before: (method: String, path: String)?
    /// Sent after each round to read the state it left (`GET /stock`).
    public var check: (method: String, path: String)?
    public var timeoutSeconds = 10

    public init(target: UpstreamURL) { self.target = target }

    /// Races a captured exchange's request: its method, target, headers (not the old trace's) and body.
    public mutating func send(_ e: CapturedExchange) {
        method = e.method
        path = e.target
        headers = (e.request?.headers ?? []).filter { !ReplayRequest.dropped.contains($0.name.lowercased()) }
        body = e.request?.body ?? []
    }

    func requestBytes(copy: Int, trace: TraceID) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(target.authority)\r\n"
        for header in headers { head += "\(header.name): \(header.value)\r\n" }
        if !headers.contains(where: { $0.name.lowercased() == "traceparent" }) {
            let span = SpanID(UInt64(copy) << 32 | UInt64.random(in: 1...UInt64(UInt32.max)))
            head += "traceparent: \(String(decoding: TraceParent(traceID: trace, parentID: span, flags: 1).encoded, as: UTF8.self))\r\n"
        }
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) { head += "Content-Length: \(body.count)\r\n" }
        head += "X-Tracetap-Race: \(copy)/\(copies)\r\nConnection: close\r\n\r\n"
        return ReplayRequest.latin1(head) + body
    }

    private func client() throws(SocketError) -> HTTPClient {
        // Through a TLS relay thread the last bytes would not leave together.
        guard !target.isTLS else { throw SocketError("the race probe speaks plain http:// (put a tracetap proxy in front of an https backend)") }
        return try HTTPClient.connecting(to: target, timeoutSeconds: timeoutSeconds)
    }

    /// A bodiless request on its own connection (the reset before a round, the check after it).
    private func send(_ request: (method: String, path: String)) throws(SocketError) -> HTTPClient.Response {
        let head = "\(request.method) \(request.path) HTTP/1.1\r\nHost: \(target.authority)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        return try client().exchange(Array(head.utf8), isHead: false)
    }

    private func reset() throws(SocketError) {
        if let before { _ = try send(before) }
    }

    private static func newTrace() -> TraceID { TraceID(high: UInt64.random(in: 0...UInt64.max), low: UInt64.random(in: 1...UInt64.max)) }

    /// One round with last-byte synchronisation.
    public func synchronisedRound() throws(SocketError) -> Round {
        try reset()
        let trace = Self.newTrace()
        var clients: [(copy: Int, client: HTTPClient)] = []
        var lastBytes: [UInt8] = []
        var errors: [String] = []
        for copy in 1...copies {
            let bytes = requestBytes(copy: copy, trace: trace)
            let connection = try client()
            do {
                try connection.send(bytes.dropLast())
                clients.append((copy, connection))
                lastBytes.append(bytes[bytes.count - 1])
            } catch {
                errors.append(error.message)
            }
        }
        // Let the server read every head (and all but one body byte) and block waiting for the rest.
        usleep(50_000)
        let released = Sockets.monotonicNanos()
        var lastReleased = released
        for (index, (_, connection)) in clients.enumerated() {
            do { try connection.send([lastBytes[index]][...]) } catch { errors.append(error.message) }
            lastReleased = Sockets.monotonicNanos()
        }
        var round = collect(clients, errors: errors, startedAt: released, trace: trace)
        round.releaseSpreadMicros = Double(lastReleased - released) / 1000
        if let check { round.checkBody = try send(check).body }
        return round
    }

    /// The baseline: the same copies one after another, each answered before the next is sent.
    public func sequentialRound() throws(SocketError) -> Round {
        try reset()
        let trace = Self.newTrace()
        var round = Round(traceID: trace.description)
        for copy in 1...copies {
            do {
                let response = try client().exchange(requestBytes(copy: copy, trace: trace), isHead: method == "HEAD")
                round.responses.append((copy, response.status, response.body))
            } catch {
                round.errors.append(error.message)
            }
        }
        if let check { round.checkBody = try send(check).body }
        return round
    }

    private func collect(_ clients: [(copy: Int, client: HTTPClient)], errors: [String], startedAt: UInt64, trace: TraceID) -> Round {
        var round = Round(errors: errors, traceID: trace.description)
        for (copy, connection) in clients {
            do {
                let response = try connection.readResponse(isHead: method == "HEAD", startedAt: startedAt)
                round.responses.append((copy, response.status, response.body))
            } catch {
                round.errors.append(error.message)
            }
        }
        return round
    }
}
