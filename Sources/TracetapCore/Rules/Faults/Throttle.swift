/// Limit bandwidth to `bytes_per_second` for the response (the default), the request body, or both.
struct Throttle: Fault {
    static let type = "throttle"
    static let keys = ["bytes_per_second", "direction"]
    let bytesPerSecond: Int
    let direction: String

    init(_ fields: RuleFields) throws(RuleError) {
        bytesPerSecond = try fields.required("bytes_per_second", range: 1...(1 << 40), for: "throttle")
        direction = try fields.choice("direction", ["response", "request", "both"])
    }

    init?(headerValue: String) {
        guard let rate = Int(headerValue), rate > 0 else { return nil }
        bytesPerSecond = rate
        direction = "response"
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        if direction != "request" { plan.responseBytesPerSecond = min(plan.responseBytesPerSecond ?? .max, bytesPerSecond) }
        if direction != "response" { plan.requestBytesPerSecond = min(plan.requestBytesPerSecond ?? .max, bytesPerSecond) }
    }

    var description: String { "throttle \(direction) to \(bytesPerSecond) B/s" }
}
