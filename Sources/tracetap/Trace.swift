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
        let reader = CaptureReader(directory: options.store)
        // An exchange ID or a request ID names its exchange's trace; anything else is taken as a trace ID.
        let traceIDs = options.positional.map { reader.find($0)?.traceID ?? $0.lowercased() }
        let found = views(of: traceIDs, reader: reader)
        if let missing = zip(options.positional, traceIDs).first(where: { found[$0.1] == nil }) {
            throw UsageError(message: "no trace '\(missing.0)' in \(options.store)")
        }
        let chosen = traceIDs.map { found[$0]! }
        let view = chosen.count == 1 ? chosen[0] : TraceView(traceID: chosen.map(\.traceID).joined(separator: " + "), spans: chosen.flatMap(\.spans))
        print(json ? OTLPEncoder.request(view.spans) : view.waterfall(), terminator: "")
        if json { print("") }
    }

    /// Each trace from the newest session that has it (its exchanges and the spans received for it),
    /// reading a session whole at most once, and only when a trace's SQL needs it.
    static func views(of traceIDs: [String], reader: CaptureReader) -> [String: TraceView] {
        let wanted = Set(traceIDs)
        var found: [String: TraceView] = [:]
        for session in reader.sessions().reversed() where found.count < wanted.count {
            let spans = SpanFile.read(sessionPath: reader.directory + "/" + session)
            var everyExchange: [CapturedExchange]?
            for traceID in wanted where found[traceID] == nil {
                let mine = reader.exchanges(in: session, traceID: traceID)
                if !mine.isEmpty || spans.contains(where: { $0.traceID == traceID }) {
                    found[traceID] = TraceView.assemble(traceID: traceID, mine: mine, spans: spans) {
                        if everyExchange == nil { everyExchange = reader.exchanges(in: session, withBodies: false).exchanges }
                        return everyExchange!
                    }
                }
            }
        }
        return found
    }
}
