import Foundation
import Testing
import TracetapCore

/// `https://` upstreams through libcurl, against Python's http.server wrapped in TLS.
@Suite struct UpstreamTLSTests {
    @Test func forwardsOverTLSAndReusesTheConnection() throws {
        let certificate = try TestCertificate()
        let backend = try PythonBackend(tls: certificate)
        defer { backend.stop() }
        let proxy = try TestProxy(upstreamPort: backend.port) {
            $0.upstream = UpstreamURL("https://localhost:\(backend.port)")!
            $0.upstreamCAFile = certificate.certFile
            $0.threads = 1
        }
        defer { proxy.stop() }

        let client = try proxy.connect()
        defer { client.close() }
        let body = String(repeating: "0123456789abcdef", count: 65536)  // 1 MiB: the relay streams it both ways
        client.send("POST /echo HTTP/1.1\r\nHost: app\r\nX-Case: Kept\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let first = try client.readResponse()
        #expect(first.status == 200)
        let echoed = try first.json()
        #expect(echoed["body_len"] as? Int == body.utf8.count)
        #expect(echoed["body"] as? String == body)
        let headers = try #require(echoed["headers"] as? [[String]])
        #expect(headers.contains(["X-Case", "Kept"]))
        #expect(headers.contains(["Host", "localhost:\(backend.port)"]))
        #expect(first.header("traceresponse") != nil)

        client.send("GET /echo HTTP/1.1\r\nHost: app\r\n\r\n")
        let second = try client.readResponse()
        #expect(second.status == 200)
        // One TLS connection served both: the backend saw the same client port.
        #expect(try second.json()["client_port"] as? Int == echoed["client_port"] as? Int)

        let records = proxy.sink.wait(for: 2)
        #expect(records.count == 2)
        #expect(records.first?.upstreamReused == false && records.last?.upstreamReused == true)
        #expect((records.first?.timings.tls ?? -1) > 0)
        #expect(records.last?.timings.tls == -1)
    }

    @Test func anUntrustedCertificateIsA502NamingTLSAndTheTrace() throws {
        let backend = try PythonBackend(tls: try TestCertificate())
        defer { backend.stop() }
        let proxy = try TestProxy(upstreamPort: backend.port) { $0.upstream = UpstreamURL("https://localhost:\(backend.port)")! }
        defer { proxy.stop() }
        let response = try proxy.get("/echo")
        #expect(response.status == 502)
        let trace = try #require(response.header("traceresponse")?.split(separator: "-")[1])
        #expect(response.text.contains("TLS handshake with the upstream failed"))
        #expect(response.text.contains("certificate"))
        #expect(response.text.contains("trace \(trace)"))
        #expect(proxy.sink.wait(for: 1).first?.failure == .tls)
    }

    @Test func insecureModeAcceptsASelfSignedBackend() throws {
        let backend = try PythonBackend(tls: try TestCertificate())
        defer { backend.stop() }
        let proxy = try TestProxy(upstreamPort: backend.port) {
            $0.upstream = UpstreamURL("https://127.0.0.1:\(backend.port)")!
            $0.upstreamInsecure = true
        }
        defer { proxy.stop() }
        #expect(try proxy.get("/echo").status == 200)
    }

    @Test func aRefusedTLSConnectionIsA502() throws {
        let port = unusedPort()
        let proxy = try TestProxy(upstreamPort: port) { $0.upstream = UpstreamURL("https://127.0.0.1:\(port)")! }
        defer { proxy.stop() }
        let response = try proxy.get("/")
        #expect(response.status == 502)
        #expect(response.text.contains("connecting to the upstream failed"))
        #expect(proxy.sink.wait(for: 1).first?.failure == .upstreamRefused)
    }
}
