import Foundation
import Testing
@testable import TracetapCore

/// The JSON string literals the admin API and the spans file are written with.
@Suite struct JSONTextTests {
    @Test(arguments: ["", "plain text", "quote \" backslash \\ slash /", "lines\n\r\t", "controls \u{0}\u{1}\u{1f}\u{7f}",
                      "ünïcödé ✓ 🧵", "SELECT * FROM \"orders\" WHERE note = 'a\\b'"])
    func aQuotedStringReadsBackAsItself(text: String) throws {
        let quoted = JSONText.quote(text)
        let read = try JSONSerialization.jsonObject(with: Data(quoted.utf8), options: [.fragmentsAllowed]) as? String
        #expect(read == text, "\(quoted)")
    }

    @Test func textWithNothingToEscapeIsCopiedAndTheRestEscaped() {
        #expect(JSONText.quote("plain ünïcödé /") == "\"plain ünïcödé /\"")
        #expect(JSONText.quote("a\"b\\c\nd\u{1}e") == #""a\"b\\c\u000ad\u0001e""#)
    }
}

/// `spans.jsonl` lines, written byte by byte, read back as the same spans.
@Suite struct SpanLineTests {
    @Test func aSpanLineReadsBackAsTheSameSpan() throws {
        var span = Span(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", parentSpanID: "b7ad6b7169203331",
                        name: "SELECT \"note\" FROM orders WHERE a = '\\n'\nAND b = ?", kind: 3, startNanos: UInt64.max - 1, endNanos: UInt64.max,
                        statusCode: 2, statusMessage: "40001 could not serialize\taccess", service: "postgresql", source: .sql)
        span.attributes = [Span.Attribute("db.rows", .int(-42)), Span.Attribute("ok", .bool(true)), Span.Attribute("ratio", .double(0.25)),
                           Span.Attribute("weird", .double(.infinity)), Span.Attribute("text", .string("ünï \"q\" \u{1}")),
                           Span.Attribute("list", .structured("[1,2]"))]
        let line = SpanFile.line(span)
        #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any], "\(line)")
        let read = try #require(SpanFile.span(from: Array(line.utf8)))
        #expect(read.name == span.name && read.statusMessage == span.statusMessage && read.startNanos == span.startNanos && read.endNanos == span.endNanos)
        #expect(read.traceID == span.traceID && read.spanID == span.spanID && read.parentSpanID == span.parentSpanID && read.source == .sql)
        #expect(Array(read.attributes.prefix(3)) == Array(span.attributes.prefix(3)), "\(read.attributes)")
        #expect(read.attributes.dropFirst(4).first == span.attributes[4])
    }
}

/// Our JSON reader (rule files, OTLP/JSON, capture lines, body diffs).
@Suite struct LineJSONTests {
    @Test func stringsNumbersAndEscapesReadAsJSONSerializationReadsThem() throws {
        let text = #"{"plain":"abc","escaped":"a\"b\\c\nd\u00e9\ud83d\ude00","n":[0,-7,123456789012345,1234567890123456789,1.5,-2e3],"t":true,"z":null}"#
        let ours = JSONValue(try LineJSON.parse(Array(text.utf8)))
        let theirs = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(ours["plain"]?.text == "abc")
        #expect(ours["escaped"]?.text == theirs["escaped"] as? String && ours["escaped"]?.text == "a\"b\\c\nd\u{e9}😀")
        #expect(ours["n"]?.items.map { if case .number(let n) = $0 { n } else { .nan } } == [0, -7, 123456789012345, 1234567890123456789, 1.5, -2000])
        #expect(ours["t"] == .bool(true) && ours["z"] == .null)
    }

    @Test(arguments: [#"{"a":"line"#, "{\"a\":\"x\ny\"}", #"{"a":"\ud83d\u0041"}"#, #"{"a":-}"#, #"{"a":1-2}"#, #"{"a":1} x"#])
    func malformedTextIsRefused(text: String) {
        #expect(throws: LineJSON.SyntaxError.self) { try LineJSON.parse(Array(text.utf8)) }
    }
}
