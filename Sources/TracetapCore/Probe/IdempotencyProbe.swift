import TraceContext

/// `tracetap probe idempotency`: each captured unsafe request (POST, PUT, PATCH, DELETE) sent twice, as a
/// retry would, first as recorded, then with an `Idempotency-Key`; what the second copy changed, seen by a
/// safe request of the same capture that reads the resource, decides whether a retry is harmless.
public struct IdempotencyProbe: Sendable {
    public enum Verdict: String, Sendable {
        case idempotent
        case idempotentWithKey = "idempotent with key"
        case notIdempotent = "not idempotent"
        case failed
    }

    public struct Finding: Sendable {
        public var exchange: CapturedExchange
        public var verdict: Verdict
        /// The safe request that showed the state ("GET /orders"), when the capture had one.
        public var check: String?
        public var evidence: [String]
        public var endpoint: String { "\(exchange.method) \(exchange.path)" }
        /// RFC 9110 §9.2.2: PUT and DELETE are idempotent by definition; POST and PATCH need not be.
        public var violatesRFC9110: Bool { verdict == .notIdempotent && ["PUT", "DELETE"].contains(exchange.method) }
    }

    static let unsafeMethods: Set<String> = ["POST", "PUT", "PATCH", "DELETE"]

    public var target: UpstreamURL
    public var carries: [Carry] = []
    public var keyHeader = "Idempotency-Key"
    /// The path of the safe request that reads the state (default: a GET of the same resource or its
    /// collection, the next one in the capture).
    public var checkPath: String?
    /// What differs in noise, not in state, per endpoint (the session's noise.json).
    public var noise = NoiseMasks()
    public var timeoutSeconds = 30
    public var caFile: String?
    public var insecure = false

    public init(target: UpstreamURL) { self.target = target }

    /// Walks the session against the target, probing the first request of each unsafe endpoint; the other
    /// requests are replayed once each, so logins and the state the probed requests need are there.
    public func run(_ exchanges: [CapturedExchange], progress: (Finding) -> Void = { _ in }) throws(SocketError) -> [Finding] {
        let walker = try SessionWalker(target: target, carries: carries, timeoutSeconds: timeoutSeconds, caFile: caFile, insecure: insecure)
        var random = FastRandom()
        var probed: Set<String> = []
        var findings: [Finding] = []
        for (index, e) in exchanges.enumerated() {
            let endpoint = "\(e.method) \(e.path)"
            guard Self.unsafeMethods.contains(e.method), !probed.contains(endpoint), e.request?.bodyTruncated != true else {
                _ = try? walker.send(e)
                continue
            }
            probed.insert(endpoint)
            let check = followUp(for: e, at: index, in: exchanges)
            var finding = Finding(exchange: e, verdict: .idempotent, check: check.map { "\($0.method) \($0.target)" }, evidence: [])
            do throws(SocketError) {
                let plain = try twice(e, check: check, walker: walker, extra: [])
                finding.evidence = plain
                if !plain.isEmpty {
                    finding.verdict = .notIdempotent
                    // A key makes a retry safe where the API supports one; PUT and DELETE need none.
                    if ["POST", "PATCH"].contains(e.method) {
                        let key = String(random.next(), radix: 16) + String(random.next(), radix: 16)
                        let keyed = try twice(e, check: check, walker: walker, extra: [(keyHeader, key)])
                        if keyed.isEmpty {
                            finding.verdict = .idempotentWithKey
                            finding.evidence.append("with the same \(keyHeader) on both, the second changed nothing")
                        } else {
                            finding.evidence += keyed.map { "with the same \(keyHeader) on both: " + $0 }
                        }
                    }
                }
            } catch {
                finding.verdict = .failed
                finding.evidence = [error.message]
            }
            findings.append(finding)
            progress(finding)
        }
        return findings
    }

    /// Sends `e` twice, reading the state after each; what the second copy changed (empty: nothing).
    private func twice(_ e: CapturedExchange, check: CapturedExchange?, walker: SessionWalker,
                       extra: [(name: String, value: String)]) throws(SocketError) -> [String] {
        let first = try walker.send(e, extra: extra)
        let stateAfterFirst = try check.map { (c) throws(SocketError) in try walker.send(c) }
        // Read twice with no write between: whatever differs then is the check's own noise (a clock, a nonce).
        let stateAgain = try check.map { (c) throws(SocketError) in try walker.send(c) }
        let second = try walker.send(e, extra: extra)
        let stateAfterSecond = try check.map { (c) throws(SocketError) in try walker.send(c) }
        let what = "the second \(e.method) \(e.path)"
        guard let check, let stateAfterFirst, let stateAgain, let stateAfterSecond else {
            // No read of the state in the capture: the two answers are the evidence. A DELETE that finds
            // nothing the second time (404, 410) is still idempotent: the state is the same.
            if e.method == "DELETE", (200..<300).contains(first.status), [404, 410].contains(second.status) { return [] }
            return contentDifferences(first, second, of: e).map { "\(what) answered \($0.field.isEmpty ? "" : $0.field + " ")\($0.replayed) where the first answered \($0.recorded)" }
        }
        let noisy = Set(contentDifferences(stateAfterFirst, stateAgain, of: check).map(\.field))
        let changed = contentDifferences(stateAfterFirst, stateAfterSecond, of: check).filter { !noisy.contains($0.field) }
        guard !changed.isEmpty else { return [] }
        var evidence = changed.prefix(1).map { "after \(what), \(check.method) \(check.target) shows \($0.field.isEmpty ? "" : $0.field + ": ")\($0.recorded) -> \($0.replayed)" }
        if let answer = contentDifferences(first, second, of: e).first {
            evidence.append("\(what) answered \(answer.field.isEmpty ? "" : answer.field + " ")\(answer.replayed) where the first answered \(answer.recorded)")
        }
        return evidence
    }

    /// Status and body differences (headers carry dates and cookies, not state); fields as `status`, `id`,
    /// `orders.1`, `line 3`.
    private func contentDifferences(_ a: HTTPClient.Response, _ b: HTTPClient.Response, of e: CapturedExchange) -> [ResponseDiff.Difference] {
        noise.diff(for: "\(e.method) \(e.path)", base: ResponseDiff()).differences(recordedStatus: a.status, recorded: a.message, replayedStatus: b.status, replayedHeaders: b.headers, replayedBody: b.body)
            .filter { !$0.field.hasPrefix("header ") }
            .map { d in
                var d = d
                d.field = d.field == "body" ? "" : d.field.hasPrefix("body ") ? String(d.field.dropFirst(5)) : d.field
                return d
            }
    }

    private func followUp(for e: CapturedExchange, at index: Int, in exchanges: [CapturedExchange]) -> CapturedExchange? {
        if let checkPath { return exchanges.first { $0.method == "GET" && ($0.target == checkPath || $0.path == checkPath) } }
        func parent(_ path: String) -> String { path.split(separator: "/").dropLast().reduce("") { $0 + "/" + $1 } }
        // The same resource first, then its collection, then one of its members; the next one in the
        // capture, else the last one before.
        let relations: [(CapturedExchange) -> Bool] = [{ $0.path == e.path }, { $0.path == parent(e.path) }, { parent($0.path) == e.path }]
        for related in relations {
            let reads = { (g: CapturedExchange) in g.method == "GET" && related(g) }
            if let found = exchanges[(index + 1)...].first(where: reads) ?? exchanges[..<index].last(where: reads) { return found }
        }
        return nil
    }
}
