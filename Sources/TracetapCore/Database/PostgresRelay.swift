import Foundation
import Glibc
import Synchronization
import TraceContext

/// The database leg: a PostgreSQL wire-protocol pass-through next to the HTTP proxy. Bytes go through
/// unchanged, as they arrive, in both directions; on the way the relay reads message boundaries and times
/// each statement, which becomes a span of the trace named by its sqlcommenter `traceparent` comment (or,
/// without one, of the HTTP exchange in flight at the time, marked as probable, when the trace is read).
///
/// - SSLRequest and GSSENCRequest are answered `N` (no encryption) so the SQL stays readable; a client with
///   `sslmode=require` therefore cannot connect through it.
/// - CancelRequest connections are passed on like any other.
/// - A thread per direction per connection: database connections are few and long-lived (pools).
public final class PostgresRelay: Sendable {
    public let port: Int
    private let listenFD: Int32
    private let upstream: SocketAddress
    private let spans: SpanStore
    private let showValues: Bool
    private let connections = Atomic<UInt64>(0)
    private let open = Mutex<Set<Int32>>([])

    init(listen: HostPort, upstream: HostPort, spans: SpanStore, showValues: Bool) throws(StartupError) {
        do throws(SocketError) {
            self.upstream = try SocketAddress.resolve(upstream)
            listenFD = try Sockets.listen(on: SocketAddress.resolve(listen), backlog: 128)
        } catch {
            throw StartupError(message: "database leg \(listen) -> \(upstream): \(error.message)")
        }
        _ = fcntl(listenFD, F_SETFL, fcntl(listenFD, F_GETFL) & ~O_NONBLOCK)
        port = Sockets.localAddress(listenFD).port
        self.spans = spans
        self.showValues = showValues
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                let client = accept(listenFD, nil, nil)
                if client < 0 { if errno == EINTR || errno == ECONNABORTED { continue } else { return } }
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
                Sockets.setNoDelay(client)
                let id = connections.add(1, ordering: .relaxed).newValue
                Thread { [self] in relay(client, id: id) }.start()
            }
        }
        thread.name = "tracetap-db-accept"
        thread.start()
    }

    /// Stops accepting and cuts the open connections (their clients see the connection close).
    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        for fd in open.withLock({ $0 }) { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func relay(_ client: Int32, id: UInt64) {
        let server: Int32
        do { server = try Sockets.connectBlocking(to: upstream, timeoutSeconds: 5) } catch {
            writeStderr("tracetap: database leg: \(error.message)\n")
            close(client)
            return
        }
        var noTimeout = timeval(tv_sec: 0, tv_usec: 0)
        setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &noTimeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(server, SOL_SOCKET, SO_SNDTIMEO, &noTimeout, socklen_t(MemoryLayout<timeval>.size))
        open.withLock { $0.formUnion([client, server]) }
        let conversation = Conversation(connection: id, showValues: showValues, spans: spans)
        let backward = Thread { [conversation] in
            Self.pump(from: server, to: client, framer: PostgresFramer(side: .backend)) { message, now in conversation.backend(message, at: now) }
        }
        backward.start()
        Self.pump(from: client, to: server, framer: PostgresFramer(side: .frontend), answering: client) { message, now in conversation.frontend(message, at: now) }
        conversation.waitForBackend(backward)
        open.withLock { $0.subtract([client, server]) }
        close(client)
        close(server)
    }

    /// Copies `from` to `to` until either side closes, showing each message to `observe` (with the time its
    /// last byte arrived). On the frontend, an SSLRequest or GSSENCRequest is answered `N` and not passed on.
    private static func pump(from source: Int32, to destination: Int32, framer initial: PostgresFramer, answering client: Int32? = nil,
                             observe: (PostgresFramer.Message, UInt64) -> Void) {
        var framer = initial
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var decoding = true
        defer {
            shutdown(source, Int32(SHUT_RD))
            shutdown(destination, Int32(SHUT_WR))
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            let now = wallClockNanos()
            var refused = false
            if decoding {
                let failure = buffer.withUnsafeBytes { bytes -> PostgresFramer.Malformed? in
                    do throws(PostgresFramer.Malformed) {
                        try framer.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<count])) { message in
                            if let client, message.type == 0, isEncryptionRequest(message) {
                                // Answer for the server: no encryption, then the real startup packet follows.
                                var no = UInt8(ascii: "N")
                                _ = send(client, &no, 1, Int32(MSG_NOSIGNAL))
                                refused = true
                            } else {
                                observe(message, now)
                            }
                        }
                        return nil
                    } catch {
                        return error
                    }
                }
                if let failure {
                    // Not PostgreSQL as we know it (or a stream we lost track of): keep relaying, stop reading.
                    writeStderr("tracetap: database leg: \(failure.description); relaying without timing\n")
                    decoding = false
                }
            }
            if refused {
                // An encryption request is 8 bytes and arrives alone (the client waits for the answer).
                framer.expectsStartup = true
                continue
            }
            guard writeAll(destination, buffer, count) else { return }
        }
    }

    private static func isEncryptionRequest(_ message: PostgresFramer.Message) -> Bool {
        guard message.length == 4 else { return false }
        var payload = PostgresPayload(message.prefix)
        let code = payload.int32()
        return code == 80_877_103 || code == 80_877_104
    }

    private static func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let n = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    static func wallClockNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// One client connection's statement tracking, fed by both pump threads.
private final class Conversation: Sendable {
    private let tracker = Mutex(StatementTracker())
    private let connection: UInt64
    private let showValues: Bool
    private let spans: SpanStore
    private let backendDone = DispatchSemaphore(value: 0)

    init(connection: UInt64, showValues: Bool, spans: SpanStore) {
        self.connection = connection
        self.showValues = showValues
        self.spans = spans
    }

    func frontend(_ message: PostgresFramer.Message, at now: UInt64) { tracker.withLock { $0.frontend(message, at: now) } }

    func backend(_ message: PostgresFramer.Message, at now: UInt64) {
        let completed = tracker.withLock { $0.backend(message, at: now) }
        if !completed.isEmpty { spans.add(completed.map { StatementSpan.span($0, connection: connection, showValues: showValues) }) }
    }

    func waitForBackend(_ thread: Thread) {
        // The backend pump ends when the server closes its side, which shutting our side down triggers.
        while !thread.isFinished { usleep(1_000) }
    }
}

/// A completed statement as a span.
enum StatementSpan {
    static func span(_ statement: StatementTracker.Statement, connection: UInt64, showValues: Bool) -> Span {
        let (pairs, sql) = SQLText.comment(statement.sql)
        let context = pairs["traceparent"].flatMap { TraceParent.parse(Array($0.utf8)) }
        let text = (showValues ? sql : SQLText.masked(sql)).split(whereSeparator: \.isNewline).joined(separator: " ")
        var random = SystemRandomNumberGenerator()
        var span = Span(traceID: context?.traceID.description ?? "", spanID: String(format: "%016llx", random.next() as UInt64),
                        parentSpanID: context?.parentID.description ?? "", name: String(text.prefix(80)), kind: 3,
                        startNanos: statement.startNanos, endNanos: max(statement.endNanos, statement.startNanos), service: "postgresql", source: .sql)
        span.attributes = [Span.Attribute("db.system", .string("postgresql")), Span.Attribute("db.statement", .string(text)),
                           Span.Attribute("db.connection", .int(Int64(connection)))]
        if !statement.command.isEmpty { span.attributes.append(Span.Attribute("db.operation", .string(statement.command))) }
        if let rows = statement.rows { span.attributes.append(Span.Attribute("db.rows", .int(Int64(rows)))) }
        if let transaction = statement.transaction { span.attributes.append(Span.Attribute("db.transaction", .string("c\(connection).t\(transaction)"))) }
        if let sqlstate = statement.sqlstate {
            span.statusCode = 2
            span.statusMessage = "\(sqlstate) \(statement.error ?? "")"
            span.attributes.append(Span.Attribute("db.sqlstate", .string(sqlstate)))
        }
        span.attributes.append(Span.Attribute("tracetap.attribution", .string(context == nil ? "none" : "sqlcommenter")))
        return span
    }
}
