/// The web UI: one page, one script, one style sheet, all ours and compiled into the binary (nothing is
/// fetched from anywhere else; the Content-Security-Policy says so to the browser too).
enum WebUI {
    /// Scripts only from this origin and no inline code: a captured body shown in the page can never run.
    static let securityHeaders: [(name: String, value: String)] = [
        ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("Referrer-Policy", "no-referrer"),
    ]

    static func asset(_ path: String) -> AdminAPI.Reply? {
        switch path {
        case "/", "/index.html": page(status: 200, WebPage.html)
        case "/ui/app.js": AdminAPI.Reply(status: 200, contentType: "text/javascript; charset=utf-8", body: Array(WebScript.source.utf8), headers: securityHeaders)
        case "/ui/app.css": AdminAPI.Reply(status: 200, contentType: "text/css; charset=utf-8", body: Array(WebStyle.source.utf8), headers: securityHeaders)
        default: nil
        }
    }

    /// What a browser without the token sees: a form for it, and nothing from the captures (not even the
    /// style sheet, which also wants the token).
    static func tokenPage(status: Int, wrong: Bool) -> AdminAPI.Reply {
        page(status: status, """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tracetap: token needed</title>
        </head><body><form method="get" action="/">
        <h1>Tracetap</h1><p>\(wrong ? "That token is not right. " : "")This admin port needs its token (printed when the proxy started, or given with <code>--admin-token</code>).</p>
        <input name="token" type="password" autofocus placeholder="token" aria-label="token"><button>Open</button></form></body></html>
        """)
    }

    private static func page(status: Int, _ html: String) -> AdminAPI.Reply {
        AdminAPI.Reply(status: status, contentType: "text/html; charset=utf-8", body: Array(html.utf8), headers: securityHeaders)
    }
}
