import Dispatch
import Glibc
import Synchronization
import HTTPCodec

/// A connection to the admin listener. Requests are answered one at a time, in order: at once, from a
/// worker thread (disk, replays: the loop never waits), or as an event stream that lasts until the
/// client leaves.
final class AdminConnection: Connection {
    private var scanner = HeadScanner()
    private var closeWhenFlushed = false
    /// A request whose body is still arriving, and the body's length.
    private var pending: (head: RequestHead, bodyLength: Int)?
    /// Names this connection's deferred replies, so a reply whose connection closed meanwhile is dropped.
    let ticket: UInt64
    /// A worker is preparing the answer to the current request; later requests wait.
    private var awaitingReply: (keepAlive: Bool, isHead: Bool)?
    /// Streaming `/api/events`: the last sequence number sent, and when the last bytes went.
    private var stream: (after: UInt64, lastSentAt: UInt64)?
    static let bodyLimit: UInt64 = 64 * 1024
    /// OTLP exports batch hundreds of spans (OTLP recommends accepting up to 64 MiB).
    static let otlpBodyLimit: UInt64 = 16 << 20
    /// How often a stream looks for new exchanges, and how long it stays silent before a keep-alive comment.
    static let streamTick: UInt64 = 100_000_000
    static let streamKeepAlive: UInt64 = 15_000_000_000
    static let streamBatch = 500

    private static func limit(for head: RequestHead) -> UInt64 {
        head.target.starts(with: OTLPReceiver.path.utf8) ? otlpBodyLimit : bodyLimit
    }

    init(fd: Int32, ticket: UInt64, loop: ProxyLoop) {
        self.ticket = ticket
        super.init(fd: fd, loop: loop, events: Epoll.readable | Epoll.peerClosed)
        setDeadline(afterNanos: loop.config.idleTimeout.nanos)
    }

    override func handle(events: UInt32) {
        if events & Epoll.writable != 0 {
            guard flush() else { return finish() }
            if outbound.isEmpty && closeWhenFlushed { return finish() }
        }
        guard events & (Epoll.readable | Epoll.peerClosed | Epoll.hangup | Epoll.error) != 0 else { return }
        switch readFromSocket() {
        case .data: if stream == nil { answerRequests() } else { inbound.consume(inbound.readableCount) }
        case .eof, .failed: finish()
        }
    }

    private func answerRequests() {
        while !closeWhenFlushed && awaitingReply == nil && stream == nil {
            if pending == nil {
                guard !inbound.isEmpty, let head = readHead() else { return updateInterest() }
                switch try? head.bodyFraming() {
                case .none?: pending = (head, 0)
                case .contentLength(let length)? where length <= Self.limit(for: head): pending = (head, Int(length))
                case .contentLength?:
                    return reply(.error(413, "bodies here are at most \(Self.limit(for: head) >> 10) KiB"), close: true)
                default: return reply(.error(411, "send a Content-Length body"), close: true)
                }
            }
            guard let (head, length) = pending, inbound.readableCount >= length else { return updateInterest() }
            pending = nil
            let body = inbound.withReadableBytes { Array($0.prefix(length)) }
            inbound.consume(length)
            switch AdminAPI(loop: loop).respond(to: head, body: body) {
            case .reply(let answer):
                reply(answer, close: !head.wantsKeepAlive, isHead: head.isHead)
            case .deferred(let work):
                awaitingReply = (head.wantsKeepAlive, head.isHead)
                let (mailbox, fd, ticket) = (loop.shared.adminMailbox, fd, ticket)
                DispatchQueue.global().async { mailbox.post(fd: fd, ticket: ticket, reply: work()) }
            case .stream(let after):
                startStream(after: after)
            }
        }
        updateInterest()
    }

    /// A worker's answer, handed over by the loop.
    func deliver(_ answer: AdminAPI.Reply) {
        guard let waiting = awaitingReply else { return }
        awaitingReply = nil
        reply(answer, close: !waiting.keepAlive, isHead: waiting.isHead)
        if !closeWhenFlushed { answerRequests() }
    }

    private func readHead() -> RequestHead? {
        do throws(HTTPError) {
            return try takeRequestHead(&scanner)
        } catch {
            reply(.error(error.status, error.reason), close: true)
            return nil
        }
    }

    /// A response head; without `contentLength` the body ends when the connection closes.
    private static func head(status: Int, contentType: String, contentLength: Int?, headers: [(name: String, value: String)] = [],
                             close: Bool) -> [UInt8] {
        var writer = HeadWriter()
        writer.statusLine(status: status, reason: Array(reasonPhrase(status).utf8))
        writer.field("Content-Type", contentType)
        if let contentLength { writer.field("Content-Length", String(contentLength)) }
        writer.field("Cache-Control", "no-store")
        writer.field("X-Content-Type-Options", "nosniff")
        for header in headers { writer.field(header.name, header.value) }
        if close { writer.field("Connection", "close") }
        writer.end()
        return writer.bytes
    }

    private func reply(_ reply: AdminAPI.Reply, close: Bool, isHead: Bool = false) {
        let head = Self.head(status: reply.status, contentType: reply.contentType, contentLength: reply.body.count, headers: reply.headers, close: close)
        send(isHead ? head : head + reply.body)
        setDeadline(afterNanos: loop.config.idleTimeout.nanos)
        if close {
            closeWhenFlushed = true
            if outbound.isEmpty { finish() }
        }
    }

    // MARK: Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html)

    private func startStream(after: UInt64) {
        send(Self.head(status: 200, contentType: "text/event-stream", contentLength: nil, close: true) + Array("retry: 1000\n\n".utf8))
        stream = (after, loop.events.now)
        pump()
    }

    /// Sends what the feed got since the last tick, unless the client is not keeping up (then it waits:
    /// the ring keeps the newest, and the client is told what it missed). A backlog (a page just opened
    /// on a full feed) goes in batches on the timer's shortest tick.
    private func pump() {
        guard var state = stream, let feed = loop.shared.feed else { return }
        var backlog = false
        if outbound.readableCount < Connection.highWater {
            let (entries, missed) = feed.entries(after: state.after, limit: Self.streamBatch)
            backlog = entries.count == Self.streamBatch
            var text = ""
            if missed { text += "event: missed\ndata: {\"after\":\(state.after)}\n\n" }
            for entry in entries { text += "id: \(entry.seq)\nevent: exchange\ndata: \(entry.json)\n\n" }
            if text.isEmpty && loop.events.now - state.lastSentAt >= Self.streamKeepAlive { text = ": keep-alive\n\n" }
            if !text.isEmpty {
                send(Array(text.utf8))
                state.lastSentAt = loop.events.now
            }
            state.after = entries.last?.seq ?? state.after
            stream = state
            updateInterest()
        }
        setDeadline(afterNanos: backlog ? TimerWheel.tickNanos : Self.streamTick)
    }

    override func deadlineReached() {
        if stream != nil { return pump() }
        // A worker still has the answer: wait for it rather than close under it.
        if awaitingReply != nil { return setDeadline(afterNanos: loop.config.idleTimeout.nanos) }
        finish()
    }

    private func finish() {
        guard !isClosed else { return }
        closeSocket()
        loop.adminClosed(self)
    }
}

/// Answers prepared on worker threads, on their way back to the loop that owns the admin connections.
final class AdminMailbox: Sendable {
    private struct State: ~Copyable {
        var replies: [(fd: Int32, ticket: UInt64, reply: AdminAPI.Reply)] = []
        /// Set once the loops have stopped: the wake-up descriptor is about to close, and its number may be
        /// reused by anything, so a late worker must not write to it.
        var closed = false
    }

    private let state = Mutex(State())
    private let wakeFD: Int32

    init(wakeFD: Int32) { self.wakeFD = wakeFD }

    func post(fd: Int32, ticket: UInt64, reply: AdminAPI.Reply) {
        state.withLock { state in
            guard !state.closed else { return }
            state.replies.append((fd, ticket, reply))
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    func take() -> [(fd: Int32, ticket: UInt64, reply: AdminAPI.Reply)] {
        state.withLock { state in
            defer { state.replies.removeAll() }
            return state.replies
        }
    }

    func close() { state.withLock { $0.closed = true } }
}
