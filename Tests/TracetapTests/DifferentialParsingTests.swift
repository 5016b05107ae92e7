import Foundation
import Glibc
import Synchronization
import Testing
import TracetapCore

/// Request smuggling and response splicing, checked differentially: whatever the proxy forwards, the
/// upstream must receive exactly the requests the proxy knows it forwarded (its records), and the client
/// exactly the responses the proxy meant to send, never a second message hidden in the first.
@Suite struct DifferentialParsingTests {
    /// Each carries a hidden `GET /smuggled` that a lenient parser on one side would see as a second request.
    static let attacks: [(String, String)] = [
        ("CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 43\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n22\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n"),
        ("TE with a space before the colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE twice, chunked then identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE with a vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\u{0B}chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE hidden in obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Content-Length with a plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 36, 0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("bare LF line ends", "POST / HTTP/1.1\nHost: a\nContent-Length: 0\n\nGET /smuggled HTTP/1.1\nHost: a\n\n"),
        ("bare CR in a header", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("chunk size overflowing 64 bits", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n0\r\n\r\n"),
        ("NUL in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("absolute-form to another host", "GET http://evil.example/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
    ]

    /// Records every byte each upstream connection receives and answers each request head it can find.
    static func recordingUpstream() throws -> FakeUpstream {
        try FakeUpstream { socket, upstream in
            var seen = ""
            while let head = try? socket.read(until: "\r\n\r\n") {
                seen += head
                upstream.note(seen)
                socket.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            }
        }
    }

    @Test(arguments: attacks)
    func theUpstreamNeverSeesARequestTheProxyDidNotForward(name: String, attack: String) throws {
        try withProxy(in: Self.recordingUpstream()) { upstream, proxy, _ in
            let client = try proxy.connect(timeout: 1)
            defer { client.close() }
            client.send(attack)
            _ = client.readToEnd()  // whatever the answers, until the proxy closes (or a second of silence)
            usleep(100_000)
            let forwarded = proxy.sink.wait(for: 99, seconds: 0.2).compactMap { $0.request?.targetString }
            let upstreamSaw = upstream.notes.last ?? ""
            // What reached the upstream holds a /smuggled request only if the proxy itself forwarded one.
            #expect(!upstreamSaw.contains("/smuggled") || forwarded.contains { $0.contains("/smuggled") }, "\(name): upstream saw \(upstreamSaw)")
            // No request can name another upstream: an absolute-form target goes to the configured one, as a path.
            #expect(!upstreamSaw.contains("evil.example"), "\(name)")
            // Every ambiguous one is refused (a streamed chunked body may have started upstream, never completed).
            if !name.hasPrefix("absolute-form") {
                #expect(!upstreamSaw.contains("/smuggled"), "\(name): \(upstreamSaw)")
                #expect(proxy.sink.wait(for: 1).first?.status == 400, "\(name)")
            }
        }
    }

    @Test func legitimatePipeliningIsForwardedAndRecordedRequestByRequest() throws {
        // The control: two honest pipelined requests are two forwarded, recorded requests.
        try withProxy(in: Self.recordingUpstream()) { upstream, proxy, client in
            client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
            let first = try client.readResponse()
            let second = try client.readResponse()
            #expect(first.status == 200 && second.status == 200)
            let records = proxy.sink.wait(for: 2)
            #expect(records.compactMap { $0.request?.targetString } == ["/", "/second"])
            #expect((upstream.notes.last ?? "").components(separatedBy: "HTTP/1.1\r\n").count - 1 == 2)
        }
    }

    @Test func bytesAfterAResponseAreNeverTakenForTheNextResponse() throws {
        // An upstream that answers with one response and a second, unrequested one behind it on the same
        // connection: the second must never reach the client as the answer to its next request.
        let answers = Atomic<Int>(0)
        try withProxy(in: FakeUpstream { socket, _ in
                while (try? socket.read(until: "\r\n\r\n")) != nil {
                    if answers.add(1, ordering: .relaxed).newValue == 1 {
                        socket.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nspliced")
                    } else {
                        socket.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhonest")
                    }
                }
            }) { upstream, proxy, client in
            client.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
            let first = try client.readResponse()
            #expect(first.text == "first")
            client.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
            let second = try client.readResponse()
            #expect(second.text != "spliced", "the unrequested response was handed to the next request")
            #expect(second.status == 200 && second.text == "honest")
        }
    }
}
