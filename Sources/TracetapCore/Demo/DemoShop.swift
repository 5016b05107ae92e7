import Foundation
import Synchronization
import TraceContext

/// The bugs the demo shop has on purpose, each behind a switch so a probe can be shown finding it (bug
/// on) and staying quiet (bug off).
public struct DemoBugs: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `POST /buy` reads the stock, pauses, writes it back: two buyers at once both get the last item.
    public static let doubleSale = DemoBugs(rawValue: 1)
    /// `POST /orders` ignores `Idempotency-Key`: a retried POST creates the order again.
    public static let duplicateOrders = DemoBugs(rawValue: 2)
    /// The session cookie is checked for existence only: a banned user's cookie keeps working.
    public static let banIgnored = DemoBugs(rawValue: 4)
    public static let all: DemoBugs = [.doubleSale, .duplicateOrders, .banIgnored]

    /// The names `tracetap demo --fixed` takes.
    public static let names: [(name: String, bug: DemoBugs)] = [("race", .doubleSale), ("retry", .duplicateOrders), ("ban", .banIgnored)]
}

/// A tiny shop with users, sessions, stock and orders, in memory. Routes (JSON in and out):
///   POST /login {"user":"ann"}   sets the `session` cookie (users: ann, the admin; bob; cat)
///   GET  /me                     who the cookie belongs to
///   POST /stock?n=N, GET /stock  set / read how many items are left
///   POST /buy                    buy one item: 201, or 409 when sold out
///   POST /orders {"item":..}     create an order (201 + Location); honours `Idempotency-Key`
///   GET  /orders                 the caller's orders; GET/PUT/DELETE /orders/ID one of them (owner only)
///   POST /admin/ban?user=NAME    (admin) ban a user: their requests must now fail with 403
final class DemoShop: Sendable {
    struct Answer {
        var status: Int
        var json: String
        var headers: [(String, String)] = []
    }

    private struct Order {
        var id: Int
        var user: String
        var item: String
        var json: String { #"{"id":\#(id),"user":\#(JSONText.quote(user)),"item":\#(JSONText.quote(item))}"# }
    }

    private struct State {
        var stock = 1
        var orders: [Int: Order] = [:]
        var nextOrderID = 1
        var sessions: [String: String] = [:]
        var banned: Set<String> = []
        /// (user, Idempotency-Key) -> the order that key created.
        var idempotencyKeys: [String: Int] = [:]
        var random = FastRandom()
    }

    static let users = ["ann", "bob", "cat"]
    static let admin = "ann"
    /// The gap between reading and writing the stock in the buggy `/buy`: a database round trip.
    static let buyPauseMicros: UInt32 = 20_000

    let bugs: DemoBugs
    private let state = Mutex(State())
    /// Held across the whole purchase when the double sale is fixed (SELECT ... FOR UPDATE).
    private let purchase = Mutex(())

    init(bugs: DemoBugs) { self.bugs = bugs }

    /// nil: not a shop route.
    func answer(method: String, path: String, query: [String: String], cookie: String, idempotencyKey: String?, body: [UInt8]) -> Answer? {
        let fields = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        switch (method, path) {
        case ("POST", "/login"):
            guard let user = fields["user"] as? String, Self.users.contains(user) else {
                return Answer(status: 401, json: #"{"error":"unknown user"}"#)
            }
            // The ban is checked here, at login, in both versions; the bug is that it is checked only here.
            let token = state.withLock { s -> String? in
                guard !s.banned.contains(user) else { return nil }
                let token = String(s.random.next(), radix: 16)
                s.sessions[token] = user
                return token
            }
            guard let token else { return Answer(status: 403, json: #"{"error":"banned"}"#) }
            return Answer(status: 200, json: #"{"user":\#(JSONText.quote(user))}"#, headers: [("Set-Cookie", "session=\(token); Path=/; HttpOnly")])
        case ("GET", "/stock"):
            return Answer(status: 200, json: #"{"stock":\#(state.withLock { $0.stock })}"#)
        case ("POST", "/stock"):
            let n = query["n"].flatMap(Int.init) ?? 1
            state.withLock { $0.stock = n }
            return Answer(status: 200, json: #"{"stock":\#(n)}"#)
        case ("POST", "/buy"):
            return buy()
        default:
            break
        }
        guard ["/me", "/orders", "/admin/ban"].contains(path) || path.hasPrefix("/orders/") else { return nil }
        let user: String
        switch authenticate(cookie) {
        case .success(let name): user = name
        case .failure(let refusal): return refusal.answer
        }
        switch (method, path) {
        case ("GET", "/me"):
            return Answer(status: 200, json: #"{"user":\#(JSONText.quote(user))}"#)
        case ("POST", "/admin/ban"):
            guard user == Self.admin else { return Answer(status: 403, json: #"{"error":"admins only"}"#) }
            guard let target = query["user"], Self.users.contains(target) else { return Answer(status: 404, json: #"{"error":"no such user"}"#) }
            state.withLock { _ = $0.banned.insert(target) }
            return Answer(status: 200, json: #"{"banned":\#(JSONText.quote(target))}"#)
        case ("POST", "/orders"):
            let item = fields["item"] as? String ?? "item"
            let honourKey = !bugs.contains(.duplicateOrders)
            let order: Order = state.withLock { s in
                let key = idempotencyKey.map { user + "\n" + $0 }
                if honourKey, let key, let id = s.idempotencyKeys[key], let existing = s.orders[id] { return existing }
                let order = Order(id: s.nextOrderID, user: user, item: item)
                s.nextOrderID += 1
                s.orders[order.id] = order
                if let key { s.idempotencyKeys[key] = order.id }
                return order
            }
            return Answer(status: 201, json: order.json, headers: [("Location", "/orders/\(order.id)")])
        case ("GET", "/orders"):
            let mine = state.withLock { s in s.orders.values.filter { $0.user == user }.sorted { $0.id < $1.id } }
            return Answer(status: 200, json: #"{"count":\#(mine.count),"orders":[\#(mine.map(\.json).joined(separator: ","))]}"#)
        default:
            return order(method: method, id: Int(path.dropFirst("/orders/".count)), user: user, item: fields["item"] as? String)
        }
    }

    private func order(method: String, id: Int?, user: String, item: String?) -> Answer {
        let notFound = Answer(status: 404, json: #"{"error":"no such order"}"#)
        return state.withLock { s in
            // Another user's order is "not found", not "forbidden": its existence is not theirs to learn.
            guard let id, var order = s.orders[id], order.user == user else { return notFound }
            switch method {
            case "GET": return Answer(status: 200, json: order.json)
            case "PUT":
                order.item = item ?? order.item
                s.orders[id] = order
                return Answer(status: 200, json: order.json)
            case "DELETE":
                s.orders[id] = nil
                return Answer(status: 204, json: "")
            default: return Answer(status: 405, json: #"{"error":"method not allowed"}"#)
            }
        }
    }

    private struct Refusal: Error { var answer: Answer }

    private func authenticate(_ cookie: String) -> Result<String, Refusal> {
        let token = cookie.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("session=") }.map { String($0.dropFirst("session=".count)) }
        guard let token, let (user, banned) = state.withLock({ s in s.sessions[token].map { ($0, s.banned.contains($0)) } }) else {
            return .failure(Refusal(answer: Answer(status: 401, json: #"{"error":"log in first"}"#)))
        }
        if banned && !bugs.contains(.banIgnored) { return .failure(Refusal(answer: Answer(status: 403, json: #"{"error":"banned"}"#))) }
        return .success(user)
    }

    private func buy() -> Answer {
        bugs.contains(.doubleSale) ? readThinkWrite() : purchase.withLock { _ in readThinkWrite() }
    }

    /// Read, think, write, as a SELECT and an UPDATE: without a lock held across the three (the bug), two
    /// buyers can read the same last item.
    private func readThinkWrite() -> Answer {
        let left = state.withLock { $0.stock }
        usleep(Self.buyPauseMicros)
        guard left > 0 else { return Answer(status: 409, json: #"{"error":"sold out"}"#) }
        state.withLock { $0.stock = left - 1 }
        return Answer(status: 201, json: #"{"bought":1,"left":\#(left - 1)}"#)
    }
}
