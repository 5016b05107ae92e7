import Synchronization

/// Counters every loop updates and the admin API reads; relaxed atomics, no locks on the data path.
public final class ProxyStats: Sendable {
    public let startedAt = Sockets.wallClockSeconds()
    let exchanges = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let clientConnections = Atomic<Int>(0)
    let clientConnectionsTotal = Atomic<Int>(0)
    let upstreamOpen = Atomic<Int>(0)
    let upstreamIdle = Atomic<Int>(0)
    let upstreamConnects = Atomic<Int>(0)
    let upstreamReuses = Atomic<Int>(0)
    let upstreamRetries = Atomic<Int>(0)
    let bytesFromClients = Atomic<Int>(0)
    let responseBodyBytes = Atomic<Int>(0)
    let acceptFailures = Atomic<Int>(0)
    let captureWritten = Atomic<Int>(0)
    let captureFailed = Atomic<Int>(0)
    /// Capture file pairs removed to keep a session within `--capture-max-bytes`.
    let captureFilesRemoved = Atomic<Int>(0)

    public struct Snapshot: Sendable, Equatable {
        public var exchanges, errors, clientConnections, clientConnectionsTotal: Int
        public var upstreamOpen, upstreamIdle, upstreamConnects, upstreamReuses, upstreamRetries: Int
        public var bytesFromClients, responseBodyBytes, acceptFailures: Int
        public var captureWritten, captureFailed, captureFilesRemoved: Int
    }

    public var snapshot: Snapshot {
        Snapshot(exchanges: exchanges.load(ordering: .relaxed), errors: errors.load(ordering: .relaxed),
                 clientConnections: clientConnections.load(ordering: .relaxed),
                 clientConnectionsTotal: clientConnectionsTotal.load(ordering: .relaxed),
                 upstreamOpen: upstreamOpen.load(ordering: .relaxed), upstreamIdle: upstreamIdle.load(ordering: .relaxed),
                 upstreamConnects: upstreamConnects.load(ordering: .relaxed),
                 upstreamReuses: upstreamReuses.load(ordering: .relaxed),
                 upstreamRetries: upstreamRetries.load(ordering: .relaxed),
                 bytesFromClients: bytesFromClients.load(ordering: .relaxed),
                 responseBodyBytes: responseBodyBytes.load(ordering: .relaxed),
                 acceptFailures: acceptFailures.load(ordering: .relaxed),
                 captureWritten: captureWritten.load(ordering: .relaxed), captureFailed: captureFailed.load(ordering: .relaxed),
                 captureFilesRemoved: captureFilesRemoved.load(ordering: .relaxed))
    }
}

extension Atomic where Value == Int {
    func add(_ n: Int) { wrappingAdd(n, ordering: .relaxed) }
}
