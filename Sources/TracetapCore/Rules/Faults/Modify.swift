/// Set or remove request or response headers, replace the response status.
struct Modify: Fault {
    static let type = "modify"
    static let keys = ["request", "response", "status"]
    let request: HeaderEdits
    let response: HeaderEdits
    let status: Int?

    init(_ fields: RuleFields) throws(RuleError) {
        request = try Modify.edits(fields.object("request", allowed: ["set", "remove"]))
        response = try Modify.edits(fields.object("response", allowed: ["set", "remove"]))
        status = try fields.int("status", range: 100...599)
        if request.isEmpty && response.isEmpty && status == nil { throw fields.error("modify needs \"request\", \"response\" or \"status\"") }
    }

    private static func edits(_ fields: RuleFields?) throws(RuleError) -> HeaderEdits {
        guard let fields else { return HeaderEdits() }
        return HeaderEdits(assignments: try fields.strings("set").map { (name: $0.0, value: $0.1) }, removals: try fields.stringList("remove"))
    }

    /// Not offered as a header: its settings do not fit in one value.
    init?(headerValue: String) { nil }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.requestEdits.merge(request)
        plan.responseEdits.merge(response)
        if let status { plan.status = status }
    }

    var description: String {
        var parts: [String] = []
        if !request.isEmpty { parts.append("request headers") }
        if !response.isEmpty { parts.append("response headers") }
        if let status { parts.append("status \(status)") }
        return "modify " + parts.joined(separator: ", ")
    }
}
