import Glibc
import CTracetapSys

/// Accepts connections from the shared listening socket. Every loop registers the same fd with
/// EPOLLEXCLUSIVE, so one wake-up goes to one loop and the kernel spreads the work.
final class Listener: EventHandler {
    private let fd: Int32
    private unowned let loop: ProxyLoop
    private let makeConnection: (Int32, SocketAddress) -> Void
    /// False while taking one more connection would leave no descriptors for its upstream side.
    private let hasRoom: () -> Bool
    private var paused = false
    private var full = false

    init(fd: Int32, loop: ProxyLoop, hasRoom: @escaping () -> Bool = { true }, makeConnection: @escaping (Int32, SocketAddress) -> Void) {
        self.fd = fd
        self.loop = loop
        self.hasRoom = hasRoom
        self.makeConnection = makeConnection
        loop.events.register(fd, self, events: Epoll.readable | Epoll.exclusive)
    }

    func handle(events: UInt32) {
        for _ in 0..<64 {
            guard hasRoom() else {
                // Full: leave the rest in the backlog until a connection closes (see `roomMade`).
                if !full {
                    writeStderr("tracetap: client connection limit reached: the file-descriptor limit leaves no room for their upstream connections; new connections wait in the listen queue until one closes\n")
                }
                full = true
                if !paused { loop.events.unregister(fd) }
                paused = true
                return
            }
            var peer = SocketAddress()
            peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &peer.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    tt_accept4(fd, $0, &peer.length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if client >= 0 {
                Sockets.setNoDelay(client)
                makeConnection(client, peer)
                continue
            }
            let error = errno
            if error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM {
                pauseAccepting(error)
            }
            return
        }
    }

    /// Out of file descriptors: say so once, stop accepting for a moment (the backlog holds the clients),
    /// and try again, instead of spinning on a listener that stays readable.
    private func pauseAccepting(_ error: Int32) {
        loop.shared.stats.acceptFailures.add(1)
        guard !paused else { return }
        paused = true
        writeStderr("tracetap: cannot accept connections: \(String(cString: strerror(error))) (file-descriptor limit reached); retrying in 100 ms\n")
        loop.events.unregister(fd)
        loop.after(nanos: 100_000_000) { [weak self] in
            guard let self, !self.loop.shuttingDown else { return }
            self.paused = false
            self.loop.events.register(self.fd, self, events: Epoll.readable | Epoll.exclusive)
        }
    }

    /// A connection closed: if accepting stopped for lack of room, start again.
    func roomMade() {
        guard full, !loop.shuttingDown else { return }
        full = false
        paused = false
        loop.events.register(fd, self, events: Epoll.readable | Epoll.exclusive)
    }

    func stop() {
        if !paused { loop.events.unregister(fd) }
        paused = true
    }
}
