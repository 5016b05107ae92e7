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

/// Reason phrases of the IANA HTTP status code registry (RFC 9110 §15, plus 418, 425, 429, 451), for the
/// statuses the proxy writes itself or a fault rule chooses.
public func reasonPhrase(_ status: Int) -> String {
    reasonPhrases[status] ?? "Status \(status)"
}

private let reasonPhrases: [Int: String] = [
    100: "Continue", 101: "Switching Protocols", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
    418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Content", 425: "Too Early",
    426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 511: "Network Authentication Required",
]
