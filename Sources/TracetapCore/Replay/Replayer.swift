import Foundation
import Synchronization
import TraceContext

/// `tracetap replay`: re-sends captured requests to a target, one after another in capture order, and
/// compares each response with the recorded one.
public struct Replayer: Sendable {
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
    /// Send through this running proxy instead (its rules apply: replay under chaos); it forwards to its
    /// own upstream, which should be the target.
    public var via: UpstreamURL?
    public var diff = ResponseDiff()
    /// Learned noise, per endpoint, on top of `diff`'s ignore lists.
    public var noise = NoiseMasks()
    public var timeoutSeconds = 30
    /// Keep the recorded gaps between requests, divided by this (2: twice as fast); nil: as fast as possible.
    public var pace: Double?
    /// https targets: trust this CA file, or (`insecure`) any certificate.
    public var caFile: String?
    public var insecure = false
    /// Values later requests take from earlier responses (besides cookies, which are automatic).
    public var carries: [Carry] = []

    public init(target: UpstreamURL) { self.target = target }

    /// Parallel connections. With more than one, each recorded client connection is replayed in its own
    /// order, connections side by side; with one, everything goes in capture order.
    public var concurrency = 1

    /// What the requests of one replay share across connections: the cookies and carried values (like one
    /// browser) and the generator for fresh trace IDs.
    private final class SharedState: @unchecked Sendable {
        // Guarded by `lock`; the workers touch it only inside `with`.
        private let lock = NSLock()
        private var cookies = CookieJar()
        private var carried: CarriedValues
        private var random = FastRandom()
        init(carries: [Carry]) { carried = CarriedValues(carries) }

        func with<R>(_ body: (inout CookieJar, inout CarriedValues, inout FastRandom) -> R) -> R {
            lock.lock()
            defer { lock.unlock() }
            return body(&cookies, &carried, &random)
        }
    }

    /// Replays `exchanges`; `progress` sees each result as it comes (from the worker threads, one at a time).
    /// Results come back in capture order.
    public func run(_ exchanges: [CapturedExchange], progress: @escaping @Sendable (Result) -> Void = { _ in }) throws(SocketError) -> [Result] {
        _ = try makeClient()  // an unusable target fails here, once, not per request
        let groups: [[CapturedExchange]]
        if concurrency <= 1 {
            groups = [exchanges]
        } else {
            var order: [UInt64] = []
            var byConnection: [UInt64: [CapturedExchange]] = [:]
            for e in exchanges {
                if byConnection[e.connection] == nil { order.append(e.connection) }
                byConnection[e.connection, default: []].append(e)
            }
            groups = order.map { byConnection[$0]! }
        }
        let shared = SharedState(carries: carries)
        let startedAt = Sockets.monotonicNanos()
        let firstStart = exchanges.map(\.startedUnix).min() ?? 0
        let next = Mutex(0)
        let results = Mutex<[Result]>([])
        let replayer = self
        // One thread per connection (Dispatch would cap the parallelism at the number of cores).
        let workers = min(max(1, concurrency), max(1, groups.count))
        let finished = DispatchGroup()
        for _ in 0..<workers {
            finished.enter()
            Thread {
                defer { finished.leave() }
                guard let client = try? replayer.makeClient() else { return }
                while true {
                    let index = next.withLock { value -> Int in
                        defer { value += 1 }
                        return value
                    }
                    guard index < groups.count else { return }
                    for e in groups[index] {
                        if let pace = replayer.pace {
                            let due = startedAt + UInt64(max(0, (e.startedUnix - firstStart) / pace) * 1e9)
                            let now = Sockets.monotonicNanos()
                            if due > now { usleep(UInt32(min((due - now) / 1000, 60_000_000))) }
                        }
                        let result = replayer.replayOne(e, client: client, shared: shared)
                        results.withLock {
                            $0.append(result)
                            progress(result)
                        }
                    }
                }
            }.start()
        }
        finished.wait()
        return results.withLock { $0 }.sorted { $0.exchange.sequence < $1.exchange.sequence }
    }

    private func replayOne(_ e: CapturedExchange, client: HTTPClient, shared: SharedState) -> Result {
        var result = Result(exchange: e, verdict: .identical, status: 0, micros: 0, differences: [])
        if e.request?.bodyTruncated == true {
            result.verdict = .skipped
            result.message = "the capture kept only \(e.request?.body.count ?? 0) of \(e.request?.bodySize ?? 0) body bytes"
            return result
        }
        do {
            let request = shared.with { ReplayRequest.bytes(for: e, authority: target.authority, cookies: $0, carried: $1, random: &$2) }
            let response = try client.exchange(request, isHead: e.method == "HEAD")
            shared.with { cookies, carried, _ in
                cookies.remember(response.headers)
                carried.learn(recordedHeaders: e.response?.headers ?? [], recordedBody: e.response.map { $0.gunzipped ?? $0.body } ?? [],
                              replayedHeaders: response.headers, replayedBody: response.body)
            }
            result.status = response.status
            result.micros = response.micros
            let recordedStatus = e.response == nil ? e.status : e.responseStatus
            func compare(_ diff: ResponseDiff) -> [ResponseDiff.Difference] {
                diff.differences(recordedStatus: recordedStatus, recorded: e.response, replayedStatus: response.status,
                                 replayedHeaders: response.headers, replayedBody: response.body)
            }
            result.differences = compare(noise.diff(for: result.endpoint, base: diff))
            if !result.differences.isEmpty {
                result.verdict = .regression
            } else {
                // Differences the default comparison sees but the masks hide: noise.
                if !compare(ResponseDiff()).isEmpty { result.verdict = .noise }
            }
        } catch {
            result.verdict = .error
            result.message = error.message
        }
        return result
    }

    private func makeClient() throws(SocketError) -> HTTPClient {
        try HTTPClient.connecting(to: via ?? target, timeoutSeconds: timeoutSeconds, caFile: caFile, insecure: insecure)
    }

    /// Sends every request twice to the (reference) target and learns, per endpoint, the response fields
    /// that differed between the two identical requests. Requests that fail are left out.
    public func learnNoise(_ exchanges: [CapturedExchange]) throws(SocketError) -> NoiseMasks {
        let client = try makeClient()
        var cookies = CookieJar()
        let carried = CarriedValues(carries)
        var random = FastRandom()
        var learned = NoiseMasks()
        let everything = ResponseDiff()
        for e in exchanges where e.request?.bodyTruncated != true {
            var answers: [HTTPClient.Response] = []
            for _ in 0..<2 {
                guard let response = try? client.exchange(ReplayRequest.bytes(for: e, authority: target.authority, cookies: cookies, carried: carried, random: &random),
                                                          isHead: e.method == "HEAD") else { break }
                cookies.remember(response.headers)
                answers.append(response)
            }
            guard answers.count == 2 else { continue }
            learned.learn(endpoint: "\(e.method) \(e.path)",
                          from: everything.differences(recordedStatus: answers[0].status, recorded: answers[0].message, replayedStatus: answers[1].status,
                                                       replayedHeaders: answers[1].headers, replayedBody: answers[1].body))
        }
        return learned
    }

    /// `--junit FILE`: one test case per replayed request, grouped by endpoint, for CI systems.
    public static func junitXML(_ results: [Result]) -> String {
        func escape(_ text: String) -> String {
            var out = ""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case _ where scalar.value < 0x20 && scalar != "\n" && scalar != "\t": out += " "  // not allowed in XML 1.0
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let failures = results.filter { $0.verdict == .regression }.count
        let errors = results.filter { $0.verdict == .error }.count
        let skipped = results.filter { $0.verdict == .skipped }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"tracetap replay\" tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\">\n"
        for (endpoint, group) in Dictionary(grouping: results, by: \.endpoint).sorted(by: { $0.key < $1.key }) {
            xml += "  <testsuite name=\"\(escape(endpoint))\" tests=\"\(group.count)\" failures=\"\(group.filter { $0.verdict == .regression }.count)\" "
                + "errors=\"\(group.filter { $0.verdict == .error }.count)\" skipped=\"\(group.filter { $0.verdict == .skipped }.count)\">\n"
            for r in group {
                let seconds = String(format: "%.6f", Double(r.micros) / 1e6)
                xml += "    <testcase classname=\"\(escape(endpoint))\" name=\"\(escape("#\(r.exchange.sequence) \(r.exchange.method) \(r.exchange.target)"))\" time=\"\(seconds)\""
                switch r.verdict {
                case .identical, .noise:
                    xml += "/>\n"
                case .regression:
                    let text = r.differences.map(\.description).joined(separator: "\n")
                    xml += ">\n      <failure message=\"\(escape(r.differences.first?.description ?? "differs"))\">\(escape(text))</failure>\n    </testcase>\n"
                case .error:
                    xml += ">\n      <error message=\"\(escape(r.message ?? "error"))\"/>\n    </testcase>\n"
                case .skipped:
                    xml += ">\n      <skipped message=\"\(escape(r.message ?? ""))\"/>\n    </testcase>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
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
