import Foundation
import Glibc
import Synchronization

/// The spans the proxy has received, by trace: the newest in memory (for the admin API), and, when the
/// proxy records, every one appended to the session's `spans.jsonl` next to the exchanges, so `tracetap
/// trace` and the exports find them later.
final class SpanStore: Sendable {
    private struct State {
        var byTrace: [String: [Span]] = [:]
        /// Trace IDs in arrival order, for evicting the oldest.
        var order: [String] = []
        var count = 0
        var fd: Int32 = -1
    }

    static let fileName = "spans.jsonl"
    /// Spans kept in memory; older traces go first (the file keeps everything).
    static let memoryLimit = 50_000

    private let sessionPath: String?
    private let exporter: OTLPExporter?
    private let state = Mutex(State())

    init(sessionPath: String?, exporter: OTLPExporter? = nil) {
        self.sessionPath = sessionPath
        self.exporter = exporter
    }

    deinit { state.withLock { if $0.fd >= 0 { close($0.fd) } } }

    func add(_ spans: [Span]) {
        guard !spans.isEmpty else { return }
        exporter?.enqueue(spans)
        var lines: [UInt8] = []
        if sessionPath != nil { for span in spans { lines += Array(SpanFile.line(span).utf8) + [10] } }
        state.withLock { s in
            for span in spans {
                if s.byTrace[span.traceID] == nil { s.order.append(span.traceID) }
                s.byTrace[span.traceID, default: []].append(span)
                s.count += 1
            }
            while s.count > Self.memoryLimit, !s.order.isEmpty {
                s.count -= s.byTrace.removeValue(forKey: s.order.removeFirst())?.count ?? 0
            }
            guard let sessionPath, !lines.isEmpty else { return }
            if s.fd < 0 {
                // The capture writer creates the folders too, on its own thread: whichever comes first.
                let store = String(sessionPath[..<(sessionPath.lastIndex(of: "/") ?? sessionPath.startIndex)])
                for folder in [store, sessionPath] where !folder.isEmpty && mkdir(folder, 0o700) != 0 && errno != EEXIST { return }
                s.fd = open(sessionPath + "/" + Self.fileName, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            }
            // One write of whole lines: a crash leaves at most a torn last line, which readers skip.
            if s.fd >= 0 { _ = lines.withUnsafeBytes { write(s.fd, $0.baseAddress, $0.count) } }
        }
    }

    func spans(trace: String) -> [Span] { state.withLock { $0.byTrace[trace] ?? [] } }
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
