import Glibc
import HTTPCodec
import TracetapCore

/// `tracetap demo`: a built-in backend (with a shop that has three bugs) behind the proxy, a few traced
/// requests, then a walk through finding each bug with the probes; the proxy keeps running for curl until
/// Ctrl-C (or exits at once with --once).
enum Demo {
    static func run(_ args: inout Arguments, threads: Int) throws(UsageError) {
        var listen = HostPort(host: "127.0.0.1", port: 8080)
        var once = false
        var capture: String? = "Captures"
        var bugs = DemoBugs.all
        while let arg = args.next() {
            switch arg {
            case "--once": once = true
            case "--no-capture": capture = nil
            case "--capture": capture = try args.value(for: arg, inline: nil)
            case "--fixed":
                let text = try args.value(for: arg, inline: nil)
                for name in text.split(separator: ",").map(String.init) {
                    if name == "all" { bugs = [] ; continue }
                    guard let bug = DemoBugs.names.first(where: { $0.name == name }) else {
                        throw UsageError(message: "--fixed: '\(name)' is not one of all, " + DemoBugs.names.map(\.name).joined(separator: ", "))
                    }
                    bugs.remove(bug.bug)
                }
            case "--listen":
                let text = try args.value(for: arg, inline: nil)
                guard let hp = HostPort(text) else { throw UsageError(message: "--listen: '\(text)' is not HOST:PORT") }
                listen = hp
            default: throw UsageError(message: "unknown flag \(arg) (demo takes --listen HOST:PORT, --once, --capture DIR, --no-capture and --fixed race,retry,ban|all)")
            }
        }
        let backend: DemoBackend
        let server: ProxyServer
        do throws(StartupError) {
            backend = try DemoBackend(bugs: bugs)
            backend.start()
            var config = ProxyConfig()
            config.listen = listen
            config.upstream = UpstreamURL("http://127.0.0.1:\(backend.port)")!
            config.threads = threads
            config.admin = HostPort(host: "127.0.0.1", port: 0)
            config.captureDirectory = capture
            // No rule files (the walk must find the shop's bugs, not the user's faults): a book for the rules
            // added from the web UI only.
            config.rules = RuleBook(seed: 1)
            server = try ProxyServer(config: config)
        } catch {
            throw UsageError(message: error.message)
        }
        server.start()
        let base = "http://\(listen.host):\(server.port)"
        print("tracetap demo: backend on 127.0.0.1:\(backend.port), proxy on \(base)"
            + (server.captureSessionPath.map { ", recording to \($0)" } ?? "") + "\n")
        for (method, target, body) in [("GET", "/hello", ""), ("POST", "/echo", "{\"order\":42}"), ("GET", "/missing", "")] {
            print("$ curl -si -X \(method) \(base)\(target)\(body.isEmpty ? "" : " -d '\(body)'")")
            print(fetch(port: server.port, method: method, target: target, body: body))
        }
        walkThroughTheBugs(proxy: server, backendPort: backend.port, bugs: bugs, store: capture)
        if once {
            server.stopAndWait()
            return
        }
        runUntilSignalled(server) {
            print("The proxy keeps running: try   curl -i \(base)/hello   or   curl -i '\(base)/slow?ms=300'")
            print("Web UI: http://127.0.0.1:\(server.adminPort ?? 0)/    Status: curl -s http://127.0.0.1:\(server.adminPort ?? 0)/api/status    Stop: Ctrl-C\n")
        }
    }

    /// The shop's three bugs, each found the way a user would: the race probe through the proxy, then the
    /// probes over the session the proxy just recorded.
    private static func walkThroughTheBugs(proxy server: ProxyServer, backendPort: Int, bugs: DemoBugs, store: String?) {
        let base = "http://127.0.0.1:\(server.port)"
        let backend = "http://127.0.0.1:\(backendPort)"
        func run(_ arguments: [String]) {
            print("$ tracetap " + arguments.map { $0.contains(where: { " *'{?".contains($0) }) ? "'\($0)'" : $0 }.joined(separator: " "))
            var args = Arguments(Array(arguments.dropFirst()))
            do {
                switch arguments[0] {
                case "race": _ = try Race.run(&args)
                default: _ = try Probe.run(&args)
                }
            } catch {
                print("tracetap: \(error.message)")
            }
            print("")
        }
        /// A request through the proxy, shown as one line: what curl would send, the status and the body.
        func call(_ method: String, _ target: String, _ body: String = "", cookie: String = "") -> String {
            let response = fetch(port: server.port, method: method, target: target, body: body, cookie: cookie)
            let lines = response.components(separatedBy: "\n")
            print("$ curl " + (method == "GET" ? "" : "-X \(method) ") + (target.contains("?") ? "'\(base)\(target)'" : "\(base)\(target)") + (body.isEmpty ? "" : " -d '\(body)'") + (cookie.isEmpty ? "" : " -b '\(cookie)'")
                  + "   -> " + (lines.first.map { String($0.dropFirst("HTTP/1.1 ".count)) } ?? "") + " " + (lines.last { !$0.isEmpty } ?? ""))
            return lines.first { $0.lowercased().hasPrefix("set-cookie: ") }.map { String($0.dropFirst("set-cookie: ".count).prefix { $0 != ";" }) } ?? ""
        }
        print("The shop behind the proxy has three bugs" + (bugs.isEmpty ? ", all fixed (--fixed all): the probes should find nothing." : (bugs == .all ? "." : " (some fixed with --fixed)."))
              + " Each is found the way you would find it.\n")

        print("1. Two buyers, one item: read-modify-write without a transaction. 20 buyers at once, one item in stock:")
        run(["race", "-X", "POST", "\(base)/buy", "-d", #"{"item":1}"#, "-n", "20", "--rounds", "3", "--before", "POST /stock?n=1"])
        print("The same 20 buyers one after another, as a functional test would send them, never see it:")
        run(["race", "-X", "POST", "\(base)/buy", "-d", #"{"item":1}"#, "-n", "20", "--before", "POST /stock?n=1", "--sequential"])

        guard let store else { return print("(2 and 3 probe the recorded session: run without --no-capture to see them)\n") }
        let storeFlag = store == "Captures" ? [] : ["--capture", store]
        print("2. A retried POST creates the order twice. Ann logs in and orders a book, through the proxy, which records it:")
        let ann = call("POST", "/login", #"{"user":"ann"}"#)
        _ = call("POST", "/orders", #"{"item":"book"}"#, cookie: ann)
        _ = call("GET", "/orders", cookie: ann)
        waitForCapture(server)
        print("\nThe idempotency probe sends the recorded POST twice, as a retry would, and reads the orders after each:")
        run(["probe", "idempotency", "--path", "/orders*", "--target", backend] + storeFlag)

        print("3. A banned user's cookie keeps working: the ban is checked at login only. Bob logs in, Ann bans him:")
        let bob = call("POST", "/login", #"{"user":"bob"}"#)
        _ = call("POST", "/admin/ban?user=bob", cookie: ann)
        _ = call("POST", "/login", #"{"user":"bob"}"#)
        _ = call("GET", "/me", cookie: bob)
        waitForCapture(server)
        let session = String((server.captureSessionPath ?? "").split(separator: "/").last ?? "")
        let bobLogin = CaptureReader(directory: store).exchanges(in: session).exchanges
            .last { $0.path == "/login" && $0.status == 200 && String(decoding: $0.request?.body ?? [], as: UTF8.self).contains("bob") }
        print("\nHe cannot log in again; can his old cookie (set by exchange \(bobLogin?.sequence ?? 0)) still do anything? The authorization")
        print("probe replays Ann's recorded requests as her, anonymously, and with Bob's revoked cookie:")
        run(["probe", "authz", "--path", "/orders*", "--target", backend, "--as", "anonymous", "--revoked", "bob=@\(bobLogin?.sequence ?? 0)"] + storeFlag)
    }

    /// The probes read the session back from disk: wait (a bounded moment) until the writer has it all.
    private static func waitForCapture(_ server: ProxyServer) {
        for _ in 0..<200 {
            let stats = server.stats.snapshot
            if stats.captureWritten + stats.captureFailed >= stats.exchanges { return }
            usleep(10_000)
        }
    }

    /// One request over a fresh connection; returns the response as curl -i would show it.
    static func fetch(port: Int, method: String, target: String, body: String, cookie: String = "") -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "(could not connect)\n" }
        let request = Array(("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: tracetap-demo\r\n"
            + (body.isEmpty ? "" : "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n")
            + (cookie.isEmpty ? "" : "Cookie: \(cookie)\r\n") + (method == "POST" && body.isEmpty ? "Content-Length: 0\r\n" : "")
            + "Connection: close\r\n\r\n\(body)").utf8)
        request.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: response, as: UTF8.self).replacingCRLF() + "\n"
    }
}

extension String {
    func replacingCRLF() -> String { split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n") }
}
