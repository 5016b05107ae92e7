import Glibc
import TracetapCore

let usage = """
Usage: tracetap [COMMAND] [flags]

  proxy     run the tracing reverse proxy in front of an HTTP backend (tracetap proxy --help)
  demo      a built-in shop behind the proxy: traced requests, then its three bugs found (the default)
  ls        list recorded exchanges (tracetap ls --help)
  show      print one recorded exchange with headers, bodies, timings and its trace
  trace     one trace as a waterfall: proxy phases, backend spans, SQL (tracetap trace --help)
  export    write a session as HAR 1.2, curl commands, JSON Lines or OTLP/JSON traces
  replay    re-send a session to a build and report what changed (tracetap replay --help)
  race      send one request N times at the same instant to expose races (tracetap race --help)
  probe     find non-idempotent endpoints and authorization holes in a session (tracetap probe --help)
  rules     tracetap rules check [DIR]: validate fault rule files without running a proxy
  help      this text

With no command, tracetap runs the demo.
"""

/// `--help` or `-h` anywhere on the line prints the command's help and exits.
func showHelpIfAsked(_ help: String) {
    guard CommandLine.arguments.contains("--help") || CommandLine.arguments.contains("-h") else { return }
    writeLine(1, help)
    exit(0)
}

/// Runs a command; its result is the exit status, a usage error one line on stderr and exit status 2.
func runCommand(_ body: () throws(UsageError) -> Int32) -> Never {
    do { exit(try body()) } catch { fail(error.message) }
}

func fail(_ message: String) -> Never {
    writeLine(2, "tracetap: \(message)")
    exit(2)
}

func writeLine(_ fd: Int32, _ text: String) {
    let bytes = Array((text + "\n").utf8)
    bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
}

/// Runs the proxy until SIGINT or SIGTERM (held since `ShutdownSignals.hold()`), then stops it gracefully
/// and prints a summary. `announce` says it is ready: a signal sent the moment it has said so stops it too.
func runUntilSignalled(_ server: ProxyServer, announce: () -> Void) -> Never {
    ShutdownSignals.onSignal { server.requestShutdown() }
    announce()
    server.start()
    server.waitUntilStopped()
    let s = server.stats.snapshot
    writeLine(2, "tracetap: stopped: \(s.exchanges) exchanges, \(s.errors) errors, \(s.clientConnectionsTotal) client connections, "
        + "\(s.upstreamConnects) upstream connections opened, \(s.upstreamReuses) reused"
        + (server.captureSessionPath.map { ", \(s.captureWritten) recorded in \($0)" + (s.captureFailed > 0 ? " (\(s.captureFailed) lost)" : "") } ?? ""))
    exit(0)
}

lineBufferStandardOutput()
var args = Arguments(Array(CommandLine.arguments.dropFirst()))
let command = args.next() ?? "demo"
// Half the cores: the proxy shares the machine with the backend and the client it debugs, and one loop
// already carries tens of thousands of requests a second (see README, Benchmark).
let loopThreads = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / 2)

switch command {
case "proxy":
    showHelpIfAsked(ProxyFlags.help)
    ShutdownSignals.hold()
    let config: ProxyConfig
    do { config = try ProxyFlags.parse(&args, defaultThreads: loopThreads) } catch { fail(error.message) }
    let server: ProxyServer
    do { server = try ProxyServer(config: config) } catch { fail(error.message) }
    runUntilSignalled(server) {
        writeLine(2, "tracetap: proxy on http://\(config.listen.host):\(server.port) -> \(config.upstream)"
            + (server.adminPort.map { ", admin on http://\(config.admin!.host):\($0)/ (web UI and /api)" } ?? "")
            + zip(config.databaseLegs, server.databaseLegs).map { ", database on \($0.0.listen.host):\($0.1.port) -> \($0.1.upstreamDescription)" }.joined()
            + (server.captureSessionPath.map { ", recording to \($0)" } ?? ""))
        if let token = server.adminToken, config.adminToken == nil, let port = server.adminPort {
            // Made at start because the admin port is not on loopback: this link is the way in.
            writeLine(2, "tracetap: admin token \(token): open http://\(config.admin!.host):\(port)/?token=\(token)")
        }
        if let book = config.rules {
            writeLine(2, "tracetap: \(book.rules.count) fault rules from \(book.directory ?? "-") (watching for changes), seed \(book.seed)")
            book.watch()
        }
    }
case "demo":
    ShutdownSignals.hold()
    do { try Demo.run(&args, threads: loopThreads) } catch { fail(error.message) }
case "ls", "show", "export":
    showHelpIfAsked(Inspect.help)
    runCommand { () throws(UsageError) -> Int32 in
        switch command {
        case "ls": try Inspect.list(&args)
        case "show": try Inspect.show(&args)
        default: try Inspect.export(&args)
        }
        return 0
    }
case "trace":
    showHelpIfAsked(Trace.help)
    runCommand { () throws(UsageError) -> Int32 in
        try Trace.run(&args)
        return 0
    }
case "replay":
    showHelpIfAsked(Replay.help)
    runCommand { () throws(UsageError) -> Int32 in try Replay.run(&args) }
case "race":
    showHelpIfAsked(Race.help)
    runCommand { () throws(UsageError) -> Int32 in try Race.run(&args) }
case "probe":
    showHelpIfAsked(Probe.help)
    runCommand { () throws(UsageError) -> Int32 in try Probe.run(&args) }
case "rules":
    guard args.next() == "check" else { fail("usage: tracetap rules check [DIR]") }
    let directory = args.next() ?? "Rules"
    do throws(RuleError) {
        let rules = try RuleLoader.load(directory: directory)
        for rule in rules {
            writeLine(1, "\(rule.name)  (\(rule.file))  faults: \(rule.faultDescriptions.joined(separator: ", "))")
        }
        writeLine(1, "\(rules.count) rules OK in \(directory)")
    } catch {
        fail("rules: \(error)")
    }
case "help", "--help", "-h":
    writeLine(1, usage)
default:
    fail("unknown command '\(command)'\n\(usage)")
}
