// Opens one page in Debian's chromium (headless, through playwright-core)
// and reports, as one JSON object on stdout:
//   - axe: the accessibility violations axe-core finds (id, impact, nodes);
//   - xss: whether any script from the page's data ran (window.__xss set);
//   - keyboard: the elements Tab reaches, in order;
//   - title.
// With --screenshot FILE it also writes a full-page PNG, at --width (1280)
// and --height (800) CSS pixels. Each --click NAME then presses the button
// or link of that accessible name (by keyboard: focus, then Enter) and
// waits for the next page; axe runs on every page visited, and `pages`
// lists their titles.
//
//   node tests/browser/page.mjs URL [--screenshot FILE] [--width N] [--height N] [--click NAME]…
//
// CHROMIUM: the browser to drive (default /usr/bin/chromium).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.ENVGATE_BROWSER_TOOLS
  ? `${process.env.ENVGATE_BROWSER_TOOLS}/node_modules/`
  : import.meta.url);
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const width = Number(opt("--width", "1280"));
const height = Number(opt("--height", "800"));
const screenshot = opt("--screenshot", null);
const clicks = args.flatMap((a, i) => (a === "--click" ? [args[i + 1]] : []));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  const axeRun = async () => {
    // axe is evaluated as a function body: the page's own policy never has
    // to allow a script tag for it.
    if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) {
      await page.evaluate(axeSource);
    }
    return page.evaluate(async () => {
      const r = await window.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      });
      return r.violations.map((v) => ({
        page: document.title,
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
      }));
    });
  };
  const axe = await axeRun();
  const pages = [await page.title()];
  for (const name of clicks) {
    const target = page.getByRole("button", { name, exact: true })
      .or(page.getByRole("link", { name, exact: true }));
    await target.first().focus();
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.keyboard.press("Enter")]);
    pages.push(await page.title());
    axe.push(...(await axeRun()));
  }
  const keyboard = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press("Tab");
    keyboard.push(await page.evaluate(() => {
      const el = document.activeElement;
      return el ? `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}` : "";
    }));
  }
  const xss = await page.evaluate(() => window.__xss !== undefined);
  const title = await page.title();
  if (screenshot) {
    await page.keyboard.press("Escape");
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  const text = await page.evaluate(() => document.body.innerText);
  process.stdout.write(JSON.stringify({ title, pages, axe, xss, keyboard, errors, text }) + "\n");
} finally {
  await browser.close();
}
