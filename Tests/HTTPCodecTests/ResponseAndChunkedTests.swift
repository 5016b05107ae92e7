import Testing
@testable import HTTPCodec

func parseResponse(_ text: String) throws(HTTPError) -> ResponseHead {
    try ByteBuffer(Array(text.utf8)).withReadableBytes { (b) throws(HTTPError) -> ResponseHead in try HeadParser.parseResponse(b) }
}

/// Decodes a chunked body fed in pieces of `step` bytes; returns data, trailers and bytes left over.
func decodeChunked(_ text: String, step: Int = Int.max) throws(HTTPError) -> (data: [UInt8], trailers: String, rest: Int) {
    let bytes = Array(text.utf8)
    var decoder = ChunkedDecoder()
    var data: [UInt8] = []
    var offset = 0
    while offset < bytes.count && !decoder.isDone {
        let end = min(bytes.count, offset + step)
        let used = try ByteBuffer(Array(bytes[offset..<end])).withReadableBytes { (b) throws(HTTPError) -> Int in
            try decoder.decode(b) { data.append(contentsOf: $0) }
        }
        offset += used
        if used == 0 { break }
    }
    return (data, String(decoding: decoder.trailers, as: UTF8.self), bytes.count - offset)
}

@Suite struct ResponseAndChunkedTests {
    @Test func parsesStatusLines() throws {
        let head = try parseResponse("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n")
        #expect(head.status == 404)
        #expect(String(decoding: head.reason, as: UTF8.self) == "Not Found")
        #expect(try parseResponse("HTTP/1.1 204\r\n\r\n").status == 204)
        #expect(throws: HTTPError.self) { try parseResponse("HTTP/1.1 20 OK\r\n\r\n") }
        #expect(throws: HTTPError.self) { try parseResponse("ICY 200 OK\r\n\r\n") }
    }

    @Test func responseFramingFollowsRFC9112Section6_3() throws {
        let cl = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(try cl.bodyFraming(requestIsHead: false) == .contentLength(10))
        #expect(try cl.bodyFraming(requestIsHead: true) == BodyFraming.none)
        #expect(try parseResponse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n").bodyFraming(requestIsHead: false) == BodyFraming.none)
        #expect(try parseResponse("HTTP/1.1 204 No Content\r\n\r\n").bodyFraming(requestIsHead: false) == BodyFraming.none)
        #expect(try parseResponse("HTTP/1.1 200 OK\r\n\r\n").bodyFraming(requestIsHead: false) == .untilClose)
        #expect(try parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").bodyFraming(requestIsHead: false) == .untilClose)
        #expect(try parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").bodyFraming(requestIsHead: false) == .chunked)
        let both = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(throws: HTTPError(502, "upstream sent both Content-Length and Transfer-Encoding")) { try both.bodyFraming(requestIsHead: false) }
        let bad = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n")
        #expect(throws: HTTPError.self) { try bad.bodyFraming(requestIsHead: false) }
        #expect(throws: HTTPError.self) { try parseResponse("HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n") }
        #expect(throws: HTTPError.self) { try parseResponse("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n") }
    }

    @Test func decodesChunksExtensionsAndTrailers() throws {
        let text = "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\nNEXT"
        let whole = try decodeChunked(text)
        #expect(String(decoding: whole.data, as: UTF8.self) == "hello world")
        #expect(whole.trailers == "X-Checksum: abc\r\nX-Other: 1\r\n")
        #expect(whole.rest == 4)
        let byteAtATime = try decodeChunked(text, step: 1)
        #expect(byteAtATime.data == whole.data)
        #expect(byteAtATime.trailers == whole.trailers)
        #expect(byteAtATime.rest == 4)
    }

    @Test(arguments: [
        ("invalid hex", "5x\r\nhello\r\n0\r\n\r\n"),
        ("empty size", "\r\nhello\r\n0\r\n\r\n"),
        ("overflowing size", "fffffffffffffffffff\r\n"),
        ("negative size", "-5\r\nhello\r\n0\r\n\r\n"),
        ("size line ends in bare LF", "5\nhello\r\n0\r\n\r\n"),
        ("data longer than size", "3\r\nhello\r\n0\r\n\r\n"),
        ("data not followed by CRLF", "5\r\nhelloXX0\r\n\r\n"),
        ("control byte in extension", "5;a=\u{1}\r\nhello\r\n0\r\n\r\n"),
        ("bare LF in trailer", "0\r\nX-A: 1\n\r\n"),
        ("malformed trailer", "0\r\nX-A : 1\r\n\r\n"),
        ("junk after size", "5 junk\r\nhello\r\n0\r\n\r\n"),
    ])
    func refusesMalformedChunkedBodies(_ name: String, _ text: String) {
        #expect(throws: HTTPError.self, "\(name)") { try decodeChunked(text) }
    }

    @Test func chunkedEncoderRoundTrips() throws {
        var out = ByteBuffer()
        let pieces = ["first", String(repeating: "x", count: 300), "!"]
        for piece in pieces { Array(piece.utf8).withUnsafeBytes { ChunkedEncoder.appendChunk($0, to: &out) } }
        out.append(contentsOf: ChunkedEncoder.lastChunk(trailers: Array("X-T: 1\r\n".utf8)))
        let decoded = try decodeChunked(String(decoding: out.readableBytes, as: UTF8.self))
        #expect(String(decoding: decoded.data, as: UTF8.self) == pieces.joined())
        #expect(decoded.trailers == "X-T: 1\r\n")
        #expect(String(decoding: ChunkedEncoder.chunkSizeLine(300), as: UTF8.self) == "12c\r\n")
    }

    @Test func bodyDecoderStopsAtContentLengthAndLeavesTheRest() throws {
        var decoder = BodyDecoder(framing: .contentLength(5), errorStatus: 400)
        var data: [UInt8] = []
        let used = try ByteBuffer(Array("helloGET /".utf8)).withReadableBytes { (b) throws(HTTPError) -> Int in
            try decoder.decode(b) { data.append(contentsOf: $0) }
        }
        #expect(used == 5)
        #expect(decoder.isComplete)
        #expect(String(decoding: data, as: UTF8.self) == "hello")
        var untilClose = BodyDecoder(framing: .untilClose, errorStatus: 502)
        #expect(!untilClose.isComplete)
        let closeEndsIt = untilClose.finishAtEOF()
        #expect(closeEndsIt)
        var short = BodyDecoder(framing: .contentLength(5), errorStatus: 502)
        let shortEnds = short.finishAtEOF()
        #expect(!shortEnds)
    }

    @Test func headWriterWritesFieldsInOrder() {
        var writer = HeadWriter()
        writer.requestLine(method: Array("GET".utf8), target: Array("/a".utf8))
        writer.field("Host", "x")
        writer.field("X-A", "1")
        writer.end()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n")
    }
}
