import Glibc
import CTracetapSys

/// `host:port` as written on the command line: `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) { self.host = host; self.port = port }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `localhost`, `::1` or a numeric 127.x.y.z: a name merely starting with "127." (`127.0.0.1.example.com`)
    /// can resolve anywhere.
    public var isLoopback: Bool {
        let name = host.lowercased()
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return name == "localhost" || name == "::1"
            || (parts.count == 4 && parts[0] == "127" && parts.allSatisfy { $0.count <= 3 && UInt8($0) != nil })
    }

    /// A Host header's value (`127.0.0.1:9901`, `localhost`, `[::1]`), the port optional.
    static func hostHeader(_ value: String) -> HostPort {
        if let hostPort = HostPort(value) { return hostPort }
        let host = value.hasPrefix("[") && value.hasSuffix("]") ? String(value.dropFirst().dropLast()) : value
        return HostPort(host: host, port: 80)
    }

    /// Where to connect to reach a listener bound here: a wildcard address means this machine's loopback.
    var connectable: HostPort {
        switch host {
        case "0.0.0.0", "": HostPort(host: "127.0.0.1", port: port)
        case "::": HostPort(host: "::1", port: port)
        default: self
        }
    }
}

/// A resolved socket address, ready for bind or connect.
public struct SocketAddress: @unchecked Sendable, CustomStringConvertible {
    // sockaddr_storage is plain bytes; @unchecked because the C import does not declare it Sendable.
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    public static func resolve(_ hp: HostPort) throws(SocketError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(hp.host, String(hp.port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SocketError("cannot resolve \(hp.host): \(String(cString: gai_strerror(rc)))", code: rc, kind: .dns)
        }
        defer { freeaddrinfo(result) }
        var address = SocketAddress()
        withUnsafeMutableBytes(of: &address.storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        address.length = first.pointee.ai_addrlen
        return address
    }

    var family: Int32 { Int32(storage.ss_family) }

    /// The numeric host and port, as logs and X-Forwarded-For show them.
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = storage
        let rc = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        guard rc == 0 else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var port: Int {
        var copy = storage
        return withUnsafePointer(to: &copy) { p -> Int in
            p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    public var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = storage
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

public struct SocketError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable { case refused, timeout, dns, reset, tls, other }
    public let message: String
    public let code: Int32
    public let kind: Kind

    public init(_ message: String, code: Int32 = 0, kind: Kind = .other) {
        self.message = message
        self.code = code
        self.kind = kind
    }

    static func errno(_ what: String, _ code: Int32 = Glibc.errno) -> SocketError {
        let kind: Kind = switch code {
        case ECONNREFUSED: .refused
        case ETIMEDOUT: .timeout
        case ECONNRESET, EPIPE: .reset
        default: .other
        }
        return SocketError("\(what): \(String(cString: strerror(code)))", code: code, kind: kind)
    }

    public var description: String { message }
}
