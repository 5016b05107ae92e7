import Foundation
import Testing
@testable import TracetapCore

/// The OTLP decoders against fixtures written by the official protobuf classes (Tests/Fixtures/otlp).
@Suite struct OTLPDecoderTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Repo.root.appendingPathComponent("Tests/Fixtures/otlp/\(name)")))
    }

    @Test func protobufAsThePythonSDKSendsIt() throws {
        let decoded = try OTLPDecoder.decodeProtobuf(try Self.fixture("trace.pb"))
        #expect(decoded.rejected == 0)
        #expect(decoded.spans.map(\.name) == ["GET /orders", "load orders", "send email"])
        let server = decoded.spans[0]
        #expect(server.traceID == "5b8efff798038103d269b633813fc60c")
        #expect(server.spanID == "eee19b7ec3c1b174")
        #expect(server.parentSpanID == "00f067aa0ba902b7")
        #expect(server.kind == 2)
        #expect(server.startNanos == 1_544_712_660_000_000_000 && server.endNanos == 1_544_712_660_120_000_000)
        #expect(server.service == "shop")
        #expect(server.attribute("http.request.method") == .string("GET"))
        #expect(server.attribute("http.response.status_code") == .int(200))
        #expect(server.attribute("sampled") == .bool(true))
        #expect(server.attribute("ratio") == .double(0.25))
        #expect(server.attribute("tags") == .structured(#"["a",-7]"#))
        #expect(server.attribute("nested") == .structured(#"{"k":"v"}"#))
        let child = decoded.spans[1]
        #expect(child.parentSpanID == "eee19b7ec3c1b174" && child.statusCode == 2 && child.statusMessage == "deadlock detected")
        #expect(decoded.spans[2].service == "mailer" && decoded.spans[2].kind == 3)
    }

    @Test func jsonDecodesToTheSameSpans() throws {
        let json = try OTLPDecoder.decodeJSON(try Self.fixture("trace.json"))
        let protobuf = try OTLPDecoder.decodeProtobuf(try Self.fixture("trace.pb"))
        #expect(json.spans == protobuf.spans)
        // Numbers where strings are expected are accepted too, and hex IDs in any case.
        let loose = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","#
            + #""name":"x","kind":1,"startTimeUnixNano":1000,"endTimeUnixNano":"2000","attributes":[{"key":"n","value":{"intValue":7}}]}]}]}]}"#
        let span = try #require(try OTLPDecoder.decodeJSON(Array(loose.utf8)).spans.first)
        #expect(span.startNanos == 1000 && span.endNanos == 2000 && span.parentSpanID == "" && span.attribute("n") == .int(7))
    }

    @Test func invalidIDsAreRejectedAndCountedUnknownFieldsSkipped() throws {
        // A span with an all-zero trace ID and one with a 4-byte span ID, then an unknown field (99, varint).
        func span(trace: [UInt8], id: [UInt8]) -> [UInt8] { [0x0a, UInt8(trace.count)] + trace + [0x12, UInt8(id.count)] + id + [0x2a, 1, 0x78] }
        func wrap(_ field: UInt8, _ bytes: [UInt8]) -> [UInt8] { [field, UInt8(bytes.count)] + bytes }
        let spans = wrap(0x12, span(trace: Array(repeating: 0, count: 16), id: Array(repeating: 1, count: 8)))
            + wrap(0x12, span(trace: Array(repeating: 1, count: 16), id: [1, 2, 3, 4]))
            + wrap(0x12, span(trace: Array(repeating: 1, count: 16), id: Array(repeating: 2, count: 8)))
        let request = wrap(0x0a, wrap(0x12, spans)) + [0x98, 0x06, 0x01]
        let decoded = try OTLPDecoder.decodeProtobuf(request)
        #expect(decoded.rejected == 2)
        #expect(decoded.spans.map(\.spanID) == ["0202020202020202"])
        let badJSON = try OTLPDecoder.decodeJSON(Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"1"}]}]}]}"#.utf8))
        #expect(badJSON.rejected == 1 && badJSON.spans.isEmpty)
    }

    @Test func malformedInputThrowsNeverCrashes() throws {
        let whole = try Self.fixture("trace.pb")
        // Every truncation of a valid request either decodes (a cut at a field boundary) or throws.
        for length in 0..<whole.count {
            _ = try? OTLPDecoder.decodeProtobuf(Array(whole[0..<length]))
        }
        #expect(throws: OTLPDecoder.Malformed.self) { try OTLPDecoder.decodeProtobuf(Array(whole.dropLast(3))) }
        #expect(throws: OTLPDecoder.Malformed.self) { try OTLPDecoder.decodeProtobuf([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) }
        #expect(throws: OTLPDecoder.Malformed.self) { try OTLPDecoder.decodeProtobuf([0x0b]) }  // wire type 3: a group
        #expect(throws: OTLPDecoder.Malformed.self) { try OTLPDecoder.decodeProtobuf(Array(repeating: 0xff, count: 11)) }
        #expect(throws: OTLPDecoder.Malformed.self) { try OTLPDecoder.decodeJSON(Array("{\"resourceSpans\":[".utf8)) }
    }
}
