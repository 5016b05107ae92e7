import Glibc
import HTTPCodec

/// A blocking HTTP/1.1 client connection for replay: one request at a time, kept alive while the server
/// allows, responses read with our own codec. Replay is a command-line tool, so threads may block.
final class HTTPClient {
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        var micros: Int64
    }

    /// Opens a blocking connection: plain TCP, or a TLS relay for https.
    private let open: () throws(SocketError) -> Int32
    private let timeoutSeconds: Int
    private var fd: Int32 = -1
    private var input = ByteBuffer()

    init(timeoutSeconds: Int, open: @escaping () throws(SocketError) -> Int32) {
        self.timeoutSeconds = timeoutSeconds
        self.open = open
    }

    deinit { disconnect() }

    private func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        input = ByteBuffer()
    }

    private func connectIfNeeded() throws(SocketError) {
        guard fd < 0 else { return }
        fd = try open()
    }

    /// Sends `request` (a whole message) and reads the response. A kept-alive connection the server closed
    /// meanwhile is reopened once, before any response byte.
    func exchange(_ request: [UInt8], isHead: Bool) throws(SocketError) -> Response {
        let reused = fd >= 0
        do {
            return try attempt(request, isHead: isHead)
        } catch {
            disconnect()
            guard reused, error.kind == .reset else { throw error }
            return try attempt(request, isHead: isHead)
        }
    }

    private func attempt(_ request: [UInt8], isHead: Bool) throws(SocketError) -> Response {
        let started = Sockets.monotonicNanos()
        try send(request[...])
        return try readResponse(isHead: isHead, startedAt: started)
    }

    /// Writes bytes of a request (connecting first if needed): the race probe sends all but the last byte,
    /// then the last bytes of every connection together.
    func send(_ bytes: ArraySlice<UInt8>) throws(SocketError) {
        try connectIfNeeded()
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SocketError("sending the request failed", kind: .reset) }
            sent += n
        }
    }

    /// Reads one response; `startedAt` (monotonic ns) is when the request went out, for its duration.
    func readResponse(isHead: Bool, startedAt started: UInt64) throws(SocketError) -> Response {
        var scanner = HeadScanner()
        var head: ResponseHead?
        while head == nil {
            do throws(HTTPError) {
                let found = try input.withReadableBytes { (bytes) throws(HTTPError) -> (ResponseHead, Int)? in
                    guard let length = try scanner.scan(bytes, limits: HeadLimits(), tooLongStartLine: 502, tooLargeHead: 502) else { return nil }
                    return (try HeadParser.parseResponse(UnsafeRawBufferPointer(rebasing: bytes[0..<length])), length)
                }
                if let (parsed, length) = found {
                    input.consume(length)
                    scanner.reset()
                    // Interim responses (100 Continue, 103) are skipped.
                    if !(100..<200).contains(parsed.status) { head = parsed }
                    continue
                }
            } catch {
                throw SocketError("malformed response: \(error.reason)", kind: .other)
            }
            guard try fill() else { throw SocketError("the server closed the connection before responding", kind: .reset) }
        }
        let response = head!
        var decoder: BodyDecoder
        do throws(HTTPError) { decoder = BodyDecoder(framing: try response.bodyFraming(requestIsHead: isHead), errorStatus: 502) } catch {
            throw SocketError("malformed response: \(error.reason)", kind: .other)
        }
        var body: [UInt8] = []
        while !decoder.isComplete {
            do throws(HTTPError) {
                let used = try input.withReadableBytes { (bytes) throws(HTTPError) -> Int in try decoder.decode(bytes) { body.append(contentsOf: $0) } }
                input.consume(used)
            } catch {
                throw SocketError("malformed response body: \(error.reason)", kind: .other)
            }
            if decoder.isComplete { break }
            if try !fill() {
                guard decoder.finishAtEOF() else { throw SocketError("the server closed the connection mid-body", kind: .other) }
            }
        }
        let micros = Int64((Sockets.monotonicNanos() - started) / 1000)
        if !response.wantsKeepAlive { disconnect() }
        return Response(status: response.status, headers: response.headers.pairs, body: body, micros: micros)
    }

    /// Reads more input; false at end of stream.
    private func fill() throws(SocketError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                chunk.withUnsafeBytes { input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                return true
            }
            if n == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN { throw SocketError("no response within \(timeoutSeconds)s", kind: .timeout) }
            throw SocketError.errno("reading the response failed")
        }
    }
}

extension HTTPClient {
    /// A client for `endpoint`: plain TCP, or for https libcurl's connection and handshake (as for the
    /// proxy's https upstreams), trusting `caFile` or, when `insecure`, any certificate.
    static func connecting(to endpoint: UpstreamURL, timeoutSeconds timeout: Int, caFile: String? = nil, insecure: Bool = false) throws(SocketError) -> HTTPClient {
        if endpoint.isTLS {
            TLSBridge.globalInit()
            let settings = TLSBridge.Settings(url: endpoint.description + "/", caFile: caFile, insecure: insecure, connectTimeoutMillis: timeout * 1000)
            return HTTPClient(timeoutSeconds: timeout) { () throws(SocketError) -> Int32 in try TLSBridge.openBlocking(settings, timeoutSeconds: timeout) }
        }
        let address = try SocketAddress.resolve(endpoint.hostPort)
        return HTTPClient(timeoutSeconds: timeout) { () throws(SocketError) -> Int32 in try Sockets.connectBlocking(to: address, timeoutSeconds: timeout) }
    }
}

extension HTTPClient.Response {
    /// As a captured message, to compare with `ResponseDiff`.
    var message: CapturedExchange.Message {
        CapturedExchange.Message(version: "HTTP/1.1", headers: headers, body: body, bodySize: body.count, bodyTruncated: false)
    }
}
