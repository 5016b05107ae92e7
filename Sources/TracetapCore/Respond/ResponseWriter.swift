import HTTPCodec
import TraceContext

/// Writes response heads to the client: the upstream's fields minus hop-by-hop ones, the framing chosen
/// for this client, and the trace the client can quote (`traceresponse`, `X-Request-ID`).
enum ResponseWriter {
    static let traceresponse = Array("traceresponse".utf8)
    static let keepAliveValue = Array("keep-alive".utf8)

    enum Framing { case keepUpstream, contentLength(UInt64), chunked, closeDelimited }

    static func head(_ response: ResponseHead, framing: Framing, tag: TraceTag, connection: [UInt8]?) -> [UInt8] {
        let headers = response.headers
        let switching = response.status == 101
        let hop = HopByHop(headers, keepsUpgrade: switching)
        var writer = HeadWriter(capacity: headers.storage.count + 200)
        writer.statusLine(status: response.status, reason: response.reason)
        var hasRequestID = false
        for i in 0..<headers.count {
            if hop.isHopByHop(headers, i) { continue }
            if headers.name(at: i, is: FieldName.contentLength) {
                if case .keepUpstream = framing {} else { continue }
            }
            if headers.name(at: i, is: FieldName.xRequestID) { hasRequestID = true }
            if headers.name(at: i, is: traceresponse) { continue }
            writer.field(headers.name(at: i), headers.value(at: i))
        }
        switch framing {
        case .contentLength(let n): writer.field(CanonicalName.contentLength, ASCII.decimal(Int(n)))
        case .chunked: writer.field(CanonicalName.transferEncoding, RequestTagger.chunked)
        case .keepUpstream, .closeDelimited: break
        }
        if switching { writer.field(CanonicalName.connection, RequestTagger.upgradeToken) }
        else if let connection { writer.field(CanonicalName.connection, connection) }
        writer.field(CanonicalName.via, RequestTagger.viaHTTP11)
        writer.field(CanonicalName.traceresponse, tag.traceparent)
        if !hasRequestID { writer.field(CanonicalName.xRequestID, tag.requestID) }
        writer.end()
        return writer.bytes
    }

    /// A response the proxy writes itself. The body names the failure and the trace, so a 502 in a
    /// browser or a CI log can be found in the captures.
    static func error(status: Int, message: String, tag: TraceTag, close: Bool) -> [UInt8] {
        let body = Array("tracetap: \(message)\ntrace \(tag.traceID) request \(String(decoding: tag.requestID, as: UTF8.self))\n".utf8)
        return own(status: status, body: body, tag: tag, close: close)
    }

    /// A response of the proxy's own with a given body (an error, or an `abort` fault's answer).
    static func own(status: Int, body: [UInt8], tag: TraceTag, close: Bool) -> [UInt8] {
        var writer = HeadWriter()
        writer.statusLine(status: status, reason: Array(reasonPhrase(status).utf8))
        writer.field("Content-Type", "text/plain; charset=utf-8")
        writer.field(CanonicalName.contentLength, ASCII.decimal(body.count))
        if close { writer.field("Connection", "close") }
        writer.field(CanonicalName.traceresponse, tag.traceparent)
        writer.field(CanonicalName.xRequestID, tag.requestID)
        writer.end()
        return writer.bytes + body
    }
}
