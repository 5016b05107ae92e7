import Foundation

/// One line of the web UI's list (and of `/api/events`, `/api/exchanges`, a session's exchange list): what
/// an exchange was and how it ended, without its headers and bodies.
struct ExchangeSummary: Sendable {
    var spanID: String
    var traceID: String
    var requestID: String
    var startedUnix: Double
    var method: String
    var target: String
    var status: Int
    var durationMicros: Int64
    var requestBytes: UInt64
    var responseBytes: UInt64
    var contentType: String
    var faults: [String]
    var error: String?
    var duplicate: (copy: Int, of: Int, difference: String?)?
    /// The start of the response body, set only where a view shows it (a trace's requests side by side).
    var responsePreview: String?

    init(_ r: ExchangeRecord) {
        spanID = r.trace.spanID.description
        traceID = r.trace.traceID.description
        requestID = String(decoding: r.trace.requestID, as: UTF8.self)
        startedUnix = r.startedAt
        method = r.request?.methodString ?? "-"
        target = r.request?.targetString ?? "-"
        status = r.status
        durationMicros = r.timings.responseComplete
        requestBytes = r.requestBodyBytes
        responseBytes = r.responseBodyBytes
        contentType = r.response?.headers.first(Array("content-type".utf8)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        faults = r.faults
        error = r.failure?.rawValue
        duplicate = r.duplicate.map { ($0.copy, $0.of, $0.difference) }
    }

    init(_ e: CapturedExchange) {
        spanID = e.spanID
        traceID = e.traceID
        requestID = e.requestID
        startedUnix = e.startedUnix
        method = e.method
        target = e.target
        status = e.status
        durationMicros = Int64(e.durationMicros)
        requestBytes = UInt64(max(0, e.request?.bodySize ?? 0))
        responseBytes = UInt64(max(0, e.response?.bodySize ?? 0))
        contentType = e.response?.header("content-type") ?? ""
        faults = e.faults
        error = e.error
        duplicate = e.duplicate
    }

    /// `seq`: the live feed's number (0 for an exchange read from a session, where `seq` is the capture's).
    func json(seq: Int) -> String {
        var out = "{\"seq\":\(seq),\"span_id\":\"\(spanID)\",\"trace_id\":\"\(traceID)\",\"request_id\":\(JSONText.quote(requestID)),"
        out += "\"started_unix\":\(String(format: "%.6f", startedUnix)),\"method\":\(JSONText.quote(method)),\"target\":\(JSONText.quote(target)),"
        out += "\"status\":\(status),\"duration_us\":\(durationMicros),\"request_bytes\":\(requestBytes),\"response_bytes\":\(responseBytes),"
        out += "\"content_type\":\(JSONText.quote(contentType)),\"faults\":[\(faults.map(JSONText.quote).joined(separator: ","))],"
        out += "\"error\":\(error.map(JSONText.quote) ?? "null"),\"duplicate\":"
        if let duplicate {
            out += "{\"copy\":\(duplicate.copy),\"of\":\(duplicate.of),\"difference\":\(duplicate.difference.map(JSONText.quote) ?? "null")}"
        } else {
            out += "null"
        }
        if let responsePreview { out += ",\"response_preview\":" + JSONText.quote(responsePreview) }
        return out + "}"
    }
}
