import Glibc
import HTTPCodec
import TracetapCore

/// `tracetap demo`: a built-in backend behind the proxy, a few requests through it, then the proxy keeps
/// running for curl until Ctrl-C (or exits at once with --once).
enum Demo {
    static func run(_ args: inout Arguments, threads: Int) throws(UsageError) {
        var listen = HostPort(host: "127.0.0.1", port: 8080)
        var once = false
        var capture = true
        while let arg = args.next() {
            switch arg {
            case "--once": once = true
            case "--no-capture": capture = false
            case "--listen":
                let text = try args.value(for: arg, inline: nil)
                guard let hp = HostPort(text) else { throw UsageError(message: "--listen: '\(text)' is not HOST:PORT") }
                listen = hp
            default: throw UsageError(message: "unknown flag \(arg) (demo takes --listen HOST:PORT, --once and --no-capture)")
            }
        }
        let backend: DemoBackend
        let server: ProxyServer
        do throws(StartupError) {
            backend = try DemoBackend()
            backend.start()
            var config = ProxyConfig()
            config.listen = listen
            config.upstream = UpstreamURL("http://127.0.0.1:\(backend.port)")!
            config.threads = threads
            config.admin = HostPort(host: "127.0.0.1", port: 0)
            if !capture { config.captureDirectory = nil }
            server = try ProxyServer(config: config)
        } catch {
            throw UsageError(message: error.message)
        }
        server.start()
        let base = "http://\(listen.host):\(server.port)"
        print("tracetap demo: backend on 127.0.0.1:\(backend.port), proxy on \(base)"
            + (server.captureSessionPath.map { ", recording to \($0)" } ?? "") + "\n")
        for (method, target, body) in [("GET", "/hello", ""), ("POST", "/echo", "{\"order\":42}"), ("GET", "/missing", "")] {
            print("$ curl -si -X \(method) \(base)\(target)\(body.isEmpty ? "" : " -d '\(body)'")")
            print(fetch(port: server.port, method: method, target: target, body: body))
        }
        if once {
            server.stopAndWait()
            return
        }
        print("The proxy keeps running: try   curl -i \(base)/hello   or   curl -i '\(base)/slow?ms=300'")
        print("Status: curl -s http://127.0.0.1:\(server.adminPort ?? 0)/api/status    Stop: Ctrl-C\n")
        runUntilSignalled(server)
    }

    /// One request over a fresh connection; returns the response as curl -i would show it.
    static func fetch(port: Int, method: String, target: String, body: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "(could not connect)\n" }
        let request = Array(("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: tracetap-demo\r\n"
            + (body.isEmpty ? "" : "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n")
            + "Connection: close\r\n\r\n\(body)").utf8)
        request.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: response, as: UTF8.self).replacingCRLF() + "\n"
    }
}

extension String {
    func replacingCRLF() -> String { split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n") }
}
