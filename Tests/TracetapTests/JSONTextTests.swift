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

    @Test func escapesAreTheShortForms() {
        #expect(JSONText.quote("a\"b\\c\nd\u{1}e/ü") == #""a\"b\\c\nd\u0001e/ü""#)
        #expect(JSONText.quote("\u{1f}") == #""\u001f""#)
    }
}
