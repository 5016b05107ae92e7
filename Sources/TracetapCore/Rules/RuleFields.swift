/// One JSON object of a rule file, read key by key: every mistake names the file and the line of the value.
struct RuleFields {
    let file: String
    let line: Int
    private let members: [String: LineJSON]

    /// Refuses keys outside `allowed` (`comment` is always allowed), so a typo is an error, not a silent no-op.
    init(_ value: LineJSON, file: String, allowed: [String]) throws(RuleError) {
        self.file = file
        line = value.line
        guard case .object(let list, _) = value else { throw RuleError(file: file, line: value.line, reason: "expected an object") }
        var members: [String: LineJSON] = [:]
        for member in list {
            guard member.key == "comment" || allowed.contains(member.key) else {
                throw RuleError(file: file, line: member.line, reason: "unknown key \"\(member.key)\" (expected one of \(allowed.sorted().joined(separator: ", ")))")
            }
            members[member.key] = member.value
        }
        self.members = members
    }

    subscript(key: String) -> LineJSON? { members[key] }

    func error(_ reason: String, at key: String? = nil) -> RuleError {
        RuleError(file: file, line: key.flatMap { members[$0]?.line } ?? line, reason: reason)
    }

    func string(_ key: String) throws(RuleError) -> String? {
        guard let value = members[key] else { return nil }
        guard case .string(let text, _) = value else { throw error("\(key) must be a string", at: key) }
        return text
    }

    func int(_ key: String, range: ClosedRange<Int>) throws(RuleError) -> Int? {
        guard let value = members[key] else { return nil }
        guard case .number(let number, _) = value, let whole = Int(exactly: number), range.contains(whole) else {
            throw error("\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: key)
        }
        return whole
    }

    func required(_ key: String, range: ClosedRange<Int>, for what: String) throws(RuleError) -> Int {
        guard let value = try int(key, range: range) else { throw error("\(what) needs \"\(key)\"") }
        return value
    }

    func number(_ key: String, range: ClosedRange<Double>) throws(RuleError) -> Double? {
        guard let value = members[key] else { return nil }
        guard case .number(let number, _) = value, range.contains(number) else {
            throw error("\(key) must be a number from \(range.lowerBound) to \(range.upperBound)", at: key)
        }
        return number
    }

    /// One of a fixed set of words; the first is the default.
    func choice(_ key: String, _ options: [String]) throws(RuleError) -> String {
        guard let text = try string(key) else { return options[0] }
        guard options.contains(text) else {
            throw error("\(key) must be one of \(options.map { "\"\($0)\"" }.joined(separator: ", "))", at: key)
        }
        return text
    }

    /// An object whose values are all strings, members in file order.
    func strings(_ key: String) throws(RuleError) -> [(String, String)] {
        guard let value = members[key] else { return [] }
        guard case .object(let list, _) = value else { throw error("\(key) must be an object of strings", at: key) }
        var result: [(String, String)] = []
        for member in list {
            guard case .string(let text, _) = member.value else {
                throw RuleError(file: file, line: member.line, reason: "\(key).\(member.key) must be a string")
            }
            result.append((member.key, text))
        }
        return result
    }

    func stringList(_ key: String) throws(RuleError) -> [String] {
        guard let value = members[key] else { return [] }
        guard case .array(let items, _) = value else { throw error("\(key) must be an array of strings", at: key) }
        var result: [String] = []
        for item in items {
            guard case .string(let text, _) = item else { throw RuleError(file: file, line: item.line, reason: "\(key) must hold strings") }
            result.append(text)
        }
        return result
    }

    func object(_ key: String, allowed: [String]) throws(RuleError) -> RuleFields? {
        guard let value = members[key] else { return nil }
        return try RuleFields(value, file: file, allowed: allowed)
    }
}
