import Foundation
import Glibc
import Testing
import TracetapCore

/// A fresh, empty capture store in the temporary folder.
func temporaryStore() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tracetap-store-\(UUID().uuidString)").path
    return path
}

/// Recording: every exchange in the store, byte-exact, and forwarding never depends on it.
@Suite struct CaptureTests {
    static let binaryResponse = (0..<256).map { UInt8($0) } + (0..<256).map { UInt8(255 - $0) }

    static func binaryUpstream() throws -> FakeUpstream {
        try FakeUpstream { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                let length = FakeUpstream.contentLength(head) ?? 0
                _ = try? socket.read(exactly: length)
                socket.send(Array("HTTP/1.1 201 Created\r\nX-B: 1\r\nset-cookie: s=abc; Path=/\r\nContent-Length: \(binaryResponse.count)\r\n\r\n".utf8)
                            + binaryResponse)
            }
        }
    }

    @Test func everyExchangeIsRecordedByteExactWithHeadersInOrder() throws {
        let store = temporaryStore()
        let upstream = try Self.binaryUpstream()
        defer { upstream.stop() }
        let proxy = try TestProxy(upstreamPort: upstream.port) { $0.captureDirectory = store }
        let client = try proxy.connect()
        let requestBody = (0..<300).map { UInt8(($0 * 7) % 256) }
        var traces: [String] = []
        for i in 0..<3 {
            client.send(Array("POST /things?i=\(i) HTTP/1.1\r\nHost: app\r\nx-Lower: a\r\nX-UPPER: b\r\nContent-Length: \(requestBody.count)\r\n\r\n".utf8) + requestBody)
            let response = try client.readResponse()
            #expect(response.body == Self.binaryResponse)
            traces.append(String(try #require(response.header("traceresponse")).split(separator: "-")[1]))
        }
        client.close()
        proxy.stop()

        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let (exchanges, skipped) = reader.exchanges(in: session)
        #expect(skipped == 0)
        #expect(exchanges.map(\.traceID) == traces)
        #expect(exchanges.map(\.sequence) == [1, 2, 3])
        let first = try #require(exchanges.first)
        #expect(first.method == "POST" && first.target == "/things?i=0")
        #expect(first.request?.headers.map(\.name) == ["Host", "x-Lower", "X-UPPER", "Content-Length"])
        #expect(first.request?.body == requestBody)
        #expect(first.response?.body == Self.binaryResponse)
        #expect(first.response?.headers.map(\.name) == ["X-B", "set-cookie", "Content-Length"])
        #expect(first.responseStatus == 201 && first.status == 201 && first.error == nil)
        #expect((first.timings["response_complete"] ?? -1) >= (first.timings["first_response_byte"] ?? -1))
        #expect(first.faults.isEmpty)

        // Private by default: the folder 0700, the files 0600.
        #expect(try mode(store + "/" + session) == 0o700)
        #expect(try mode(store + "/" + session + "/exchanges-0001.jsonl") == 0o600)
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test func bodiesBeyondTheCapAreCountedAndMarkedTruncated() throws {
        let store = temporaryStore()
        try withProxy(in: PythonBackend(), { $0.captureDirectory = store; $0.captureBodyCapBytes = 1000 }) { _, proxy, client in
            client.send("GET /download?size=5000 HTTP/1.1\r\nHost: a\r\n\r\n")
            let download = try client.readResponse()
            client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
            let upload = try client.readResponse()
            #expect(download.body.count == 5000 && upload.status == 200)
            proxy.stop()
        }
        let reader = CaptureReader(directory: store)
        let exchanges = reader.exchanges(in: try #require(reader.sessions().first)).exchanges
        #expect(exchanges.count == 2)
        let download = try #require(exchanges.first?.response)
        #expect(download.body.count == 1000 && download.bodySize == 5000 && download.bodyTruncated)
        let upload = try #require(exchanges.last?.request)
        #expect(upload.body == Array("0123456789".utf8) && !upload.bodyTruncated)
    }

    @Test func filesRotateBySizeAndReadBackAsOneSession() throws {
        let store = temporaryStore()
        try withProxy(in: PythonBackend(), { $0.captureDirectory = store; $0.captureRotateBytes = 4096 }) { _, proxy, client in
            for i in 0..<12 {
                client.send("POST /echo?i=\(i) HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n\(String(repeating: "x", count: 1000))")
                _ = try client.readResponse()
                usleep(5_000)  // let the writer take records in several batches
            }
            proxy.stop()
        }
        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let files = try FileManager.default.contentsOfDirectory(atPath: store + "/" + session).filter { $0.hasPrefix("exchanges-") }
        #expect(files.count > 1)
        let exchanges = reader.exchanges(in: session).exchanges
        #expect(exchanges.map(\.target) == (0..<12).map { "/echo?i=\($0)" })
        #expect(exchanges.allSatisfy { $0.request?.body == Array(repeating: UInt8(ascii: "x"), count: 1000) })
    }

    @Test func aSessionStaysWithinItsDiskBudgetDroppingItsOldestFiles() throws {
        let store = temporaryStore()
        let statusAfter = try withProxyStatus(store: store)
        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let folder = store + "/" + session
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        let bytes = try files.reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: folder + "/" + $1)[.size] as? Int) ?? 0) }
        // 40 exchanges of about 2 KiB each, a 32 KiB budget of 8 KiB files: the oldest pairs went.
        #expect(bytes <= 32 * 1024, "\(bytes) bytes in \(files)")
        #expect(!files.contains("exchanges-0001.jsonl"))
        let kept = reader.exchanges(in: session).exchanges
        #expect(!kept.isEmpty && kept.count < 40)
        #expect(kept.last?.target == "/echo?i=39", "the newest exchanges are the ones kept")
        #expect(statusAfter.contains("\"files_removed\":") && !statusAfter.contains("\"files_removed\":0"), "\(statusAfter)")
    }

    @Test func losslessCaptureWaitsForTheWriterInsteadOfDropping() throws {
        // A queue too small for two records: four clients at once keep it full, and every record must still
        // reach the disk because the loops wait for the writer.
        let store = temporaryStore()
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try TestProxy(upstreamPort: backend.port) {
            $0.captureDirectory = store
            $0.captureQueueBytes = 4096
            $0.captureLossless = true
        }
        let body = String(repeating: "y", count: 16 * 1024)
        let done = DispatchGroup()
        for worker in 0..<4 {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let client = try? proxy.connect() else { return }
                for i in 0..<25 {
                    client.send("POST /echo?w=\(worker)&i=\(i) HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                    _ = try? client.readResponse()
                }
                client.close()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 60) == .success)
        proxy.stop()
        let stats = proxy.server.stats.snapshot
        #expect(stats.exchanges == 100 && stats.captureFailed == 0 && stats.captureWritten == 100, "\(stats)")
        let session = try #require(CaptureReader(directory: store).sessions().first)
        #expect(CaptureReader(directory: store).exchanges(in: session).exchanges.count == 100)
    }

    /// 40 POSTs through a proxy with a small capture budget; returns /api/status taken before stopping.
    private func withProxyStatus(store: String) throws -> String {
        var status = ""
        try withProxy(in: PythonBackend(), { $0.captureDirectory = store; $0.captureRotateBytes = 8 * 1024; $0.captureMaxBytes = 32 * 1024 }) { _, proxy, client in
            for i in 0..<40 {
                client.send("POST /echo?i=\(i) HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n\(String(repeating: "x", count: 1000))")
                _ = try client.readResponse()
                usleep(2_000)
            }
            usleep(100_000)
            let admin = try BlockingSocket.connect(port: try #require(proxy.server.adminPort))
            admin.send("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status = try admin.readResponse().text
            admin.close()
            proxy.stop()
        }
        return status
    }

    @Test func failuresAreRecordedWithTheirOutcome() throws {
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: unusedPort()) { $0.captureDirectory = store }
        #expect(try proxy.get("/down").status == 502)
        let client = try proxy.connect()
        client.send("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        #expect(try client.readResponse().status == 400)
        client.close()
        proxy.stop()
        let reader = CaptureReader(directory: store)
        let exchanges = reader.exchanges(in: try #require(reader.sessions().first)).exchanges
        #expect(exchanges.map(\.status) == [502, 400])
        #expect(exchanges.map(\.error) == ["upstream-refused", "malformed-request"])
        #expect(exchanges.first?.response == nil)
        #expect(exchanges.first?.errorMessage?.contains("Connection refused") == true)
    }

    @Test func anUnwritableStoreNeverStopsForwardingAndWritingResumes() throws {
        // A regular file where the store's folder should be: mkdir fails (ENOTDIR) even for root.
        let base = temporaryStore()
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let blocker = base + "/store"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("not a folder".utf8)))
        try withProxy(in: PythonBackend(), { $0.captureDirectory = blocker + "/inner"; $0.threads = 1 }) { _, proxy, client in
            for _ in 0..<5 {
                client.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
            }
            #expect(waitUntil { proxy.server.stats.snapshot.captureFailed == 5 })
            #expect(proxy.server.stats.snapshot.captureWritten == 0)

            // The obstacle goes away: the next exchange is written.
            try FileManager.default.removeItem(atPath: blocker)
            try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: true)
            client.send("GET /echo?after HTTP/1.1\r\nHost: a\r\n\r\n")
            let after = try client.readResponse()
            #expect(after.status == 200)
            #expect(waitUntil { proxy.server.stats.snapshot.captureWritten == 1 })
        }
        let reader = CaptureReader(directory: blocker + "/inner")
        let exchanges = reader.exchanges(in: try #require(reader.sessions().first)).exchanges
        #expect(exchanges.map(\.target) == ["/echo?after"])
    }
}

/// Polls `condition` for up to `seconds`.
func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The store after `kill -9` of the proxy process under load.
@Suite struct CaptureCrashTests {
    @Test func aKill9UnderLoadLeavesAReadableStore() throws {
        let store = temporaryStore()
        let upstream = try FakeUpstream(handler: FakeUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        defer { upstream.stop() }
        let proxy = try ProxyProcess(upstreamPort: upstream.port, ["--capture", store, "--quiet"])
        defer { proxy.stop() }
        let completed = ByteSink()  // one byte per response the clients received whole
        let clients = DispatchGroup()
        for _ in 0..<4 {
            let client = try proxy.connect(timeout: 2)
            DispatchQueue.global().async(group: clients) {
                defer { client.close() }
                for i in 0..<20_000 {
                    client.send("GET /load/\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
                    guard (try? client.readResponse()) != nil else { return }
                    completed.append(Data([1]))
                }
            }
        }
        // Under load, whatever the machine's other work: a few hundred answers first, then the kill mid-stream.
        #expect(waitUntil(seconds: 10) { completed.bytes.count >= 400 })
        usleep(200_000)
        proxy.child.signal(SIGKILL)
        #expect(clients.wait(timeout: .now() + 10) == .success)
        #expect(proxy.child.waitForExit(seconds: 5) == 128 + SIGKILL)

        let done = completed.bytes.count
        let reader = CaptureReader(directory: store)
        let session = try #require(reader.sessions().first)
        let (exchanges, skipped) = reader.exchanges(in: session)
        #expect(done > 100, "too little load to mean anything: \(done)")
        // A write cut short by the kill can tear the last line, nothing else.
        #expect(skipped <= 1)
        // Written in order, none missing in between.
        #expect(exchanges.map(\.sequence) == Array(1...max(1, exchanges.count)))
        #expect(exchanges.allSatisfy { $0.status == 200 && $0.target.hasPrefix("/load/") })
        // Missing at most: the 4 exchanges in flight and what the writer had queued in the instant before the kill.
        #expect(exchanges.count <= done + 4)
        #expect(exchanges.count >= done * 95 / 100, "\(exchanges.count) records for \(done) responses")
    }
}
