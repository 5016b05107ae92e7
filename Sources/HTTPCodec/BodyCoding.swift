/// Reads one message body with any framing: Content-Length counts down, chunked decodes, close-delimited
/// takes everything until `finishAtEOF`. Bytes past the body stay with the caller (pipelining).
public struct BodyDecoder: Sendable {
    public let framing: BodyFraming
    private var remaining: UInt64 = 0
    private var chunked: ChunkedDecoder
    public private(set) var isComplete: Bool

    public init(framing: BodyFraming, errorStatus: Int) {
        self.framing = framing
        chunked = ChunkedDecoder(errorStatus: errorStatus)
        switch framing {
        case .none: isComplete = true
        case .contentLength(let n): remaining = n; isComplete = n == 0
        case .chunked, .untilClose: isComplete = false
        }
    }

    public var trailers: [UInt8] { chunked.trailers }

    public mutating func decode(_ input: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) -> Void) throws(HTTPError) -> Int {
        if isComplete { return 0 }
        switch framing {
        case .none:
            return 0
        case .contentLength:
            let take = Int(min(UInt64(input.count), remaining))
            if take > 0 { onData(UnsafeRawBufferPointer(rebasing: input[0..<take])) }
            remaining -= UInt64(take)
            isComplete = remaining == 0
            return take
        case .chunked:
            let used = try chunked.decode(input, onData: onData)
            isComplete = chunked.isDone
            return used
        case .untilClose:
            if !input.isEmpty { onData(input) }
            return input.count
        }
    }

    /// The peer closed: fine for a close-delimited body, an incomplete message otherwise (RFC 9112 §8).
    public mutating func finishAtEOF() -> Bool {
        if case .untilClose = framing { isComplete = true }
        return isComplete
    }
}

/// Writes a body in the framing chosen for the next hop.
public struct BodyEncoder: Sendable {
    public let chunked: Bool
    public init(chunked: Bool) { self.chunked = chunked }

    public func encode(_ data: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        if chunked { ChunkedEncoder.appendChunk(data, to: &out) } else { out.append(data) }
    }

    /// Bytes that end the body: the last chunk with trailers when chunked, nothing otherwise.
    public func end(trailers: [UInt8]) -> [UInt8] {
        chunked ? ChunkedEncoder.lastChunk(trailers: trailers) : []
    }
}

/// Serializes a head field by field, on bytes.
public struct HeadWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public mutating func requestLine<M: Collection, T: Collection>(method: M, target: T) where M.Element == UInt8, T.Element == UInt8 {
        bytes.append(contentsOf: method)
        bytes.append(ASCII.space)
        bytes.append(contentsOf: target)
        bytes.append(contentsOf: HeadWriter.http11Suffix)
    }

    public mutating func statusLine<R: Collection>(status: Int, reason: R) where R.Element == UInt8 {
        bytes.append(contentsOf: HeadWriter.http11Prefix)
        bytes.append(contentsOf: ASCII.decimal(status))
        bytes.append(ASCII.space)
        bytes.append(contentsOf: reason)
        bytes.append(contentsOf: ChunkedEncoder.crlf)
    }

    public mutating func field<N: Collection, V: Collection>(_ name: N, _ value: V) where N.Element == UInt8, V.Element == UInt8 {
        bytes.append(contentsOf: name)
        bytes.append(ASCII.colon)
        bytes.append(ASCII.space)
        bytes.append(contentsOf: value)
        bytes.append(contentsOf: ChunkedEncoder.crlf)
    }

    public mutating func field(_ name: String, _ value: String) { field(name.utf8, value.utf8) }

    public mutating func end() { bytes.append(contentsOf: ChunkedEncoder.crlf) }

    static let http11Suffix = Array(" HTTP/1.1\r\n".utf8)
    static let http11Prefix = Array("HTTP/1.1 ".utf8)
}

/// Standard reason phrases for the statuses the proxy writes itself.
public func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: return "Continue"
    case 101: return "Switching Protocols"
    case 200: return "OK"
    case 204: return "No Content"
    case 400: return "Bad Request"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 408: return "Request Timeout"
    case 413: return "Content Too Large"
    case 414: return "URI Too Long"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    case 502: return "Bad Gateway"
    case 503: return "Service Unavailable"
    case 504: return "Gateway Timeout"
    case 505: return "HTTP Version Not Supported"
    default: return "Status \(status)"
    }
}
