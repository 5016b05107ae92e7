import CCurl
import Foundation
import Glibc

/// `https://` upstreams. libcurl opens the connection and does the TLS handshake (`CONNECT_ONLY`), then
/// carries raw bytes with `curl_easy_send`/`curl_easy_recv`; our own codec still speaks HTTP/1.1 over it,
/// so header order and case stay byte-exact and the forwarding loop does not change. Each TLS connection
/// gets a relay thread between libcurl and one end of a socketpair; the event loop holds the other end and
/// treats it like any upstream socket.
///
/// Before any response byte the relay writes one status line on the socketpair:
/// `+<connect µs> <tls µs>\n` when connected, or `-<kind> <message>\n` and a close when not.
enum TLSBridge {
    struct Settings: Sendable {
        var url: String
        var caFile: String?
        var insecure: Bool
        var connectTimeoutMillis: Int
    }

    /// The handshake result, as the event loop reads it off the socketpair.
    enum Status {
        case connected(connectMicros: Int64, tlsMicros: Int64)
        case failed(SocketError)
        case incomplete
    }

    static func globalInit() { curl_global_init(Int(CURL_GLOBAL_ALL)) }

    /// Starts connecting; returns the event loop's end of the socketpair at once.
    static func open(_ settings: Settings) throws(SocketError) -> Int32 {
        let (loopEnd, relayEnd) = try Sockets.socketPair()
        let thread = Thread { Relay(fd: relayEnd, settings: settings).run() }
        thread.name = "tracetap-tls"
        thread.stackSize = 256 * 1024
        thread.start()
        return loopEnd
    }

    /// For a blocking caller (`tracetap replay`): opens the relay, waits for the handshake, and returns a
    /// blocking socket that speaks plaintext to the server, with send and receive timeouts.
    static func openBlocking(_ settings: Settings, timeoutSeconds: Int) throws(SocketError) -> Int32 {
        let fd = try open(settings)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The status line is short and comes first; read it a byte at a time so nothing after it is taken.
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.last != UInt8(ascii: "\n") {
            guard read(fd, &byte, 1) == 1, line.count < 4096 else {
                close(fd)
                throw SocketError("the TLS relay did not report a connection within \(timeoutSeconds)s", kind: .timeout)
            }
            line.append(byte)
        }
        if case .failed(let error) = line.withUnsafeBytes({ parseStatus($0).0 }) {
            close(fd)
            throw error
        }
        return fd
    }

    /// Parses the status line at the start of `bytes`; returns it and how many bytes it used.
    static func parseStatus(_ bytes: UnsafeRawBufferPointer) -> (Status, Int) {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return (bytes.count > 4096 ? .failed(SocketError("TLS relay sent a garbled status")) : .incomplete, 0)
        }
        let line = String(decoding: bytes[1..<newline], as: UTF8.self)
        if bytes.first == UInt8(ascii: "+") {
            let parts = line.split(separator: " ").compactMap { Int64($0) }
            return (.connected(connectMicros: parts.first ?? -1, tlsMicros: parts.count > 1 ? parts[1] : -1), newline + 1)
        }
        let kindText = line.prefix { $0 != " " }
        let kind = SocketError.Kind(rawValue: String(kindText)) ?? .other
        return (.failed(SocketError(String(line.dropFirst(kindText.count + 1)), kind: kind)), newline + 1)
    }
}

/// One TLS connection's relay thread. Owns its curl handle and its end of the socketpair.
private final class Relay {
    private let fd: Int32
    private let settings: TLSBridge.Settings
    private var toUpstream = [UInt8](repeating: 0, count: 64 * 1024)
    private var toUpstreamRange = 0..<0
    private var fromUpstream = [UInt8](repeating: 0, count: 64 * 1024)
    private var fromUpstreamRange = 0..<0

    init(fd: Int32, settings: TLSBridge.Settings) {
        self.fd = fd
        self.settings = settings
    }

    func run() {
        defer { close(fd) }
        guard let curl = curl_easy_init() else {
            report("-other libcurl could not start\n")
            return
        }
        defer { curl_easy_cleanup(curl) }
        var errorText = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let code = errorText.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            configure(curl, errorBuffer: buffer.baseAddress!)
            return curl_easy_perform(curl)
        }
        guard code == CURLE_OK else {
            let written = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let detail = written.isEmpty ? String(cString: curl_easy_strerror(code)) : written
            report("-\(Self.kind(of: code).rawValue) \(Self.describe(code)): \(detail)\n")
            return
        }
        var connectTime: curl_off_t = -1, handshakeDone: curl_off_t = -1
        _ = tt_curl_getinfo_off(curl, CURLINFO_CONNECT_TIME_T, &connectTime)
        _ = tt_curl_getinfo_off(curl, CURLINFO_APPCONNECT_TIME_T, &handshakeDone)
        var upstreamSocket: curl_socket_t = -1
        _ = tt_curl_getinfo_socket(curl, CURLINFO_ACTIVESOCKET, &upstreamSocket)
        guard upstreamSocket >= 0, report("+\(connectTime) \(handshakeDone - connectTime)\n") else { return }
        relay(curl, upstreamSocket)
    }

    private func configure(_ curl: UnsafeMutableRawPointer, errorBuffer: UnsafeMutablePointer<CChar>) {
        _ = tt_curl_setopt_ptr(curl, CURLOPT_URL, settings.url)
        _ = tt_curl_setopt_long(curl, CURLOPT_CONNECT_ONLY, 1)
        // Offer only http/1.1 in ALPN: the codec above speaks HTTP/1.1.
        _ = tt_curl_setopt_long(curl, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        _ = tt_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeoutMillis)
        _ = tt_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = tt_curl_setopt_long(curl, CURLOPT_TCP_NODELAY, 1)
        _ = tt_curl_setopt_ptr(curl, CURLOPT_ERRORBUFFER, errorBuffer)
        if let caFile = settings.caFile { _ = tt_curl_setopt_ptr(curl, CURLOPT_CAINFO, caFile) }
        if settings.insecure {
            _ = tt_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0)
            _ = tt_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0)
        }
    }

    /// Writes the status line whole (it is tiny; the socketpair is empty at this point).
    @discardableResult
    private func report(_ line: String) -> Bool {
        let bytes = Array(line.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Moves bytes both ways until either side closes. Tries every direction until none progresses, then
    /// polls: TLS may hold decrypted bytes that the socket no longer signals, so reading comes first.
    private func relay(_ curl: UnsafeMutableRawPointer, _ upstreamSocket: curl_socket_t) {
        while true {
            var progressed = false
            if toUpstreamRange.isEmpty {
                let n = toUpstream.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return }
                if n > 0 { toUpstreamRange = 0..<n; progressed = true }
            }
            if !toUpstreamRange.isEmpty {
                var sent = 0
                let code = toUpstream.withUnsafeBytes {
                    curl_easy_send(curl, $0.baseAddress! + toUpstreamRange.lowerBound, toUpstreamRange.count, &sent)
                }
                if code != CURLE_OK && code != CURLE_AGAIN { return }
                if sent > 0 { toUpstreamRange = (toUpstreamRange.lowerBound + sent)..<toUpstreamRange.upperBound; progressed = true }
            }
            if fromUpstreamRange.isEmpty {
                var received = 0
                let code = fromUpstream.withUnsafeMutableBytes { curl_easy_recv(curl, $0.baseAddress, $0.count, &received) }
                if code == CURLE_OK && received == 0 { return }
                if code != CURLE_OK && code != CURLE_AGAIN { return }
                if received > 0 {
                    fromUpstreamRange = 0..<received
                    progressed = true
                    Sockets.setQuickAck(upstreamSocket)
                }
            }
            if !fromUpstreamRange.isEmpty {
                let n = fromUpstream.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + fromUpstreamRange.lowerBound, fromUpstreamRange.count, Int32(MSG_NOSIGNAL))
                }
                if n < 0 && errno != EAGAIN && errno != EINTR { return }
                if n > 0 { fromUpstreamRange = (fromUpstreamRange.lowerBound + n)..<fromUpstreamRange.upperBound; progressed = true }
            }
            if !progressed { waitForEither(upstreamSocket) }
        }
    }

    private func waitForEither(_ upstreamSocket: curl_socket_t) {
        let pairEvents = (toUpstreamRange.isEmpty ? POLLIN : 0) | (fromUpstreamRange.isEmpty ? 0 : POLLOUT)
        let upstreamEvents = (fromUpstreamRange.isEmpty ? POLLIN : 0) | (toUpstreamRange.isEmpty ? 0 : POLLOUT)
        var fds = [pollfd(fd: fd, events: Int16(pairEvents), revents: 0),
                   pollfd(fd: upstreamSocket, events: Int16(upstreamEvents), revents: 0)]
        // The timeout only bounds one wait; the relay ends when either side closes.
        _ = poll(&fds, 2, 30_000)
    }

    static func kind(of code: CURLcode) -> SocketError.Kind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST: .dns
        case CURLE_COULDNT_CONNECT: .refused
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_ENGINE_NOTFOUND:
            .tls
        default: .other
        }
    }

    static func describe(_ code: CURLcode) -> String {
        switch kind(of: code) {
        case .dns: "DNS lookup failed"
        case .refused: "connecting to the upstream failed"
        case .timeout: "connecting to the upstream timed out"
        case .tls: "TLS handshake with the upstream failed"
        default: "opening the TLS connection failed"
        }
    }
}
