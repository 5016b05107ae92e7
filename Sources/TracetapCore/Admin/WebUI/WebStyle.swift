/// The web UI's style sheet, served as `/ui/app.css`.
enum WebStyle {
    static let source = #"""
/* Tracetap web UI: a dense, light layout in the spirit of browser devtools. */
:root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --bg: #fff; --panel: #f6f7f9; --accent: #2f6fde;
  --ok: #1f8a4c; --redirect: #7a5cc2; --client: #b86e00; --server: #c62f2f; --font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { font: var(--font); color: var(--fg); background: var(--bg); display: flex; flex-direction: column; }
code, pre, .path, .num, .time, .hex, .curl { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
a { color: var(--accent); }
button, .button, select, input { font: inherit; border: 1px solid #c9ced8; background: #fff; border-radius: 4px; padding: 2px 8px; color: var(--fg); }
button, .button { cursor: pointer; text-decoration: none; }
button:hover, .button:hover { background: var(--panel); }
.button.disabled { opacity: .4; pointer-events: none; }
.bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; padding: 6px 10px; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; margin-right: 6px; }
#filter-text { flex: 1; min-width: 120px; }
#session { max-width: 250px; }
.muted { color: var(--muted); }
.bad { color: var(--server); }
.dot { width: 9px; height: 9px; border-radius: 50%; background: #bbb; display: inline-block; }
.dot.on { background: var(--ok); } .dot.off { background: var(--server); }
main { flex: 1; display: flex; min-height: 0; }
#list { width: 48%; min-width: 420px; display: flex; flex-direction: column; border-right: 1px solid var(--line); }
#viewport { flex: 1; overflow-y: auto; position: relative; }
#rows { position: absolute; top: 0; left: 0; right: 0; }
.row { display: grid; grid-template-columns: 92px 54px minmax(80px, 1fr) 48px 70px 66px minmax(60px, 210px); gap: 6px; align-items: center;
  height: 22px; padding: 0 8px; white-space: nowrap; cursor: pointer; border-bottom: 1px solid #f0f1f4; }
#rows .row { position: absolute; left: 0; right: 0; top: 0; }
.row.head { cursor: default; font-weight: 600; color: var(--muted); background: var(--panel); border-bottom: 1px solid var(--line); }
.row:not(.head):hover { background: #eef3fd; }
.row.selected { background: #dbe7fc; }
.row span { overflow: hidden; text-overflow: ellipsis; }
.num { text-align: right; }
.status { font-weight: 600; }
.s2 { color: var(--ok); } .s3 { color: var(--redirect); } .s4 { color: var(--client); } .s5, .err { color: var(--server); }
.badge { display: inline-block; padding: 0 5px; margin-right: 3px; border-radius: 8px; font-size: 11px; background: #eceef2; color: var(--fg); }
.badge.fault { background: #fdeccf; color: #7a4a00; }
.badge.dup { background: #e4dcfa; color: #4b2f9a; }
.badge.err { background: #fbdada; color: #8a1f1f; }
#side { flex: 1; overflow: auto; padding: 10px 16px 40px; min-width: 0; }
#side h2 { font-size: 16px; margin: 4px 0 6px; word-break: break-all; }
#side h3 { font-size: 13px; margin: 16px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.meta { color: var(--muted); margin: 2px 0 8px; word-break: break-all; }
.actions { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; padding: 8px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
.actions .group { display: inline-flex; gap: 4px; align-items: center; }
.actions input[type=number] { width: 70px; }
table { border-collapse: collapse; width: 100%; }
table.headers th, table.headers td, table.rules th, table.rules td, table.diff th, table.diff td, table.side-by-side th, table.side-by-side td {
  text-align: left; vertical-align: top; padding: 3px 8px; border-bottom: 1px solid var(--line); word-break: break-all; }
table.headers th { width: 28%; font-weight: 600; color: #3a4254; }
.masked { color: var(--muted); font-style: italic; }
.body pre, pre.curl, pre.hex { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 8px; overflow: auto; max-height: 480px; white-space: pre-wrap; word-break: break-all; }
pre.hex { white-space: pre; }
img.preview { max-width: 100%; max-height: 360px; border: 1px solid var(--line); background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
.json { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; }
.json details { margin-left: 14px; } .json > details { margin-left: 0; }
.json .leaf { margin-left: 14px; }
.json summary { cursor: pointer; color: var(--muted); }
.key { color: #7b2f8e; } .j-string { color: #1a6e3a; } .j-number { color: #1f4fb0; } .j-boolean, .j-null { color: #a4420b; }
.timing .track { position: relative; height: 14px; background: var(--panel); border: 1px solid var(--line); border-radius: 3px; }
.timing .seg { position: absolute; top: 0; bottom: 0; }
.seg.read, .key-read::before { background: #9aa5b8; }
.seg.connect, .key-connect::before { background: #f0a33a; }
.seg.send, .key-send::before { background: #40a7c9; }
.seg.wait, .key-wait::before { background: #37a36b; }
.seg.receive, .key-receive::before { background: #2f6fde; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 4px; color: var(--muted); }
.legend span::before { content: ""; display: inline-block; width: 9px; height: 9px; margin-right: 4px; border-radius: 2px; }
.waterfall { border: 1px solid var(--line); border-radius: 4px; }
.span-row { display: grid; grid-template-columns: minmax(180px, 40%) 1fr 70px; gap: 8px; align-items: center; height: 24px; padding: 0 8px; cursor: pointer; border-bottom: 1px solid #f0f1f4; }
.span-row:hover { background: #eef3fd; } .span-row.selected { background: #dbe7fc; }
.span-name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.span-track { position: relative; height: 12px; }
.span-bar { position: absolute; top: 0; bottom: 0; border-radius: 2px; background: var(--accent); }
.src-proxy .span-bar { background: #8d6cd9; } .src-otlp .span-bar { background: #2f6fde; }
.src-server-timing .span-bar { background: #40a7c9; } .src-sql .span-bar { background: #e07b24; }
.span-row.error .span-bar { background: var(--server); }
.badge.src { font-size: 10px; }
.attributes { margin-top: 10px; }
table.side-by-side tr > th:first-child { width: 80px; white-space: nowrap; }
td.differs { background: #fde2e2; font-weight: 600; }
table.diff td.old { background: #fdf0f0; } table.diff td.new { background: #eefbf2; }
.verdict.identical, .verdict.noise-only { color: var(--ok); } .verdict.regression, .verdict.error { color: var(--server); }
tr.off td { color: var(--muted); }
table.rules td, table.rules th { word-break: normal; }
table.rules .num { white-space: nowrap; }
.row .faults { display: flex; align-items: center; }
.notice { position: fixed; bottom: 16px; right: 16px; background: var(--fg); color: #fff; padding: 8px 12px; border-radius: 6px; max-width: 420px; z-index: 5; }
.notice.bad { background: var(--server); }
p.dup { color: #4b2f9a; }
"""#
}
