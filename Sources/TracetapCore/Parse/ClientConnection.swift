import Glibc
import HTTPCodec
import TraceContext

/// A downstream client connection: reads request heads, runs one exchange at a time (pipelined requests
/// wait in the input queue and are answered in order), and enforces the idle and header timeouts.
final class ClientConnection: Connection {
    let peer: SocketAddress
    let peerHost: String
    let id: UInt64
    private var scanner = HeadScanner()
    private(set) var exchange: Exchange?
    /// When the current head's first byte arrived (or the previous exchange ended, for pipelined heads).
    private var headStartedAt: UInt64 = 0
    private var closeWhenFlushed = false
    private(set) var exchangesServed = 0

    init(fd: Int32, peer: SocketAddress, loop: ProxyLoop) {
        self.peer = peer
        peerHost = peer.host
        id = loop.nextConnectionID()
        super.init(fd: fd, loop: loop, events: Epoll.readable | Epoll.peerClosed)
        loop.shared.stats.clientConnections.add(1)
        loop.shared.stats.clientConnectionsTotal.add(1)
        setDeadline(afterNanos: loop.config.idleTimeout.nanos)
    }

    var isIdle: Bool { exchange == nil && inbound.isEmpty }

    override func handle(events: UInt32) {
        if events & Epoll.writable != 0 || events & (Epoll.hangup | Epoll.error) != 0 && !outbound.isEmpty {
            guard flush() else { return teardown(reason: "client connection reset") }
            if outbound.isEmpty { outputDrained() }
            if isClosed { return }
        }
        if events & (Epoll.readable | Epoll.peerClosed | Epoll.hangup | Epoll.error) != 0 {
            readAndProcess()
        }
    }

    private func readAndProcess() {
        let before = inbound.readableCount
        let outcome = readFromSocket()
        loop.shared.stats.bytesFromClients.add(inbound.readableCount - before)
        if inbound.readableCount > before, exchange == nil, headStartedAt == 0 { startHeadClock() }
        process()
        switch outcome {
        case .data:
            updateInterest()
        case .eof:
            if let exchange { exchange.clientClosed(reset: false) } else { peerClosedBetweenRequests() }
        case .failed(let error):
            if let exchange { exchange.clientClosed(reset: true) } else { teardown(reason: "client read failed: \(String(cString: strerror(error)))") }
        }
    }

    /// Parses and starts requests until one is in flight or the input holds no complete head.
    func process() {
        while !isClosed && !closeWhenFlushed {
            if let exchange {
                exchange.clientInputAvailable()
                return
            }
            guard startNextExchange() else { return }
        }
    }

    private func startHeadClock() {
        headStartedAt = loop.events.now
        setDeadline(afterNanos: loop.config.headerTimeout.nanos)
    }

    private func startNextExchange() -> Bool {
        let skip = inbound.withReadableBytes { HeadParser.leadingEmptyLines($0) }
        if skip > 0 { inbound.consume(skip) }
        guard !inbound.isEmpty else { return false }
        if headStartedAt == 0 { startHeadClock() }
        let head: RequestHead
        do throws(HTTPError) {
            guard let result = try takeRequestHead(&scanner) else { return false }
            head = result
        } catch {
            rejectMalformed(error)
            return false
        }
        clearDeadline()
        let framing: BodyFraming
        do throws(HTTPError) { framing = try head.bodyFraming() } catch {
            rejectMalformed(error, head: head)
            return false
        }
        if head.methodIs("CONNECT") {
            rejectMalformed(HTTPError(405, "CONNECT is not supported by a reverse proxy"), head: head)
            return false
        }
        let exchange = Exchange(client: self, request: head, framing: framing, startedAt: headStartedAt)
        self.exchange = exchange
        exchangesServed += 1
        exchange.start()
        return true
    }

    /// A request the codec refused: answer its status, record it, and close (RFC 9112 §6.3: never guess).
    private func rejectMalformed(_ error: HTTPError, head: RequestHead? = nil) {
        let exchange = Exchange(client: self, rejected: head, error: error, startedAt: headStartedAt)
        self.exchange = exchange
        exchange.respondWithError(status: error.status, message: error.reason, kind: .malformedRequest)
    }

    /// Called by the exchange once its response is written to the output queue.
    func exchangeFinished(keepAlive: Bool) {
        exchange = nil
        headStartedAt = 0
        peerBackpressure = false
        if !keepAlive || loop.shuttingDown {
            closeWhenFlushed = true
            if outbound.isEmpty { teardown(reason: nil) } else { updateInterest() }
            return
        }
        if inbound.isEmpty {
            inbound.releaseCapacityIfEmpty()
            setDeadline(afterNanos: loop.config.idleTimeout.nanos)
        } else {
            startHeadClock()
        }
        updateInterest()
        process()
    }

    /// The output queue emptied: let the upstream send more, or finish a close.
    override func outputDrained() {
        if closeWhenFlushed { return teardown(reason: nil) }
        exchange?.clientDrained()
    }

    private func peerClosedBetweenRequests() {
        if !inbound.isEmpty && !closeWhenFlushed {
            loop.logIncompleteRequest(from: peerHost, bytes: inbound.readableCount)
        }
        teardown(reason: nil)
    }

    override func deadlineReached() {
        if let exchange {
            exchange.clientTimedOut()
        } else if inbound.isEmpty && headStartedAt == 0 {
            teardown(reason: nil)
        } else {
            rejectMalformed(HTTPError(408, "request head not received within \(loop.config.headerTimeout)s"))
        }
    }

    /// Closes the socket for good; an exchange in flight is told first.
    func teardown(reason: String?) {
        guard !isClosed else { return }
        closeSocket()
        loop.clientClosed(self)
        loop.shared.stats.clientConnections.add(-1)
        if let exchange {
            self.exchange = nil
            exchange.clientClosed(reset: reason != nil)
        }
    }

    /// Half of a graceful shutdown: idle connections close now, busy ones after their exchange.
    func shutdownIfIdle() {
        if isIdle { teardown(reason: nil) }
    }
}
