import Foundation

/// Reads rule files: `{"rules": [...]}` in every `*.json` of a folder, in file-name order, rules in file
/// order. Every mistake names its file and line.
public enum RuleLoader {
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
        let root: LineJSON
        do throws(LineJSON.SyntaxError) { root = try LineJSON.parse([UInt8](data)) } catch {
            throw RuleError(file: file, line: error.line, reason: error.reason)
        }
        let reader = Reader(file: file)
        let top = try reader.object(root, allowed: ["rules", "comment"])
        guard let list = top["rules"] else { throw RuleError(file: file, line: root.line, reason: "expected {\"rules\": [...]}") }
        guard case .array(let items, _) = list else { throw reader.error(list, "\"rules\" must be an array") }
        var rules: [Rule] = []
        for item in items { rules.append(try reader.rule(item)) }
        return rules
    }

    private struct Reader {
        let file: String

        func error(_ value: LineJSON, _ reason: String) -> RuleError { RuleError(file: file, line: value.line, reason: reason) }

        func object(_ value: LineJSON, allowed: Set<String>) throws(RuleError) -> [String: LineJSON] {
            guard case .object(let members, _) = value else { throw error(value, "expected an object") }
            var result: [String: LineJSON] = [:]
            for member in members {
                guard allowed.contains(member.key) else {
                    throw RuleError(file: file, line: member.line, reason: "unknown key \"\(member.key)\" (expected one of \(allowed.sorted().joined(separator: ", ")))")
                }
                result[member.key] = member.value
            }
            return result
        }

        func string(_ value: LineJSON?, _ what: String) throws(RuleError) -> String? {
            guard let value else { return nil }
            guard case .string(let text, _) = value else { throw error(value, "\(what) must be a string") }
            return text
        }

        func int(_ value: LineJSON?, _ what: String, range: ClosedRange<Int>) throws(RuleError) -> Int? {
            guard let value else { return nil }
            guard case .number(let number, _) = value, number == number.rounded(), range.contains(Int(exactly: number) ?? -1) else {
                throw error(value, "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(number)
        }

        func strings(_ value: LineJSON?, _ what: String) throws(RuleError) -> [String: String] {
            guard let value else { return [:] }
            guard case .object(let members, _) = value else { throw error(value, "\(what) must be an object of strings") }
            var result: [String: String] = [:]
            for member in members {
                guard case .string(let text, _) = member.value else { throw error(member.value, "\(what).\(member.key) must be a string") }
                result[member.key] = text
            }
            return result
        }

        func rule(_ value: LineJSON) throws(RuleError) -> Rule {
            let fields = try object(value, allowed: ["name", "match", "faults", "probability", "every", "after", "limit", "comment"])
            guard let name = try string(fields["name"], "name"), !name.isEmpty else { throw error(value, "a rule needs a \"name\"") }
            var match = RuleMatch()
            if let matchValue = fields["match"] {
                let m = try object(matchValue, allowed: ["method", "path", "path_regex", "query", "headers", "body"])
                if let body = m["body"] { throw error(body, "matching on the body is not supported yet") }
                match.method = try string(m["method"], "match.method")
                match.path = try string(m["path"], "match.path")
                match.pathRegex = try string(m["path_regex"], "match.path_regex")
                match.query = try strings(m["query"], "match.query")
                match.headers = Dictionary(uniqueKeysWithValues: try strings(m["headers"], "match.headers").map { ($0.key.lowercased(), $0.value) })
            }
            guard let faultsValue = fields["faults"], case .array(let faultItems, _) = faultsValue, !faultItems.isEmpty else {
                throw error(value, "rule \"\(name)\" needs a non-empty \"faults\" array")
            }
            var faults: [Fault] = []
            for item in faultItems { faults.append(try fault(item)) }
            var probability = 1.0
            if let p = fields["probability"] {
                guard case .number(let number, _) = p, (0...1).contains(number) else { throw error(p, "probability must be a number from 0 to 1") }
                probability = number
            }
            do throws(RuleError) {
                return try Rule(name: name, file: file, match: match, faults: faults, probability: probability,
                                every: try int(fields["every"], "every", range: 1...1_000_000) ?? 1,
                                after: try int(fields["after"], "after", range: 0...1_000_000_000) ?? 0,
                                limit: try int(fields["limit"], "limit", range: 0...1_000_000_000))
            } catch {
                throw RuleError(file: file, line: error.line > 0 ? error.line : (fields["match"]?.line ?? value.line), reason: error.reason)
            }
        }

        func fault(_ value: LineJSON) throws(RuleError) -> Fault {
            guard case .object(let members, _) = value, let typeValue = members.first(where: { $0.key == "type" })?.value,
                  case .string(let type, _) = typeValue else { throw error(value, "a fault needs a \"type\"") }
            switch type {
            case "delay":
                let f = try object(value, allowed: ["type", "ms", "jitter", "comment"])
                guard let ms = try int(f["ms"], "delay.ms", range: 0...3_600_000) else { throw error(value, "delay needs \"ms\"") }
                return .delay(ms: ms, jitterMs: try int(f["jitter"], "delay.jitter", range: 0...3_600_000) ?? 0)
            case "abort":
                let f = try object(value, allowed: ["type", "status", "body", "comment"])
                return .abort(status: try int(f["status"], "abort.status", range: 100...599) ?? 503,
                              body: try string(f["body"], "abort.body") ?? "")
            case "timeout":
                let f = try object(value, allowed: ["type", "ms", "action", "comment"])
                guard let ms = try int(f["ms"], "timeout.ms", range: 0...3_600_000) else { throw error(value, "timeout needs \"ms\"") }
                let action = try string(f["action"], "timeout.action") ?? "504"
                guard action == "504" || action == "close" else { throw error(value, "timeout.action must be \"504\" or \"close\"") }
                return .timeout(ms: ms, respond: action == "504")
            case "reset", "throttle", "slice", "duplicate", "modify":
                throw error(value, "fault type \"\(type)\" is not supported yet (supported: delay, abort, timeout)")
            default:
                throw error(value, "unknown fault type \"\(type)\"")
            }
        }
    }
}
