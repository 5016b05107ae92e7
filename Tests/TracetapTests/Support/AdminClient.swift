import Foundation
import TracetapCore

/// Requests to a proxy's admin port, as a script (or the web UI) sends them.
struct AdminClient {
    let port: Int
    var host = "127.0.0.1"
    /// Extra header lines for every request (`Authorization: Bearer …`, `Cookie: …`).
    var headers: [String] = []

    func request(_ method: String, _ target: String, body: String = "", extra: [String] = []) throws -> TestResponse {
        let socket = try BlockingSocket.connect(port: port, timeout: 30)
        defer { socket.close() }
        let lines = (headers + extra).map { $0 + "\r\n" }.joined()
        socket.send("\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\n\(lines)Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        return try socket.readResponse(forHead: method == "HEAD")
    }

    func json(_ method: String, _ target: String, body: String = "") throws -> [String: Any] {
        let response = try request(method, target, body: body)
        guard response.status / 100 == 2 else { throw TestFailure("\(method) \(target): \(response.status) \(response.text)") }
        return try response.json()
    }

    /// Polls (bounded) until `condition` holds for the answer to GET `target`, and returns that answer.
    func waitFor(_ target: String, seconds: Double = 10, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
        let end = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        repeat {
            if let answer = try? json("GET", target) {
                last = answer
                if condition(answer) { return answer }
            }
            usleep(50_000)
        } while Date() < end
        throw TestFailure("GET \(target) never satisfied the condition; last: \(last)")
    }
}

/// An upstream with one of each kind of body the UI shows: JSON with secrets, an image, binary, an error,
/// Server-Timing metrics.
enum ShopUpstream {
    /// A 1x1 PNG.
    static let png = [UInt8](Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")!)
    static let json = #"{"user":"ann","password":"hunter2","items":[1,2,3],"address":{"city":"Lyon"}}"#

    static func start() throws -> FakeUpstream {
        try FakeUpstream { socket, upstream in
            while let head = try? socket.read(until: "\r\n\r\n") {
                if let length = FakeUpstream.contentLength(head), length > 0 { _ = try? socket.read(exactly: length) }
                upstream.note(head)
                let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                let path = String(target.prefix { $0 != "?" })
                var headers = ""
                let body: [UInt8]
                var status = "200 OK"
                switch path {
                case "/json":
                    headers = "Content-Type: application/json\r\nSet-Cookie: sid=s3cretcookie; Path=/; HttpOnly\r\n"
                    body = Array(json.utf8)
                case "/image.png":
                    headers = "Content-Type: image/png\r\n"
                    body = png
                case "/blob":
                    headers = "Content-Type: application/octet-stream\r\n"
                    body = (0..<64).map { UInt8($0 * 4) }
                case "/missing":
                    status = "404 Not Found"
                    body = Array("not here".utf8)
                case "/counter":
                    // Counts its calls: a duplicated request's copies get different answers.
                    headers = "Content-Type: application/json\r\n"
                    body = Array("{\"n\":\(upstream.notes.filter { $0.contains(" /counter ") }.count)}".utf8)
                case "/timed":
                    headers = "Server-Timing: db;dur=12.5;desc=\"orders query\", app;dur=30\r\nContent-Type: text/plain\r\n"
                    body = Array("timed".utf8)
                default:
                    headers = "Content-Type: text/plain\r\n"
                    body = Array("ok \(path)".utf8)
                }
                socket.send(Array("HTTP/1.1 \(status)\r\n\(headers)Content-Length: \(body.count)\r\n\r\n".utf8) + body)
            }
        }
    }
}
