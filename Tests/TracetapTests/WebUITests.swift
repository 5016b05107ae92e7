import Foundation
import Glibc
import Synchronization
import Testing
@testable import TracetapCore

/// The web UI as a user sees it: headless Chromium on the admin port, driven over the DevTools protocol.
/// Serialized: each test runs its own browser, and two cores are enough for one at a time.
@Suite(.serialized) struct WebUITests {
    /// A proxy recording into a fresh store, its admin client, and a browser on its UI.
    struct Setup {
        let upstream: FakeUpstream
        let proxy: TestProxy
        let admin: AdminClient
        let browser: Browser
        var url: String { "http://127.0.0.1:\(admin.port)/" }

        init(rules: String? = nil, store: String = temporaryStore(), adminHost: String = "127.0.0.1") throws {
            upstream = try ShopUpstream.start()
            let book = try rules.map { try RuleBook(directory: ruleFolder($0), seed: 1) }
            proxy = try TestProxy(upstreamPort: upstream.port) {
                $0.captureDirectory = store
                $0.rules = book
                $0.admin = HostPort(host: adminHost, port: 0)
            }
            admin = AdminClient(port: try #require(proxy.server.adminPort))
            browser = try Browser()
        }

        func stop() {
            browser.close()
            proxy.stop()
            upstream.stop()
        }

        /// Opens the UI at a view (`#/rules`) once the list has `rows` exchanges.
        func open(_ hash: String = "", rows: Int) throws {
            try browser.navigate(url + hash)
            try browser.waitFor("document.querySelector('#count').textContent.startsWith('\(rows) of \(rows) ')")
        }

        /// The span ID of the newest captured exchange for `path`, once it is on disk.
        func spanID(of path: String) throws -> String {
            let listed = try admin.waitFor("/api/sessions/current/exchanges") {
                ($0["exchanges"] as? [[String: Any]])?.contains { $0["target"] as? String == path } == true
            }
            return try #require((listed["exchanges"] as? [[String: Any]])?.last { $0["target"] as? String == path }?["span_id"] as? String)
        }

        func screenshot(_ name: String) throws { try browser.screenshotIfAsked(name) }
    }

    static let rowTexts = "Array.from(document.querySelectorAll('#rows .row')).map(r => r.querySelector('.path').textContent + ' ' + r.querySelector('.status').textContent)"

    @Test func theListFillsAsRequestsGoThroughTheProxyAndFilters() throws {
        let ui = try Setup()
        defer { ui.stop() }
        try ui.open(rows: 0)
        try ui.browser.waitFor("document.querySelector('#conn').className === 'dot on'")
        for path in ["/json", "/missing", "/image.png"] { _ = try ui.proxy.get(path) }
        try ui.browser.waitFor("document.querySelectorAll('#rows .row').length === 3")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/json 200", "/missing 404", "/image.png 200"])
        #expect(try ui.browser.string("document.querySelector('#rows .row:nth-child(2) .status').className") == "status s4")

        func set(_ selector: String, _ value: String) throws {
            _ = try ui.browser.evaluate("""
                (() => { const e = document.querySelector('\(selector)'); e.value = '\(value)';
                  e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input')); })()
                """)
        }
        try set("#filter-status", "4xx")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/missing 404"])
        #expect(try ui.browser.string("document.querySelector('#count').textContent") == "1 of 3 exchanges")
        try set("#filter-status", "")
        try set("#filter-text", "image")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/image.png 200"])
        try set("#filter-text", "")
        let traceID = try #require(ui.proxy.sink.all.first { $0.request?.targetString == "/json" }?.trace.traceID.description)
        try set("#filter-trace", String(traceID.prefix(8)))
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/json 200"])
        try set("#filter-trace", "")
        try set("#filter-method", "POST")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == [])
        try set("#filter-method", "")

        // Arrow keys walk the list and open each exchange.
        func press(_ key: String) throws {
            _ = try ui.browser.evaluate("document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '\(key)', bubbles: true}))")
        }
        try press("ArrowDown")
        try ui.browser.waitFor("document.querySelector('#detail-title') && document.querySelector('#detail-title').textContent === 'GET /json 200'")
        try press("ArrowDown")
        try ui.browser.waitFor("document.querySelector('#detail-title').textContent === 'GET /missing 404'")
        try press("ArrowUp")
        try ui.browser.waitFor("document.querySelector('#detail-title').textContent === 'GET /json 200'")
        #expect(try ui.browser.string("document.querySelector('#rows .row.selected .path').textContent") == "/json")

        // Paused, new exchanges wait; resumed, they arrive; cleared, the list starts again.
        try ui.browser.click("#pause")
        _ = try ui.proxy.get("/later")
        try ui.browser.waitFor("document.querySelector('#count').textContent.includes('1 waiting')")
        #expect(try ui.browser.evaluate("document.querySelectorAll('#rows .row').length") as? Int == 3)
        try ui.browser.click("#pause")
        try ui.browser.waitFor("document.querySelectorAll('#rows .row').length === 4")
        try ui.screenshot("list")
        try ui.browser.click("#clear")
        #expect(try ui.browser.evaluate("document.querySelectorAll('#rows .row').length") as? Int == 0)
        _ = try ui.proxy.get("/after-clear")
        try ui.browser.waitFor("document.querySelector('#count').textContent === '1 of 1 exchanges'")
    }

    @Test func theDetailShowsHeadersBodiesAndTimingWithSecretsMaskedUntilRevealed() throws {
        let ui = try Setup()
        defer { ui.stop() }
        _ = try ui.proxy.get("/json", headers: ["Cookie: sid=abc123", "Authorization: Bearer tok3n"])
        _ = try ui.proxy.get("/image.png")
        _ = try ui.proxy.get("/blob")
        let json = try ui.spanID(of: "/json")
        try ui.open("#/exchange/current/\(json)", rows: 3)
        try ui.browser.waitFor("document.querySelector('#detail-status')")
        #expect(try ui.browser.string("document.querySelector('#detail-status').textContent") == "200")
        #expect(try ui.browser.string("document.querySelector('#detail-title').textContent") == "GET /json 200")
        #expect(try ui.browser.string("document.querySelector('#rows .row.selected .path').textContent") == "/json")
        let headers = "Array.from(document.querySelectorAll('table.headers tr')).map(r => r.textContent)"
        let shown = try ui.browser.evaluate(headers) as? [String] ?? []
        #expect(shown.contains("Cookiesid=[masked]") && shown.contains("Authorization[masked]") && shown.contains("Content-Typeapplication/json"), "\(shown)")
        // The JSON body as a tree: collapsible, the password masked.
        let leaves = "Array.from(document.querySelectorAll('.json .leaf')).map(l => l.textContent)"
        #expect((try ui.browser.evaluate(leaves) as? [String] ?? []).contains("\"password\": \"[masked]\""))
        // The object, its array and its nested object.
        #expect(try ui.browser.evaluate("document.querySelectorAll('.json details').length") as? Int == 3)
        _ = try ui.browser.evaluate("document.querySelector('.json details summary').click()")
        #expect(try ui.browser.evaluate("document.querySelector('.json details').open") as? Bool == false)
        // The timing bar: the proxy's phases, in order.
        let phases = try ui.browser.evaluate("Array.from(document.querySelectorAll('.timing .seg')).map(s => s.className)") as? [String] ?? []
        #expect(phases.contains("seg wait") && phases.contains("seg receive"), "\(phases)")
        #expect(try ui.browser.string("document.querySelector('.legend').textContent").contains("total "))
        try ui.screenshot("detail")

        try ui.browser.click("#reveal")
        try ui.browser.waitFor("Array.from(document.querySelectorAll('.json .leaf')).some(l => l.textContent === '\"password\": \"hunter2\"')")
        #expect((try ui.browser.evaluate(headers) as? [String] ?? []).contains("AuthorizationBearer tok3n"))

        try ui.browser.click("#copy-curl")
        try ui.browser.waitFor("!document.querySelector('#curl').hidden")
        #expect(try ui.browser.string("document.querySelector('#curl').textContent").contains("curl -sS -X $'GET' $'http://"))

        // An image is shown as one, binary as hex.
        _ = try ui.browser.evaluate("location.hash = '#/exchange/current/\(try ui.spanID(of: "/image.png"))'")
        try ui.browser.waitFor("document.querySelector('img.preview') && document.querySelector('img.preview').complete && document.querySelector('img.preview').naturalWidth === 1")
        _ = try ui.browser.evaluate("location.hash = '#/exchange/current/\(try ui.spanID(of: "/blob"))'")
        try ui.browser.waitFor("document.querySelector('pre.hex')")
        #expect(try ui.browser.string("document.querySelector('pre.hex').textContent").hasPrefix("00000000  00 04 08 0c 10 14 18 1c"))
    }

    @Test func theTraceViewDrawsTheWaterfallAndDuplicatesSideBySide() throws {
        let ui = try Setup(rules: #"{"rules": [{"name": "twice", "match": {"path": "/counter"}, "faults": [{"type": "duplicate", "count": 2}]}]}"#)
        defer { ui.stop() }
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        _ = try ui.proxy.get("/timed", headers: ["traceparent: 00-\(traceID)-00f067aa0ba902b7-01"])
        _ = try ui.spanID(of: "/timed")
        try ui.open("#/trace/current/\(traceID)", rows: 1)
        try ui.browser.waitFor("document.querySelectorAll('.span-row').length >= 5")
        let names = try ui.browser.evaluate("Array.from(document.querySelectorAll('.span-row .span-name')).map(n => n.textContent)") as? [String] ?? []
        #expect(names.first == "proxy proxy GET /timed", "\(names)")
        #expect(names.contains("proxy wait for upstream") && names.contains { $0.hasPrefix("server-timing db") }, "\(names)")
        // Children are indented under their parent, bars placed on one time axis.
        #expect(try ui.browser.string("document.querySelector('.src-server-timing .span-name').style.paddingLeft") != "0px")
        let widths = try ui.browser.evaluate("""
            Object.fromEntries(Array.from(document.querySelectorAll('.span-row')).map(r =>
              [r.querySelector('.span-name').textContent, parseFloat(r.querySelector('.span-bar').style.width)]))
            """) as? [String: Double] ?? [:]
        let db = try #require(widths.first { $0.key.hasPrefix("server-timing db") }?.value)
        let app = try #require(widths.first { $0.key.hasPrefix("server-timing app") }?.value)
        #expect(abs(db / app - 12.5 / 30) < 0.01, "\(widths)")
        _ = try ui.browser.evaluate("Array.from(document.querySelectorAll('.span-row')).find(r => r.textContent.includes('server-timing db')).click()")
        try ui.browser.waitFor("document.querySelector('#span-attributes table')")
        let attributes = try ui.browser.string("document.querySelector('#span-attributes').textContent")
        #expect(attributes.contains("sourceserver-timing") && attributes.contains("duration12.5 ms") && attributes.contains(traceID) == false, "\(attributes) \(names)")

        // A duplicated request: both copies in the trace, side by side, the differing cells marked.
        _ = try ui.proxy.get("/counter")
        let copies = try ui.admin.waitFor("/api/sessions/current/exchanges") {
            ($0["exchanges"] as? [[String: Any]])?.filter { $0["target"] as? String == "/counter" }.count == 2
        }
        let counterTrace = try #require((copies["exchanges"] as? [[String: Any]])?.first { $0["target"] as? String == "/counter" }?["trace_id"] as? String)
        _ = try ui.browser.evaluate("location.hash = '#/trace/current/\(counterTrace)'")
        try ui.browser.waitFor("document.querySelector('table.side-by-side')")
        let table = try ui.browser.evaluate("Array.from(document.querySelectorAll('table.side-by-side tr')).map(r => Array.from(r.children).map(c => c.textContent))") as? [[String]] ?? []
        #expect(table.first == ["", "copy 1/2", "copy 2/2"], "\(table)")
        #expect(table.contains(["status", "200", "200"]) && table.contains(["body", "{\"n\":1}", "{\"n\":2}"]), "\(table)")
        // The body cell that differs is marked; durations always differ and are never marked.
        let marked = try ui.browser.evaluate("Array.from(document.querySelectorAll('table.side-by-side td.differs')).map(c => c.parentElement.firstChild.textContent + ' ' + c.textContent)") as? [String]
        #expect(marked == ["body {\"n\":2}"], "\(String(describing: marked))")
        #expect(try ui.browser.string("document.querySelector('#side p.dup').textContent") == "Difference: copy 2: n: 2 vs 1")
        try ui.screenshot("trace-duplicates")
    }

    @Test func aRuleSwitchedOffInTheUIChangesWhatTheNextRequestSees() throws {
        let ui = try Setup(rules: #"{"rules": [{"name": "teapot", "match": {"path": "/coffee"}, "faults": [{"type": "abort", "status": 418}]}]}"#)
        defer { ui.stop() }
        #expect(try ui.proxy.get("/coffee").status == 418)
        try ui.open("#/rules", rows: 1)
        try ui.browser.waitFor("document.querySelector('tr[data-rule=teapot] .applied')")
        #expect(try ui.browser.string("document.querySelector('tr[data-rule=teapot] .applied').textContent") == "1")
        #expect(try ui.browser.string("document.querySelector('tr[data-rule=teapot]').textContent").contains("GET") == false)
        try ui.screenshot("rules")
        try ui.browser.click("tr[data-rule=teapot] .rule-toggle")
        try ui.browser.waitFor("document.querySelector('tr[data-rule=teapot]') && document.querySelector('tr[data-rule=teapot]').className === 'off'")
        #expect(try ui.proxy.get("/coffee").status == 200)

        // A temporary rule from an exchange: abort requests like this one with 503.
        let coffee = try ui.spanID(of: "/coffee")
        _ = try ui.browser.evaluate("location.hash = '#/exchange/current/\(coffee)'")
        try ui.browser.waitFor("document.querySelector('#add-rule')")
        _ = try ui.browser.evaluate("(() => { const t = document.querySelector('#rule-type'); t.value = 'abort'; t.dispatchEvent(new Event('change')); })()")
        #expect(try ui.browser.string("document.querySelector('#rule-value').value") == "503")
        try ui.browser.click("#add-rule")
        let rules = try ui.admin.waitFor("/api/rules") { ($0["rules"] as? [[String: Any]])?.count == 2 }
        let added = try #require((rules["rules"] as? [[String: Any]])?.last)
        #expect((added["name"] as? String)?.hasPrefix("ui-abort-") == true && added["temporary"] as? Bool == true)
        #expect(added["match"] as? String == "GET /coffee")
        #expect(try ui.proxy.get("/coffee").status == 503)
        #expect(try ui.proxy.get("/tea").status == 200)
    }

    @Test func replayFromTheUIShowsTheDiffAndRaceCopiesSideBySide() throws {
        let ui = try Setup()
        defer { ui.stop() }
        _ = try ui.proxy.get("/json")
        let json = try ui.spanID(of: "/json")
        try ui.open("#/exchange/current/\(json)", rows: 1)
        try ui.browser.click("#replay")
        try ui.browser.waitFor("document.querySelector('#replay-result .verdict')", seconds: 20)
        #expect(try ui.browser.string("document.querySelector('#replay-result .verdict').textContent") == "identical")
        _ = try ui.browser.evaluate("document.querySelector('#replay-count').value = 4")
        try ui.browser.click("#replay")
        try ui.browser.waitFor("document.querySelector('#replay-result table.side-by-side')", seconds: 20)
        let columns = try ui.browser.evaluate("Array.from(document.querySelectorAll('#replay-result th')).map(t => t.textContent)") as? [String] ?? []
        #expect(columns.filter { $0.hasPrefix("copy ") } == ["copy 1", "copy 2", "copy 3", "copy 4"])
        #expect(try ui.browser.string("document.querySelector('#replay-result').textContent").contains("4 succeeded, 1 different bodies"))
        #expect(try ui.browser.evaluate("document.querySelectorAll('#replay-result td.differs').length") as? Int == 0)
        try ui.screenshot("replay")
        // The replays went through the proxy: the live list has them (1 + 1 + 4), and the round is one trace.
        try ui.browser.waitFor("document.querySelector('#count').textContent.startsWith('6 of 6 ')")
        _ = try ui.admin.waitFor("/api/sessions/current/exchanges") { ($0["exchanges"] as? [Any])?.count == 6 }
        try ui.browser.click("#round-trace")
        try ui.browser.waitFor("document.querySelector('#waterfall') && document.querySelector('table.side-by-side')")
        let header = try ui.browser.evaluate("Array.from(document.querySelectorAll('table.side-by-side tr:first-child th')).map(t => t.textContent)") as? [String]
        #expect(header == ["", "request 1", "request 2", "request 3", "request 4"], "\(String(describing: header))")
        #expect(try ui.browser.evaluate("document.querySelectorAll('.span-row').length") as? Int ?? 0 >= 16)
        try ui.screenshot("race-round")
    }

    @Test func tenThousandExchangesStayVirtualisedRows() throws {
        let ui = try Setup(store: temporaryStore())
        defer { ui.stop() }
        // Ten thousand requests on four keep-alive connections, pipelined in batches.
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            do {
                let client = try ui.proxy.connect(timeout: 30)
                defer { client.close() }
                for batch in 0..<50 {
                    client.send((0..<50).map { "GET /n\(worker * 2500 + batch * 50 + $0) HTTP/1.1\r\nHost: shop\r\n\r\n" }.joined())
                    for _ in 0..<50 { _ = try client.readResponse() }
                }
            } catch {
                failures.withLock { $0.append("worker \(worker): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        #expect(ui.proxy.sink.wait(for: 10_000, seconds: 60).count == 10_000)
        try ui.open(rows: 10_000)
        let rendered = try ui.browser.evaluate("document.querySelectorAll('#rows .row').length") as? Int ?? 0
        #expect(rendered > 10 && rendered < 100, "\(rendered)")
        #expect(try ui.browser.evaluate("document.querySelector('#spacer').offsetHeight") as? Int == 220_000)
        // Scrolled to the middle, the rows there are drawn.
        _ = try ui.browser.evaluate("(() => { const v = document.querySelector('#viewport'); v.scrollTop = 5000 * 22; v.dispatchEvent(new Event('scroll')); })()")
        try ui.browser.waitFor("document.querySelector('#rows .row[data-span]') && Array.from(document.querySelectorAll('#rows .row')).length < 100")
        let middle = try ui.browser.evaluate("Array.from(document.querySelectorAll('#rows .row')).map(r => parseInt(r.style.transform.match(/\\d+/)[0]) / 22)") as? [Int] ?? []
        #expect(middle.contains(5000), "\(middle.prefix(5))")
        _ = try ui.browser.evaluate("(() => { const f = document.querySelector('#filter-text'); f.value = '/n9999'; f.dispatchEvent(new Event('input')); })()")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/n9999 200"])
        // From the bottom of the whole list to a handful: the handful is drawn (the scroll position follows).
        _ = try ui.browser.evaluate("(() => { const f = document.querySelector('#filter-text'); f.value = ''; f.dispatchEvent(new Event('input')); })()")
        _ = try ui.browser.evaluate("(() => { const v = document.querySelector('#viewport'); v.scrollTop = 1e9; v.dispatchEvent(new Event('scroll')); })()")
        _ = try ui.browser.evaluate("(() => { const f = document.querySelector('#filter-text'); f.value = '/n999'; f.dispatchEvent(new Event('input')); })()")
        let few = try ui.browser.evaluate(Self.rowTexts) as? [String] ?? []
        #expect(few.count == 11 && few.first == "/n999 200", "\(few)")
    }

    @Test func aPastSessionIsPickedAndDownloadedAsHAR() throws {
        let store = temporaryStore()
        let upstream = try ShopUpstream.start()
        let earlier = try TestProxy(upstreamPort: upstream.port) { $0.captureDirectory = store }
        _ = try earlier.get("/from-before")
        let past = try #require(earlier.server.captureSessionPath.map { String($0.split(separator: "/").last!) })
        earlier.stop()
        upstream.stop()
        usleep(10_000)  // session names are milliseconds apart

        let ui = try Setup(store: store)
        defer { ui.stop() }
        _ = try ui.proxy.get("/now")
        try ui.open(rows: 1)
        try ui.browser.waitFor("document.querySelectorAll('#session option').length === 2")
        _ = try ui.browser.evaluate("(() => { const s = document.querySelector('#session'); s.value = '\(past)'; s.dispatchEvent(new Event('change')); })()")
        try ui.browser.waitFor("document.querySelector('#rows .path') && document.querySelector('#rows .path').textContent === '/from-before'")
        let rows = try ui.browser.evaluate(Self.rowTexts) as? [String]
        #expect(rows == ["/from-before 200"], "\(String(describing: rows))")
        #expect(try ui.browser.string("document.querySelector('#har').getAttribute('href')") == "/api/sessions/\(past)/har")
        let entries = try ui.browser.evaluate("fetch(document.querySelector('#har').href).then(r => r.json()).then(h => h.log.entries.map(e => e.request.url))") as? [String]
        #expect(entries?.count == 1 && entries?.first?.hasSuffix("/from-before") == true)
        // Back to the live session: the stream again.
        _ = try ui.browser.evaluate("(() => { const s = document.querySelector('#session'); s.value = 'current'; s.dispatchEvent(new Event('change')); })()")
        try ui.browser.waitFor("document.querySelector('#count').textContent === '1 of 1 exchanges' && document.querySelector('#rows .path').textContent === '/now'")
    }

    @Test func offLoopbackTheBrowserNeedsTheTokenOnceThenTheUIWorks() throws {
        let ui = try Setup(adminHost: "0.0.0.0")
        defer { ui.stop() }
        let token = try #require(ui.proxy.server.adminToken)
        _ = try ui.proxy.get("/json")
        try ui.browser.navigate(ui.url)
        #expect(try ui.browser.string("document.title") == "Tracetap: token needed")
        #expect(try ui.browser.evaluate("document.querySelector('#rows') === null && !document.body.textContent.includes('/json')") as? Bool == true)
        // The link printed at start: the cookie is set, the token leaves the address bar.
        try ui.browser.navigate(ui.url + "?token=\(token)")
        try ui.browser.waitFor("document.querySelector('#count') && document.querySelector('#count').textContent === '1 of 1 exchanges'")
        #expect(try ui.browser.string("location.href") == ui.url)
        #expect(try ui.browser.string("document.cookie") == "", "HttpOnly: the page's scripts cannot read the token")
        _ = try ui.proxy.get("/missing")
        try ui.browser.waitFor("document.querySelectorAll('#rows .row').length === 2")
        #expect(try ui.browser.evaluate(Self.rowTexts) as? [String] == ["/json 200", "/missing 404"])
    }
}
