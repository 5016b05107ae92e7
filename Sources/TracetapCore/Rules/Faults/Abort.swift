/// Answer a chosen status and body without calling the upstream.
struct Abort: Fault {
    static let type = "abort"
    static let keys = ["status", "body"]
    let status: Int
    let body: String

    init(_ fields: RuleFields) throws(RuleError) {
        status = try fields.int("status", range: 100...599) ?? 503
        body = try fields.string("body") ?? ""
    }

    init?(headerValue: String) {
        guard let status = Int(headerValue), (200...599).contains(status) else { return nil }
        self.status = status
        body = ""
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.answer = (status, Array(body.utf8))
    }

    var description: String { "abort \(status)" }
}
