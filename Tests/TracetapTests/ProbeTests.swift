import Foundation
import Testing
import TracetapCore

/// `tracetap probe idempotency` and `tracetap probe authz` against the demo shop with each bug on (found)
/// and off (clean), over sessions recorded by a real proxy.
@Suite struct ProbeTests {
    /// A shop, a recording proxy in front of it, and a way to talk through the proxy.
    final class ShopUnderTest {
        let shop: DemoBackend
        let proxy: TestProxy
        let store = temporaryStore()

        init(bugs: DemoBugs) throws {
            shop = try DemoBackend(bugs: bugs)
            shop.start()
            let store = self.store
            proxy = try TestProxy(upstreamPort: shop.port) { $0.captureDirectory = store }
        }

        @discardableResult
        func call(_ method: String, _ target: String, _ body: String = "", cookie: String = "") throws -> TestResponse {
            let client = try proxy.connect()
            defer { client.close() }
            client.send("\(method) \(target) HTTP/1.1\r\nHost: shop\r\n" + (cookie.isEmpty ? "" : "Cookie: \(cookie)\r\n")
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return try client.readResponse()
        }

        func login(_ user: String) throws -> String {
            let response = try call("POST", "/login", #"{"user":"\#(user)"}"#)
            return String(try #require(response.header("Set-Cookie")).prefix { $0 != ";" })
        }

        /// Stops recording (the session is complete on disk) and the shop.
        func finishRecording() { proxy.stop() }
        func stop() { shop.stop() }
    }

    /// Ann orders a book, renames it, deletes it, reading after each write.
    static func recordOrders(_ shop: ShopUnderTest) throws {
        let ann = try shop.login("ann")
        #expect(try shop.call("POST", "/orders", #"{"item":"book"}"#, cookie: ann).status == 201)
        try shop.call("GET", "/orders", cookie: ann)
        #expect(try shop.call("PUT", "/orders/1", #"{"item":"pen"}"#, cookie: ann).status == 200)
        try shop.call("GET", "/orders/1", cookie: ann)
        #expect(try shop.call("DELETE", "/orders/1", cookie: ann).status == 204)
        shop.finishRecording()
    }

    /// Records Ann's orders on one shop, then probes a fresh one (never the one recorded from).
    static func probeOrders(bugs: DemoBugs) throws -> (Int32?, String) {
        let recorded = try ShopUnderTest(bugs: bugs)
        defer { recorded.stop() }
        try recordOrders(recorded)
        let fresh = try DemoBackend(bugs: bugs)
        fresh.start()
        defer { fresh.stop() }
        let (status, out, errors) = try Binary.run(["probe", "idempotency", "--capture", recorded.store, "--target", "http://127.0.0.1:\(fresh.port)",
                                                    "--carry", "json:$.id -> path"], seconds: 60)
        return (status, out + errors)
    }

    @Test func aRetriedPostThatCreatesTheOrderAgainIsNotIdempotent() throws {
        let (status, out) = try Self.probeOrders(bugs: .all)
        #expect(status == 1, "\(out)")
        #expect(out.contains("POST /orders: NOT IDEMPOTENT  (state read with GET /orders)"), "\(out)")
        // The replay logs in afresh, so the fresh shop's numbers are known: order 1, then the duplicate 2.
        #expect(out.contains("after the second POST /orders, GET /orders shows count: 1 -> 2"), "\(out)")
        #expect(out.contains("the second POST /orders answered id 2 where the first answered 1"), "\(out)")
        #expect(out.contains("with the same Idempotency-Key on both: after the second POST /orders, GET /orders shows count: 3 -> 4"), "\(out)")
        #expect(out.contains("PUT /orders/1: IDEMPOTENT  (state read with GET /orders/1)"), "\(out)")
        // The second DELETE answers 404, but the state is the same: idempotent.
        #expect(out.contains("DELETE /orders/1: IDEMPOTENT"), "\(out)")
        #expect(out.contains("4 unsafe endpoints: 3 idempotent, 0 idempotent with key, 1 not idempotent, 0 failed"), "\(out)")
    }

    @Test func theFixedShopHonoursTheIdempotencyKey() throws {
        let (status, out) = try Self.probeOrders(bugs: .all.subtracting(.duplicateOrders))
        #expect(status == 0, "\(out)")
        #expect(out.contains("POST /orders: IDEMPOTENT WITH KEY"), "\(out)")
        #expect(out.contains("with the same Idempotency-Key on both, the second changed nothing"), "\(out)")
        #expect(out.contains("0 not idempotent"), "\(out)")
    }

    @Test func aPutThatAppendsViolatesRFC9110() throws {
        let backend = try PythonBackend()
        defer { backend.stop() }
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: backend.port) { $0.captureDirectory = store }
        let client = try proxy.connect()
        client.send("PUT /orders HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}")
        #expect(try client.readResponse().status == 201)
        client.send("GET /orders HTTP/1.1\r\nHost: b\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        client.close()
        proxy.stop()
        let (status, out, _) = try Binary.run(["probe", "idempotency", "--capture", store, "--target", "http://127.0.0.1:\(backend.port)"], seconds: 60)
        #expect(status == 1, "\(out)")
        #expect(out.contains("PUT /orders: NOT IDEMPOTENT  (state read with GET /orders)  violates RFC 9110 §9.2.2"), "\(out)")
        // PUT gets no Idempotency-Key round: it must be idempotent without one.
        #expect(!out.contains("Idempotency-Key"), "\(out)")
    }

    /// Ann's session, Bob's cookie in a file, then Bob banned.
    static func recordAnnAndBanBob(_ shop: ShopUnderTest) throws -> (bob: String, cat: String) {
        let ann = try shop.login("ann")
        try shop.call("POST", "/orders", #"{"item":"book"}"#, cookie: ann)
        try shop.call("GET", "/orders/1", cookie: ann)
        try shop.call("GET", "/me", cookie: ann)
        let bob = try shop.login("bob")
        let cat = try shop.login("cat")
        shop.finishRecording()
        // The ban goes straight to the shop: it is not part of the session to replay.
        let admin = try BlockingSocket.connect(port: shop.shop.port)
        admin.send("POST /admin/ban?user=bob HTTP/1.1\r\nHost: shop\r\nCookie: \(ann)\r\nContent-Length: 0\r\n\r\n")
        #expect(try admin.readResponse().status == 200)
        admin.close()
        let bobFile = NSTemporaryDirectory() + "bob-\(UUID().uuidString).txt"
        try "# Bob's session, banned since\nCookie: \(bob)\n".write(toFile: bobFile, atomically: true, encoding: .utf8)
        // Cat's as curl -c writes it: a Netscape cookie jar.
        let catFile = NSTemporaryDirectory() + "cat-\(UUID().uuidString).txt"
        let value = cat.dropFirst("session=".count)
        try "# Netscape HTTP Cookie File\n#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t\(value)\n".write(toFile: catFile, atomically: true, encoding: .utf8)
        return (bobFile, catFile)
    }

    @Test func aBannedUsersCookieThatStillWorksIsFlagged() throws {
        let shop = try ShopUnderTest(bugs: .all)
        defer { shop.stop() }
        let (bob, cat) = try Self.recordAnnAndBanBob(shop)
        let (status, out, errors) = try Binary.run(["probe", "authz", "--capture", shop.store, "--target", "http://127.0.0.1:\(shop.shop.port)",
                                                    "--as", "cat=\(cat)", "--as", "anonymous", "--revoked", "bob=\(bob)"], seconds: 60)
        #expect(status == 1, "\(out)\(errors)")
        let rows = out.components(separatedBy: "\n")
        // Cat (and Bob) cannot read Ann's order (404) and see only themselves; anonymous gets 401 everywhere.
        #expect(rows.contains { $0.hasPrefix("GET /orders/1") && $0.contains("200     404 ") && $0.contains("401 0%") }, "\(out)")
        #expect(out.contains("POST /orders: bob: revoked credentials still accepted (201)"), "\(out)")
        #expect(out.contains("GET /me: bob: revoked credentials still accepted (200)"), "\(out)")
        #expect(!out.contains(": cat") && !out.contains(": anonymous"), "\(out)")
        // Logins carried no credentials: public, never flagged.
        #expect(rows.contains { $0.hasPrefix("POST /login") && $0.hasSuffix("(public)") }, "\(out)")
    }

    @Test func theFixedShopRefusesTheBannedCookie() throws {
        let shop = try ShopUnderTest(bugs: .all.subtracting(.banIgnored))
        defer { shop.stop() }
        let (bob, cat) = try Self.recordAnnAndBanBob(shop)
        let (status, out, _) = try Binary.run(["probe", "authz", "--capture", shop.store, "--target", "http://127.0.0.1:\(shop.shop.port)",
                                               "--as", "cat=\(cat)", "--as", "anonymous", "--revoked", "bob=\(bob)"], seconds: 60)
        #expect(status == 0, "\(out)")
        #expect(out.contains("no findings"), "\(out)")
        #expect(out.components(separatedBy: "\n").contains { $0.hasPrefix("GET /me") && $0.contains("403 ") }, "\(out)")
    }

    @Test func anEndpointThatIgnoresCredentialsGivesAnyoneTheOwnersAnswer() throws {
        // The fixture's GET /orders answers whoever asks; Ann asked with her cookie.
        let backend = try PythonBackend()
        defer { backend.stop() }
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: backend.port) { $0.captureDirectory = store }
        #expect(try proxy.get("/orders", headers: ["Cookie: session=ann"]).status == 200)
        proxy.stop()
        let (status, out, _) = try Binary.run(["probe", "authz", "--capture", store, "--target", "http://127.0.0.1:\(backend.port)", "--as", "anonymous"])
        #expect(status == 1, "\(out)")
        #expect(out.contains("GET /orders: anonymous gets the owner's answer (200, 100% alike)"), "\(out)")
        // An identity marked privileged may see it.
        let adminFile = NSTemporaryDirectory() + "admin-\(UUID().uuidString).txt"
        try "Authorization: Bearer admin\n".write(toFile: adminFile, atomically: true, encoding: .utf8)
        let (privileged, privilegedOut, _) = try Binary.run(["probe", "authz", "--capture", store, "--target", "http://127.0.0.1:\(backend.port)",
                                                             "--as", "admin=\(adminFile)", "--privileged", "admin"])
        #expect(privileged == 0 && privilegedOut.contains("no findings"), "\(privilegedOut)")
    }

    @Test func identityFiles() {
        let headers = AuthzProbe.Identity.parse(name: "a", text: "# comment\nAuthorization: Bearer x\n\nX-Tenant: 7\n")
        #expect(headers?.headers.map { "\($0.name)=\($0.value)" } == ["Authorization=Bearer x", "X-Tenant=7"])
        let jar = AuthzProbe.Identity.parse(name: "b", text: "# Netscape HTTP Cookie File\nlocalhost\tFALSE\t/\tFALSE\t0\ta\t1\n#HttpOnly_localhost\tFALSE\t/\tFALSE\t0\tsession\tabc\n")
        #expect(jar?.headers.map { "\($0.name)=\($0.value)" } == ["Cookie=a=1; session=abc"])
        #expect(AuthzProbe.Identity.parse(name: "c", text: "not an identity\n") == nil)
        #expect(AuthzProbe.Identity.parse(name: "d", text: "# only comments\n") == nil)
    }
}
