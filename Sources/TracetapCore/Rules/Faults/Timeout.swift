/// A request that never gets an answer in time: hold it without forwarding (`"phase": "request"`) or
/// forward it and drop the upstream's answer (`"phase": "response"`); after `ms`, answer 504 or just close.
struct Timeout: Fault {
    static let type = "timeout"
    static let keys = ["ms", "action", "phase"]
    let ms: Int
    let respond: Bool
    let forward: Bool

    init(_ fields: RuleFields) throws(RuleError) {
        ms = try fields.required("ms", range: 0...3_600_000, for: "timeout")
        respond = try fields.choice("action", ["504", "close"]) == "504"
        forward = try fields.choice("phase", ["request", "response"]) == "response"
    }

    init?(headerValue: String) {
        guard let ms = HeaderFaults.millis(headerValue) else { return nil }
        self.ms = ms
        respond = true
        forward = false
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.giveUp = (ms, respond, forward)
    }

    var description: String { "timeout \(ms)ms then \(respond ? "504" : "close")" + (forward ? " (forwarded, answer dropped)" : "") }
}
