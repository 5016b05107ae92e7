import Foundation
import TraceContext

/// `tracetap replay`: re-sends captured requests to a target, one after another in capture order, and
/// compares each response with the recorded one.
public struct Replayer {
    public struct Result: Sendable {
        public enum Verdict: String, Sendable {
            case identical, noise = "noise-only", regression, error, skipped
        }

        public var exchange: CapturedExchange
        public var verdict: Verdict
        public var status: Int
        public var micros: Int64
        /// What differs beyond the ignored headers and fields (for `regression`), or why it failed.
        public var differences: [ResponseDiff.Difference]
        public var message: String?
        public var endpoint: String { "\(exchange.method) \(exchange.path)" }
    }

    public var target: UpstreamURL
    public var diff = ResponseDiff()
    public var timeoutSeconds = 30

    public init(target: UpstreamURL) { self.target = target }

    /// Replays `exchanges` in order; `progress` sees each result as it comes.
    public func run(_ exchanges: [CapturedExchange], progress: (Result) -> Void = { _ in }) throws(SocketError) -> [Result] {
        guard !target.isTLS else { throw SocketError("replay to https targets is not supported yet; replay to http:// (or through a tracetap proxy in front of it)") }
        let client = HTTPClient(address: try SocketAddress.resolve(target.hostPort), timeoutSeconds: timeoutSeconds)
        var cookies = CookieJar()
        var random = FastRandom()
        var unfiltered = diff
        unfiltered.ignoredHeaders = ResponseDiff.defaultIgnoredHeaders
        unfiltered.ignoredFields = []
        var results: [Result] = []
        for e in exchanges {
            var result = Result(exchange: e, verdict: .identical, status: 0, micros: 0, differences: [])
            if e.request?.bodyTruncated == true {
                result.verdict = .skipped
                result.message = "the capture kept only \(e.request?.body.count ?? 0) of \(e.request?.bodySize ?? 0) body bytes"
            } else {
                do {
                    let response = try client.exchange(ReplayRequest.bytes(for: e, authority: target.authority, cookies: cookies, random: &random),
                                                       isHead: e.method == "HEAD")
                    cookies.remember(response.headers)
                    result.status = response.status
                    result.micros = response.micros
                    let recordedStatus = e.response == nil ? e.status : e.responseStatus
                    result.differences = diff.differences(recordedStatus: recordedStatus, recorded: e.response, replayedStatus: response.status,
                                                          replayedHeaders: response.headers, replayedBody: response.body)
                    if !result.differences.isEmpty {
                        result.verdict = .regression
                    } else if !unfiltered.differences(recordedStatus: recordedStatus, recorded: e.response, replayedStatus: response.status,
                                                      replayedHeaders: response.headers, replayedBody: response.body).isEmpty {
                        result.verdict = .noise
                    }
                } catch {
                    result.verdict = .error
                    result.message = error.message
                }
            }
            progress(result)
            results.append(result)
        }
        return results
    }

    /// `--report FILE`: the results as JSON, for scripts and CI.
    public static func reportJSON(_ results: [Result], target: UpstreamURL) -> Data {
        let counts = Dictionary(grouping: results, by: \.verdict.rawValue).mapValues(\.count)
        let items: [[String: Any]] = results.map { r in
            var item: [String: Any] = [
                "id": r.exchange.id, "method": r.exchange.method, "target": r.exchange.target, "original_trace_id": r.exchange.traceID,
                "recorded_status": r.exchange.status, "status": r.status, "verdict": r.verdict.rawValue, "duration_us": r.micros,
                "differences": r.differences.map { ["field": $0.field, "recorded": $0.recorded, "replayed": $0.replayed] },
            ]
            if let message = r.message { item["message"] = message }
            return item
        }
        let report: [String: Any] = ["target": target.description, "requests": results.count, "counts": counts, "results": items]
        return (try? JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}
