/// `/api/rules`: the rules in force with their counters, switched on and off, and temporary rules added
/// and removed without touching the files.
///
///     GET    /api/rules                  the rules, in order, with matched/applied counts
///     POST   /api/rules                  body: one rule object, as in a rule file; added after the files' rules
///     DELETE /api/rules/NAME             removes a temporary rule
///     POST   /api/rules/NAME/enable      (or /disable) until the rule's file changes
struct RulesAPI {
    typealias Reply = AdminAPI.Reply
    let book: RuleBook?

    func respond(method: String, path: String, body: [UInt8]) -> Reply {
        guard let book else { return Reply(status: 409, json: AdminAPI.errorJSON("fault rules are off (--no-rules)")) }
        let parts = path.split(separator: "/").dropFirst(2).map(String.init)
        switch (method, parts.count) {
        case ("GET", 0):
            return Reply(status: 200, json: listJSON(book))
        case ("POST", 0):
            return add(body, to: book)
        case ("DELETE", 1):
            return book.removeTemporary(named: parts[0])
                ? Reply(status: 200, json: listJSON(book))
                : Reply(status: 404, json: AdminAPI.errorJSON("no temporary rule named '\(parts[0])' (rules from files are changed in their files)"))
        case ("POST", 2) where parts[1] == "enable" || parts[1] == "disable":
            guard let rule = book.rules.first(where: { $0.name == parts[0] }) else {
                return Reply(status: 404, json: AdminAPI.errorJSON("no rule named '\(parts[0])'"))
            }
            rule.enabled.store(parts[1] == "enable", ordering: .relaxed)
            return Reply(status: 200, json: ruleJSON(rule))
        default:
            return Reply(status: 405, json: AdminAPI.errorJSON("use GET or POST /api/rules, DELETE /api/rules/NAME, POST /api/rules/NAME/enable|disable"))
        }
    }

    private func add(_ body: [UInt8], to book: RuleBook) -> Reply {
        do throws(RuleError) {
            let json: LineJSON
            do throws(LineJSON.SyntaxError) { json = try LineJSON.parse(body) } catch {
                throw RuleError(file: "request body", line: error.line, reason: error.reason)
            }
            let rule = try RuleLoader.rule(json, file: RuleLoader.adminFile)
            try book.addTemporary(rule)
            return Reply(status: 201, json: ruleJSON(rule))
        } catch {
            return Reply(status: 400, json: AdminAPI.errorJSON(error.description))
        }
    }

    private func listJSON(_ book: RuleBook) -> String {
        "{\"directory\":\(book.directory.map(JSONText.quote) ?? "null"),\"seed\":\(book.seed),\"rules\":[\(book.rules.map(ruleJSON).joined(separator: ","))]}"
    }

    private func ruleJSON(_ rule: Rule) -> String {
        "{\"name\":\(JSONText.quote(rule.name)),\"file\":\(JSONText.quote(rule.file)),\"temporary\":\(rule.file == RuleLoader.adminFile),"
            + "\"enabled\":\(rule.isEnabled),\"match\":\(JSONText.quote(rule.match.description)),"
            + "\"faults\":[\(rule.faultDescriptions.map(JSONText.quote).joined(separator: ","))],"
            + "\"matched\":\(rule.matched.load(ordering: .relaxed)),\"applied\":\(rule.hits)}"
    }
}
