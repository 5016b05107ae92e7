import HTTPCodec
import TraceContext

/// Builds the head sent upstream: the client's fields in their order and case, minus hop-by-hop fields,
/// plus the trace, forwarding and framing fields the proxy owns.
struct RequestTagger {
    let upstreamAuthority: [UInt8]
    let preserveHost: Bool

    static let forwardedProto = Array("http".utf8)
    static let viaHTTP11 = Array("1.1 tracetap".utf8)
    static let viaHTTP10 = Array("1.0 tracetap".utf8)
    static let upgradeToken = Array("upgrade".utf8)
    static let chunked = Array("chunked".utf8)

    /// Fields the proxy writes itself; the client's copies are dropped, not forwarded twice.
    private static let replaced: [[UInt8]] = [
        FieldName.host, FieldName.contentLength, FieldName.traceparent, FieldName.tracestate, FieldName.xRequestID,
        FieldName.xForwardedFor, FieldName.xForwardedProto, FieldName.xForwardedHost, FieldName.xTracetapFault,
    ]

    func outgoingHead(_ request: RequestHead, framing: BodyFraming, tag: TraceTag, clientHost: String) -> [UInt8] {
        let headers = request.headers
        let upgrade = HopByHop.requestsUpgrade(headers)
        let hop = HopByHop(headers, keepsUpgrade: upgrade)
        var writer = HeadWriter(capacity: headers.storage.count + 256)
        writer.requestLine(method: request.method, target: RequestTagger.originForm(request.target))
        let host = headers.first(FieldName.host)
        writer.field(CanonicalName.host, preserveHost ? (host ?? upstreamAuthority[...]) : upstreamAuthority[...])
        var forwardedFor: [UInt8] = []
        for i in 0..<headers.count {
            if hop.isHopByHop(headers, i) { continue }
            if headers.name(at: i, is: FieldName.expect) && request.version == .http10 { continue }
            if headers.name(at: i, is: FieldName.xForwardedFor) {
                forwardedFor += headers.value(at: i) + [ASCII.comma, ASCII.space]
                continue
            }
            if RequestTagger.replaced.contains(where: { headers.name(at: i, is: $0) }) { continue }
            writer.field(headers.name(at: i), headers.value(at: i))
        }
        switch framing {
        case .contentLength(let n): writer.field(CanonicalName.contentLength, ASCII.decimal(Int(n)))
        case .chunked: writer.field(CanonicalName.transferEncoding, RequestTagger.chunked)
        case .none, .untilClose: break
        }
        if upgrade { writer.field(CanonicalName.connection, RequestTagger.upgradeToken) }
        writer.field(CanonicalName.traceparent, tag.traceparent)
        if let state = tag.tracestate { writer.field(CanonicalName.tracestate, state) }
        writer.field(CanonicalName.xRequestID, tag.requestID)
        writer.field(CanonicalName.xForwardedFor, forwardedFor + Array(clientHost.utf8))
        writer.field(CanonicalName.xForwardedProto, RequestTagger.forwardedProto)
        if let host { writer.field(CanonicalName.xForwardedHost, host) }
        writer.field(CanonicalName.via, request.version == .http10 ? RequestTagger.viaHTTP10 : RequestTagger.viaHTTP11)
        writer.end()
        return writer.bytes
    }

    /// An absolute-form target (`http://host/path`) goes upstream as origin-form: the configured upstream
    /// is the only one this proxy reaches, whatever the request names (no open proxy, no SSRF).
    static func originForm(_ target: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let first = target.first, first != ASCII.slash, first != 42 /* * */ else { return target }
        guard let schemeEnd = target.firstIndex(of: ASCII.colon),
              target[schemeEnd...].starts(with: [ASCII.colon, ASCII.slash, ASCII.slash]) else { return target }
        let authorityStart = schemeEnd + 3
        guard let pathStart = target[authorityStart...].firstIndex(where: { $0 == ASCII.slash || $0 == 63 }) else {
            return [ASCII.slash][...]
        }
        if target[pathStart] == 63 { return ArraySlice([ASCII.slash] + target[pathStart...]) }
        return target[pathStart...]
    }

    static func tag<R: RandomNumberGenerator>(_ headers: HeaderFields, random: inout R) -> TraceTag {
        TraceTag.make(traceparents: headers.values(FieldName.traceparent), tracestates: headers.values(FieldName.tracestate),
                      requestIDs: headers.values(FieldName.xRequestID), random: &random)
    }
}
