/// What the database leg reads in SQL text: the sqlcommenter comment that carries a `traceparent`, the
/// statements of a multi-statement query, and literals to mask before SQL is stored.
enum SQLText {
    /// The `/*key='value',...*/` comment at the end of a statement (before one trailing `;`), or at its
    /// start (Rails can prepend it); its pairs URL-decoded, and the SQL without it.
    static func comment(_ sql: String) -> (pairs: [String: String], sql: String) {
        guard sql.utf8.contains(UInt8(ascii: "*")) else { return ([:], sql) }
        var text = Substring(sql).trimmingCharacters(in: .whitespacesAndNewlines)
        var semicolon = ""
        if text.hasSuffix(";") {
            text.removeLast()
            text = text.trimmingCharacters(in: .whitespaces)
            semicolon = ";"
        }
        // The delimiters may overlap (`/*/`): a comment needs its `/*` to end before its `*/` starts.
        let closing = text.index(text.endIndex, offsetBy: -2, limitedBy: text.startIndex) ?? text.startIndex
        if text.hasSuffix("*/"), let open = text.range(of: "/*", options: .backwards, range: text.startIndex..<closing) {
            let body = text[open.upperBound..<text.index(text.endIndex, offsetBy: -2)]
            let pairs = parsePairs(String(body))
            if !pairs.isEmpty { return (pairs, text[..<open.lowerBound].trimmingCharacters(in: .whitespaces) + semicolon) }
        }
        let opened = text.index(text.startIndex, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
        if text.hasPrefix("/*"), let close = text.range(of: "*/", range: opened..<text.endIndex) {
            let pairs = parsePairs(String(text[text.index(text.startIndex, offsetBy: 2)..<close.lowerBound]))
            if !pairs.isEmpty { return (pairs, text[close.upperBound...].trimmingCharacters(in: .whitespaces) + semicolon) }
        }
        return ([:], sql)
    }

    /// `a='1',traceparent='00-…'`: split on commas outside quotes, values unquoted (`\'` unescaped) and
    /// percent-decoded (`%%`, which DB-API drivers leave, as `%`). Anything that is not a pair: none.
    private static func parsePairs(_ body: String) -> [String: String] {
        var pairs: [String: String] = [:]
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in body {
            if escaped { escaped = false; current.append(character); continue }
            if character == "\\" { escaped = true; current.append(character); continue }
            if character == "'" { quoted.toggle() }
            if character == "," && !quoted { parts.append(current); current = ""; continue }
            current.append(character)
        }
        parts.append(current)
        for part in parts {
            guard let equals = part.firstIndex(of: "=") else { return [:] }
            let key = part[..<equals].trimmingCharacters(in: .whitespaces)
            var value = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("'"), value.hasSuffix("'"), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            value = value.replacingOccurrences(of: "\\'", with: "'")
            guard !key.isEmpty else { return [:] }
            pairs[percentDecoded(key)] = percentDecoded(value)
        }
        return pairs
    }

    private static func percentDecoded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == 37 {
                if index + 1 < bytes.count && bytes[index + 1] == 37 { out.append(37); index += 2; continue }
                if index + 2 < bytes.count, let value = UInt8(String(decoding: bytes[index + 1...index + 2], as: UTF8.self), radix: 16) {
                    out.append(value)
                    index += 3
                    continue
                }
            }
            out.append(bytes[index])
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The statements of a simple query, split at semicolons outside quotes, comments and dollar quotes.
    static func statements(_ sql: String) -> [String] {
        let bytes = Array(sql.utf8)
        guard let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) else { return [sql] }
        // The usual case: one statement ending in `;` (pgbench, psql).
        if trimmed(bytes, semicolon + 1..<bytes.count).isEmpty, !bytes[..<semicolon].contains(where: { $0 == UInt8(ascii: "'") || $0 == UInt8(ascii: "$") }) {
            return [String(decoding: bytes[trimmed(bytes, 0..<semicolon)], as: UTF8.self)]
        }
        var parts: [String] = []
        var start = 0
        func flush(_ end: Int) {
            let range = trimmed(bytes, start..<end)
            if !range.isEmpty { parts.append(String(decoding: bytes[range], as: UTF8.self)) }
        }
        scan(bytes) { range, kind in
            if kind == .code, bytes[range.lowerBound] == UInt8(ascii: ";") {
                flush(range.lowerBound)
                start = range.upperBound
            }
        }
        flush(bytes.count)
        return parts.isEmpty ? [sql] : parts
    }

    /// `range` without leading and trailing ASCII whitespace.
    private static func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        func space(_ byte: UInt8) -> Bool { byte == 32 || (byte >= 9 && byte <= 13) }
        while lower < upper && space(bytes[lower]) { lower += 1 }
        while upper > lower && space(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    /// Line breaks and tabs as single spaces: a statement on one line.
    static func oneLine(_ sql: String) -> String {
        guard sql.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 9 }) else { return sql }
        return String(decoding: sql.utf8.map { $0 == 10 || $0 == 13 || $0 == 9 ? 32 : $0 }, as: UTF8.self)
    }

    /// String and numeric literals replaced by `?`, so stored SQL holds no values (the extended
    /// protocol's parameters travel in Bind and are never read).
    static func masked(_ sql: String) -> String {
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        scan(bytes) { range, kind in
            let first = bytes[range.lowerBound]
            let before = range.lowerBound > 0 ? bytes[range.lowerBound - 1] : 32
            let inWord = isWordByte(before) || before == UInt8(ascii: "$")
            switch kind {
            case .string: out.append(UInt8(ascii: "?"))
            case .code where isDigit(first) && !inWord: out.append(UInt8(ascii: "?"))
            default: out.append(contentsOf: bytes[range])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    enum PieceKind { case code, string, quotedIdentifier, comment }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    private static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 97 && (byte | 0x20) <= 122 || byte >= 0x80 }
    private static func isWordByte(_ byte: UInt8) -> Bool { isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "_") }

    /// Walks SQL's UTF-8 in pieces: quoted strings (`'…'`, `E'…'`, `$tag$…$tag$`), quoted identifiers,
    /// comments, and code, where a run of digits (with `.`) is one piece and every other byte its own.
    private static func scan(_ b: [UInt8], _ visit: (Range<Int>, PieceKind) -> Void) {
        /// The index just past the first `end` at or after `from`, or the end of the text.
        func past(_ end: [UInt8], from: Int) -> Int {
            var at = from
            while at + end.count <= b.count {
                if b[at] == end[0] && (end.count == 1 || b[at..<at + end.count].elementsEqual(end)) { return at + end.count }
                at += 1
            }
            return b.count
        }
        let quote = UInt8(ascii: "'"), dollar = UInt8(ascii: "$")
        var index = 0
        while index < b.count {
            let byte = b[index]
            let next: UInt8 = index + 1 < b.count ? b[index + 1] : 0
            var end = index + 1
            var kind = PieceKind.code
            let escapeString = (byte | 0x20) == UInt8(ascii: "e") && next == quote && (index == 0 || !isWordByte(b[index - 1]))
            if byte == quote || escapeString {
                kind = .string
                end = byte == quote ? index + 1 : index + 2
                while end < b.count {
                    if b[end] == UInt8(ascii: "\\") && escapeString { end += 2; continue }
                    if b[end] == quote {
                        if end + 1 < b.count && b[end + 1] == quote { end += 2; continue }
                        end += 1
                        break
                    }
                    end += 1
                }
            } else if byte == UInt8(ascii: "\"") {
                kind = .quotedIdentifier
                end = past([UInt8(ascii: "\"")], from: index + 1)
            } else if byte == UInt8(ascii: "-") && next == UInt8(ascii: "-") {
                kind = .comment
                end = past([10], from: index)
            } else if byte == UInt8(ascii: "/") && next == UInt8(ascii: "*") {
                kind = .comment
                end = past([UInt8(ascii: "*"), UInt8(ascii: "/")], from: index + 2)
            } else if byte == dollar, let close = b[(index + 1)...].firstIndex(where: { !(isLetter($0) || $0 == UInt8(ascii: "_")) }), b[close] == dollar {
                kind = .string
                end = past(Array(b[index...close]), from: close + 1)
            } else if isDigit(byte) {
                while end < b.count && (isDigit(b[end]) || b[end] == UInt8(ascii: ".")) { end += 1 }
            }
            end = min(end, b.count)
            visit(index..<end, kind)
            index = end
        }
    }
}
