import HTTPCodec

/// A connection to the admin listener. Requests are small and answered in full; one at a time, in order.
final class AdminConnection: Connection {
    private var scanner = HeadScanner()
    private var closeWhenFlushed = false

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
        while !closeWhenFlushed && !inbound.isEmpty {
            let limits = loop.config.limits
            let parsed: RequestHead?
            do throws(HTTPError) {
                parsed = try inbound.withReadableBytes { (bytes) throws(HTTPError) -> RequestHead? in
                    guard let length = try scanner.scan(bytes, limits: limits, tooLongStartLine: 414, tooLargeHead: 431) else { return nil }
                    let head = try HeadParser.parseRequest(UnsafeRawBufferPointer(rebasing: bytes[0..<length]), limits: limits)
                    inbound.consume(length)
                    return head
                }
            } catch {
                return reply(AdminAPI.Reply(status: error.status, json: AdminAPI.errorJSON(error.reason)), close: true)
            }
            guard let head = parsed else { return updateInterest() }
            scanner.reset()
            let hasBody = (try? head.bodyFraming()) != BodyFraming.none
            let answer = AdminAPI(loop: loop).respond(to: head)
            reply(answer, close: hasBody || !head.wantsKeepAlive)
        }
        updateInterest()
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
