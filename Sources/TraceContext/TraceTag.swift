/// The trace identity the proxy gives one request: continue the caller's trace or start one, with the
/// proxy's own span, and the X-Request-ID the backend and the client see.
public struct TraceTag: Sendable {
    public let traceID: TraceID
    /// The proxy's span: the parent of everything the backend does for this request.
    public let spanID: SpanID
    /// The caller's span when a valid traceparent arrived.
    public let parentSpanID: SpanID?
    public let flags: UInt8
    /// tracestate to pass on: only with a continued trace (a restarted trace must drop it).
    public let tracestate: [UInt8]?
    public let requestID: [UInt8]
    public let requestIDGenerated: Bool

    public var continued: Bool { parentSpanID != nil }

    /// The traceparent sent upstream and echoed to the client: same trace, the proxy's span as parent.
    public var traceparent: [UInt8] { TraceParent(traceID: traceID, parentID: spanID, flags: flags).encoded }

    /// - Parameters: the values of every traceparent, tracestate and X-Request-ID line of the request.
    public static func make<R: RandomNumberGenerator>(traceparents: [ArraySlice<UInt8>], tracestates: [ArraySlice<UInt8>],
                                                     requestIDs: [ArraySlice<UInt8>], random: inout R) -> TraceTag {
        // Two traceparent lines are invalid (trace-context test suite: test_traceparent_duplicated).
        let incoming = traceparents.count == 1 ? TraceParent.parse(traceparents[0]) : nil
        let span = SpanID(nonZero(&random))
        let requestID: [UInt8]
        let generated: Bool
        if requestIDs.count == 1, isAcceptableRequestID(requestIDs[0]) {
            requestID = Array(requestIDs[0]); generated = false
        } else {
            requestID = SpanID(nonZero(&random)).hexBytes + SpanID(nonZero(&random)).hexBytes; generated = true
        }
        if let incoming {
            let state: [UInt8]? = tracestates.isEmpty ? nil : Array(tracestates.joined(separator: [44]))
            return TraceTag(traceID: incoming.traceID, spanID: span, parentSpanID: incoming.parentID, flags: incoming.flags,
                            tracestate: state, requestID: requestID, requestIDGenerated: generated)
        }
        // A new trace: random ids, sampled, and the random-trace-id flag (Level 2) since all 16 bytes are random.
        let trace = TraceID(high: random.next(), low: nonZero(&random))
        return TraceTag(traceID: trace, spanID: span, parentSpanID: nil, flags: 0x03, tracestate: nil,
                        requestID: requestID, requestIDGenerated: generated)
    }

    /// The same trace and request ID under another proxy span: a duplicate copy of the request.
    public func withNewSpan<R: RandomNumberGenerator>(random: inout R) -> TraceTag {
        TraceTag(traceID: traceID, spanID: SpanID(TraceTag.nonZero(&random)), parentSpanID: parentSpanID, flags: flags,
                 tracestate: tracestate, requestID: requestID, requestIDGenerated: requestIDGenerated)
    }

    /// Keep a caller's request id if it is 1-200 visible ASCII characters (the convention Heroku documents).
    static func isAcceptableRequestID(_ value: ArraySlice<UInt8>) -> Bool {
        (1...200).contains(value.count) && value.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }

    static func nonZero<R: RandomNumberGenerator>(_ random: inout R) -> UInt64 {
        while true {
            let v = random.next() as UInt64
            if v != 0 { return v }
        }
    }
}

/// xoshiro256**: fast ids on the hot path, seeded from the system generator per event loop.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = SplitMix(state: seed)
        s = (sm.next(), sm.next(), sm.next(), sm.next())
    }

    public init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    private struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
