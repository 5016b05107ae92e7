import Testing
@testable import TraceContext

private func bytes(_ s: String) -> ArraySlice<UInt8> { Array(s.utf8)[...] }

@Suite struct TraceContextTests {
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func parsesAndReencodesAValidTraceparent() throws {
        let parsed = try #require(TraceParent.parse(bytes(valid)))
        #expect(parsed.traceID.description == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parsed.parentID.description == "00f067aa0ba902b7")
        #expect(parsed.flags == 1)
        #expect(parsed.string == valid)
        #expect(TraceParent.parse(bytes("  \(valid)\t")) == parsed)
    }

    /// The rules of W3C Trace Context §3.2 and its test suite.
    @Test(arguments: [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 with more fields
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  // short flags
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what",  // future version, bad separator
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "",
    ])
    func rejectsInvalidValues(_ value: String) {
        #expect(TraceParent.parse(bytes(value)) == nil)
    }

    @Test func acceptsFutureVersionsAndDowngradesThem() throws {
        let parsed = try #require(TraceParent.parse(bytes("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-future")))
        #expect(parsed.flags == 0x03)
        #expect(parsed.string.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
    }

    @Test func continuesAValidTraceWithANewSpanAndKeepsFlagsAndTracestate() {
        var random = FastRandom(seed: 1)
        let tag = TraceTag.make(traceparents: [bytes(valid)], tracestates: [bytes("a=1"), bytes("b=2")],
                                requestIDs: [bytes("req-12345")], random: &random)
        #expect(tag.continued)
        #expect(tag.traceID.description == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(tag.parentSpanID?.description == "00f067aa0ba902b7")
        #expect(tag.spanID.description != "00f067aa0ba902b7")
        #expect(tag.flags == 0x01)
        #expect(tag.tracestate == Array("a=1,b=2".utf8))
        #expect(tag.requestID == Array("req-12345".utf8))
        #expect(!tag.requestIDGenerated)
        let out = String(decoding: tag.traceparent, as: UTF8.self)
        #expect(out == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(tag.spanID)-01")
    }

    @Test func restartsOnInvalidOrDuplicatedTraceparentAndDropsTracestate() {
        var random = FastRandom(seed: 2)
        let invalid = TraceTag.make(traceparents: [bytes("00-zz")], tracestates: [bytes("a=1")], requestIDs: [], random: &random)
        #expect(!invalid.continued)
        #expect(invalid.tracestate == nil)
        #expect(invalid.flags == 0x03)
        #expect(invalid.requestIDGenerated)
        #expect(invalid.requestID.count == 32)
        let twice = TraceTag.make(traceparents: [bytes(valid), bytes(valid)], tracestates: [], requestIDs: [], random: &random)
        #expect(!twice.continued)
        #expect(twice.traceID.description != "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test func replacesUnusableRequestIDs() {
        var random = FastRandom(seed: 3)
        for bad in ["", String(repeating: "a", count: 201), "has space", "tab\there"] {
            let tag = TraceTag.make(traceparents: [], tracestates: [], requestIDs: [bytes(bad)], random: &random)
            #expect(tag.requestIDGenerated, "\(bad)")
        }
    }

    @Test func seededRandomIsReproducibleAndIDsAreNeverZero() {
        var a = FastRandom(seed: 42)
        var b = FastRandom(seed: 42)
        #expect((0..<100).map { _ in a.next() } == (0..<100).map { _ in b.next() })
        var random = FastRandom(seed: 9)
        let tags = (0..<1000).map { _ in TraceTag.make(traceparents: [], tracestates: [], requestIDs: [], random: &random) }
        #expect(Set(tags.map { $0.traceID }).count == 1000)
        #expect(tags.allSatisfy { $0.spanID.value != 0 && ($0.traceID.high | $0.traceID.low) != 0 })
    }
}
