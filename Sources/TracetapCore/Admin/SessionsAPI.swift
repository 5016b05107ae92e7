import Foundation

/// `/api/sessions`: the capture store, read off the event loop. `current` names this run's session.
///
///     GET /api/sessions                                   sessions, newest first, with their size on disk
///     GET /api/sessions/NAME/exchanges                    every exchange's summary (the list's shape)
///     GET /api/sessions/NAME/exchanges/SPAN_ID[?reveal=1] one exchange whole: headers, bodies, timings, curl
///     GET /api/sessions/NAME/traces/TRACE_ID              the trace's spans (proxy, backend, SQL) and its exchanges
///     GET /api/sessions/NAME/har                          the session as a HAR 1.2 file, secrets masked
struct SessionsAPI: Sendable {
    typealias Reply = AdminAPI.Reply
    /// The capture store; nil when capture is off.
    let directory: String?
    /// This run's session, when it records.
    let current: String?
    /// Bodies sent to the UI are cut here (the capture keeps at most 1 MiB by default anyway).
    static let bodyLimit = 4 << 20

    func respond(path: String, query: AdminQuery) -> AdminAPI.Outcome {
        guard let directory else { return .reply(.error(409, "capture is off: run with --capture DIR to keep exchanges")) }
        let parts = path.split(separator: "/").dropFirst(2).map { AdminQuery.decode($0) }
        let reader = CaptureReader(directory: directory)
        let current = current
        return .deferred {
            if parts.isEmpty { return listJSON(reader) }
            let session = parts[0] == "current" ? current ?? "" : parts[0]
            guard reader.sessions().contains(session) else { return .error(404, "no session '\(parts[0])' in \(reader.directory)") }
            switch (parts.count, parts.count > 1 ? parts[1] : "") {
            case (2, "exchanges"):
                let exchanges = reader.exchanges(in: session, withBodies: false).exchanges
                return Reply(status: 200, json: "{\"session\":\(JSONText.quote(session)),\"exchanges\":["
                    + exchanges.map { ExchangeSummary($0).json(seq: $0.sequence) }.joined(separator: ",") + "]}")
            case (3, "exchanges"):
                guard let exchange = reader.exchange(in: session, spanID: parts[2]) else {
                    return .error(404, "no exchange with span ID '\(parts[2])' in \(session) (yet: the capture is written a moment after the exchange)")
                }
                return Reply(status: 200, contentType: "application/json", body: Self.detail(exchange, mask: SecretMask(enabled: query["reveal"] != "1")))
            case (3, "traces"):
                let traceID = parts[2]
                let mine = reader.exchanges(in: session, traceID: traceID)
                let view = TraceView.assemble(traceID: traceID, mine: mine, spans: SpanFile.read(sessionPath: reader.directory + "/" + session)) {
                    reader.exchanges(in: session, withBodies: false).exchanges
                }
                guard !view.spans.isEmpty else { return .error(404, "no trace '\(traceID)' in \(session)") }
                // The first requests of the trace (a duplicate's copies, a race round) with the start of each
                // response body, so the UI sets them side by side without asking for each one.
                let previews = Dictionary(reader.exchanges(in: session, traceID: traceID, limit: Self.tracePreviews, withBodies: true)
                    .map { ($0.spanID, Self.preview($0.response)) }) { first, _ in first }
                let summaries = mine.map { e in
                    var summary = ExchangeSummary(e)
                    summary.responsePreview = previews[e.spanID]
                    return summary.json(seq: e.sequence)
                }
                return Reply(status: 200, json: "{\"trace_id\":\(JSONText.quote(traceID)),\"session\":\(JSONText.quote(session)),\"spans\":["
                    + view.spans.sorted { $0.startNanos < $1.startNanos }.map(SpanFile.line).joined(separator: ",") + "],\"exchanges\":["
                    + summaries.joined(separator: ",") + "]}")
            case (2, "har"):
                let har = Export.render(reader.exchanges(in: session).exchanges, as: .har, mask: SecretMask())
                return Reply(status: 200, contentType: "application/json", body: har,
                             headers: [("Content-Disposition", "attachment; filename=\"tracetap-\(session).har\"")])
            default:
                return .error(404, "no such endpoint (see GET /api/sessions)")
            }
        }
    }

    private func listJSON(_ reader: CaptureReader) -> Reply {
        let sessions = reader.sessions().reversed().map { name -> String in
            let folder = reader.directory + "/" + name
            let bytes = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).reduce(0) { total, file in
                total + (((try? FileManager.default.attributesOfItem(atPath: folder + "/" + file))?[.size] as? Int) ?? 0)
            }
            return "{\"name\":\(JSONText.quote(name)),\"bytes\":\(bytes),\"current\":\(name == current)}"
        }
        return Reply(status: 200, json: "{\"directory\":\(JSONText.quote(reader.directory)),\"current\":\(current.map(JSONText.quote) ?? "null"),"
            + "\"sessions\":[\(sessions.joined(separator: ","))]}")
    }

    /// How many of a trace's exchanges come with `response_preview`, and how long it is.
    static let tracePreviews = 20
    static let previewBytes = 200

    /// The start of a response body as the application sees it (gzip undone), secrets masked.
    private static func preview(_ response: CapturedExchange.Message?) -> String {
        guard let response else { return "" }
        return String(decoding: SecretMask().body(response.gunzipped ?? response.body).prefix(previewBytes), as: UTF8.self)
    }

    /// One exchange whole, as the UI's detail shows it: the JSON Lines export's object with bodies decoded
    /// (gzip undone, cut at `bodyLimit`), and what only the UI needs. With `mask` on, secret headers and
    /// JSON fields are masked.
    static func detail(_ e: CapturedExchange, mask: SecretMask) -> [UInt8] {
        var object = Export.jsonObject(e, mask: mask, decodedBodiesUpTo: bodyLimit)
        // The timing bar draws the same phases as the proxy's spans in a trace (microseconds from the start).
        let spans = TraceView.proxySpans(e)
        let start = spans[0].startNanos
        object["phases"] = spans.dropFirst().map { ["name": $0.name, "start_us": ($0.startNanos - start) / 1000, "end_us": ($0.endNanos - start) / 1000] }
        object.merge([
            "started_unix": e.startedUnix, "connection": String(e.connection), "upstream_reused": e.upstreamReused,
            "response_status": e.responseStatus, "response_reason": e.responseReason,
            "duplicate": e.duplicate.map { ["copy": $0.copy, "of": $0.of, "difference": $0.difference ?? NSNull()] as [String: Any] } ?? NSNull(),
            "masked": mask.enabled, "curl": Export.curl(e, mask: mask),
        ] as [String: Any]) { _, added in added }
        return [UInt8]((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
    }
}
