import Foundation

/// `tracetap race`: N copies of one request that reach the backend at the same instant. Every copy is sent
/// on its own connection except its last byte; once all are written, the last bytes go out together, so
/// the server sees N complete requests within microseconds (last-byte synchronisation).
public struct RaceProbe: Sendable {
    public struct Round: Sendable {
        public var statuses: [Int]
        /// Failures to connect or read, per copy.
        public var errors: [String]
        public var distinctBodies: Int
        /// From the first released last byte to the last one (0 for a sequential round).
        public var releaseSpreadMicros: Double
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
    public var timeoutSeconds = 10

    public init(target: UpstreamURL) { self.target = target }

    func requestBytes(copy: Int) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(target.authority)\r\n"
        for header in headers { head += "\(header.name): \(header.value)\r\n" }
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) { head += "Content-Length: \(body.count)\r\n" }
        head += "X-Tracetap-Race: \(copy)/\(copies)\r\nConnection: close\r\n\r\n"
        return ReplayRequest.latin1(head) + body
    }

    private func client() throws(SocketError) -> HTTPClient {
        // Through a TLS relay thread the last bytes would not leave together.
        guard !target.isTLS else { throw SocketError("the race probe speaks plain http:// (put a tracetap proxy in front of an https backend)") }
        return try HTTPClient.connecting(to: target, timeoutSeconds: timeoutSeconds)
    }

    private func reset() throws(SocketError) {
        guard let before else { return }
        let head = "\(before.method) \(before.path) HTTP/1.1\r\nHost: \(target.authority)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = try client().exchange(Array(head.utf8), isHead: false)
    }

    /// One round with last-byte synchronisation.
    public func synchronisedRound() throws(SocketError) -> Round {
        try reset()
        var clients: [HTTPClient] = []
        var lastBytes: [UInt8] = []
        var errors: [String] = []
        for copy in 1...copies {
            let bytes = requestBytes(copy: copy)
            let connection = try client()
            do {
                try connection.send(bytes.dropLast())
                clients.append(connection)
                lastBytes.append(bytes[bytes.count - 1])
            } catch {
                errors.append(error.message)
            }
        }
        // Let the server read every head (and all but one body byte) and block waiting for the rest.
        usleep(50_000)
        let released = Sockets.monotonicNanos()
        var lastReleased = released
        for (index, connection) in clients.enumerated() {
            do { try connection.send([lastBytes[index]][...]) } catch { errors.append(error.message) }
            lastReleased = Sockets.monotonicNanos()
        }
        return collect(clients, errors: errors, startedAt: released, spreadMicros: Double(lastReleased - released) / 1000)
    }

    /// The baseline: the same copies one after another, each answered before the next is sent.
    public func sequentialRound() throws(SocketError) -> Round {
        try reset()
        var statuses: [Int] = []
        var bodies: Set<[UInt8]> = []
        var errors: [String] = []
        for copy in 1...copies {
            do {
                let response = try client().exchange(requestBytes(copy: copy), isHead: method == "HEAD")
                statuses.append(response.status)
                bodies.insert(response.body)
            } catch {
                errors.append(error.message)
            }
        }
        return Round(statuses: statuses, errors: errors, distinctBodies: bodies.count, releaseSpreadMicros: 0)
    }

    private func collect(_ clients: [HTTPClient], errors: [String], startedAt: UInt64, spreadMicros: Double) -> Round {
        var statuses: [Int] = []
        var bodies: Set<[UInt8]> = []
        var errors = errors
        for connection in clients {
            do {
                let response = try connection.readResponse(isHead: method == "HEAD", startedAt: startedAt)
                statuses.append(response.status)
                bodies.insert(response.body)
            } catch {
                errors.append(error.message)
            }
        }
        return Round(statuses: statuses, errors: errors, distinctBodies: bodies.count, releaseSpreadMicros: spreadMicros)
    }
}
