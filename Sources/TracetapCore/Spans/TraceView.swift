import Foundation
import TraceContext

/// One trace as a tree of spans on one time axis: the proxy's exchange and its phases (read the request,
/// connect, send, wait for the upstream, receive), the backend's own spans (OTLP), or, when the backend sent
/// none, its `Server-Timing` metrics, and the SQL statements of the database leg.
public struct TraceView: Sendable {
    public var traceID: String
    public var spans: [Span]

    public init(traceID: String, spans: [Span]) {
        self.traceID = traceID
        self.spans = spans
    }

    /// `exchanges` and `spans`: everything of the session (SQL statements without a trace are attributed
    /// by time, which needs the other exchanges in flight too).
    public static func assemble(traceID: String, exchanges: [CapturedExchange], spans received: [Span]) -> TraceView {
        assemble(traceID: traceID, mine: exchanges.filter { $0.traceID == traceID }, spans: received) { exchanges }
    }

    /// `mine`: the trace's exchanges. `everyExchange`: the session's, asked for only when a statement without
    /// a trace ran while one of `mine` waited for the upstream (the others in flight then tell whether its
    /// attribution is probable or ambiguous), so a session without such statements is never read whole.
    public static func assemble(traceID: String, mine: [CapturedExchange], spans received: [Span], everyExchange: () -> [CapturedExchange]) -> TraceView {
        var spans: [Span] = []
        let backendSent = received.contains { $0.source == .otlp && $0.traceID == traceID }
        for e in mine {
            spans += proxySpans(e)
            if !backendSent { spans += serverTimingSpans(e) }
        }
        spans += received.filter { $0.traceID == traceID }
        let statements = received.filter { $0.source == .sql }
        spans += sameTransaction(as: traceID, statements: statements)
        let owned = transactionTraces(statements)
        let windows = mine.compactMap(upstreamWindow)
        let candidates = statements.filter { statement in
            statement.traceID.isEmpty && owned[statement.transaction ?? ""] == nil
                && windows.contains { $0.contains(statement.startNanos) && $0.contains(statement.endNanos) }
        }
        if !candidates.isEmpty { spans += probableStatements(of: mine, among: everyExchange(), statements: candidates) }
        return TraceView(traceID: traceID, spans: spans)
    }

    /// Which trace each transaction belongs to, from its statements that carried a traceparent, and the
    /// span that ran the first of them.
    static func transactionTraces(_ statements: [Span]) -> [String: (trace: String, parent: String)] {
        var traces: [String: (trace: String, parent: String)] = [:]
        for statement in statements.sorted(by: { $0.startNanos < $1.startNanos }) where !statement.traceID.isEmpty {
            if let transaction = statement.transaction, traces[transaction] == nil { traces[transaction] = (statement.traceID, statement.parentSpanID) }
        }
        return traces
    }

    /// Uncommented statements (BEGIN, COMMIT) of a transaction whose other statements carried this trace.
    static func sameTransaction(as traceID: String, statements: [Span]) -> [Span] {
        let traces = transactionTraces(statements)
        return statements.compactMap { statement in
            guard statement.traceID.isEmpty, let transaction = statement.transaction, let owner = traces[transaction], owner.trace == traceID else { return nil }
            var span = statement
            span.traceID = traceID
            span.parentSpanID = owner.parent
            span.attributes.removeAll { $0.key == "tracetap.attribution" }
            span.attributes.append(Span.Attribute("tracetap.attribution", .string("probable: same transaction as commented statements")))
            return span
        }
    }

    /// The time an exchange's request was with the upstream: a statement run then may be its doing.
    static func upstreamWindow(_ e: CapturedExchange) -> ClosedRange<UInt64>? {
        let start = UInt64(max(0, e.startedUnix) * 1e9)
        guard let sent = e.timings["request_sent"], sent >= 0 else { return nil }
        let answered = [e.timings["first_response_byte"], e.timings["response_complete"]].compactMap { $0 }.first { $0 >= sent } ?? sent
        return (start + UInt64(sent) * 1000)...(start + UInt64(answered) * 1000)
    }

    /// Statements with no traceparent comment that ran while one of `mine` waited for the upstream, as
    /// children of its proxy span, marked probable; when other exchanges were in flight too, ambiguous.
    static func probableStatements(of mine: [CapturedExchange], among all: [CapturedExchange], statements: [Span]) -> [Span] {
        let windows = all.compactMap { e in upstreamWindow(e).map { (e.traceID, $0) } }
        var found: [Span] = []
        for e in mine {
            guard let window = upstreamWindow(e) else { continue }
            for statement in statements where window.contains(statement.startNanos) && window.contains(statement.endNanos) {
                let inFlight = Set(windows.filter { $0.1.contains(statement.startNanos) && $0.1.contains(statement.endNanos) }.map(\.0)).count
                var span = statement
                span.traceID = e.traceID
                span.parentSpanID = e.spanID
                span.attributes.removeAll { $0.key == "tracetap.attribution" }
                span.attributes.append(Span.Attribute("tracetap.attribution", .string(inFlight <= 1 ? "probable: the only exchange in flight"
                                                                                         : "ambiguous: \(inFlight) exchanges in flight")))
                found.append(span)
            }
        }
        return found
    }

    /// A stable span ID for a span the proxy derives (a phase, a Server-Timing metric).
    static func derivedID(_ parts: String...) -> String { SpanID(FNV1a.hash(parts.joined(separator: "\u{0}").utf8)).description }

    static func proxySpans(_ e: CapturedExchange) -> [Span] {
        // The client's own span, when it sent a traceparent, is the proxy span's parent.
        let clientParent = e.request?.header("traceparent").flatMap { TraceParent.parse(Array($0.utf8)) }.map { $0.parentID.description } ?? ""
        return proxySpans(ExchangeFacts(traceID: e.traceID, spanID: e.spanID, parentSpanID: clientParent, method: e.method, path: e.path, status: e.status,
                                        error: e.error.map { e.errorMessage ?? $0 }, exchangeID: e.id, startNanos: UInt64(max(0, e.startedUnix) * 1e9),
                                        timings: e.timings, upstreamReused: e.upstreamReused))
    }

    /// The proxy's span for an exchange and one child per phase: read the request, connect (a new upstream
    /// connection only), send, wait for the upstream, receive.
    static func proxySpans(_ e: ExchangeFacts) -> [Span] {
        let start = e.startNanos
        func at(_ key: String) -> UInt64? { e.timings[key].flatMap { $0 >= 0 ? start + UInt64($0) * 1000 : nil } }
        let end = at("response_complete") ?? at("first_response_byte") ?? at("request_sent") ?? at("body_received") ?? start
        var root = Span(traceID: e.traceID, spanID: e.spanID, parentSpanID: e.parentSpanID, name: "proxy \(e.method) \(e.path)", kind: 2,
                        startNanos: start, endNanos: end, source: .proxy)
        root.service = "tracetap"
        root.attributes = [Span.Attribute("http.request.method", .string(e.method)), Span.Attribute("url.path", .string(e.path)),
                           Span.Attribute("http.response.status_code", .int(Int64(e.status))), Span.Attribute("tracetap.exchange", .string(e.exchangeID))]
        if let error = e.error {
            root.statusCode = 2
            root.statusMessage = error
        }
        var phases: [(String, UInt64?, UInt64?)] = [("read request", start, at("body_received"))]
        // `connect` is a duration (0 on a reused connection), counted from the head, as HAR counts it.
        let headReceived = at("head_received") ?? at("body_received")
        let connectMicros = e.timings["connect"] ?? -1
        let connected = headReceived.map { $0 + UInt64(max(0, connectMicros)) * 1000 }
        if !e.upstreamReused && connectMicros > 0 { phases.append(("connect", headReceived, connected)) }
        phases += [("send", connected, at("request_sent")), ("wait for upstream", at("request_sent"), at("first_response_byte")),
                   ("receive", at("first_response_byte"), at("response_complete"))]
        var spans = [root]
        for (name, from, to) in phases {
            guard let from, let to, to >= from else { continue }
            var phase = Span(traceID: e.traceID, spanID: derivedID(e.spanID, name), parentSpanID: e.spanID, name: name, kind: 1,
                             startNanos: from, endNanos: to, source: .proxy)
            phase.service = "tracetap"
            spans.append(phase)
        }
        return spans
    }

    /// Server-Timing has durations but no start times: the metrics are laid out one after another from the
    /// moment the request reached the upstream, as children of the proxy span.
    static func serverTimingSpans(_ e: CapturedExchange) -> [Span] {
        let values = e.response?.headers.filter { $0.name.lowercased() == "server-timing" }.map(\.value) ?? []
        guard !values.isEmpty else { return [] }
        let start = UInt64(max(0, e.startedUnix) * 1e9) + UInt64(max(0, e.timings["request_sent"] ?? 0)) * 1000
        var cursor = start
        var spans: [Span] = []
        for (index, metric) in ServerTiming.parse(values).enumerated() {
            guard let duration = metric.duration, duration >= 0, duration < 86_400_000 else { continue }
            let nanos = UInt64(duration * 1e6)
            var span = Span(traceID: e.traceID, spanID: derivedID(e.spanID, "server-timing", String(index)), parentSpanID: e.spanID,
                            name: metric.description.isEmpty ? metric.name : "\(metric.name) (\(metric.description))", kind: 1,
                            startNanos: cursor, endNanos: cursor + nanos, source: .serverTiming)
            span.service = "backend"
            span.attributes = [Span.Attribute("server_timing.name", .string(metric.name)), Span.Attribute("server_timing.dur_ms", .double(duration))]
            spans.append(span)
            cursor += nanos
        }
        return spans
    }

    /// Depth-first from the roots (spans whose parent is not in the trace), children by start time.
    public var ordered: [(span: Span, depth: Int)] {
        let ids = Set(spans.map(\.spanID))
        var children: [String: [Span]] = [:]
        for span in spans { children[span.parentSpanID, default: []].append(span) }
        var out: [(Span, Int)] = []
        var visited: Set<String> = []
        func visit(_ span: Span, _ depth: Int) {
            guard visited.insert(span.spanID).inserted else { return }
            out.append((span, depth))
            for child in (children[span.spanID] ?? []).sorted(by: { $0.startNanos < $1.startNanos }) { visit(child, depth + 1) }
        }
        for root in spans.filter({ $0.parentSpanID.isEmpty || !ids.contains($0.parentSpanID) }).sorted(by: { $0.startNanos < $1.startNanos }) { visit(root, 0) }
        return out
    }

    /// The terminal waterfall: one line per span, indented by parent, a bar on a common scale, the duration.
    public func waterfall(barWidth: Int = 40) -> String {
        let rows = ordered
        guard let first = spans.map(\.startNanos).min(), let last = spans.map(\.endNanos).max() else { return "trace \(traceID): no spans\n" }
        let total = max(1, last - first)
        let label = { (row: (span: Span, depth: Int)) -> String in
            String(repeating: "  ", count: row.depth) + row.span.name
                + (row.span.source == .otlp && !row.span.service.isEmpty ? " [\(row.span.service)]" : "")
                + (row.span.source == .serverTiming ? " [server-timing]" : "") + (row.span.source == .sql ? Self.sqlLabel(row.span) : "")
        }
        let width = min(70, max(20, rows.map { label($0).count }.max() ?? 20))
        let sources = Dictionary(grouping: spans, by: \.source.rawValue).sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }
        var out = "trace \(traceID)  \(Self.milliseconds(total))  \(spans.count) spans (\(sources.joined(separator: ", ")))\n"
        for row in rows {
            let offset = Int(Double(row.span.startNanos - first) / Double(total) * Double(barWidth))
            let length = max(1, Int((Double(row.span.durationNanos) / Double(total) * Double(barWidth)).rounded()))
            let bar = String(repeating: " ", count: min(offset, barWidth - 1)) + String(repeating: "█", count: min(length, barWidth - min(offset, barWidth - 1)))
            var name = label(row)
            if name.count > width { name = String(name.prefix(width - 1)) + "…" }
            let error = row.span.statusCode == 2 ? "  ERROR \(row.span.statusMessage)" : ""
            let columns: [String] = [name.padding(toLength: width, withPad: " ", startingAt: 0), "  |", bar.padding(toLength: barWidth, withPad: " ", startingAt: 0),
                                     "|  ", Self.milliseconds(row.span.durationNanos), error, "\n"]
            out += columns.joined()
        }
        return out
    }

    /// `[sql]`, `[sql, probable]`, `[sql, tx c3.t2]`: how sure the attribution is, and the transaction.
    static func sqlLabel(_ span: Span) -> String {
        var notes = ["sql"]
        if case .string(let how)? = span.attribute("tracetap.attribution"), how.hasPrefix("probable") || how.hasPrefix("ambiguous") {
            notes.append(String(how.prefix { $0 != ":" }))
        }
        if let transaction = span.attribute("db.transaction") { notes.append("tx \(transaction)") }
        if let faults = span.attribute("tracetap.faults") { notes.append("fault \(faults)") }
        return " [" + notes.joined(separator: ", ") + "]"
    }

    static func milliseconds(_ nanos: UInt64) -> String { String(format: "%.1f ms", Double(nanos) / 1e6) }
}

/// What the proxy's own spans are made of, from a recorded exchange or one that just finished.
struct ExchangeFacts {
    var traceID: String
    var spanID: String
    /// The client's span, when it sent a traceparent.
    var parentSpanID: String
    var method: String
    var path: String
    var status: Int
    var error: String?
    var exchangeID: String
    var startNanos: UInt64
    /// Microseconds from the first byte of the request, by the capture's names; -1 for phases that did not happen.
    var timings: [String: Int]
    var upstreamReused: Bool
}

extension ExchangeFacts {
    init(_ r: ExchangeRecord) {
        let target = r.request?.targetString ?? "-"
        let t = r.timings
        self.init(traceID: r.trace.traceID.description, spanID: r.trace.spanID.description, parentSpanID: r.trace.parentSpanID?.description ?? "",
                  method: r.request?.methodString ?? "-", path: String(target.prefix { $0 != "?" }), status: r.status,
                  error: r.failure.map { r.failureMessage ?? "\($0)" }, exchangeID: String(r.id), startNanos: UInt64(max(0, r.startedAt) * 1e9),
                  timings: ["head_received": Int(t.headReceived), "body_received": Int(t.bodyReceived), "connect": Int(t.connect), "tls": Int(t.tls),
                            "request_sent": Int(t.requestSent), "first_response_byte": Int(t.firstResponseByte), "response_complete": Int(t.responseComplete)],
                  upstreamReused: r.upstreamReused)
    }
}
