import HTTPCodec

/// What the fuzz targets (`Sources/tracetap-fuzz`) feed arbitrary bytes to: every decoder of untrusted
/// input. Each must return or throw: never crash, hang, or allocate without bound. The first byte of an
/// input chooses how the rest is cut into pieces, so that split points are fuzzed too.
public enum Fuzzing {
    public static let targets: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("http-request", httpMessage(request: true)),
        ("http-response", httpMessage(request: false)),
        ("chunked", chunked),
        ("rules", { _ = try? RuleLoader.parse($0, file: "fuzz.json") }),
        ("otlp-protobuf", { _ = try? OTLPDecoder.decodeProtobuf($0) }),
        ("otlp-json", { _ = try? OTLPDecoder.decodeJSON($0) }),
        ("postgres", postgres),
        ("sql-text", { bytes in
            let sql = String(decoding: bytes, as: UTF8.self)
            _ = (SQLText.comment(sql), SQLText.masked(sql), SQLText.statements(sql), ServerTiming.parse([sql]))
        }),
    ]

    /// `bytes` after its first byte, cut into pieces of 1 + (first byte % 64) bytes.
    static func pieces(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        guard let first = bytes.first else { return [] }
        let size = 1 + Int(first % 64)
        let rest = bytes.dropFirst()
        return stride(from: rest.startIndex, to: rest.endIndex, by: size).map { rest[$0..<min($0 + size, rest.endIndex)] }
    }

    /// A head, then its body, read as the proxy reads them: scanned piece by piece, parsed strictly, framed.
    static func httpMessage(request: Bool) -> @Sendable ([UInt8]) -> Void {
        { bytes in
            var buffer = ByteBuffer()
            var scanner = HeadScanner()
            var decoder: BodyDecoder?
            for piece in pieces(bytes) {
                piece.withUnsafeBytes { buffer.append($0) }
                do throws(HTTPError) {
                    if decoder == nil {
                        let found = try buffer.withReadableBytes { (b) throws(HTTPError) -> (BodyFraming, Int)? in
                            guard let length = try scanner.scan(b, limits: HeadLimits(), tooLongStartLine: 414, tooLargeHead: 431) else { return nil }
                            let head = UnsafeRawBufferPointer(rebasing: b[0..<length])
                            let framing = request ? try HeadParser.parseRequest(head).bodyFraming() : try HeadParser.parseResponse(head).bodyFraming(requestIsHead: false)
                            return (framing, length)
                        }
                        guard let (framing, length) = found else { continue }
                        buffer.consume(length)
                        decoder = BodyDecoder(framing: framing, errorStatus: 400)
                    }
                    let used = try buffer.withReadableBytes { (b) throws(HTTPError) -> Int in try decoder!.decode(b) { _ in } }
                    buffer.consume(used)
                } catch {
                    return
                }
            }
            _ = decoder?.finishAtEOF()
        }
    }

    static func chunked(_ bytes: [UInt8]) {
        var decoder = ChunkedDecoder(errorStatus: 400)
        var pending = ByteBuffer()
        for piece in pieces(bytes) {
            piece.withUnsafeBytes { pending.append($0) }
            do throws(HTTPError) {
                let used = try pending.withReadableBytes { (b) throws(HTTPError) -> Int in try decoder.decode(b) { _ in } }
                pending.consume(used)
            } catch {
                return
            }
            if decoder.isDone { return }
        }
    }

    /// Both directions of a connection, in the format of Tests/Fixtures/pg/conversation.bin (chunks of
    /// `F` or `B`, a 4-byte length, the bytes), through the framers and the statement tracker, and every
    /// statement into a span.
    static func postgres(_ bytes: [UInt8]) {
        var framers = [PostgresFramer(side: .frontend), PostgresFramer(side: .backend)]
        var tracker = StatementTracker()
        var at = 0
        var time: UInt64 = 0
        while at + 5 <= bytes.count {
            let side = bytes[at] == UInt8(ascii: "F") ? 0 : 1
            let length = min(bytes.count - at - 5, bytes[at + 1..<at + 5].reduce(0) { $0 << 8 | Int($1) })
            let chunk = bytes[at + 5..<at + 5 + length]
            at += 5 + length
            time += 1000
            var messages: [PostgresFramer.Message] = []
            let ok = chunk.withUnsafeBytes { b -> Bool in
                do throws(PostgresFramer.Malformed) {
                    try framers[side].feed(b) { messages.append($0) }
                    return true
                } catch {
                    return false
                }
            }
            for message in messages {
                if side == 0 {
                    _ = tracker.sql(of: message)
                    tracker.frontend(message, at: time)
                } else {
                    for statement in tracker.backend(message, at: time) { _ = StatementSpan.span(statement, spanID: 1, connection: 1, showValues: false) }
                }
            }
            if !ok { return }
        }
    }
}
