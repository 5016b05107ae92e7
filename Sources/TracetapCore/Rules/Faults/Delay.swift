/// Wait before forwarding the request (`"phase": "request"`, the default) or before passing on the
/// response (`"phase": "response"`): `ms`, plus a seeded random 0 to `jitter` ms.
struct Delay: Fault {
    static let type = "delay"
    static let keys = ["ms", "jitter", "phase"]
    let ms: Int
    let jitter: Int
    let beforeResponse: Bool

    init(_ fields: RuleFields) throws(RuleError) {
        ms = try fields.required("ms", range: 0...3_600_000, for: "delay")
        jitter = try fields.int("jitter", range: 0...3_600_000) ?? 0
        beforeResponse = try fields.choice("phase", ["request", "response"]) == "response"
    }

    init?(headerValue: String) {
        guard let ms = HeaderFaults.millis(headerValue) else { return nil }
        self.ms = ms
        jitter = 0
        beforeResponse = false
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        let wait = ms + (jitter > 0 ? draw(jitter) : 0)
        if beforeResponse { plan.responseDelayMs += wait } else { plan.requestDelayMs += wait }
    }

    var description: String { "delay \(ms)ms" + (jitter > 0 ? "+0..\(jitter)ms" : "") + (beforeResponse ? " before the response" : "") }
}
