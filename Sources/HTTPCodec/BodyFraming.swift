/// How a message body is delimited (RFC 9112 §6.3).
public enum BodyFraming: Equatable, Sendable {
    case none
    case contentLength(UInt64)
    case chunked
    /// Only responses: the body ends when the server closes the connection.
    case untilClose
}

extension RequestHead {
    /// The request's framing, or the error that makes it ambiguous: a proxy that guessed here could be
    /// made to forward a smuggled second request (RFC 9112 §6.1, §11.2).
    public func bodyFraming() throws(HTTPError) -> BodyFraming {
        let codings = headers.listElements(FieldName.transferEncoding)
        let hasTE = headers.contains(FieldName.transferEncoding)
        if hasTE {
            if headers.contains(FieldName.contentLength) {
                throw HTTPError(400, "both Content-Length and Transfer-Encoding")
            }
            if version == .http10 { throw HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request") }
            guard codings.last == FieldName.chunked else {
                throw HTTPError(400, "Transfer-Encoding whose final coding is not chunked")
            }
            guard codings.count == 1 else { throw HTTPError(501, "transfer coding other than chunked") }
            return .chunked
        }
        guard let length = try contentLength(headers, errorStatus: 400) else { return .none }
        return length == 0 ? .none : .contentLength(length)
    }
}

extension ResponseHead {
    /// The response's framing given the request it answers. Ambiguity is a 502 for the client,
    /// never a response spliced with the next one.
    public func bodyFraming(requestIsHead: Bool) throws(HTTPError) -> BodyFraming {
        if requestIsHead || (100..<200).contains(status) || status == 204 || status == 304 { return .none }
        let hasTE = headers.contains(FieldName.transferEncoding)
        if hasTE {
            if headers.contains(FieldName.contentLength) {
                throw HTTPError(502, "upstream sent both Content-Length and Transfer-Encoding")
            }
            let codings = headers.listElements(FieldName.transferEncoding)
            guard codings.last == FieldName.chunked else { return .untilClose }
            guard codings.count == 1 else { throw HTTPError(502, "upstream used a transfer coding other than chunked") }
            return .chunked
        }
        guard let length = try contentLength(headers, errorStatus: 502) else { return .untilClose }
        return length == 0 ? .none : .contentLength(length)
    }
}

/// Content-Length: every line and list element must be the same 1*DIGIT (RFC 9110 §8.6).
func contentLength(_ headers: HeaderFields, errorStatus: Int) throws(HTTPError) -> UInt64? {
    var result: UInt64?
    for i in 0..<headers.count where headers.name(at: i, is: FieldName.contentLength) {
        let elements = headers.value(at: i).split(separator: ASCII.comma, omittingEmptySubsequences: false)
        for element in elements {
            guard let value = ASCII.parseDecimal(ASCII.trimmingWhitespace(element)) else {
                throw HTTPError(errorStatus, "invalid Content-Length")
            }
            if let previous = result, previous != value { throw HTTPError(errorStatus, "differing Content-Length values") }
            result = value
        }
    }
    return result
}
