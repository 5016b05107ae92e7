import Foundation
import Glibc

/// Headless Chromium (Debian's package), driven over the DevTools protocol: a WebSocket to the page,
/// JSON commands with ids, answers matched by id (events in between are skipped).
final class Browser: @unchecked Sendable {
    private let child: ChildProcess
    private let profile: String
    private let socket: BlockingSocket
    private var nextID = 0

    init(width: Int = 1400, height: Int = 860) throws {
        profile = NSTemporaryDirectory() + "tracetap-chromium-\(UUID().uuidString)"
        // Its own temporary files (a singleton socket folder it never removes when stopped) go inside the profile.
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        child = try ChildProcess(["/usr/bin/env", "TMPDIR=\(profile)", "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                  "--no-first-run", "--disable-extensions", "--remote-debugging-port=0", "--user-data-dir=\(profile)",
                                  "--window-size=\(width),\(height)", "about:blank"])
        // Chromium writes its DevTools port into the profile once it listens.
        var port: Int?
        for _ in 0..<300 where port == nil {
            if let text = try? String(contentsOfFile: profile + "/DevToolsActivePort", encoding: .utf8), let first = text.split(separator: "\n").first {
                port = Int(first)
            } else {
                usleep(50_000)
            }
        }
        guard let port else {
            child.stop()
            throw TestFailure("chromium did not start: \(child.stderr.suffix(500))")
        }
        let listing = try BlockingSocket.connect(port: port)
        listing.send("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n")
        let targets = try JSONSerialization.jsonObject(with: Data(listing.readResponse().body)) as? [[String: Any]] ?? []
        listing.close()
        guard let page = targets.first(where: { $0["type"] as? String == "page" }), let url = page["webSocketDebuggerUrl"] as? String,
              let path = url.range(of: "/devtools/").map({ String(url[$0.lowerBound...]) }) else {
            child.stop()
            throw TestFailure("no page target in chromium's /json/list")
        }
        socket = try BlockingSocket.connect(port: port, timeout: 30)
        socket.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let head = try socket.read(until: "\r\n\r\n")
        guard head.hasPrefix("HTTP/1.1 101") else { throw TestFailure("WebSocket upgrade refused: \(head)") }
        _ = try command("Emulation.setDeviceMetricsOverride", ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false])
    }

    func close() {
        socket.close()
        child.stop()
        try? FileManager.default.removeItem(atPath: profile)
    }

    // MARK: DevTools protocol

    @discardableResult
    func command(_ method: String, _ params: [String: Any] = [:]) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        let message = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
        sendFrame([UInt8](message))
        for _ in 0..<10_000 {
            guard let object = try JSONSerialization.jsonObject(with: Data(readMessage())) as? [String: Any] else { continue }
            guard object["id"] as? Int == id else { continue }
            if let error = object["error"] as? [String: Any] { throw TestFailure("\(method): \(error)") }
            return object["result"] as? [String: Any] ?? [:]
        }
        throw TestFailure("no answer to \(method)")
    }

    func navigate(_ url: String) throws {
        try command("Page.navigate", ["url": url])
        try waitFor("document.readyState === 'complete'")
    }

    /// The expression's value (awaited when it is a promise); a thrown exception fails the test.
    func evaluate(_ expression: String) throws -> Any? {
        let result = try command("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw TestFailure("\(expression): \((exception["exception"] as? [String: Any])?["description"] ?? exception)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    func string(_ expression: String) throws -> String { try evaluate(expression) as? String ?? "" }

    /// Polls (bounded) until `expression` is truthy; fails with the last value seen.
    func waitFor(_ expression: String, seconds: Double = 10) throws {
        let end = Date().addingTimeInterval(seconds)
        var last: Any?
        repeat {
            last = try evaluate("!!(\(expression))")
            if last as? Bool == true { return }
            usleep(50_000)
        } while Date() < end
        throw TestFailure("still false after \(seconds) s: \(expression)")
    }

    func click(_ selector: String) throws {
        try waitFor("document.querySelector(\(Self.quote(selector)))")
        _ = try evaluate("document.querySelector(\(Self.quote(selector))).click()")
    }

    func screenshot(to path: String) throws {
        let result = try command("Page.captureScreenshot", ["format": "png"])
        guard let data = (result["data"] as? String).flatMap({ Data(base64Encoded: $0) }) else { throw TestFailure("no screenshot data") }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// With TRACETAP_SCREENSHOTS=DIR set, the page as it is now goes to DIR/NAME.png (the README's pictures).
    func screenshotIfAsked(_ name: String) throws {
        guard let folder = ProcessInfo.processInfo.environment["TRACETAP_SCREENSHOTS"] else { return }
        try screenshot(to: folder + "/" + name + ".png")
    }

    static func quote(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
    }

    // MARK: WebSocket frames (RFC 6455 §5): the client masks what it sends

    private func sendFrame(_ payload: [UInt8]) {
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xff) }
        }
        let mask: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        socket.send(frame)
    }

    /// One whole message (continuation frames joined); control frames are skipped.
    private func readMessage() throws -> [UInt8] {
        var message: [UInt8] = []
        while true {
            let header = try socket.read(exactly: 2)
            var length = Int(header[1] & 0x7f)
            if length == 126 {
                let bytes = try socket.read(exactly: 2)
                length = Int(bytes[0]) << 8 | Int(bytes[1])
            } else if length == 127 {
                length = try socket.read(exactly: 8).reduce(0) { $0 << 8 | Int($1) }
            }
            let payload = try socket.read(exactly: length)
            let opcode = header[0] & 0x0f
            if opcode == 0x8 { throw TestFailure("chromium closed the DevTools connection") }
            if opcode >= 0x8 { continue }
            message += payload
            if header[0] & 0x80 != 0 { return message }
        }
    }
}
