import Glibc
import CTracetapSys

/// Thin wrappers over the socket calls, returning Swift errors; every socket is non-blocking and close-on-exec.
enum Sockets {
    static func listen(on address: SocketAddress, backlog: Int32 = 4096) throws(SocketError) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.errno("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = SocketError.errno("cannot listen on \(address)")
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SocketError.errno("listen on \(address)")
            close(fd)
            throw error
        }
        return fd
    }

    /// Starts a non-blocking connect; the socket becomes writable when it completes.
    static func startConnect(to address: SocketAddress) throws(SocketError) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.errno("socket") }
        setNoDelay(fd)
        let rc = address.withSockaddr { connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let error = SocketError.errno("connect to \(address)")
            close(fd)
            throw error
        }
        return fd
    }

    /// A blocking connection (for `tracetap replay`, which runs on its own thread), with send and receive
    /// timeouts so that a silent server cannot hang it.
    static func connectBlocking(to address: SocketAddress, timeoutSeconds: Int) throws(SocketError) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.errno("socket") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setNoDelay(fd)
        guard address.withSockaddr({ connect(fd, $0, $1) }) == 0 else {
            let error = SocketError.errno("connecting to \(address) failed")
            close(fd)
            throw error
        }
        return fd
    }

    /// The outcome of a non-blocking connect, once the socket reported writable.
    /// A connected pair of non-blocking Unix stream sockets.
    static func socketPair() throws(SocketError) -> (Int32, Int32) {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SocketError.errno("socketpair", errno)
        }
        return (pair[0], pair[1])
    }

    static func connectError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error
    }

    /// Makes `close` send a TCP RST instead of a FIN (SO_LINGER with a zero timeout).
    static func setResetOnClose(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Acknowledge at once instead of delaying: a backend without TCP_NODELAY that writes head and body
    /// separately otherwise waits for our delayed ACK (40 ms) before sending the body. Linux clears
    /// the mode by itself, so it is set again after each read that leaves a response incomplete.
    static func setQuickAck(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), Int32(TCP_QUICKACK), &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func localAddress(_ fd: Int32) -> SocketAddress {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &address.length) }
        }
        return address
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallClockSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Wall-clock time in nanoseconds since the epoch, as spans carry it.
    static func wallClockNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Writes to stderr without Glibc's non-Sendable `stderr` global.
func writeStderr(_ text: String) {
    var bytes = Array(text.utf8)
    writeAll(2, &bytes)
}

public func writeAll(_ fd: Int32, _ bytes: inout [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 {
            if n < 0 && errno == EINTR { continue }
            return
        }
        offset += n
    }
}
