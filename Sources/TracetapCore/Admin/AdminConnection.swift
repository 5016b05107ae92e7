import HTTPCodec

/// A connection to the admin listener. Requests are small and answered in full; one at a time, in order.
final class AdminConnection: Connection {
    private var scanner = HeadScanner()
    private var closeWhenFlushed = false
    /// A request whose body is still arriving, and the body's length.
    private var pending: (head: RequestHead, bodyLength: Int)?
    static let bodyLimit: UInt64 = 64 * 1024
    /// OTLP exports batch hundreds of spans (OTLP recommends accepting up to 64 MiB).
    static let otlpBodyLimit: UInt64 = 16 << 20

    private static func limit(for head: RequestHead) -> UInt64 {
        head.target.starts(with: OTLPReceiver.path.utf8) ? otlpBodyLimit : bodyLimit
    }

    init(fd: Int32, loop: ProxyLoop) {
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
        case .data: answerRequests()
        case .eof, .failed: finish()
        }
    }

    private func answerRequests() {
        while !closeWhenFlushed {
            if pending == nil {
                guard !inbound.isEmpty, let head = readHead() else { return updateInterest() }
                switch try? head.bodyFraming() {
                case .none?: pending = (head, 0)
                case .contentLength(let length)? where length <= Self.limit(for: head): pending = (head, Int(length))
                case .contentLength?:
                    return reply(AdminAPI.Reply(status: 413, json: AdminAPI.errorJSON("bodies here are at most \(Self.limit(for: head) >> 10) KiB")), close: true)
                default: return reply(AdminAPI.Reply(status: 411, json: AdminAPI.errorJSON("send a Content-Length body")), close: true)
                }
            }
            guard let (head, length) = pending, inbound.readableCount >= length else { return updateInterest() }
            pending = nil
            let body = inbound.withReadableBytes { Array($0.prefix(length)) }
            inbound.consume(length)
            reply(AdminAPI(loop: loop).respond(to: head, body: body), close: !head.wantsKeepAlive)
        }
        updateInterest()
    }

    private func readHead() -> RequestHead? {
        do throws(HTTPError) {
            return try takeRequestHead(&scanner)
        } catch {
            reply(AdminAPI.Reply(status: error.status, json: AdminAPI.errorJSON(error.reason)), close: true)
            return nil
        }
    }

    private func reply(_ reply: AdminAPI.Reply, close: Bool) {
        var writer = HeadWriter()
        writer.statusLine(status: reply.status, reason: Array(reasonPhrase(reply.status).utf8))
        writer.field("Content-Type", reply.contentType)
        writer.field("Content-Length", String(reply.body.count))
        writer.field("Cache-Control", "no-store")
        if close { writer.field("Connection", "close") }
        writer.end()
        send(writer.bytes + reply.body)
        if close {
            closeWhenFlushed = true
            if outbound.isEmpty { finish() }
        }
    }

    override func deadlineReached() { finish() }

    private func finish() {
        guard !isClosed else { return }
        closeSocket()
        loop.adminClosed(self)
    }
}
