import Glibc
import TraceContext

/// The database leg: a PostgreSQL wire-protocol pass-through next to the HTTP proxy, on the same event
/// loops. Bytes go through unchanged, as they arrive, in both directions; on the way the leg reads message
/// boundaries and times each statement, which becomes a span of the trace named by its sqlcommenter
/// `traceparent` comment (or, without one, of the HTTP exchange in flight at the time, marked as probable,
/// when the trace is read).
///
/// - SSLRequest and GSSENCRequest are answered `N` (no encryption) so the SQL stays readable; a client with
///   `sslmode=require` therefore cannot connect through it.
/// - CancelRequest connections are passed on like any other.
public final class DatabaseLeg: Sendable {
    public let port: Int
    let listenFD: Int32
    let upstream: SocketAddress
    public let upstreamDescription: String

    init(listen: HostPort, upstream: HostPort) throws(StartupError) {
        do throws(SocketError) {
            self.upstream = try SocketAddress.resolve(upstream)
            listenFD = try Sockets.listen(on: SocketAddress.resolve(listen), backlog: 1024)
        } catch {
            throw StartupError(message: "database leg \(listen) -> \(upstream): \(error.message)")
        }
        port = Sockets.localAddress(listenFD).port
        upstreamDescription = upstream.description
    }

    func close() { Glibc.close(listenFD) }
}

/// One client of a database leg and its connection to the database, both on one loop.
final class DatabaseLink {
    private unowned let loop: ProxyLoop
    private let id: UInt64
    private var client: DatabaseSide!
    private var server: DatabaseSide!
    private var connecting = true
    private var frontend = PostgresFramer(side: .frontend)
    private var backend = PostgresFramer(side: .backend)
    /// False once a stream stopped parsing as PostgreSQL: bytes still flow, statements are no longer timed.
    private var decoding = true
    private var tracker = StatementTracker()
    private(set) var isClosed = false

    /// With database fault rules, client messages wait here, whole, until their faults are decided.
    private struct Waiting {
        var message: PostgresFramer.Message
        var size: Int
        var arrivedAt: UInt64
        var decided = false
        var error: (sqlstate: String, message: String)?
        var faults: [String] = []
    }
    private var waiting: [Waiting] = []
    private var waitingBytes: [UInt8] = []
    /// A delay fault holds everything behind it until its timer.
    private var held = false
    /// A failed extended-protocol group is dropped up to its Sync, then answered with this error.
    private var droppingGroup: (sqlstate: String, message: String)?

    /// SSLRequest (80877103) and GSSENCRequest (80877104): 8 bytes, the first of a connection.
    private static let encryptionRequests: [[UInt8]] = [[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]]

    init(clientFD: Int32, leg: DatabaseLeg, id: UInt64, loop: ProxyLoop) {
        self.loop = loop
        self.id = id
        client = DatabaseSide(fd: clientFD, link: self, loop: loop, events: Epoll.readable | Epoll.peerClosed)
        do throws(SocketError) {
            server = DatabaseSide(fd: try Sockets.startConnect(to: leg.upstream), link: self, loop: loop, events: Epoll.writable)
            server.setDeadline(afterNanos: loop.config.connectTimeout.nanos)
        } catch {
            writeStderr("tracetap: database leg: \(error.message)\n")
            server = nil
            close()
        }
    }

    func handle(_ side: DatabaseSide, events: UInt32) {
        if side === server && connecting {
            guard events & (Epoll.writable | Epoll.error | Epoll.hangup) != 0 else { return }
            let error = Sockets.connectError(side.fd)
            guard error == 0 else {
                writeStderr("tracetap: database leg: \(SocketError.errno("connecting to the database failed", error).message)\n")
                return close()
            }
            connecting = false
            side.clearDeadline()
            side.updateInterest()
            return pumpClient()
        }
        if events & Epoll.writable != 0 {
            guard side.flush() else { return close() }
        }
        guard events & (Epoll.readable | Epoll.peerClosed | Epoll.hangup | Epoll.error) != 0 else { return }
        let outcome = side.readFromSocket()
        if side === client { pumpClient() } else { pumpServer() }
        if case .data = outcome { return }
        close()  // either side gone: the conversation is over (a broken connection rolls its transaction back)
    }

    /// The peer took everything queued for it: the other side may read again.
    func drained(_ side: DatabaseSide) {
        let other: DatabaseSide? = side === client ? server : client
        guard let other, other.peerBackpressure else { return }
        other.peerBackpressure = false
        if other === client { pumpClient() } else { pumpServer() }
    }

    private func pumpClient() {
        guard !isClosed else { return }
        if frontend.expectsStartup, client.inbound.readableCount >= 8,
           client.inbound.withReadableBytes({ bytes in Self.encryptionRequests.contains { bytes.prefix(8).elementsEqual($0) } }) {
            // Answered here, never passed on: no encryption, so the statements stay readable.
            client.inbound.consume(8)
            client.send([UInt8(ascii: "N")])
        }
        guard !connecting, !client.inbound.isEmpty else { return }
        let now = Sockets.wallClockNanos()
        var messages: [PostgresFramer.Message] = []
        if decoding && (!waiting.isEmpty || loop.rules.hasDatabaseRules()) {
            client.inbound.withReadableBytes { bytes in
                waitingBytes.append(contentsOf: bytes)
                decoding = Self.feed(&frontend, bytes, into: &messages)
            }
            client.inbound.consume(client.inbound.readableCount)
            waiting += messages.map { Waiting(message: $0, size: $0.length + ($0.type == 0 ? 4 : 5), arrivedAt: now) }
            if !decoding { waiting.removeAll() }  // what no longer parses goes through as it is
            return drainWaiting()
        }
        client.inbound.withReadableBytes { bytes in
            server.send(bytes)
            if decoding { decoding = Self.feed(&frontend, bytes, into: &messages) }
        }
        client.inbound.consume(client.inbound.readableCount)
        for message in messages { tracker.frontend(message, at: now) }
        client.peerBackpressure = server.outbound.readableCount > Connection.highWater
    }

    /// Forwards waiting client messages in order, applying the database fault rules to each statement.
    private func drainWaiting() {
        while !held, !isClosed, !waiting.isEmpty {
            var head = waiting[0]
            if let error = droppingGroup {
                drop(head)
                if head.message.type == UInt8(ascii: "S") {
                    droppingGroup = nil
                    answer(error)
                }
                continue
            }
            if !head.decided {
                head.decided = true
                if let sql = tracker.sql(of: head.message) {
                    let applied = loop.rules.faults(forSQL: sql)
                    let plan = loop.rules.plan(applied)
                    head.faults = applied.map { "\($0.rule):\($0.fault.kind)" }
                    head.error = plan.sqlError ?? plan.giveUp.map { _ in ("57014", "canceling statement due to statement timeout") }
                    waiting[0] = head
                    let delay = plan.requestDelayMs + (plan.giveUp?.ms ?? 0)
                    if delay > 0 {
                        held = true
                        loop.after(nanos: UInt64(delay) * 1_000_000) { [weak self] in
                            guard let self, !self.isClosed else { return }
                            self.held = false
                            self.drainWaiting()
                        }
                        return
                    }
                }
            }
            if let error = head.error {
                let sql = tracker.sql(of: head.message) ?? ""
                recordInjected(sql: sql, error: error, head: head)
                if head.message.type == UInt8(ascii: "Q") {
                    drop(head)
                    answer(error)
                    continue
                }
                if tracker.isIdle {
                    // The group (Parse/Bind ... Sync) never reaches the database; the client gets the error at its Sync.
                    droppingGroup = error
                    continue
                }
                // Inside a pipeline the replies already in flight cannot be reordered around an injected
                // error: the statement runs.
                writeStderr("tracetap: database leg: \(head.faults.joined(separator: ", ")) not applied inside a pipeline\n")
            }
            waitingBytes.withUnsafeBytes { server.send(UnsafeRawBufferPointer(rebasing: $0[0..<head.size])) }
            drop(head)
            tracker.frontend(head.message, at: head.arrivedAt, faults: head.faults)
        }
        client.peerBackpressure = server.outbound.readableCount > Connection.highWater
    }

    private func drop(_ head: Waiting) {
        waitingBytes.removeFirst(head.size)
        waiting.removeFirst()
    }

    /// ErrorResponse and ReadyForQuery, as the server would send them for a failed statement.
    private func answer(_ error: (sqlstate: String, message: String)) {
        var fields: [UInt8] = []
        for (code, value) in [("S", "ERROR"), ("V", "ERROR"), ("C", error.sqlstate), ("M", error.message)] {
            fields += Array(code.utf8) + Array(value.utf8) + [0]
        }
        fields.append(0)
        let inTransaction = tracker.transactionStatus != UInt8(ascii: "I")
        client.send(Self.message(UInt8(ascii: "E"), fields) + Self.message(UInt8(ascii: "Z"), [inTransaction ? UInt8(ascii: "E") : UInt8(ascii: "I")]))
    }

    private static func message(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count + 4)
        return [type, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + payload
    }

    private func recordInjected(sql: String, error: (sqlstate: String, message: String), head: Waiting) {
        var statement = StatementTracker.Statement(sql: sql, startNanos: head.arrivedAt, endNanos: max(head.arrivedAt, Sockets.wallClockNanos()), faults: head.faults)
        statement.sqlstate = error.sqlstate
        statement.error = error.message
        guard loop.shared.spans.isKept else { return }
        loop.shared.spans.add([StatementSpan.span(statement, spanID: loop.random.next(), connection: id, showValues: loop.config.databaseShowValues)])
    }

    private func pumpServer() {
        guard !isClosed, !server.inbound.isEmpty else { return }
        let now = Sockets.wallClockNanos()
        var messages: [PostgresFramer.Message] = []
        server.inbound.withReadableBytes { bytes in
            client.send(bytes)
            if decoding { decoding = Self.feed(&backend, bytes, into: &messages) }
        }
        server.inbound.consume(server.inbound.readableCount)
        var completed: [StatementTracker.Statement] = []
        for message in messages { completed += tracker.backend(message, at: now) }
        if !completed.isEmpty && loop.shared.spans.isKept {
            loop.shared.spans.add(completed.map { StatementSpan.span($0, spanID: loop.random.next(), connection: id, showValues: loop.config.databaseShowValues) })
        }
        server.peerBackpressure = client.outbound.readableCount > Connection.highWater
    }

    /// false when the bytes are not PostgreSQL as we know it (or we lost track of the stream).
    private static func feed(_ framer: inout PostgresFramer, _ bytes: UnsafeRawBufferPointer, into messages: inout [PostgresFramer.Message]) -> Bool {
        do throws(PostgresFramer.Malformed) {
            try framer.feed(bytes) { messages.append($0) }
            return true
        } catch {
            writeStderr("tracetap: database leg: \(error.description); relaying without timing\n")
            return false
        }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        // What was already queued for a side is lost with it, as with any proxy that closes.
        client.closeSocket()
        server?.closeSocket()
        loop.databaseLinkClosed(self)
    }
}

/// One socket of a database link.
final class DatabaseSide: Connection {
    private unowned let link: DatabaseLink

    init(fd: Int32, link: DatabaseLink, loop: ProxyLoop, events: UInt32) {
        self.link = link
        super.init(fd: fd, loop: loop, events: events)
    }

    override func handle(events: UInt32) { link.handle(self, events: events) }
    override func outputDrained() { link.drained(self) }
    override func deadlineReached() {
        writeStderr("tracetap: database leg: the database did not accept the connection in time\n")
        link.close()
    }
}

/// A completed statement as a span.
enum StatementSpan {
    /// `spanID`: from the loop's generator (a system random number per statement costs a syscall).
    static func span(_ statement: StatementTracker.Statement, spanID: UInt64, connection: UInt64, showValues: Bool) -> Span {
        let (pairs, sql) = SQLText.comment(statement.sql)
        let context = pairs["traceparent"].flatMap { TraceParent.parse(Array($0.utf8)) }
        let text = SQLText.oneLine(showValues ? sql : SQLText.masked(sql))
        var span = Span(traceID: context?.traceID.description ?? "", spanID: SpanID(spanID == 0 ? 1 : spanID).description,
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
        if !statement.faults.isEmpty { span.attributes.append(Span.Attribute("tracetap.faults", .string(statement.faults.joined(separator: ", ")))) }
        return span
    }
}
