/// What the database leg reads in SQL text: the sqlcommenter comment that carries a `traceparent`, the
/// statements of a multi-statement query, and literals to mask before SQL is stored.
enum SQLText {
    /// The `/*key='value',...*/` comment at the end of a statement (before one trailing `;`), or at its
    /// start (Rails can prepend it); its pairs URL-decoded, and the SQL without it.
    static func comment(_ sql: String) -> (pairs: [String: String], sql: String) {
        var text = Substring(sql).trimmingCharacters(in: .whitespacesAndNewlines)
        var semicolon = ""
        if text.hasSuffix(";") {
            text.removeLast()
            text = text.trimmingCharacters(in: .whitespaces)
            semicolon = ";"
        }
        if text.hasSuffix("*/"), let open = text.range(of: "/*", options: .backwards) {
            let body = text[open.upperBound..<text.index(text.endIndex, offsetBy: -2)]
            let pairs = parsePairs(String(body))
            if !pairs.isEmpty { return (pairs, text[..<open.lowerBound].trimmingCharacters(in: .whitespaces) + semicolon) }
        }
        if text.hasPrefix("/*"), let close = text.range(of: "*/") {
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
        var parts: [String] = []
        var current = ""
        scan(sql) { piece, kind in
            if kind == .code, piece == ";" {
                let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { parts.append(trimmed) }
                current = ""
            } else {
                current += piece
            }
        }
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { parts.append(trimmed) }
        return parts.isEmpty ? [sql] : parts
    }

    /// String and numeric literals replaced by `?`, so stored SQL holds no values (the extended
    /// protocol's parameters travel in Bind and are never read).
    static func masked(_ sql: String) -> String {
        var out = ""
        var previous: Character = " "
        scan(sql) { piece, kind in
            switch kind {
            case .string: out += "?"
            case .code where piece.first?.isNumber == true && !(previous.isLetter || previous == "_" || previous == "$" || previous.isNumber): out += "?"
            default: out += piece
            }
            previous = piece.last ?? previous
        }
        return out
    }

    enum PieceKind { case code, string, quotedIdentifier, comment }

    /// Walks SQL in pieces: quoted strings (`'…'`, `E'…'`, `$tag$…$tag$`), quoted identifiers, comments, and
    /// code, where a run of digits (with `.`) is one piece and every other character its own.
    private static func scan(_ sql: String, _ visit: (String, PieceKind) -> Void) {
        let characters = Array(sql)
        var index = 0
        func until(_ end: String, from start: Int) -> Int {
            let endCharacters = Array(end)
            var at = start
            while at + endCharacters.count <= characters.count {
                if Array(characters[at..<at + endCharacters.count]) == endCharacters { return at + endCharacters.count }
                at += 1
            }
            return characters.count
        }
        while index < characters.count {
            let character = characters[index]
            let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
            var end = index + 1
            var kind = PieceKind.code
            if character == "'" || ((character == "E" || character == "e") && next == "'" && (index == 0 || !characters[index - 1].isLetter)) {
                kind = .string
                end = character == "'" ? index + 1 : index + 2
                while end < characters.count {
                    if characters[end] == "\\" && character != "'" { end += 2; continue }
                    if characters[end] == "'" {
                        if end + 1 < characters.count && characters[end + 1] == "'" { end += 2; continue }
                        end += 1
                        break
                    }
                    end += 1
                }
            } else if character == "\"" {
                kind = .quotedIdentifier
                end = until("\"", from: index + 1)
            } else if character == "-" && next == "-" {
                kind = .comment
                end = until("\n", from: index)
            } else if character == "/" && next == "*" {
                kind = .comment
                end = until("*/", from: index + 2)
            } else if character == "$", let close = characters[(index + 1)...].firstIndex(of: "$"),
                      characters[(index + 1)..<close].allSatisfy({ $0.isLetter || $0 == "_" }) {
                let tag = String(characters[index...close])
                kind = .string
                end = until(tag, from: close + 1)
            } else if character.isNumber {
                while end < characters.count && (characters[end].isNumber || characters[end] == ".") { end += 1 }
            }
            visit(String(characters[index..<min(end, characters.count)]), kind)
            index = min(end, characters.count)
        }
    }
}
