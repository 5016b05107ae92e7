import Foundation
import Glibc
import Synchronization

/// Where the spans the proxy receives (OTLP) and times (SQL) go: appended to the session's `spans.jsonl`
/// next to the exchanges when the proxy records, so `tracetap trace` and the exports find them, and on to
/// the collector with `--otlp-export`. Lines are formatted and written by a thread of its own, like the
/// exchanges: the database leg adds a span per statement from the event loop, which must never wait on a
/// disk.
final class SpanStore: Sendable {
    static let fileName = "spans.jsonl"
    /// Spans waiting for the writer at most; beyond, new ones are dropped (and counted) rather than held.
    static let maxPending = 100_000

    private let sessionPath: String?
    private let exporter: OTLPExporter?
    private let pending = Mutex<Pending>(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    private struct Pending {
        var spans: [Span] = []
        var dropped = 0
        var closing = false
    }

    init(sessionPath: String?, exporter: OTLPExporter? = nil) {
        self.sessionPath = sessionPath
        self.exporter = exporter
        guard let sessionPath else { return }
        let thread = Thread { [self] in write(into: sessionPath) }
        thread.name = "tracetap-spans"
        thread.start()
    }

    /// False when spans would go nowhere (no capture, no export): the database leg then builds none.
    var isKept: Bool { sessionPath != nil || exporter != nil }

    func add(_ spans: [Span]) {
        guard !spans.isEmpty else { return }
        exporter?.enqueue(spans)
        guard sessionPath != nil else { return }
        let wasEmpty = pending.withLock { queue -> Bool in
            guard !queue.closing else { return false }
            let room = max(0, Self.maxPending - queue.spans.count)
            queue.dropped += max(0, spans.count - room)
            let wasEmpty = queue.spans.isEmpty
            queue.spans += spans.prefix(room)
            return wasEmpty
        }
        if wasEmpty { wake.signal() }
    }

    /// Writes what is queued and stops the writer (the proxy calls it when it stops); later calls return at once.
    func finish() {
        guard sessionPath != nil else { return }
        let first = pending.withLock { queue -> Bool in
            defer { queue.closing = true }
            return !queue.closing
        }
        guard first else { return }
        wake.signal()
        done.wait()
    }

    private func write(into sessionPath: String) {
        var fd: Int32 = -1
        var lines = LineBuffer(capacity: 1 << 16)
        var reportedDrops = 0
        var closing = false
        while !closing {
            wake.wait()
            let (spans, dropped, closed) = pending.withLock { queue in
                defer { queue.spans.removeAll(keepingCapacity: true) }
                return (queue.spans, queue.dropped, queue.closing)
            }
            closing = closed
            if !spans.isEmpty {
                if fd < 0 {
                    // The capture writer creates the folders too, on its own thread: whichever comes first.
                    let store = String(sessionPath[..<(sessionPath.lastIndex(of: "/") ?? sessionPath.startIndex)])
                    for folder in [store, sessionPath] where !folder.isEmpty { mkdir(folder, 0o700) }
                    fd = open(sessionPath + "/" + Self.fileName, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                }
                lines.removeAll()
                for span in spans {
                    SpanFile.append(span, into: &lines)
                    lines.append(10)
                }
                // One write of whole lines: a crash leaves at most a torn last line, which readers skip.
                if fd >= 0 { _ = Glibc.write(fd, lines.bytes.baseAddress, lines.count) }
            }
            if dropped > reportedDrops {
                writeStderr("tracetap: spans: \(dropped - reportedDrops) spans dropped, the writer fell \(Self.maxPending) behind\n")
                reportedDrops = dropped
            }
        }
        if fd >= 0 { close(fd) }
        done.signal()
    }
}

/// `spans.jsonl`: one span a line, attributes and 64-bit times as OTLP's JSON mapping writes them.
///
///     {"trace_id":"…","span_id":"…","parent_span_id":"…","name":"GET /orders","kind":2,"service":"shop",
///      "start_unix_nano":"1544712660000000000","end_unix_nano":"1544712660120000000","status_code":0,
///      "status_message":"","source":"otlp","attributes":[{"key":"rows","value":{"intValue":"3"}}]}
public enum SpanFile {
    static func line(_ span: Span) -> String {
        var out = LineBuffer(capacity: 512)
        append(span, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// One span's line (without the newline), written byte by byte: the span writer runs this for every
    /// statement the database leg times.
    static func append(_ span: Span, into out: inout LineBuffer) {
        out.append(#"{"trace_id":"#)
        JSONText.append(span.traceID, into: &out)
        out.append(#","span_id":"#)
        JSONText.append(span.spanID, into: &out)
        out.append(#","parent_span_id":"#)
        JSONText.append(span.parentSpanID, into: &out)
        out.append(#","name":"#)
        JSONText.append(span.name, into: &out)
        out.append(#","kind":"#)
        JSONBytes.int(Int64(span.kind), into: &out)
        out.append(#","service":"#)
        JSONText.append(span.service, into: &out)
        out.append(#","start_unix_nano":""#)
        JSONBytes.unsigned(span.startNanos, into: &out)
        out.append(#"","end_unix_nano":""#)
        JSONBytes.unsigned(span.endNanos, into: &out)
        out.append(#"","status_code":"#)
        JSONBytes.int(Int64(span.statusCode), into: &out)
        out.append(#","status_message":"#)
        JSONText.append(span.statusMessage, into: &out)
        out.append(#","source":"#)
        JSONText.append(span.source.rawValue, into: &out)
        out.append(#","attributes":"#)
        OTLPEncoder.append(span.attributes, into: &out)
        out.append(UInt8(ascii: "}"))
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
