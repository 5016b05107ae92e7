import Foundation
import Glibc
import HTTPCodec

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A response as a client received it.
struct TestResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var trailers: String
    /// The head bytes exactly as received.
    var rawHead: String

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    func headers(_ name: String) -> [String] { headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value) }
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { throw TestFailure("not a JSON object: \(text)") }
        return object
    }
}

/// A blocking loopback socket with a read timeout, for both test clients and fake upstreams.
final class BlockingSocket: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32, timeout: Double = 10) {
        self.fd = fd
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func connect(port: Int, timeout: Double = 10) throws -> BlockingSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Glibc.close(fd); throw TestFailure("connect to \(port) failed: \(errno)") }
        return BlockingSocket(fd: fd, timeout: timeout)
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Why the last read got nothing, for failure messages: a close and a timeout mean different bugs.
    private(set) var ended = ""

    /// Reads more bytes into the buffer; false on EOF, error or timeout.
    @discardableResult
    func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else {
            ended = n == 0 ? "closed by the peer" : errno == EAGAIN || errno == EWOULDBLOCK ? "read timed out" : "error \(errno)"
            return false
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    var buffered: [UInt8] { buffer }

    func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads through the first occurrence of `delimiter`.
    func read(until delimiter: String) throws -> String {
        let d = Array(delimiter.utf8)
        while true {
            if let range = firstRange(of: d) { return String(decoding: take(range.upperBound), as: UTF8.self) }
            guard fill() else { throw TestFailure("connection ended (\(ended)) before \(delimiter.debugDescription); got \(String(decoding: buffer, as: UTF8.self).debugDescription)") }
        }
    }

    func read(exactly n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard fill() else { throw TestFailure("connection ended (\(ended)) after \(buffer.count) of \(n) bytes") }
        }
        return take(n)
    }

    /// Reads and discards `count` bytes (buffered ones first), hashing nothing: for bodies too large to keep.
    func discard(_ count: Int) throws {
        var left = count
        let fromBuffer = min(left, buffer.count)
        buffer.removeFirst(fromBuffer)
        left -= fromBuffer
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while left > 0 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, left), 0) }
            guard n > 0 else { throw TestFailure("connection ended with \(left) of \(count) bytes unread") }
            left -= n
        }
    }

    /// Everything until the peer closes (or the timeout).
    func readToEnd() -> [UInt8] {
        while fill() {}
        return take(buffer.count)
    }

    /// Everything until the peer closes, and whether it closed with a reset (ECONNRESET) rather than a FIN.
    func readUntilClosed() -> (bytes: [UInt8], reset: Bool) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[0..<n]); continue }
            let reset = n < 0 && errno == ECONNRESET
            return (take(buffer.count), reset)
        }
    }

    /// Each read's size and when it arrived, until `total` bytes or the peer closes: how the bytes were paced.
    func readsTimed(total: Int) -> [(at: Date, count: Int)] {
        var reads: [(at: Date, count: Int)] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var received = buffer.count
        while received < total {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            buffer.append(contentsOf: chunk[0..<n])
            received += n
            reads.append((Date(), n))
        }
        return reads
    }

    /// True when the peer closes the connection within the timeout (and sends nothing more).
    func peerClosed() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        if n > 0 { buffer.append(byte) }
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Reads one response, framed by our own codec (the framing rules are tested on their own).
    func readResponse(forHead: Bool = false) throws -> TestResponse {
        let headText = try read(until: "\r\n\r\n")
        let head = try ByteBuffer(Array(headText.utf8)).withReadableBytes { (b) throws(HTTPError) -> ResponseHead in
            try HeadParser.parseResponse(b)
        }
        var decoder = BodyDecoder(framing: try head.bodyFraming(requestIsHead: forHead), errorStatus: 502)
        var body: [UInt8] = []
        while !decoder.isComplete {
            let current = ByteBuffer(buffer)
            let used = try current.withReadableBytes { (b) throws(HTTPError) -> Int in try decoder.decode(b) { body.append(contentsOf: $0) } }
            buffer.removeFirst(used)
            if decoder.isComplete { break }
            if !fill() {
                guard decoder.finishAtEOF() else { throw TestFailure("response body incomplete after \(body.count) bytes") }
            }
        }
        return TestResponse(status: head.status, headers: head.headers.pairs, body: body,
                            trailers: String(decoding: decoder.trailers, as: UTF8.self), rawHead: headText)
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    func close() { Glibc.close(fd) }

    private func firstRange(of d: [UInt8]) -> Range<Int>? {
        guard buffer.count >= d.count else { return nil }
        var i = 0
        while i + d.count <= buffer.count {
            if buffer[i] == d[0] && Array(buffer[i..<(i + d.count)]) == d { return i..<(i + d.count) }
            i += 1
        }
        return nil
    }
}
