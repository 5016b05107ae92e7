import Foundation
import Glibc
import Testing

/// The `tracetap` binary as users run it.
@Suite struct CLITests {
    @Test func helpListsEveryFlag() throws {
        let (status, out, _) = try Binary.run(["proxy", "--help"])
        #expect(status == 0)
        for flag in ["--upstream", "--listen", "--admin", "--admin-token", "--threads", "--upstream-ca", "--upstream-insecure",
                     "--preserve-host", "--header-timeout", "--idle-timeout", "--connect-timeout", "--response-timeout",
                     "--upstream-idle", "--grace", "--max-request-line", "--max-header-bytes", "--max-header-fields", "--quiet"] {
            #expect(out.contains(flag), "\(flag) missing from --help")
        }
    }

    @Test(arguments: [
        (["proxy", "--bogus"], "unknown flag --bogus"),
        (["proxy", "--upstream", "ftp://x"], "is not an http:// or https:// URL"),
        (["proxy", "--connect-timeout", "soon"], "is not a duration"),
        (["proxy", "--listen"], "--listen needs a value"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        
    ])
    func badUsageIsOneLineAndExitCode2(arguments: [String], message: String) throws {
        let (status, _, errors) = try Binary.run(arguments)
        #expect(status == 2)
        #expect(errors.hasPrefix("tracetap: ") && errors.contains(message), "\(errors)")
    }

    @Test func anOccupiedPortIsRefusedWithExitCode2() throws {
        let occupant = try FakeUpstream { _, _ in }
        defer { occupant.stop() }
        let (status, _, errors) = try Binary.run(["proxy", "--listen", "127.0.0.1:\(occupant.port)", "--admin", "off"])
        #expect(status == 2)
        #expect(errors.contains("127.0.0.1:\(occupant.port)") && errors.contains("Address already in use"), "\(errors)")
        #expect(errors.split(separator: "\n").count == 1)
    }

    @Test func accessLogAdminStatusAndGracefulShutdown() throws {
        let backend = try PythonBackend()
        defer { backend.stop() }
        let proxy = try ProxyProcess(upstreamPort: backend.port, ["--grace", "5s"])
        defer { proxy.stop() }

        let client = try proxy.connect()
        defer { client.close() }
        client.send("GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = try client.readResponse()
        let trace = try #require(first.header("traceresponse")?.split(separator: "-")[1])
        #expect(proxy.child.waitForOutput("GET /echo?n=1 200 "))
        #expect(proxy.child.stderr.contains("trace=\(trace)"))

        let adminPort = try #require(proxy.adminPort)
        let admin = try BlockingSocket.connect(port: adminPort)
        defer { admin.close() }
        admin.send("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let status = try admin.readResponse().json()
        #expect(status["exchanges"] as? Int == 1)
        #expect(status["errors"] as? Int == 0)
        #expect((status["upstream"] as? [String: Any])?["idle"] as? Int == 1)
        #expect(status["uptime_s"] != nil)

        // SIGTERM while a request is in flight: it still completes, then the process exits 0 with a summary.
        client.send("GET /slow?ms=700 HTTP/1.1\r\nHost: a\r\n\r\n")
        usleep(200_000)
        proxy.child.signal(SIGTERM)
        let slow = try client.readResponse()
        #expect(slow.status == 200)
        #expect(slow.header("Connection") == "close")
        #expect(proxy.child.waitForExit(seconds: 10) == 0)
        #expect(proxy.child.stderr.contains("tracetap: stopped: 2 exchanges, 0 errors"))
        // No longer accepting.
        #expect((try? BlockingSocket.connect(port: proxy.port)) == nil)
    }

    @Test func theAdminTokenIsRequiredWhenSet() throws {
        let proxy = try ProxyProcess(upstreamPort: unusedPort(), ["--admin-token", "s3cret"])
        defer { proxy.stop() }
        let adminPort = try #require(proxy.adminPort)
        for (header, expected) in [("", 401), ("Authorization: Bearer wrong\r\n", 401), ("Authorization: Bearer s3cret\r\n", 200)] {
            let admin = try BlockingSocket.connect(port: adminPort)
            defer { admin.close() }
            admin.send("GET /api/status HTTP/1.1\r\nHost: a\r\n\(header)\r\n")
            #expect(try admin.readResponse().status == expected)
        }
    }

    @Test func theDemoRunsWithNoArguments() throws {
        let (status, out, errors) = try Binary.run(["demo", "--listen", "127.0.0.1:0", "--once", "--no-capture"])
        #expect(status == 0, "\(errors)")
        #expect(out.contains("HTTP/1.1 200 OK"))
        #expect(out.contains("traceresponse: 00-"))
        #expect(out.contains("X-Request-ID: "))
    }

    @Test func theRunningDemoStopsOnSIGTERM() throws {
        let demo = try ChildProcess([Repo.binary, "demo", "--listen", "127.0.0.1:0", "--no-capture"])
        defer { demo.stop() }
        #expect(demo.waitForOutput("Stop: Ctrl-C", seconds: 30), "\(demo.stdout)")
        demo.signal(SIGTERM)
        #expect(demo.waitForExit(seconds: 10) == 0, "\(demo.stderr)")
        #expect(demo.stderr.contains("tracetap: stopped: "))
    }

    /// A signal sent the moment the proxy says it is ready stops it gracefully: it was once lost (about one
    /// start in ten) in the gap before the handler was in place.
    @Test(arguments: [SIGTERM, SIGINT]) func aSignalRightAfterTheReadyLineStopsTheProxy(signal: Int32) throws {
        for round in 0..<15 {
            let child = try ChildProcess([Repo.binary, "proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
                                          "--no-capture", "--no-rules", "--admin", "off"])
            defer { child.stop() }
            #expect(child.waitForOutput("tracetap: proxy on ", seconds: 15, pollMicros: 500), "\(child.stderr)")
            child.signal(signal)
            #expect(child.waitForExit(seconds: 10) == 0, "round \(round): \(child.stderr)")
            #expect(child.stderr.contains("tracetap: stopped: "), "round \(round)")
        }
    }

    @Test func theDemoWalksThroughFindingEachBugAndTheFixedShopIsClean() throws {
        let (status, out, errors) = try Binary.run(["demo", "--listen", "127.0.0.1:0", "--once", "--capture", temporaryStore()], seconds: 90)
        #expect(status == 0, "\(errors)")
        #expect(out.contains("race found in 3 of 3 rounds"), "\(out)")
        #expect(out.contains("POST /orders: NOT IDEMPOTENT"), "\(out)")
        #expect(out.contains("GET /orders: bob: revoked credentials still accepted (200)"), "\(out)")

        let (fixed, fixedOut, fixedErrors) = try Binary.run(["demo", "--listen", "127.0.0.1:0", "--once", "--capture", temporaryStore(), "--fixed", "all"],
                                                            seconds: 90)
        #expect(fixed == 0, "\(fixedErrors)")
        #expect(fixedOut.contains("race found in 0 of 3 rounds"), "\(fixedOut)")
        #expect(fixedOut.contains("POST /orders: IDEMPOTENT WITH KEY"), "\(fixedOut)")
        #expect(fixedOut.contains("no findings"), "\(fixedOut)")
        #expect(try Binary.run(["demo", "--fixed", "typo"]).0 == 2)
    }
}
