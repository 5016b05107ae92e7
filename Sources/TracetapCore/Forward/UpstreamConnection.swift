import Glibc

/// A connection to the backend: connecting, serving one exchange, or idle in the pool.
final class UpstreamConnection: Connection {
    private(set) var isConnected = false
    var exchange: Exchange?
    private unowned let pool: UpstreamPool

    init(fd: Int32, loop: ProxyLoop, pool: UpstreamPool) {
        self.pool = pool
        // Writable means the non-blocking connect finished, one way or the other.
        super.init(fd: fd, loop: loop, events: Epoll.writable)
        loop.shared.stats.upstreamOpen.add(1)
        loop.shared.stats.upstreamConnects.add(1)
        setDeadline(afterNanos: loop.config.connectTimeout.nanos)
    }

    override func handle(events: UInt32) {
        guard isConnected else { return finishConnect() }
        guard let exchange else {
            // Idle in the pool: the upstream closed it, or sent bytes nobody asked for. Either way it is done.
            return pool.discard(self)
        }
        if events & Epoll.writable != 0 || (events & (Epoll.hangup | Epoll.error) != 0 && !outbound.isEmpty) {
            guard flush() else { return exchange.upstreamClosedEarly(self, reset: true) }
            if outbound.isEmpty { exchange.upstreamDrained() }
            if isClosed { return }
        }
        if events & (Epoll.readable | Epoll.peerClosed | Epoll.hangup | Epoll.error) != 0 {
            switch readFromSocket() {
            case .data:
                exchange.upstreamInputAvailable(eof: false)
                updateInterest()
            case .eof:
                exchange.upstreamInputAvailable(eof: true)
            case .failed:
                if inbound.isEmpty { exchange.upstreamClosedEarly(self, reset: true) }
                else { exchange.upstreamInputAvailable(eof: true) }
            }
        }
    }

    private func finishConnect() {
        let error = Sockets.connectError(fd)
        guard error == 0 else {
            let failure = SocketError.errno("connecting to the upstream failed", error)
            let exchange = self.exchange
            close()
            exchange?.upstreamFailed(failure, kind: failure.kind == .refused ? .upstreamRefused : .upstreamError)
            return
        }
        isConnected = true
        clearDeadline()
        updateInterest()
        exchange?.upstreamConnected()
    }

    override func deadlineReached() {
        guard let exchange else { return pool.discard(self) }
        exchange.upstreamTimedOut(connecting: !isConnected)
    }

    func close() {
        guard !isClosed else { return }
        exchange = nil
        closeSocket()
        loop.shared.stats.upstreamOpen.add(-1)
    }
}
