import Foundation
import Synchronization
import TracetapCore

/// Exchanges a proxy reported through its `onExchange` hook.
final class RecordSink: Sendable {
    private let records = Mutex<[ExchangeRecord]>([])
    func add(_ record: ExchangeRecord) { records.withLock { $0.append(record) } }
    var all: [ExchangeRecord] { records.withLock { $0 } }

    /// Waits (bounded) until `count` records have arrived.
    func wait(for count: Int, seconds: Double = 5) -> [ExchangeRecord] {
        let end = Date().addingTimeInterval(seconds)
        while all.count < count && Date() < end { usleep(5_000) }
        return all
    }
}

/// A proxy running in the test process on free loopback ports.
final class TestProxy: Sendable {
    let server: ProxyServer
    let sink = RecordSink()

    init(upstreamPort: Int, _ configure: (inout ProxyConfig) -> Void = { _ in }) throws {
        var config = ProxyConfig()
        config.listen = HostPort(host: "127.0.0.1", port: 0)
        config.admin = HostPort(host: "127.0.0.1", port: 0)
        config.upstream = UpstreamURL("http://127.0.0.1:\(upstreamPort)")!
        config.accessLog = false
        config.captureDirectory = nil
        config.threads = 2
        let sink = self.sink
        config.onExchange = { sink.add($0) }
        configure(&config)
        server = try ProxyServer(config: config)
        server.start()
    }

    var port: Int { server.port }
    func connect(timeout: Double = 10) throws -> BlockingSocket { try BlockingSocket.connect(port: port, timeout: timeout) }
    func stop() { server.stopAndWait() }

    /// One request on a fresh connection.
    func get(_ target: String, headers: [String] = [], forHead: Bool = false, method: String = "GET") throws -> TestResponse {
        let client = try connect()
        defer { client.close() }
        client.send("\(method) \(target) HTTP/1.1\r\nHost: test.local\r\n\(headers.map { $0 + "\r\n" }.joined())\r\n")
        return try client.readResponse(forHead: forHead)
    }
}

/// Paths into the repository, for the fixtures and the built binary.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/tracetap").path
    static let backendScript = root.appendingPathComponent("Tests/Fixtures/backend.py").path
    static let tracedAppScript = root.appendingPathComponent("Tests/Fixtures/traced_app.py").path
}

/// A Python test backend (Tests/Fixtures/backend.py unless another script is named), one process per test
/// that needs it; the script prints `PORT <n>` when it listens.
final class PythonBackend: Sendable {
    let child: ChildProcess
    let port: Int

    /// `tls`: a certificate and key (PEM) to serve HTTPS with.
    init(script: String = Repo.backendScript, arguments: [String] = [], tls: TestCertificate? = nil) throws {
        child = try ChildProcess(["python3", script] + arguments + (tls.map { ["--tls", $0.certFile, $0.keyFile] } ?? []))
        guard child.waitForOutput("PORT ", seconds: 15),
              let line = child.stdout.split(separator: "\n").first,
              let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else {
            child.stop()
            throw TestFailure("backend did not start: \(child.stdout) \(child.stderr)")
        }
        self.port = port
    }

    func stop() { child.stop() }
}

/// A self-signed certificate for localhost and 127.0.0.1, made with openssl in a fresh temporary folder.
struct TestCertificate: Sendable {
    let certFile: String
    let keyFile: String

    init() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tracetap-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        certFile = folder + "/cert.pem"
        keyFile = folder + "/key.pem"
        let (status, _, errors) = try ChildProcess.run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", keyFile, "-out", certFile,
        ])
        guard status == 0 else { throw TestFailure("openssl failed: \(errors)") }
    }
}

/// The built `tracetap` binary as a child process.
enum Binary {
    static func run(_ arguments: [String], seconds: Double = 20) throws -> (Int32?, String, String) {
        try ChildProcess.run([Repo.binary] + arguments, seconds: seconds)
    }
}

/// `tracetap proxy` run as its own process on free ports; the ports are read from its start-up line.
final class ProxyProcess: Sendable {
    let child: ChildProcess
    let port: Int
    let adminPort: Int?

    init(upstreamPort: Int, _ extra: [String] = []) throws {
        child = try ChildProcess([Repo.binary, "proxy", "--upstream", "http://127.0.0.1:\(upstreamPort)",
                                  "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
                                 + (extra.contains { $0.hasPrefix("--capture") } ? [] : ["--no-capture"])
                                 + (extra.contains { $0.hasPrefix("--rules") } ? [] : ["--no-rules"]) + extra)
        guard child.waitForOutput(" -> ", seconds: 15) else {
            child.stop()
            throw TestFailure("proxy did not start: \(child.stderr)")
        }
        // The start-up line; the capture writer may say something first, from its own thread.
        let line = String(child.stderr.split(separator: "\n").first { $0.contains("proxy on http://") } ?? "")
        guard let port = Self.port(after: "proxy on http://127.0.0.1:", in: line) else { throw TestFailure("no port in: \(line)") }
        self.port = port
        adminPort = Self.port(after: "admin on http://127.0.0.1:", in: line)
    }

    /// The port in `tracetap: proxy on http://127.0.0.1:P -> ..., admin on http://127.0.0.1:A/api/status`.
    static func port(after marker: String, in line: String) -> Int? {
        guard let range = line.range(of: marker) else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    func connect(timeout: Double = 10) throws -> BlockingSocket { try BlockingSocket.connect(port: port, timeout: timeout) }

    /// Peak resident memory of the proxy process, in bytes (VmHWM).
    var peakRSS: Int {
        let status = (try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    func stop() { child.stop() }
}

/// A free loopback port (bound and released; used only where a test needs a port nobody listens on).
func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            _ = bind(fd, $0, length)
            _ = getsockname(fd, $0, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

final class ByteSink: Sendable {
    private let storage = Mutex<[UInt8]>([])
    func append(_ data: Data) { storage.withLock { $0.append(contentsOf: data) } }
    var bytes: [UInt8] { storage.withLock { $0 } }
}

/// Something a test proxy can forward to.
protocol TestUpstream: Sendable {
    var port: Int { get }
    func stop()
}

extension PythonBackend: TestUpstream {}
extension FakeUpstream: TestUpstream {}

/// The set-up most tests share: an upstream, a proxy in front of it and one client connection, all stopped
/// when `body` returns.
func withProxy<Upstream: TestUpstream>(in upstream: @autoclosure () throws -> Upstream, _ configure: (inout ProxyConfig) -> Void = { _ in },
                                       _ body: (Upstream, TestProxy, BlockingSocket) throws -> Void) throws {
    let upstream = try upstream()
    defer { upstream.stop() }
    let proxy = try TestProxy(upstreamPort: upstream.port, configure)
    defer { proxy.stop() }
    let client = try proxy.connect()
    defer { client.close() }
    try body(upstream, proxy, client)
}
