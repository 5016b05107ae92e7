import Foundation
import Testing

/// Bodies stream: a 1 GiB upload and download pass through the proxy process while its peak memory
/// stays far below the body size.
@Suite struct StreamingTests {
    static let size = 1 << 30

    @Test func aGibibyteEachWayWithBoundedMemory() throws {
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try ProxyProcess(upstreamPort: backend.port, ["--quiet"])
        defer { proxy.stop() }
        let client = try proxy.connect(timeout: 30)
        defer { client.close() }

        client.send("GET /download?size=\(Self.size) HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try client.read(until: "\r\n\r\n")
        #expect(head.contains("Content-Length: \(Self.size)"))
        try client.discard(Self.size)

        // Upload: 1 GiB of a repeating pattern, checked by the backend's sha256.
        client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: \(Self.size)\r\n\r\n")
        let piece = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for _ in 0..<(Self.size / piece.count) { client.send(piece) }
        let reply = try client.readResponse().json()
        #expect(reply["body_len"] as? Int == Self.size)
        #expect(reply["sha256"] as? String == Self.expectedDigest(piece: piece))

        #expect(proxy.peakRSS > 0)
        #expect(proxy.peakRSS < 64 << 20, "peak RSS \(proxy.peakRSS >> 20) MiB")
    }

    /// sha256 of the piece repeated to 1 GiB, from Python (the test has no hashing library of its own).
    static func expectedDigest(piece: [UInt8]) -> String? {
        let script = "import hashlib,sys; p=bytes((i*31)&255 for i in range(1<<20)); h=hashlib.sha256()\n"
            + "for _ in range(\(size / piece.count)): h.update(p)\nprint(h.hexdigest())"
        guard let (status, out, _) = try? ChildProcess.run(["python3", "-c", script]), status == 0 else { return nil }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
