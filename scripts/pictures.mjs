// Turns what the bot posts for a pull request (payload.json, written by
// `cargo run --example pictures`) into two HTML pages drawn like GitHub's:
// the pull request's conversation with envgate's sticky comment, and the
// pull request's Checks tab with the `envgate` check run. The Markdown is
// the bot's, untouched; `marked` renders it as GitHub does (tables, raw
// HTML such as <details> and <sub>). scripts/pictures.sh screenshots them.
//
//   node target/pictures/render.mjs payload.json OUT_DIR   (pictures.sh runs it)
import { marked } from "marked";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [payloadPath, outDir] = process.argv.slice(2);
const payload = JSON.parse(readFileSync(payloadPath, "utf8"));

// The pull request the pictures are of: the quickstart's two newest
// migrations.
const PR = {
  title: "Tickets: trash column and an index for the audit view",
  number: 42,
  author: "mona",
  base: "main",
  head: "tickets-trash",
};

const esc = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// Markdown as GitHub shows it. `open`: which <details> start open, by the
// start of their summary's text. `breaks`: a comment's single newlines are
// line breaks on GitHub; a check run's output reads like a Markdown file.
function markdown(md, open, breaks) {
  let html = marked.parse(md, { gfm: true, breaks });
  html = html.replace(/<details>(\s*<summary>)([\s\S]*?)<\/summary>/g, (all, lead, summary) => {
    const text = summary.replace(/<[^>]+>/g, "");
    return open.some((o) => text.startsWith(o)) ? `<details open>${lead}${summary}</summary>` : all;
  });
  return html;
}

const CSS = `
:root {
  --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --border-muted: #d1d9e0b3;
  --canvas-subtle: #f6f8fa; --accent: #0969da; --danger: #d1242f; --success: #1a7f37;
  --open: #1f883d;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: #fff; }
body {
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif,
    "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji";
  font-size: 14px; line-height: 1.5; color: var(--fg);
  -webkit-font-smoothing: antialiased;
}
a { color: var(--accent); text-decoration: none; }
code, pre, tt {
  font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", "Noto Sans Mono", monospace;
}
.page { padding: 24px 32px 28px; }

/* The pull request's header. */
.pr-title { font-size: 26px; font-weight: 400; margin: 0 0 8px; line-height: 1.25; }
.pr-title .num { color: var(--muted); font-weight: 300; }
.pr-meta { display: flex; align-items: center; gap: 8px; color: var(--muted); padding-bottom: 8px; }
.pr-meta b { color: var(--fg); font-weight: 600; }
.state { display: inline-flex; align-items: center; gap: 4px; color: #fff; background: var(--open);
  border-radius: 2em; padding: 5px 12px; font-weight: 500; font-size: 14px; line-height: 20px; }
.branch { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", "Noto Sans Mono", monospace;
  font-size: 12px; color: var(--accent); background: #ddf4ff; border-radius: 6px; padding: 0 5px; }
.tabs { display: flex; gap: 8px; border-bottom: 1px solid var(--border); margin: 0 0 16px; padding-top: 8px; }
.tab { padding: 8px 12px; color: var(--fg); display: flex; align-items: center; gap: 6px;
  border: 1px solid transparent; border-bottom: 0; border-radius: 6px 6px 0 0; margin-bottom: -1px; }
.tab.selected { border-color: var(--border); background: #fff; font-weight: 600; }
.tab .count { background: #818b981f; border-radius: 2em; padding: 0 6px; font-size: 12px; font-weight: 500; }
.tab svg { fill: var(--muted); }

/* A timeline comment. */
.timeline { display: flex; gap: 16px; align-items: flex-start; }
.avatar { flex: none; width: 40px; height: 40px; border-radius: 6px; background: #1b4b91;
  display: flex; align-items: center; justify-content: center; box-shadow: 0 0 0 1px #1f23281f; }
.comment { flex: 1; min-width: 0; border: 1px solid var(--border); border-radius: 6px; position: relative; }
.comment::before, .comment::after { content: ""; position: absolute; top: 11px; right: 100%;
  border: 8px solid transparent; }
.comment::before { border-right-color: var(--border); }
.comment::after { border-right-color: var(--canvas-subtle); margin-right: -1px; }
.comment-header { display: flex; align-items: center; gap: 6px; padding: 8px 16px; color: var(--muted);
  background: var(--canvas-subtle); border-bottom: 1px solid var(--border); border-radius: 6px 6px 0 0; }
.comment-header .login { color: var(--fg); font-weight: 600; }
.comment-header .spacer { flex: 1; }
.label { border: 1px solid var(--border); border-radius: 2em; padding: 0 7px; font-size: 12px;
  font-weight: 500; line-height: 18px; color: var(--muted); }
.comment-body { padding: 16px; }

/* GitHub's rendered Markdown. */
.markdown-body > :first-child { margin-top: 0 !important; }
.markdown-body > :last-child { margin-bottom: 0 !important; }
.markdown-body p, .markdown-body blockquote, .markdown-body ul, .markdown-body ol,
.markdown-body table, .markdown-body pre, .markdown-body details { margin-top: 0; margin-bottom: 16px; }
.markdown-body h3 { font-size: 1.25em; font-weight: 600; line-height: 1.25; margin: 24px 0 16px; }
.markdown-body code { padding: .2em .4em; margin: 0; font-size: 85%; white-space: break-spaces;
  background: #818b9833; border-radius: 6px; }
.markdown-body pre { padding: 16px; overflow: hidden; font-size: 85%; line-height: 1.45;
  background: var(--canvas-subtle); border-radius: 6px; }
.markdown-body pre code { padding: 0; background: transparent; font-size: 100%; white-space: pre; }
.markdown-body blockquote { padding: 0 1em; color: var(--muted); border-left: .25em solid var(--border); }
.markdown-body blockquote p { margin: 0; }
.markdown-body ul { padding-left: 2em; }
.markdown-body li + li { margin-top: .25em; }
.markdown-body table { border-spacing: 0; border-collapse: collapse; display: block; width: max-content;
  max-width: 100%; overflow: auto; font-variant: tabular-nums; }
.markdown-body th { font-weight: 600; }
.markdown-body th, .markdown-body td { padding: 6px 13px; border: 1px solid var(--border); }
.markdown-body tr { background: #fff; border-top: 1px solid var(--border-muted); }
.markdown-body tr:nth-child(2n) { background: var(--canvas-subtle); }
.markdown-body details summary { cursor: pointer; display: list-item; }
.markdown-body details > :not(summary):first-of-type { margin-top: 16px; }
.markdown-body details details { margin-bottom: 0; }
.markdown-body sub { font-size: 75%; line-height: 0; vertical-align: baseline; position: relative; bottom: -.25em; }
.markdown-body sub code { white-space: normal; overflow-wrap: anywhere; }
.markdown-body strong { font-weight: 600; }

/* The Checks tab. */
.checks { display: flex; border: 1px solid var(--border); border-radius: 6px; overflow: hidden; }
.sidebar { flex: none; width: 250px; background: var(--canvas-subtle); border-right: 1px solid var(--border);
  padding: 12px 0; }
.suite { display: flex; align-items: center; gap: 8px; padding: 6px 16px; font-weight: 600; }
.suite .app { width: 20px; height: 20px; border-radius: 4px; background: #1b4b91;
  display: flex; align-items: center; justify-content: center; }
.run { display: flex; align-items: center; gap: 8px; padding: 6px 16px 6px 44px; }
.run.selected { background: #fff; box-shadow: inset 2px 0 0 #fd8c73; font-weight: 600; }
.main { flex: 1; min-width: 0; }
.run-header { display: flex; align-items: center; gap: 12px; padding: 16px 24px;
  border-bottom: 1px solid var(--border); }
.run-header h2 { margin: 0; font-size: 20px; font-weight: 600; line-height: 1.25; }
.run-header .when { color: var(--muted); }
.output { padding: 20px 24px 24px; }
.output h1.title { font-size: 24px; font-weight: 600; margin: 0 0 16px; line-height: 1.25;
  padding-bottom: .3em; border-bottom: 1px solid var(--border-muted); }
.annotations { margin-top: 24px; border: 1px solid var(--border); border-radius: 6px; }
.annotations .head { padding: 12px 16px; border-bottom: 1px solid var(--border); background: var(--canvas-subtle);
  border-radius: 6px 6px 0 0; }
.annotations .head h3 { margin: 0; font-size: 14px; font-weight: 600; }
.annotations .head .sub { color: var(--muted); font-size: 12px; }
.annotation { display: flex; gap: 8px; padding: 12px 16px; }
.annotation > svg { flex: none; margin-top: 3px; }
.annotation + .annotation { border-top: 1px solid var(--border); }
.annotation .where { font-weight: 600; }
.annotation .where .path { color: var(--accent); }
.annotation pre { margin: 4px 0 0; white-space: pre-wrap; font-size: 12px; line-height: 1.5; }
`;

// Octicons (MIT), as GitHub draws them.
const ICON = {
  failure: (s) =>
    `<svg width="${s}" height="${s}" viewBox="0 0 16 16" fill="#d1242f"><path d="M2.343 13.657A8 8 0 1 1 13.658 2.343 8 8 0 0 1 2.343 13.657ZM6.03 4.97a.751.751 0 0 0-1.042.018.751.751 0 0 0-.018 1.042L6.94 8 4.97 9.97a.749.749 0 0 0 .326 1.275.749.749 0 0 0 .734-.215L8 9.06l1.97 1.97a.749.749 0 0 0 1.275-.326.749.749 0 0 0-.215-.734L9.06 8l1.97-1.97a.749.749 0 0 0-.326-1.275.749.749 0 0 0-.734.215L8 6.94Z"/></svg>`,
  success: (s) =>
    `<svg width="${s}" height="${s}" viewBox="0 0 16 16" fill="#1a7f37"><path d="M8 16A8 8 0 1 1 8 0a8 8 0 0 1 0 16Zm3.78-9.72a.751.751 0 0 0-.018-1.042.751.751 0 0 0-1.042-.018L6.75 9.19 5.28 7.72a.751.751 0 0 0-1.042.018.751.751 0 0 0-.018 1.042l2 2a.75.75 0 0 0 1.06 0Z"/></svg>`,
  neutral: (s) =>
    `<svg width="${s}" height="${s}" viewBox="0 0 16 16" fill="#59636e"><path d="M1.75 1h12.5c.966 0 1.75.784 1.75 1.75v10.5A1.75 1.75 0 0 1 14.25 15H1.75A1.75 1.75 0 0 1 0 13.25V2.75C0 1.784.784 1 1.75 1ZM4 7.25v1.5h8v-1.5Z"/></svg>`,
};
const PR_OPEN = `<svg width="16" height="16" viewBox="0 0 16 16" fill="#fff"><path d="M1.5 3.25a2.25 2.25 0 1 1 3 2.122v5.256a2.251 2.251 0 1 1-1.5 0V5.372A2.25 2.25 0 0 1 1.5 3.25Zm5.677-.177L9.573.677A.25.25 0 0 1 10 .854V2.5h1A2.5 2.5 0 0 1 13.5 5v5.628a2.251 2.251 0 1 1-1.5 0V5a1 1 0 0 0-1-1h-1v1.646a.25.25 0 0 1-.427.177L7.177 3.427a.25.25 0 0 1 0-.354ZM3.75 2.5a.75.75 0 1 0 0 1.5.75.75 0 0 0 0-1.5Zm0 9.5a.75.75 0 1 0 0 1.5.75.75 0 0 0 0-1.5Zm8.25.75a.75.75 0 1 0 1.5 0 .75.75 0 0 0-1.5 0Z"/></svg>`;
const TAB_ICON = {
  Conversation: `<path d="M1.75 1h8.5c.966 0 1.75.784 1.75 1.75v5.5A1.75 1.75 0 0 1 10.25 10H7.061l-2.574 2.573A1.458 1.458 0 0 1 2 11.543V10h-.25A1.75 1.75 0 0 1 0 8.25v-5.5C0 1.784.784 1 1.75 1ZM1.5 2.75v5.5c0 .138.112.25.25.25h1a.75.75 0 0 1 .75.75v2.19l2.72-2.72a.749.749 0 0 1 .53-.22h3.5a.25.25 0 0 0 .25-.25v-5.5a.25.25 0 0 0-.25-.25h-8.5a.25.25 0 0 0-.25.25Zm13 2a.25.25 0 0 0-.25-.25h-.5a.75.75 0 0 1 0-1.5h.5c.966 0 1.75.784 1.75 1.75v5.5A1.75 1.75 0 0 1 14.25 12H14v1.543a1.458 1.458 0 0 1-2.487 1.03L9.22 12.28a.749.749 0 0 1 .326-1.275.749.749 0 0 1 .734.215l2.22 2.22v-2.19a.75.75 0 0 1 .75-.75h1a.25.25 0 0 0 .25-.25Z"/>`,
  Commits: `<path d="M11.93 8.5a4.002 4.002 0 0 1-7.86 0H.75a.75.75 0 0 1 0-1.5h3.32a4.002 4.002 0 0 1 7.86 0h3.32a.75.75 0 0 1 0 1.5Zm-1.43-.75a2.5 2.5 0 1 0-5 0 2.5 2.5 0 0 0 5 0Z"/>`,
  Checks: `<path d="M2.5 1.75v11.5c0 .138.112.25.25.25h3.17a.75.75 0 0 1 0 1.5H2.75A1.75 1.75 0 0 1 1 13.25V1.75C1 .784 1.784 0 2.75 0h8.5C12.216 0 13 .784 13 1.75v7.736a.75.75 0 0 1-1.5 0V1.75a.25.25 0 0 0-.25-.25h-8.5a.25.25 0 0 0-.25.25Zm13.274 9.537v-.001l-4.557 4.45a.75.75 0 0 1-1.055-.008l-1.943-1.95a.75.75 0 0 1 1.062-1.058l1.419 1.425 4.026-3.932a.75.75 0 1 1 1.048 1.074ZM4.75 4h4.5a.75.75 0 0 1 0 1.5h-4.5a.75.75 0 0 1 0-1.5ZM4 7.75A.75.75 0 0 1 4.75 7h2a.75.75 0 0 1 0 1.5h-2A.75.75 0 0 1 4 7.75Z"/>`,
  "Files changed": `<path d="M1 1.75C1 .784 1.784 0 2.75 0h7.586c.464 0 .909.184 1.237.513l2.914 2.914c.329.328.513.773.513 1.237v9.586A1.75 1.75 0 0 1 13.25 16H2.75A1.75 1.75 0 0 1 1 14.25Zm1.75-.25a.25.25 0 0 0-.25.25v12.5c0 .138.112.25.25.25h10.5a.25.25 0 0 0 .25-.25V4.664a.25.25 0 0 0-.073-.177l-2.914-2.914a.25.25 0 0 0-.177-.073ZM8 3.25a.75.75 0 0 1 .75.75v1.5h1.5a.75.75 0 0 1 0 1.5h-1.5v1.5a.75.75 0 0 1-1.5 0V7h-1.5a.75.75 0 0 1 0-1.5h1.5V4A.75.75 0 0 1 8 3.25Zm-3 8a.75.75 0 0 1 .75-.75h4.5a.75.75 0 0 1 0 1.5h-4.5a.75.75 0 0 1-.75-.75Z"/>`,
};
// envgate's avatar: a gate.
const GATE = (s) =>
  `<svg width="${s}" height="${s}" viewBox="0 0 24 24" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"><path d="M4 4v16M20 4v16M4 8h16M4 16h16M9 8v8M15 8v8"/></svg>`;

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head>
<body><div class="page">${body}</div>
<script>
  // scripts/pictures.sh reads the height to size the screenshot.
  addEventListener("load", () => {
    document.body.dataset.height = Math.ceil(document.querySelector(".page").getBoundingClientRect().height);
  });
</script></body></html>
`;
}

function prHeader(selected, checks) {
  const tabs = [
    ["Conversation", 1],
    ["Commits", 2],
    ["Checks", checks],
    ["Files changed", 2],
  ]
    .map(
      ([name, count]) =>
        `<div class="tab${name === selected ? " selected" : ""}"><svg width="16" height="16" viewBox="0 0 16 16">${TAB_ICON[name]}</svg>${name}<span class="count">${count}</span></div>`,
    )
    .join("");
  return `<h1 class="pr-title">${esc(PR.title)} <span class="num">#${PR.number}</span></h1>
<div class="pr-meta"><span class="state">${PR_OPEN} Open</span>
<span><b>${esc(PR.author)}</b> wants to merge 2 commits into <span class="branch">${esc(PR.base)}</span> from <span class="branch">${esc(PR.head)}</span></span></div>
<div class="tabs">${tabs}</div>`;
}

// The conversation: envgate's sticky comment. The bundle preview stays
// folded (it is the whole bundle, guards and all); the matrix is opened.
const comment = `${prHeader("Conversation", 1)}
<div class="timeline">
  <div class="avatar">${GATE(26)}</div>
  <div class="comment">
    <div class="comment-header"><span class="login">${esc(payload.bot)}</span> commented 1 minute ago
      <span class="spacer"></span><span class="label">bot</span></div>
    <div class="comment-body markdown-body">${markdown(payload.comment, ["Every migration", "What needs attention"], true)}</div>
  </div>
</div>`;
writeFileSync(join(outDir, "pr-comment.html"), page(`envgate comment on #${PR.number}`, comment));

// The Checks tab: the check run's conclusion, title, summary and
// annotations, as GitHub lays out a check run's output.
const run = payload.check_run;
const icon = ICON[run.conclusion] ?? ICON.neutral;
const verb = { success: "succeeded", failure: "failed", neutral: "completed neutral" }[run.conclusion] ?? run.conclusion;
const annotations = run.output.annotations ?? [];
const level = { failure: "error", warning: "warning", notice: "notice" };
const counts = {};
for (const a of annotations) counts[level[a.annotation_level]] = (counts[level[a.annotation_level]] ?? 0) + 1;
const annotationBox = annotations.length
  ? `<div class="annotations"><div class="head"><h3>Annotations</h3><span class="sub">${Object.entries(counts)
      .map(([k, n]) => `${n} ${k}${n === 1 ? "" : "s"}`)
      .join(", ")}</span></div>
${annotations
  .map(
    (a) => `<div class="annotation">${ICON[a.annotation_level === "failure" ? "failure" : "neutral"](16)}<div>
<div class="where">Check ${a.annotation_level} on line ${a.start_line} in <span class="path">${esc(a.path)}</span></div>
<div><b>${esc(a.title)}</b></div><pre>${esc(a.message)}</pre></div></div>`,
  )
  .join("\n")}</div>`
  : "";
const checks = `${prHeader("Checks", 1)}
<div class="checks">
  <div class="sidebar">
    <div class="suite"><span class="app">${GATE(14)}</span>envgate</div>
    <div class="run selected">${icon(16)}${esc(run.name)}</div>
  </div>
  <div class="main">
    <div class="run-header">${icon(24)}<div><h2>${esc(run.name)}</h2>
      <div class="when">${verb} 1 minute ago in 2s</div></div></div>
    <div class="output">
      <h1 class="title">${esc(run.output.title)}</h1>
      <div class="markdown-body">${markdown(run.output.summary, ["What needs attention"], false)}${
        run.output.text ? markdown(run.output.text, [], false) : ""
      }</div>
      ${annotationBox}
    </div>
  </div>
</div>`;
writeFileSync(join(outDir, "check-run.html"), page(`envgate check run`, checks));
