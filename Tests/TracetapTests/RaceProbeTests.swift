import Foundation
import Testing
import TracetapCore

/// `tracetap race` against the demo shop's /buy: read the stock, pause 20 ms, write it back.
@Suite struct RaceProbeTests {
    static func race(_ backend: DemoBackend, _ extra: [String]) throws -> (Int32?, String) {
        let (status, out, errors) = try Binary.run(["race", "-X", "POST", "http://127.0.0.1:\(backend.port)/buy", "-d", #"{"item":1}"#,
                                                    "-n", "20", "--before", "POST /stock?n=1"] + extra, seconds: 60)
        return (status, out + errors)
    }

    static func shop(_ bugs: DemoBugs) throws -> DemoBackend {
        let backend = try DemoBackend(bugs: bugs)
        backend.start()
        return backend
    }

    @Test func lastByteSynchronisationCatchesTheDoubleSaleWhereSequentialSendingCannot() throws {
        let backend = try Self.shop(.all)
        defer { backend.stop() }
        let (status, out) = try Self.race(backend, ["--rounds", "5"])
        #expect(status == 1, "\(out)")
        // One item in stock, yet (nearly) every buyer got it, in every round.
        #expect(out.contains("race found in 5 of 5 rounds"), "\(out)")
        #expect(out.components(separatedBy: "RACE: ").count - 1 == 5)

        let (baseline, baselineOut) = try Self.race(backend, ["--rounds", "3", "--sequential"])
        #expect(baseline == 0, "\(baselineOut)")
        #expect(baselineOut.contains("race found in 0 of 3 rounds"))
        #expect(baselineOut.components(separatedBy: "1 x 201, 19 x 409").count - 1 == 3)
    }

    @Test func theFixedShopIsClean() throws {
        let backend = try Self.shop(.all.subtracting(.doubleSale))
        defer { backend.stop() }
        let (status, out) = try Self.race(backend, ["--rounds", "3"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("race found in 0 of 3 rounds"), "\(out)")
        #expect(out.components(separatedBy: "1 x 201, 19 x 409").count - 1 == 3)
        // Twenty in stock, twenty buyers: all succeed and none is left.
        let (full, fullOut, _) = try Binary.run(["race", "-X", "POST", "http://127.0.0.1:\(backend.port)/buy", "-n", "20", "--before", "POST /stock?n=20",
                                                 "--max-success", "20", "--check", "GET /stock", "--expect", #""stock":0"#], seconds: 60)
        #expect(full == 0 && fullOut.contains(#"20 x 201"#) && fullOut.contains(#"then GET /stock: {"stock":0}"#), "\(fullOut)")
    }

    @Test func allowedSuccessesAndACapturedRequestAsTheSource() throws {
        let backend = try Self.shop(.all)
        defer { backend.stop() }
        // With 20 in stock, 20 buyers at once are all entitled to succeed: no finding from the count alone.
        let restock = ["race", "-X", "POST", "http://127.0.0.1:\(backend.port)/buy", "-n", "20", "--before", "POST /stock?n=20", "--max-success", "20"]
        let (status, out, _) = try Binary.run(restock, seconds: 60)
        #expect(status == 0 && out.contains("race found in 0 of 1 rounds"), "\(out)")
        // But the stock left afterwards shows the lost updates: 20 sold, yet not 0 left.
        let (checked, checkedOut, _) = try Binary.run(restock + ["--check", "GET /stock", "--expect", #""stock":0"#, "--responses"], seconds: 60)
        #expect(checked == 1, "\(checkedOut)")
        #expect(checkedOut.contains(#"then GET /stock: {"stock":19}  RACE: expected "stock":0"#), "\(checkedOut)")
        #expect(checkedOut.contains("race found in 1 of 1 rounds"), "\(checkedOut)")
        // Every copy's answer with its digest: all read 20 and wrote 19.
        #expect(checkedOut.components(separatedBy: #"fnv1a "#).count - 1 == 20, "\(checkedOut)")
        #expect(checkedOut.contains(#"copy 20/20: 201  22 bytes, fnv1a "#) && checkedOut.contains(#"{"bought":1,"left":19}"#), "\(checkedOut)")

        // The request can come from a capture: method, target, headers and body as recorded.
        let store = temporaryStore()
        let proxy = try TestProxy(upstreamPort: backend.port) { $0.captureDirectory = store }
        #expect(try proxy.get("/stock?n=1", method: "POST").status == 200)
        let client = try proxy.connect()
        client.send("POST /buy HTTP/1.1\r\nHost: shop\r\nX-Buyer: ann\r\nContent-Length: 10\r\n\r\n{\"item\":1}")
        #expect(try client.readResponse().status == 201)
        client.close()
        proxy.stop()
        let (fromStatus, fromOut, _) = try Binary.run(["race", "--from", "2", "--capture", store, "http://127.0.0.1:\(backend.port)",
                                                       "-n", "10", "--before", "POST /stock?n=1"], seconds: 60)
        #expect(fromStatus == 1 && fromOut.contains("race: 10 x POST http://127.0.0.1:\(backend.port)/buy"), "\(fromOut)")
        #expect(try Binary.run(["race", "-n", "1", "http://127.0.0.1:1/"]).0 == 2)
    }
}
