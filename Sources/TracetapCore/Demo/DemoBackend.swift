import Foundation
import Glibc
import HTTPCodec

/// A small HTTP backend for the demo and the README tour, so `tracetap` works with nothing else running.
/// Blocking sockets, a thread per connection: it is the thing being debugged, not the thing being measured.
///   GET  /hello         JSON showing the trace headers the backend received
///   GET  /slow?ms=N     answers after N milliseconds
///   POST /echo          echoes the body
/// and the shop of `DemoShop`, with the bugs in `bugs` switched on.
public final class DemoBackend: Sendable {
    public let port: Int
    private let fd: Int32
    private let shop: DemoShop

    public init(listen: HostPort = HostPort(host: "127.0.0.1", port: 0), bugs: DemoBugs = .all) throws(StartupError) {
        shop = DemoShop(bugs: bugs)
        do throws(SocketError) {
            fd = try Sockets.listen(on: SocketAddress.resolve(listen), backlog: 128)
        } catch {
            throw StartupError(message: "demo backend: \(error.message)")
        }
        // Accepted sockets inherit O_NONBLOCK from the listener; this server wants blocking ones.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        port = Sockets.localAddress(fd).port
    }

    public func start() {
        let thread = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { if errno == EINTR { continue } else { return } }
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
                Thread { [self] in serve(client) }.start()
            }
        }
        thread.start()
    }

    /// Stops accepting; connections already open finish on their own.
    public func stop() { shutdown(fd, Int32(SHUT_RDWR)) }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var input = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return false }
            input.append(contentsOf: chunk[0..<n])
            return true
        }
        while true {
            var scanner = HeadScanner()
            var headLength: Int?
            while headLength == nil {
                do throws(HTTPError) {
                    headLength = try input.withReadableBytes { (b) throws(HTTPError) -> Int? in
                        try scanner.scan(b, limits: HeadLimits(), tooLongStartLine: 414, tooLargeHead: 431)
                    }
                } catch { return }
                if headLength == nil && !fill() { return }
            }
            guard let length = headLength,
                  let head = try? input.withReadableBytes({ (b) throws(HTTPError) -> RequestHead in
                      try HeadParser.parseRequest(UnsafeRawBufferPointer(rebasing: b[0..<length]))
                  }),
                  let framing = try? head.bodyFraming() else { return }
            input.consume(length)
            var decoder = BodyDecoder(framing: framing, errorStatus: 400)
            var body: [UInt8] = []
            while !decoder.isComplete {
                let used = (try? input.withReadableBytes { (b) throws(HTTPError) -> Int in
                    try decoder.decode(b) { body.append(contentsOf: $0) }
                }) ?? -1
                if used < 0 { return }
                input.consume(used)
                if !decoder.isComplete && !fill() { return }
            }
            var response = respond(head, body: body)
            writeAll(fd, &response)
            if !head.wantsKeepAlive { return }
        }
    }

    func respond(_ head: RequestHead, body: [UInt8]) -> [UInt8] {
        let target = head.targetString
        let path = String(target.prefix { $0 != "?" })
        let query = target.contains("?") ? String(target[target.index(after: target.firstIndex(of: "?")!)...]) : ""
        func header(_ name: String) -> String {
            head.headers.first(Array(name.utf8)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        switch (head.methodString, path) {
        case ("GET", "/hello"):
            let json = """
            {"message":"hello from the demo backend","traceparent":\(JSONText.quote(header("traceparent"))),\
            "x_request_id":\(JSONText.quote(header("x-request-id"))),"via":\(JSONText.quote(header("via"))),\
            "x_forwarded_for":\(JSONText.quote(header("x-forwarded-for")))}
            """
            return Self.message(200, "application/json", Array((json + "\n").utf8))
        case ("GET", "/slow"):
            let ms = query.split(separator: "&").first { $0.hasPrefix("ms=") }.flatMap { Int($0.dropFirst(3)) } ?? 500
            usleep(UInt32(min(ms, 60_000)) * 1000)
            return Self.message(200, "text/plain", Array("slept \(ms) ms\n".utf8))
        case ("POST", "/echo"):
            return Self.message(200, header("content-type").isEmpty ? "application/octet-stream" : header("content-type"), body)
        default:
            var parameters: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                parameters[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            let key = header("idempotency-key")
            guard let answer = shop.answer(method: head.methodString, path: path, query: parameters, cookie: header("cookie"),
                                           idempotencyKey: key.isEmpty ? nil : key, body: body) else {
                return Self.message(404, "text/plain", Array("no route \(head.methodString) \(path)\n".utf8))
            }
            return Self.message(answer.status, "application/json", Array(answer.json.utf8), extra: answer.headers)
        }
    }

    private static func message(_ status: Int, _ type: String, _ body: [UInt8], extra: [(String, String)] = []) -> [UInt8] {
        var writer = HeadWriter()
        writer.statusLine(status: status, reason: Array(reasonPhrase(status).utf8))
        for (name, value) in extra { writer.field(name, value) }
        if !body.isEmpty { writer.field("Content-Type", type) }
        writer.field("Content-Length", String(body.count))
        writer.end()
        return writer.bytes + body
    }
}
