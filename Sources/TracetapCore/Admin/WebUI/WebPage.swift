/// The page's skeleton; `app.js` fills it.
enum WebPage {
    static let html = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Tracetap</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="/ui/app.css">
    <script src="/ui/app.js" defer></script>
    </head>
    <body>
    <header class="bar">
      <a class="brand" href="#/">Tracetap</a>
      <label>Session <select id="session" aria-label="session"></select></label>
      <a id="har" class="button" href="#" download>HAR</a>
      <input id="filter-text" type="search" placeholder="filter: text in method, path, status, faults" aria-label="filter text">
      <select id="filter-status" aria-label="status class">
        <option value="">any status</option><option>2xx</option><option>3xx</option><option>4xx</option><option>5xx</option><option value="err">no response</option>
      </select>
      <select id="filter-method" aria-label="method">
        <option value="">any method</option><option>GET</option><option>POST</option><option>PUT</option><option>PATCH</option><option>DELETE</option><option>HEAD</option><option>OPTIONS</option>
      </select>
      <input id="filter-trace" type="search" placeholder="trace ID" aria-label="trace ID" size="14">
      <button id="pause" type="button">Pause</button>
      <button id="clear" type="button">Clear</button>
      <span id="count" class="muted"></span>
      <a class="button" href="#/rules">Rules</a>
      <span id="conn" class="dot" title="live stream"></span>
    </header>
    <main>
      <section id="list" aria-label="exchanges">
        <div class="row head"><span>time</span><span>method</span><span>path</span><span>status</span><span>duration</span><span>size</span><span>faults</span></div>
        <div id="viewport"><div id="spacer"></div><div id="rows"></div></div>
      </section>
      <section id="side" aria-live="polite"><p class="muted">Pick an exchange to see its headers, bodies, timing and trace.</p></section>
    </main>
    </body>
    </html>
    """
}
