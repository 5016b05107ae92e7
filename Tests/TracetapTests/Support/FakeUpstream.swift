import Foundation
import Glibc
import Synchronization

/// A scripted upstream on loopback: each accepted connection runs `handler` on its own thread with a
/// blocking socket, so a test can send exact (also broken) bytes and see exactly what the proxy sent.
final class FakeUpstream: Sendable {
    let port: Int
    private let fd: Int32
    let accepted = Atomic<Int>(0)
    private let received = Mutex<[String]>([])

    /// `acceptsConnections: false` leaves connections in the listen queue, never accepted.
    init(backlog: Int32 = 64, acceptsConnections: Bool = true, handler: @escaping @Sendable (BlockingSocket, FakeUpstream) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, backlog) == 0 else { throw TestFailure("fake upstream could not listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        fd = listener
        guard acceptsConnections else { return }
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                accepted.add(1, ordering: .relaxed)
                Thread {
                    let socket = BlockingSocket(fd: client)
                    handler(socket, self)
                    socket.close()
                }.start()
            }
        }.start()
    }

    /// Records what a handler read, for the test to inspect.
    func note(_ text: String) { received.withLock { $0.append(text) } }
    var notes: [String] { received.withLock { $0 } }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    /// The usual handler: read request heads (and Content-Length bodies), note them, answer `response`.
    static func answering(_ response: String, keepAlive: Bool = true) -> @Sendable (BlockingSocket, FakeUpstream) -> Void {
        { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                var text = head
                if let length = contentLength(head), length > 0, let body = try? socket.read(exactly: length) {
                    text += String(decoding: body, as: UTF8.self)
                }
                upstream.note(text)
                socket.send(response)
                if !keepAlive { return }
            }
        }
    }

    static func contentLength(_ head: String) -> Int? {
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            return Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
