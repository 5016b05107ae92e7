import Foundation

/// `POST /api/replay`: sends a captured request again, through this proxy (so the replay is traced and
/// recorded like any request), from a worker thread.
///
///     {"session": "current", "span_id": "…", "count": 1}                     once, compared with the recording
///     {"session": "current", "span_id": "…", "count": 5, "mode": "concurrent"} the race probe's synchronised round
///     {"session": "current", "span_id": "…", "count": 5, "mode": "sequential"} the same copies one after another
struct ReplayAPI: Sendable {
    typealias Reply = AdminAPI.Reply
    /// This proxy's own listener.
    let proxy: UpstreamURL
    let sessions: SessionsAPI
    static let maxCopies = 100

    func start(_ body: [UInt8]) -> AdminAPI.Outcome {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let spanID = object["span_id"] as? String else {
            return .reply(.error(400, "send {\"session\": NAME|\"current\", \"span_id\": ID, \"count\": N, \"mode\": \"concurrent\"|\"sequential\"}"))
        }
        let count = object["count"] as? Int ?? 1
        let mode = object["mode"] as? String ?? (count > 1 ? "concurrent" : "once")
        guard (1...Self.maxCopies).contains(count), ["once", "concurrent", "sequential"].contains(mode), mode != "once" || count == 1 else {
            return .reply(.error(400, "count is 1 to \(Self.maxCopies); mode is once (count 1), concurrent or sequential"))
        }
        guard let directory = sessions.directory else { return .reply(.error(409, "capture is off: nothing to replay")) }
        let requested = object["session"] as? String ?? "current"
        let session = requested == "current" ? sessions.current ?? "" : requested
        let proxy = proxy
        return .deferred {
            let reader = CaptureReader(directory: directory)
            guard reader.sessions().contains(session), let exchange = reader.exchange(in: session, spanID: spanID) else {
                return .error(404, "no exchange with span ID '\(spanID)' in session '\(requested)'")
            }
            do throws(SocketError) {
                return mode == "once" ? try Self.once(exchange, proxy: proxy) : try Self.copies(exchange, count: count, concurrent: mode == "concurrent", proxy: proxy)
            } catch {
                return .error(502, "replay failed: \(error.message)")
            }
        }
    }

    private static func once(_ e: CapturedExchange, proxy: UpstreamURL) throws(SocketError) -> Reply {
        guard let result = try Replayer(target: proxy).run([e]).first else { return .error(500, "the replay returned nothing") }
        let differences = result.differences.map {
            "{\"field\":\(JSONText.quote($0.field)),\"recorded\":\(JSONText.quote($0.recorded)),\"replayed\":\(JSONText.quote($0.replayed))}"
        }
        return Reply(status: 200, json: "{\"mode\":\"once\",\"verdict\":\"\(result.verdict.rawValue)\",\"recorded_status\":\(e.status),"
            + "\"status\":\(result.status),\"duration_us\":\(result.micros),\"message\":\(result.message.map(JSONText.quote) ?? "null"),"
            + "\"differences\":[\(differences.joined(separator: ","))]}")
    }

    private static func copies(_ e: CapturedExchange, count: Int, concurrent: Bool, proxy: UpstreamURL) throws(SocketError) -> Reply {
        var probe = RaceProbe(target: proxy)
        probe.send(e)
        probe.copies = count
        let round = concurrent ? try probe.synchronisedRound() : try probe.sequentialRound()
        let copies = round.responses.map { response in
            "{\"copy\":\(response.copy),\"status\":\(response.status),\"body_size\":\(response.body.count),"
                + "\"body_digest\":\(JSONText.quote(ResponseDiff.digest(response.body))),"
                + "\"body_start\":\(JSONText.quote(String(decoding: response.body.prefix(200), as: UTF8.self)))}"
        }
        return Reply(status: 200, json: "{\"mode\":\"\(concurrent ? "concurrent" : "sequential")\",\"count\":\(count),\"trace_id\":\"\(round.traceID)\","
            + "\"release_spread_us\":\(Int(round.releaseSpreadMicros)),\"successes\":\(round.successes),\"distinct_bodies\":\(round.distinctBodies),"
            + "\"copies\":[\(copies.joined(separator: ","))],\"errors\":[\(round.errors.map(JSONText.quote).joined(separator: ","))]}")
    }
}
