import Foundation
import HTTPCodec

/// The on-disk record: one JSON object per line (JSON Lines), UTF-8, documented in the README under
/// "Capture format". Version 1. Bodies are base64 so binary survives byte for byte; headers are
/// [name, value] pairs in the order and case they arrived.
enum CaptureFormat {
    static let version = 1

    /// The first line of every capture file.
    static func fileHeader(session: String, file: Int) -> [UInt8] {
        Array("{\"tracetap_capture\":\(version),\"session\":\(JSONText.quote(session)),\"file\":\(file)}\n".utf8)
    }

    static func line(_ r: ExchangeRecord, sequence: Int) -> [UInt8] {
        var out = "{\"seq\":\(sequence),\"started\":\(JSONText.quote(timestamp(r.startedAt))),\"started_unix\":\(r.startedAt)"
        out += ",\"trace_id\":\"\(r.trace.traceID)\",\"span_id\":\"\(r.trace.spanID)\""
        out += ",\"parent_span_id\":" + (r.trace.parentSpanID.map { "\"\($0)\"" } ?? "null")
        out += ",\"request_id\":" + JSONText.quote(String(decoding: r.trace.requestID, as: UTF8.self))
        out += ",\"client\":" + JSONText.quote(r.clientAddress) + ",\"upstream\":" + JSONText.quote(r.upstreamAddress)
        out += ",\"upstream_reused\":\(r.upstreamReused),\"retried\":\(r.retried),\"upgraded\":\(r.upgraded)"
        out += ",\"request\":" + (r.request.map { request(head: $0, body: r.requestBody) } ?? "null")
        out += ",\"response\":" + (r.response.map { response(head: $0, body: r.responseBody) } ?? "null")
        out += ",\"status\":\(r.status),\"error\":" + (r.failure.map { JSONText.quote($0.rawValue) } ?? "null")
        out += ",\"error_message\":" + (r.failureMessage.map(JSONText.quote) ?? "null")
        let t = r.timings
        out += ",\"timings_us\":{\"head_received\":\(t.headReceived),\"body_received\":\(t.bodyReceived),\"connect\":\(t.connect)"
        out += ",\"tls\":\(t.tls),\"request_sent\":\(t.requestSent),\"first_response_byte\":\(t.firstResponseByte)"
        out += ",\"response_complete\":\(t.responseComplete)}"
        out += ",\"faults\":[" + r.faults.map(JSONText.quote).joined(separator: ",") + "]}\n"
        return Array(out.utf8)
    }

    private static func request(head: RequestHead, body: CapturedBody) -> String {
        "{\"method\":\(text(head.method)),\"target\":\(text(head.target)),\"version\":\"\(head.version)\""
            + ",\"headers\":\(headers(head.headers))," + bodyFields(body) + "}"
    }

    private static func response(head: ResponseHead, body: CapturedBody) -> String {
        "{\"status\":\(head.status),\"reason\":\(text(head.reason)),\"version\":\"\(head.version)\""
            + ",\"headers\":\(headers(head.headers))," + bodyFields(body) + "}"
    }

    private static func bodyFields(_ body: CapturedBody) -> String {
        "\"body_base64\":\"\(Data(body.bytes).base64EncodedString())\",\"body_size\":\(body.size),\"body_truncated\":\(body.truncated)"
    }

    private static func headers(_ fields: HeaderFields) -> String {
        "[" + (0..<fields.count).map { "[\(text(fields.name(at: $0))),\(text(fields.value(at: $0)))]" }.joined(separator: ",") + "]"
    }

    /// Header bytes are Latin-1 by RFC 9110 (obs-text); mapping byte for byte keeps them exact in JSON.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        JSONText.quote(String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })))
    }

    static func timestamp(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let millis = Int((seconds - Double(Int(seconds))) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }
}
