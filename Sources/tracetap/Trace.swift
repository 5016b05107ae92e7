import Foundation
import TracetapCore

/// `tracetap trace ID`: one trace as a waterfall (or OTLP JSON), from the capture store.
enum Trace {
    static let help = """
    Usage: tracetap trace ID [ID...] [--capture DIR] [--json]

    The whole path of one request: the proxy's exchange and its phases, the backend's spans (sent to the
    proxy's admin port over OTLP/HTTP at /v1/traces, or taken from its Server-Timing header), one line per
    span, indented by parent, with a bar on a common time scale. ID is a trace ID or an exchange ID
    (SESSION:SEQ, SEQ). Several IDs share one time axis: two buyers' transactions side by side.
    --json prints the trace(s) as an OTLP/JSON ExportTraceServiceRequest instead.
    """

    static func run(_ args: inout Arguments) throws(UsageError) {
        var json = false
        let options = try Inspect.parse(&args) { (flag, _, _) throws(UsageError) -> Bool in
            guard flag == "--json" else { return false }
            json = true
            return true
        }
        guard !options.positional.isEmpty else { throw UsageError(message: "trace needs a trace ID or an exchange ID (see tracetap trace --help)") }
        var views: [TraceView] = []
        for id in options.positional {
            guard let view = find(id, store: options.store) else { throw UsageError(message: "no trace '\(id)' in \(options.store)") }
            views.append(view)
        }
        let view = views.count == 1 ? views[0] : TraceView(traceID: views.map(\.traceID).joined(separator: " + "), spans: views.flatMap(\.spans))
        print(json ? OTLPEncoder.request(view.spans) : view.waterfall(), terminator: "")
        if json { print("") }
    }

    /// The trace in the newest session that has it: its exchanges and the spans received for it.
    static func find(_ id: String, store: String) -> TraceView? {
        let reader = CaptureReader(directory: store)
        let traceID = reader.find(id)?.traceID ?? id.lowercased()
        for session in reader.sessions().reversed() {
            let exchanges = reader.exchanges(in: session).exchanges
            let spans = SpanFile.read(sessionPath: store + "/" + session)
            if exchanges.contains(where: { $0.traceID == traceID }) || spans.contains(where: { $0.traceID == traceID }) {
                return TraceView.assemble(traceID: traceID, exchanges: exchanges, spans: spans)
            }
        }
        return nil
    }
}
