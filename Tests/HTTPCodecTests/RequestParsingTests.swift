import Testing
@testable import HTTPCodec

/// Parses a whole request head from text (with real CRLFs written as \r\n).
func parseRequest(_ text: String, limits: HeadLimits = HeadLimits()) throws(HTTPError) -> RequestHead {
    let bytes = ByteBuffer(Array(text.utf8))
    var scanner = HeadScanner()
    let length: Int? = try bytes.withReadableBytes { (b) throws(HTTPError) -> Int? in
        try scanner.scan(b, limits: limits, tooLongStartLine: 414, tooLargeHead: 431)
    }
    guard let length else { throw HTTPError(0, "incomplete") }
    return try bytes.withReadableBytes { (b) throws(HTTPError) -> RequestHead in
        try HeadParser.parseRequest(UnsafeRawBufferPointer(rebasing: b[0..<length]), limits: limits)
    }
}

func status(of text: String, limits: HeadLimits = HeadLimits()) -> Int {
    do throws(HTTPError) {
        let head = try parseRequest(text, limits: limits)
        _ = try head.bodyFraming()
        return 200
    } catch {
        return error.status
    }
}

@Suite struct RequestParsingTests {
    @Test func parsesRequestLineAndKeepsFieldOrderAndCase() throws {
        let head = try parseRequest("POST /orders?x=1 HTTP/1.1\r\nHost: shop\r\nX-B: 2\r\nx-a:  1 \r\nX-B: 3\r\n\r\n")
        #expect(head.methodString == "POST")
        #expect(head.targetString == "/orders?x=1")
        #expect(head.version == .http11)
        #expect(head.headers.pairs.map { $0.name } == ["Host", "X-B", "x-a", "X-B"])
        #expect(head.headers.pairs.map { $0.value } == ["shop", "2", "1", "3"])
        #expect(head.headers.values(Array("x-b".utf8)).map { Array($0) } == [Array("2".utf8), Array("3".utf8)])
    }

    @Test func framingFromContentLengthAndChunked() throws {
        #expect(try parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n").bodyFraming() == .contentLength(12))
        #expect(try parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n").bodyFraming() == .contentLength(5))
        #expect(try parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").bodyFraming() == .contentLength(5))
        #expect(try parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").bodyFraming() == .chunked)
        #expect(try parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n").bodyFraming() == BodyFraming.none)
    }

    /// RFC 9112 §6.1, §6.3 and §11.2: every framing a smuggler could exploit is refused.
    @Test(arguments: [
        ("both Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("differing Content-Length lines", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        ("differing Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400),
        ("signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400),
        ("overflowing Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        ("empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
        ("non-chunked Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        ("chunked not final", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("obfuscated Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
        ("other coding before chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        ("whitespace after start line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
        ("bare LF in field line", "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", 400),
        ("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        ("bare CR", "GET / HTTP/1.1\r\nHost: a\rX-A: 1\r\n\r\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
        ("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u{0}2\r\n\r\n", 400),
        ("control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u{1}2\r\n\r\n", 400),
        ("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u{7F}2\r\n\r\n", 400),
        ("invalid name character", "GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n", 400),
        ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", 400),
        ("missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
        ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        ("two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("malformed version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
        ("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ])
    func refusesAmbiguousOrMalformedRequests(_ name: String, _ text: String, _ expected: Int) {
        #expect(status(of: text) == expected, "\(name)")
    }

    @Test func enforcesSizeLimits() {
        let longTarget = "/" + String(repeating: "a", count: 9000)
        #expect(status(of: "GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n") == 414)
        let bigHeader = "X-Big: " + String(repeating: "b", count: 70_000)
        #expect(status(of: "GET / HTTP/1.1\r\nHost: a\r\n\(bigHeader)\r\n\r\n") == 431)
        let fields = (0..<101).map { "X-\($0): v\r\n" }.joined()
        #expect(status(of: "GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n") == 431)
        let fine = (0..<98).map { "X-\($0): v\r\n" }.joined()
        #expect(status(of: "GET / HTTP/1.1\r\nHost: a\r\n\(fine)\r\n") == 200)
    }

    @Test func limitsApplyBeforeTheHeadIsComplete() {
        // A client that never ends its head is refused once it passes the limit, not buffered for ever.
        var scanner = HeadScanner()
        let partial = ByteBuffer(Array(("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "z", count: 70_000)).utf8))
        #expect(throws: HTTPError(431, "header section larger than 65536 bytes")) {
            try partial.withReadableBytes { (b) throws(HTTPError) -> Int? in
                try scanner.scan(b, limits: HeadLimits(), tooLongStartLine: 414, tooLargeHead: 431)
            }
        }
        var lineScanner = HeadScanner()
        let longLine = ByteBuffer(Array(("GET /" + String(repeating: "a", count: 9000)).utf8))
        #expect(throws: HTTPError(414, "start line longer than 8192 bytes")) {
            try longLine.withReadableBytes { (b) throws(HTTPError) -> Int? in
                try lineScanner.scan(b, limits: HeadLimits(), tooLongStartLine: 414, tooLargeHead: 431)
            }
        }
    }

    @Test func scannerFindsTheHeadEndAcrossOneByteReads() throws {
        let text = Array("GET /x HTTP/1.1\r\nHost: a\r\n\r\nNEXT".utf8)
        var scanner = HeadScanner()
        var found: Int?
        for end in 1...text.count where found == nil {
            found = try ByteBuffer(Array(text[0..<end])).withReadableBytes { (b) throws(HTTPError) -> Int? in
                try scanner.scan(b, limits: HeadLimits(), tooLongStartLine: 414, tooLargeHead: 431)
            }
        }
        #expect(found == text.count - 4)
    }

    @Test func skipsEmptyLinesBeforeRequestLine() {
        let bytes = Array("\r\n\r\nGET / HTTP/1.1\r\n".utf8)
        #expect(bytes.withUnsafeBytes { HeadParser.leadingEmptyLines($0) } == 4)
    }

    @Test func keepAliveFollowsVersionAndConnection() throws {
        #expect(try parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n").wantsKeepAlive)
        #expect(try !parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").wantsKeepAlive)
        #expect(try !parseRequest("GET / HTTP/1.0\r\n\r\n").wantsKeepAlive)
        #expect(try parseRequest("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wantsKeepAlive)
    }
}
