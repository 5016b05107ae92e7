/// A small JSON parser (RFC 8259, plus `//` line comments so rule files can explain themselves) that
/// remembers the line of every value, so that a rule file's mistakes can be reported as `file:line: reason`.
indirect enum LineJSON {
    case object([(key: String, value: LineJSON, line: Int)], line: Int)
    case array([LineJSON], line: Int)
    case string(String, line: Int)
    case number(Double, line: Int)
    case bool(Bool, line: Int)
    case null(line: Int)

    struct SyntaxError: Error {
        let line: Int
        let reason: String
    }

    var line: Int {
        switch self {
        case .object(_, let line), .array(_, let line), .string(_, let line), .number(_, let line), .bool(_, let line), .null(let line):
            line
        }
    }

    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> LineJSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.value()
        parser.skipSpace()
        guard parser.at == bytes.count else { throw SyntaxError(line: parser.line, reason: "unexpected text after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0
        var line = 1

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case UInt8(ascii: "\n"): line += 1; at += 1
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): at += 1
                case UInt8(ascii: "/") where at + 1 < bytes.count && bytes[at + 1] == UInt8(ascii: "/"):
                    while at < bytes.count && bytes[at] != UInt8(ascii: "\n") { at += 1 }
                default: return
                }
            }
        }

        func fail(_ reason: String) -> SyntaxError { SyntaxError(line: line, reason: reason) }

        mutating func value() throws(SyntaxError) -> LineJSON {
            skipSpace()
            guard at < bytes.count else { throw fail("unexpected end of file") }
            let start = line
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var members: [(key: String, value: LineJSON, line: Int)] = []
                skipSpace()
                if at < bytes.count && bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members, line: start) }
                while true {
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                    let keyLine = line
                    let key = try string()
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':' after \"\(key)\"") }
                    at += 1
                    members.append((key, try value(), keyLine))
                    skipSpace()
                    guard at < bytes.count else { throw fail("unexpected end of file in an object") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members, line: start) }
                    throw fail("expected ',' or '}' in an object")
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [LineJSON] = []
                skipSpace()
                if at < bytes.count && bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items, line: start) }
                while true {
                    items.append(try value())
                    skipSpace()
                    guard at < bytes.count else { throw fail("unexpected end of file in an array") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items, line: start) }
                    throw fail("expected ',' or ']' in an array")
                }
            case UInt8(ascii: "\""):
                return .string(try string(), line: start)
            case UInt8(ascii: "t"): try literal("true"); return .bool(true, line: start)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false, line: start)
            case UInt8(ascii: "n"): try literal("null"); return .null(line: start)
            default:
                return .number(try number(), line: start)
            }
        }

        mutating func literal(_ word: String) throws(SyntaxError) {
            let expected = Array(word.utf8)
            guard at + expected.count <= bytes.count, Array(bytes[at..<at + expected.count]) == expected else {
                throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[at])))'")
            }
            at += expected.count
        }

        mutating func number() throws(SyntaxError) -> Double {
            let start = at
            var integral = true
            scan: while at < bytes.count {
                switch bytes[at] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): at += 1
                case UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): integral = false; at += 1
                default: break scan
                }
            }
            // Whole numbers of up to 15 digits (sequence numbers, offsets, sizes: nearly every number in a
            // capture line) are summed up directly, exactly; the rest go through Double's own parser.
            let negative = at > start && bytes[start] == UInt8(ascii: "-")
            let digits = bytes[(negative ? start + 1 : start)..<at]
            if integral, (1...15).contains(digits.count), !digits.contains(UInt8(ascii: "-")) {
                let magnitude = digits.reduce(0) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
                return Double(negative ? -magnitude : magnitude)
            }
            guard at > start, let value = Double(String(decoding: bytes[start..<at], as: UTF8.self)) else {
                throw fail(at < bytes.count ? "unexpected character '\(Character(Unicode.Scalar(bytes[at])))'" : "unexpected end of file")
            }
            return value
        }

        mutating func string() throws(SyntaxError) -> String {
            at += 1
            // Most strings have no escapes: made straight from the bytes between the quotes.
            var end = at
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] != 0x0A { end += 1 }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                defer { at = end + 1 }
                return String(decoding: bytes[at..<end], as: UTF8.self)
            }
            var out = Array(bytes[at..<end])
            at = end
            while at < bytes.count {
                let byte = bytes[at]
                at += 1
                switch byte {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard at < bytes.count else { break }
                    let escape = bytes[at]
                    at += 1
                    switch escape {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        // Outside the Basic Multilingual Plane, JSON writes a UTF-16 surrogate pair
                        // (Python's json.dumps does for every emoji).
                        if (0xD800...0xDBFF).contains(code), at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                            at += 2
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("bad \\u surrogate pair") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw fail("bad \\u escape") }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: out.append(escape)
                    }
                case 0x0A: throw fail("line break inside a string")
                default: out.append(byte)
                }
            }
            throw fail("unterminated string")
        }

        /// Four hex digits after `\u`.
        mutating func hex4() throws(SyntaxError) -> UInt32 {
            guard at + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            at += 4
            return code
        }
    }
}

extension LineJSON {
    /// The value at a dotted path (`user.role`, `items.0.id`), or nil.
    func value(at path: String) -> LineJSON? {
        var current = self
        for key in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case .object(let members, _):
                guard let member = members.last(where: { $0.key == key }) else { return nil }
                current = member.value
            case .array(let items, _):
                guard let index = Int(key), items.indices.contains(index) else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }
}

/// A JSON value without line numbers, for comparing: objects compare as maps, numbers by value.
public indirect enum JSONValue: Sendable, Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(_ json: LineJSON) {
        switch json {
        case .object(let members, _): self = .object(Dictionary(members.map { ($0.key, JSONValue($0.value)) }, uniquingKeysWith: { _, last in last }))
        case .array(let items, _): self = .array(items.map(JSONValue.init))
        case .string(let text, _): self = .string(text)
        case .number(let number, _): self = .number(number)
        case .bool(let flag, _): self = .bool(flag)
        case .null: self = .null
        }
    }

    /// Where two values first differ, as a dotted path with both values (`order: 2 vs 1`); nil when equal.
    func firstDifference(from other: JSONValue) -> String? {
        differences(from: other, limit: 1).first.map { "\($0.path): \($0.this) vs \($0.other)" }
    }

    /// Up to `limit` places where the values differ: dotted path (`body` for the whole value), this value,
    /// the other. Objects compare member by member, arrays by position, numbers by value.
    func differences(from other: JSONValue, limit: Int) -> [(path: String, this: String, other: String)] {
        var found: [(path: String, this: String, other: String)] = []
        collectDifferences(from: other, at: "", limit: limit, into: &found)
        return found
    }

    private func collectDifferences(from other: JSONValue, at path: String, limit: Int, into found: inout [(path: String, this: String, other: String)]) {
        guard found.count < limit else { return }
        func inner(_ key: String) -> String { path.isEmpty ? key : path + "." + key }
        switch (self, other) {
        case (.object(let a), .object(let b)):
            for key in Set(a.keys).union(b.keys).sorted() {
                guard let left = a[key], let right = b[key] else {
                    found.append((inner(key), a[key] == nil ? "(absent)" : a[key]!.short, b[key] == nil ? "(absent)" : b[key]!.short))
                    if found.count >= limit { return }
                    continue
                }
                left.collectDifferences(from: right, at: inner(key), limit: limit, into: &found)
            }
        case (.array(let a), .array(let b)):
            for (index, pair) in zip(a, b).enumerated() {
                pair.0.collectDifferences(from: pair.1, at: inner("\(index)"), limit: limit, into: &found)
            }
            if a.count != b.count && found.count < limit { found.append((path.isEmpty ? "array" : path, "\(a.count) items", "\(b.count) items")) }
        default:
            if self != other { found.append((path.isEmpty ? "body" : path, short, other.short)) }
        }
    }

    private var short: String {
        switch self {
        case .string(let text): "\"\(text.prefix(40))\""
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
        case .bool(let flag): String(flag)
        case .null: "null"
        case .object: "{...}"
        case .array: "[...]"
        }
    }

    /// The same value without the member at each dotted path.
    func removing(_ paths: [String]) -> JSONValue {
        paths.reduce(self) { $0.removing(path: $1.split(separator: ".").map(String.init)[...]) }
    }

    private func removing(path: ArraySlice<String>) -> JSONValue {
        guard let key = path.first else { return self }
        switch self {
        case .object(var members):
            if path.count == 1 { members[key] = nil } else if let inner = members[key] { members[key] = inner.removing(path: path.dropFirst()) }
            return .object(members)
        case .array(let items):
            // `*` applies to every element, so `items.*.id` ignores each item's id.
            if key == "*" { return .array(items.map { $0.removing(path: path.dropFirst()) }) }
            guard let index = Int(key), items.indices.contains(index) else { return self }
            var copy = items
            if path.count == 1 { copy.remove(at: index) } else { copy[index] = items[index].removing(path: path.dropFirst()) }
            return .array(copy)
        default:
            return self
        }
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard needle.count <= count else { return false }
        for start in 0...(count - needle.count) where self[start] == needle[0] && self[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }
}
