/// Keep-alive connections to the upstream, per loop (so no locks): the most recently used is reused first,
/// idle ones are watched for the upstream closing them and expire after `upstreamIdleTimeout`.
final class UpstreamPool {
    private unowned let loop: ProxyLoop
    /// The upstream's address, or why it could not be resolved at start-up (each request then gets a 502 saying so).
    private let address: Result<SocketAddress, SocketError>
    private var idle: [UpstreamConnection] = []

    init(loop: ProxyLoop, address: Result<SocketAddress, SocketError>) {
        self.loop = loop
        self.address = address
    }

    func acquire(for user: any UpstreamUser, fresh: Bool) throws(SocketError) -> (UpstreamConnection, reused: Bool) {
        if !fresh, let connection = idle.popLast() {
            loop.shared.stats.upstreamIdle.add(-1)
            loop.shared.stats.upstreamReuses.add(1)
            connection.clearDeadline()
            connection.user = user
            return (connection, true)
        }
        let connection: UpstreamConnection
        if let tls = loop.shared.tlsSettings {
            connection = UpstreamConnection(fd: try TLSBridge.open(tls), loop: loop, pool: self, bridged: true)
        } else {
            connection = UpstreamConnection(fd: try Sockets.startConnect(to: address.get()), loop: loop, pool: self, bridged: false)
        }
        connection.user = user
        return (connection, false)
    }

    func release(_ connection: UpstreamConnection) {
        connection.user = nil
        connection.pacer = nil
        connection.peerBackpressure = false
        guard !loop.shuttingDown, idle.count < loop.config.maxIdleUpstreamPerThread, connection.outbound.isEmpty else {
            return connection.close()
        }
        connection.inbound.releaseCapacityIfEmpty()
        connection.setDeadline(afterNanos: loop.config.upstreamIdleTimeout.nanos)
        idle.append(connection)
        loop.shared.stats.upstreamIdle.add(1)
    }

    func discard(_ connection: UpstreamConnection) {
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
            loop.shared.stats.upstreamIdle.add(-1)
        }
        connection.close()
    }

    func closeAll() {
        for connection in idle { connection.close() }
        loop.shared.stats.upstreamIdle.add(-idle.count)
        idle.removeAll()
    }
}
