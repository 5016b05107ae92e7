import Glibc

/// What an upstream connection reports to whoever is using it: an exchange, or a duplicate copy of one.
protocol UpstreamUser: AnyObject {
    func upstreamConnected()
    func upstreamInputAvailable(eof: Bool)
    func upstreamDrained()
    func upstreamFailed(_ error: SocketError, kind: ExchangeRecord.Failure)
    func upstreamClosedEarly(_ connection: UpstreamConnection, reset: Bool)
    func upstreamTimedOut(connecting: Bool)
}

extension UpstreamUser {
    /// Takes a connection from the pool. `keep` stores it (and whether it was reused) before a reused one
    /// reports itself connected; a connection that cannot even be started is reported as a failure.
    func takeUpstream(from pool: UpstreamPool, fresh: Bool, keep: (UpstreamConnection, Bool) -> Void) {
        do {
            let (connection, reused) = try pool.acquire(for: self, fresh: fresh)
            keep(connection, reused)
            if reused { upstreamConnected() }
        } catch {
            upstreamFailed(error, kind: ExchangeRecord.Failure(connectError: error.kind))
        }
    }
}

/// A connection to the backend: connecting, serving one exchange, or idle in the pool.
final class UpstreamConnection: Connection {
    private(set) var isConnected = false
    var user: (any UpstreamUser)?
    private unowned let pool: UpstreamPool
    /// Set for an https upstream: the fd is a socketpair to a TLS relay (`TLSBridge`).
    private let bridged: Bool
    /// How long the connection took to open and, over TLS, to finish the handshake.
    private(set) var connectMicros: Int64 = -1
    private(set) var tlsMicros: Int64 = -1

    init(fd: Int32, loop: ProxyLoop, pool: UpstreamPool, bridged: Bool) {
        self.pool = pool
        self.bridged = bridged
        // Writable means the non-blocking connect finished, one way or the other; a TLS relay instead
        // writes its status line when the handshake is done.
        super.init(fd: fd, loop: loop, events: bridged ? Epoll.readable | Epoll.peerClosed : Epoll.writable)
        loop.shared.stats.upstreamOpen.add(1)
        loop.shared.stats.upstreamConnects.add(1)
        // libcurl enforces the connect timeout of a TLS relay and says why; this one is the backstop.
        setDeadline(afterNanos: loop.config.connectTimeout.nanos + (bridged ? 1_000_000_000 : 0))
    }

    override func handle(events: UInt32) {
        guard isConnected else { return bridged ? readBridgeStatus() : finishConnect() }
        guard let user else {
            // Idle in the pool: the upstream closed it, or sent bytes nobody asked for. Either way it is done.
            return pool.discard(self)
        }
        if events & Epoll.writable != 0 || (events & (Epoll.hangup | Epoll.error) != 0 && !outbound.isEmpty) {
            guard flush() else { return user.upstreamClosedEarly(self, reset: true) }
            if outbound.isEmpty { outputDrained() }
            if isClosed { return }
        }
        if events & (Epoll.readable | Epoll.peerClosed | Epoll.hangup | Epoll.error) != 0 {
            switch readFromSocket() {
            case .data:
                user.upstreamInputAvailable(eof: false)
                // Still mid-response: ACK now so a backend held by Nagle sends the rest at once.
                if self.user != nil && !bridged { Sockets.setQuickAck(fd) }
                updateInterest()
            case .eof:
                user.upstreamInputAvailable(eof: true)
            case .failed:
                if inbound.isEmpty { user.upstreamClosedEarly(self, reset: true) }
                else { user.upstreamInputAvailable(eof: true) }
            }
        }
    }

    private func finishConnect() {
        let error = Sockets.connectError(fd)
        guard error == 0 else { return failConnect(SocketError.errno("connecting to the upstream failed", error)) }
        connected()
    }

    override func outputDrained() { user?.upstreamDrained() }

    private func readBridgeStatus() {
        if case .failed = readFromSocket(), inbound.isEmpty {
            return failConnect(SocketError("the TLS relay failed", kind: .other))
        }
        let (status, used) = inbound.withReadableBytes { TLSBridge.parseStatus($0) }
        inbound.consume(used)
        switch status {
        case .connected(let connect, let tls):
            connectMicros = connect
            tlsMicros = tls
            connected()
        case .failed(let error):
            failConnect(error)
        case .incomplete:
            if sawEOF { failConnect(SocketError("the TLS relay closed before connecting", kind: .other)) }
        }
    }

    private func connected() {
        isConnected = true
        clearDeadline()
        updateInterest()
        user?.upstreamConnected()
    }

    private func failConnect(_ failure: SocketError) {
        let user = self.user
        close()
        user?.upstreamFailed(failure, kind: ExchangeRecord.Failure(connectError: failure.kind))
    }

    override func deadlineReached() {
        guard let user else { return pool.discard(self) }
        user.upstreamTimedOut(connecting: !isConnected)
    }

    func close() {
        guard !isClosed else { return }
        user = nil
        closeSocket()
        loop.shared.stats.upstreamOpen.add(-1)
    }
}
