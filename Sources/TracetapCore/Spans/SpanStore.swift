import Foundation
import Glibc
import Synchronization

/// Where the spans the proxy receives (OTLP) and times (SQL) go: appended to the session's `spans.jsonl`
/// next to the exchanges when the proxy records, so `tracetap trace` and the exports find them, and on to
/// the collector with `--otlp-export`.
final class SpanStore: Sendable {
    static let fileName = "spans.jsonl"

    private let sessionPath: String?
    private let exporter: OTLPExporter?
    /// The open spans file, -1 until the first span.
    private let file = Mutex<Int32>(-1)

    init(sessionPath: String?, exporter: OTLPExporter? = nil) {
        self.sessionPath = sessionPath
        self.exporter = exporter
    }

    /// False when spans would go nowhere (no capture, no export): the database leg then builds none.
    var isKept: Bool { sessionPath != nil || exporter != nil }

    deinit { file.withLock { if $0 >= 0 { close($0) } } }

    func add(_ spans: [Span]) {
        guard !spans.isEmpty else { return }
        exporter?.enqueue(spans)
        guard let sessionPath else { return }
        var lines: [UInt8] = []
        for span in spans { lines += Array(SpanFile.line(span).utf8) + [10] }
        file.withLock { fd in
            if fd < 0 {
                // The capture writer creates the folders too, on its own thread: whichever comes first.
                let store = String(sessionPath[..<(sessionPath.lastIndex(of: "/") ?? sessionPath.startIndex)])
                for folder in [store, sessionPath] where !folder.isEmpty && mkdir(folder, 0o700) != 0 && errno != EEXIST { return }
                fd = open(sessionPath + "/" + Self.fileName, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            }
            // One write of whole lines: a crash leaves at most a torn last line, which readers skip.
            if fd >= 0 { _ = lines.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        }
    }
}

/// `spans.jsonl`: one span a line, attributes and 64-bit times as OTLP's JSON mapping writes them.
///
///     {"trace_id":"…","span_id":"…","parent_span_id":"…","name":"GET /orders","kind":2,"service":"shop",
///      "start_unix_nano":"1544712660000000000","end_unix_nano":"1544712660120000000","status_code":0,
///      "status_message":"","source":"otlp","attributes":[{"key":"rows","value":{"intValue":"3"}}]}
public enum SpanFile {
    static func line(_ span: Span) -> String {
        #"{"trace_id":"\#(span.traceID)","span_id":"\#(span.spanID)","parent_span_id":"\#(span.parentSpanID)","name":\#(JSONText.quote(span.name)),"#
            + #""kind":\#(span.kind),"service":\#(JSONText.quote(span.service)),"start_unix_nano":"\#(span.startNanos)","end_unix_nano":"\#(span.endNanos)","#
            + #""status_code":\#(span.statusCode),"status_message":\#(JSONText.quote(span.statusMessage)),"source":"\#(span.source.rawValue)","#
            + #""attributes":\#(OTLPEncoder.attributes(span.attributes))}"#
    }

    /// Every span of a session folder, in arrival order; torn or foreign lines are skipped.
    public static func read(sessionPath: String) -> [Span] {
        guard let data = FileManager.default.contents(atPath: sessionPath + "/" + SpanStore.fileName) else { return [] }
        return data.split(separator: 10).compactMap { span(from: Array($0)) }
    }

    static func span(from line: [UInt8]) -> Span? {
        guard let object = try? JSONValue(LineJSON.parse(line)), let traceID = object["trace_id"]?.text, let spanID = object["span_id"]?.text else { return nil }
        var span = Span(traceID: traceID, spanID: spanID, parentSpanID: object["parent_span_id"]?.text ?? "", name: object["name"]?.text ?? "",
                        kind: object["kind"]?.integer.map { Int($0) } ?? 0, startNanos: object["start_unix_nano"]?.unsigned ?? 0,
                        endNanos: object["end_unix_nano"]?.unsigned ?? 0, statusCode: object["status_code"]?.integer.map { Int($0) } ?? 0,
                        statusMessage: object["status_message"]?.text ?? "", service: object["service"]?.text ?? "",
                        source: Span.Source(rawValue: object["source"]?.text ?? "") ?? .otlp)
        span.attributes = OTLPDecoder.attributes(object["attributes"])
        return span
    }
}
