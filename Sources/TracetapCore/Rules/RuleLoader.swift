import Foundation

/// Reads rule files: `{"rules": [...]}` in every `*.json` of a folder, in file-name order, rules in file
/// order. Every mistake names its file and line.
public enum RuleLoader {
    /// What a temporary rule (added through the admin API) gives as its file.
    static let adminFile = "(admin API)"
    public static func load(directory: String) throws(RuleError) -> [Rule] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var rules: [Rule] = []
        for name in names { rules += try load(file: directory + "/" + name) }
        var seen: [String: String] = [:]
        for rule in rules {
            if let other = seen[rule.name] { throw RuleError(file: rule.file, line: 0, reason: "rule name '\(rule.name)' is also used in \(other)") }
            seen[rule.name] = rule.file
        }
        return rules
    }

    /// A signature of the folder's rule files (names, sizes, modification times): reload when it changes.
    public static func signature(directory: String) -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        return names.map { name in
            var info = stat()
            _ = stat(directory + "/" + name, &info)
            return "\(name):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }.joined(separator: "|")
    }

    public static func load(file: String) throws(RuleError) -> [Rule] {
        guard let data = FileManager.default.contents(atPath: file) else { throw RuleError(file: file, line: 0, reason: "cannot read the file") }
        return try parse([UInt8](data), file: file)
    }

    /// The rules of one file's bytes; `file` names it in errors.
    static func parse(_ bytes: [UInt8], file: String) throws(RuleError) -> [Rule] {
        let root: LineJSON
        do throws(LineJSON.SyntaxError) { root = try LineJSON.parse(bytes) } catch {
            throw RuleError(file: file, line: error.line, reason: error.reason)
        }
        let top = try RuleFields(root, file: file, allowed: ["rules"])
        guard let list = top["rules"] else { throw RuleError(file: file, line: root.line, reason: "expected {\"rules\": [...]}") }
        guard case .array(let items, _) = list else { throw top.error("\"rules\" must be an array", at: "rules") }
        var rules: [Rule] = []
        for item in items { rules.append(try rule(item, file: file)) }
        return rules
    }

    static func rule(_ value: LineJSON, file: String) throws(RuleError) -> Rule {
        let fields = try RuleFields(value, file: file, allowed: ["name", "match", "faults", "probability", "every", "after", "limit", "enabled"])
        guard let name = try fields.string("name"), !name.isEmpty else { throw fields.error("a rule needs a \"name\"") }
        var match = RuleMatch()
        if let m = try fields.object("match", allowed: ["method", "path", "path_regex", "query", "headers", "body", "sql"]) {
            match.sql = try m.string("sql")
            if match.sql != nil, let other = ["method", "path", "path_regex", "query", "headers", "body"].first(where: { m[$0] != nil }) {
                throw m.error("a rule on database statements matches on \"sql\" only, not \"\(other)\"", at: other)
            }
            match.method = try m.string("method")
            match.path = try m.string("path")
            match.pathRegex = try m.string("path_regex")
            match.query = Dictionary(try m.strings("query"), uniquingKeysWith: { _, last in last })
            match.headers = Dictionary(try m.strings("headers").map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { _, last in last })
            if case .string(let text, _)? = m["body"] {
                match.bodyContains = text
            } else if let body = try m.object("body", allowed: ["contains", "json"]) {
                match.bodyContains = try body.string("contains")
                if case .object(let members, _)? = body["json"] {
                    match.bodyJSON = members.map { (path: $0.key, value: JSONValue($0.value)) }
                } else if body["json"] != nil {
                    throw body.error("body.json must be an object of dotted paths and values", at: "json")
                }
            }
        }
        guard let faultsValue = fields["faults"], case .array(let faultItems, _) = faultsValue, !faultItems.isEmpty else {
            throw fields.error("rule \"\(name)\" needs a non-empty \"faults\" array")
        }
        var faults: [any Fault] = []
        for item in faultItems {
            let fault = try fault(item, file: file)
            let forDatabase = FaultTypes.database.contains { $0 == type(of: fault) }
            if match.sql != nil && !forDatabase {
                throw RuleError(file: file, line: item.line, reason: "\"\(fault.kind)\" does not apply to database statements (delay, timeout and sql_error do)")
            }
            if match.sql == nil && fault is SQLError {
                throw RuleError(file: file, line: item.line, reason: "sql_error needs a rule that matches database statements (\"match\": {\"sql\": \"UPDATE stock*\"})")
            }
            faults.append(fault)
        }
        let enabled: Bool
        switch fields["enabled"] {
        case nil: enabled = true
        case .bool(let flag, _)?: enabled = flag
        default: throw fields.error("enabled must be true or false", at: "enabled")
        }
        do throws(RuleError) {
            return try Rule(name: name, file: file, match: match, faults: faults,
                            probability: try fields.number("probability", range: 0...1) ?? 1,
                            every: try fields.int("every", range: 1...1_000_000) ?? 1,
                            after: try fields.int("after", range: 0...1_000_000_000) ?? 0,
                            limit: try fields.int("limit", range: 0...1_000_000_000), enabled: enabled)
        } catch {
            throw RuleError(file: file, line: error.line > 0 ? error.line : (fields["match"]?.line ?? value.line), reason: error.reason)
        }
    }

    static func fault(_ value: LineJSON, file: String) throws(RuleError) -> any Fault {
        guard case .object(let members, _) = value, let typeValue = members.first(where: { $0.key == "type" })?.value,
              case .string(let name, _) = typeValue else { throw RuleError(file: file, line: value.line, reason: "a fault needs a \"type\"") }
        guard let type = FaultTypes.named(name) else {
            throw RuleError(file: file, line: value.line,
                            reason: "unknown fault type \"\(name)\" (expected one of \(FaultTypes.all.map { $0.type }.joined(separator: ", ")))")
        }
        return try type.init(RuleFields(value, file: file, allowed: ["type"] + type.keys))
    }
}
