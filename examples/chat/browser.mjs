// End-to-end test of the chat example in headless Chromium, driven by
// playwright-core: two people join, one writes, the other reads it, one
// leaves and the other is told. The chat and the emulator's live view are
// checked at 390×844 (a phone) and 1280×800 (a laptop): nothing wider than
// the window, the message input at least half of its row, the upstream-calls
// table fitting its card or scrolling in its own box under a hint, the
// pager on one line. Screenshots go to target/screenshots/: chat.png (the
// README's), chat-390.png, chat-1280.png, live-view-390.png,
// live-view-1280.png (the README's), chat-after-leave.png.
//
// Run by the `browser_chat_end_to_end` test of examples/chat/main.rs, which
// starts the example and sets:
//
// - CHAT_URL: the chat page, e.g. http://127.0.0.1:3000/
// - EMULATOR_URL: the emulator's endpoint, e.g. http://127.0.0.1:8080
//
// Optional: CHROMIUM (default /usr/bin/chromium, Debian's `chromium`),
// SCREENSHOT_DIR (default <repo>/target/screenshots).
//
// Needs playwright-core from emulator/tests/node (`npm ci --prefix emulator/tests/node`); it
// never downloads a browser. Exits 0 when every step passed, 1 with the
// failing step otherwise, 2 after the 60 s deadline.

import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const DEADLINE_MS = 60_000;
/// How long one step waits for the page.
const STEP_MS = 10_000;

const deadline = setTimeout(() => {
  console.error(`browser.mjs: FAILED: still running after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(2);
}, DEADLINE_MS);

function fail(message) {
  console.error(`browser.mjs: FAILED: ${message}`);
  process.exit(1);
}

// playwright-core is installed in emulator/tests/node; resolve it from there, whatever
// the working directory.
let chromium;
try {
  const require = createRequire(path.join(REPO, "emulator", "tests", "node", "package.json"));
  ({ chromium } = require("playwright-core"));
} catch (error) {
  fail(`playwright-core is not installed in emulator/tests/node (${error.code || error.message}); run \`bash .ci/test\` or \`npm ci --prefix emulator/tests/node\``);
}

const CHAT_URL = process.env.CHAT_URL;
const EMULATOR_URL = (process.env.EMULATOR_URL || "").replace(/\/+$/, "");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || path.join(REPO, "target", "screenshots");
if (!CHAT_URL || !EMULATOR_URL) fail("set CHAT_URL and EMULATOR_URL (the test in examples/chat/main.rs does)");
if (!existsSync(CHROMIUM)) fail(`no browser at ${CHROMIUM}; install Debian's chromium (\`apt-get install -y chromium\`, as \`bash .ci/test\` does)`);
mkdirSync(SHOTS, { recursive: true });
// Failure screenshots of an earlier run would mislead.
for (const file of readdirSync(SHOTS)) if (/^failure-.*\.png$/.test(file)) rmSync(path.join(SHOTS, file));

let current = "starting";
async function step(name, fn) {
  current = name;
  await fn();
  console.log(`  ok  ${name}`);
}

/// Waits until `selector` on `page` has exactly the texts `expected`.
async function texts(page, selector, expected, what) {
  try {
    await page.waitForFunction(
      ([sel, want]) => {
        const got = [...document.querySelectorAll(sel)].map((n) => n.textContent.trim());
        return JSON.stringify(got) === JSON.stringify(want);
      },
      [selector, expected],
      { timeout: STEP_MS },
    );
  } catch {
    const got = await page.$$eval(selector, (ns) => ns.map((n) => n.textContent.trim())).catch(() => "?");
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, saw ${JSON.stringify(got)}`);
  }
}

/// Waits until some element matching `selector` contains `text`.
async function sees(page, selector, text, what) {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: STEP_MS });
  } catch {
    const got = await page.$$eval(selector, (ns) => ns.map((n) => n.textContent.trim())).catch(() => "?");
    throw new Error(`${what}: no ${selector} containing ${JSON.stringify(text)}; saw ${JSON.stringify(got)}`);
  }
}

/// Widths measured in the page: the window, the page, every element that
/// sticks out of the window with no ancestor that scrolls or clips it
/// sideways (such an ancestor is measured as an element itself), and the
/// box of the first element each of `selectors` names (null when absent or
/// hidden) with its nearest ancestor that scrolls sideways (and whether
/// that holds more than it shows).
function measure(selectors) {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "") + [...el.classList].map((c) => `.${c}`).join("");
  const up = (el, stop) => {
    let holder = el.parentElement;
    while (holder && holder !== document.body && !stop(getComputedStyle(holder).overflowX)) holder = holder.parentElement;
    return holder && holder !== document.body ? holder : null;
  };
  const outside = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (!box.width || (box.left >= -0.5 && box.right <= width + 0.5)) continue;
    if (!up(el, (overflow) => overflow !== "visible")) outside.push(`${name(el)} (${Math.round(box.left)} to ${Math.round(box.right)} px)`);
  }
  const boxes = {};
  for (const [key, selector] of Object.entries(selectors)) {
    const el = document.querySelector(selector);
    const box = el?.getBoundingClientRect();
    if (!box || !box.width) {
      boxes[key] = null;
      continue;
    }
    const holder = up(el, (overflow) => overflow === "auto" || overflow === "scroll");
    const held = holder?.getBoundingClientRect();
    boxes[key] = {
      left: box.left,
      right: box.right,
      top: box.top,
      width: box.width,
      scroller: holder
        ? { left: held.left, right: held.right, width: held.width, name: name(holder), overflows: holder.scrollWidth > holder.clientWidth }
        : null,
    };
  }
  return { width, pageWidth: document.documentElement.scrollWidth, outside: outside.slice(0, 6), boxes };
}

/// Resizes `page` to `width`×`height`, saves a full-page screenshot as
/// `shot`, and throws unless the page and every element fit the window and
/// `check` (given the boxes of `selectors`, the width and a list to push
/// faults to) found nothing; logs what `check` measured.
async function layout(page, width, height, what, shot, selectors, check) {
  await page.setViewportSize({ width, height });
  // Two frames: the page's resize handlers have run and it is laid out anew.
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  await page.screenshot({ path: path.join(SHOTS, shot), fullPage: true });
  const seen = await page.evaluate(measure, selectors);
  const faults = [];
  if (seen.pageWidth > width) faults.push(`the page is ${seen.pageWidth} px wide`);
  if (seen.outside.length) faults.push(`sticking out: ${seen.outside.join(", ")}`);
  const notes = check(seen.boxes, width, faults);
  console.log(`      ${what} at ${width}×${height}: ${notes}`);
  if (faults.length) throw new Error(`${what} at ${width}×${height}: ${faults.join("; ")}`);
}

/// The chat's own layout checks: the message input has at least half of
/// its row, and the row fits the window.
function chatFits({ input, row }, width, faults) {
  if (!input || !row) {
    faults.push("no #text input or #send row on the page");
    return "?";
  }
  if (input.width < row.width / 2) faults.push(`the input is ${Math.round(input.width)} px of a ${Math.round(row.width)} px row`);
  if (row.right > width + 0.5) faults.push(`the send row ends at ${Math.round(row.right)} px`);
  return `input ${Math.round(input.width)} px of a ${Math.round(row.width)} px row`;
}

/// The live view's own layout checks: the upstream-calls table fits its
/// card, or scrolls sideways in a box that fits the window under a visible
/// hint (and the hint shows only then); the pager's buttons share a line.
function liveFits({ table, card, hint, prev, next }, width, faults) {
  if (!table || !card) {
    faults.push("no upstream-calls table in its card");
    return "?";
  }
  let notes = `calls table ${Math.round(table.width)} px in a ${Math.round(card.width)} px card`;
  const box = table.scroller;
  // A table scrolled sideways may lie within its card and still be too wide.
  if (table.left < card.left - 0.5 || table.right > card.right + 0.5 || box?.overflows) {
    notes += box ? `, scrolling in ${box.name} (${Math.round(box.width)} px)` : ", in no scrolling box";
    if (!box) faults.push(`the calls table (${Math.round(table.width)} px) overflows its ${Math.round(card.width)} px card`);
    else if (box.left < -0.5 || box.right > width + 0.5) faults.push(`the calls table's scrolling box spans ${Math.round(box.left)} to ${Math.round(box.right)} px`);
    if (!hint) faults.push(`the calls table (${Math.round(table.width)} px) scrolls in its ${Math.round(card.width)} px card with no visible hint`);
  } else if (hint) {
    faults.push("the scroll hint shows although the calls table fits");
  }
  if (!prev || !next) faults.push("the pager has no previous or next button");
  else if (Math.abs(prev.top - next.top) > 2) faults.push(`the pager's buttons are on two lines (tops ${Math.round(prev.top)} and ${Math.round(next.top)} px)`);
  return notes;
}

async function join(page, name) {
  await page.goto(CHAT_URL);
  await page.fill("#name", name);
  await page.click("#join button[type=submit]");
  await sees(page, "#status", `connected as ${name}`, `${name}'s status`);
  await page.locator("#room").waitFor({ state: "visible", timeout: STEP_MS });
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.click("#send button[type=submit]");
}

/// Every message line of the page as [author, text] (notices have no author).
const lines = (page) =>
  page.$$eval("#messages li", (lis) =>
    lis.map((li) => [li.querySelector(".author")?.textContent ?? null, li.querySelector(".text")?.textContent ?? null]),
  );

const browser = await chromium
  .launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh, empty --user-data-dir of its own.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 20_000,
  })
  .catch((error) => fail(`could not start ${CHROMIUM}: ${error.message}`));

const problems = [];
const pages = {};
async function open(label) {
  // One context each: no shared storage, as two people on two machines.
  const context = await browser.newContext({ viewport: { width: 960, height: 600 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (error) => problems.push(`${label}: uncaught ${error.message}`));
  page.on("console", (msg) => {
    const where = msg.location()?.url || "";
    // Both pages carry their icon inline: a failed /favicon.ico is a fault too.
    if (msg.type() === "error") {
      problems.push(`${label}: console error: ${msg.text()}${where ? ` (${where})` : ""}`);
    }
  });
  pages[label] = page;
  return page;
}

let failed = null;
try {
  console.log(`chat.mjs: ${CHAT_URL} (emulator ${EMULATOR_URL}), ${CHROMIUM} ${browser.version()}`);
  const ada = await open("Ada");
  const grace = await open("Grace");

  await step("Ada joins", () => join(ada, "Ada"));
  await step("Ada sees her own join and is online alone", async () => {
    await sees(ada, "#messages li.notice", "Ada joined", "Ada's messages");
    await texts(ada, "#online li", ["Ada"], "Ada's online list");
  });
  await step("Grace joins", () => join(grace, "Grace"));
  await step("Grace sees her own join", () => sees(grace, "#messages li.notice", "Grace joined", "Grace's messages"));
  await step("Ada sees Grace join", () => sees(ada, "#messages li.notice", "Grace joined", "Ada's messages"));
  await step("both see Ada and Grace online", async () => {
    for (const page of [ada, grace]) {
      await texts(page, "#online li", ["Ada", "Grace"], "online list");
      await texts(page, "#online-count", ["2"], "online count");
    }
    await texts(ada, "#online li.me", ["Ada"], "Ada's own name in bold");
    await texts(grace, "#online li.me", ["Grace"], "Grace's own name in bold");
  });

  await step("Grace asks who is here (an invoke): only Grace gets the answer", async () => {
    await grace.click("#who");
    await sees(grace, "#messages li.notice", "Here now: Ada, Grace", "Grace's messages");
    await ada.waitForTimeout(300);
    const adas = (await lines(ada)).map(([, text]) => text);
    if (adas.some((text) => (text ?? "").startsWith("Here now"))) throw new Error(`Ada got Grace's answer: ${JSON.stringify(adas)}`);
  });

  await step("Ada writes, Grace reads it with its author", async () => {
    await send(ada, "Hello Grace! The emulator works.");
    await sees(grace, "#messages li.message", "Hello Grace! The emulator works.", "Grace's messages");
    const got = await lines(grace);
    const line = got.find(([, text]) => text === "Hello Grace! The emulator works.");
    if (!line || line[0] !== "Ada") throw new Error(`Grace's line has author ${JSON.stringify(line?.[0])}, not "Ada": ${JSON.stringify(got)}`);
    await sees(ada, "#messages li.message.mine", "Hello Grace! The emulator works.", "Ada's own line, marked mine");
    if ((await ada.inputValue("#text")) !== "") throw new Error("Ada's input was not cleared after sending");
  });
  await step("Grace answers, Ada reads it", async () => {
    await send(grace, "Hi Ada, loud and clear.");
    await sees(ada, "#messages li.message:not(.mine)", "Hi Ada, loud and clear.", "Ada's messages");
    await sees(grace, "#messages li.message.mine", "Hi Ada, loud and clear.", "Grace's own line");
  });
  await step("an empty-after-trim message is not sent", async () => {
    // The input is `required` and app.js trims: nothing goes out.
    await grace.fill("#text", "   ");
    await grace.press("#text", "Enter");
    await grace.waitForTimeout(300);
    const count = (await lines(grace)).filter(([author]) => author).length;
    if (count !== 2) throw new Error(`Grace's page shows ${count} chat lines, expected 2`);
    await grace.fill("#text", "");
  });
  await step("screenshot of Grace's page: chat.png", () => grace.screenshot({ path: path.join(SHOTS, "chat.png") }));
  await step("the chat fits a phone (390×844) and a laptop (1280×800): chat-390.png, chat-1280.png", async () => {
    const parts = { input: "#text", row: "#send" };
    await layout(grace, 390, 844, "the chat", "chat-390.png", parts, chatFits);
    await layout(grace, 1280, 800, "the chat", "chat-1280.png", parts, chatFits);
    await grace.setViewportSize({ width: 960, height: 600 });
  });

  await step("the emulator's state has both users in the lobby", async () => {
    const state = await (await fetch(`${EMULATOR_URL}/_emulator/api/state`)).json();
    const conns = state.hubs?.chat ?? [];
    const users = conns.map((c) => c.userId).sort();
    if (JSON.stringify(users) !== '["Ada","Grace"]') throw new Error(`hub chat has users ${JSON.stringify(users)}: ${JSON.stringify(state.hubs)}`);
    for (const c of conns) {
      if (!(c.groups || []).includes("lobby")) throw new Error(`${c.userId} is not in the lobby: ${JSON.stringify(c)}`);
    }
  });
  const live = await open("live view");
  await step("live view shows both connections and the upstream calls", async () => {
    await live.setViewportSize({ width: 1280, height: 800 });
    await live.goto(`${EMULATOR_URL}/_emulator`);
    await sees(live, "#live", "live", "live view status");
    await sees(live, "#hubs h3", "2 connection(s)", "live view hubs");
    await sees(live, "#hubs td", "Ada", "live view connections");
    await sees(live, "#hubs td", "Grace", "live view connections");
    for (const event of ["connect", "connected", "message"]) {
      await sees(live, "#calls td", event, "live view upstream calls");
    }
  });
  await step("the live view fits a phone (390×844) and a laptop (1280×800): live-view-390.png, live-view-1280.png", async () => {
    const parts = { table: "#calls table", card: "section:has(#calls)", hint: "#calls .scroll-hint", prev: "#prev", next: "#next" };
    await layout(live, 390, 844, "the live view", "live-view-390.png", parts, liveFits);
    await layout(live, 1280, 800, "the live view", "live-view-1280.png", parts, liveFits);
  });

  await step("Ada leaves and is back at the join form, told she left", async () => {
    await ada.click("#leave");
    await ada.locator("#join").waitFor({ state: "visible" });
    await sees(ada, "#status", "not connected", "Ada's status");
    await sees(ada, "#join-note", "You left the chat.", "Ada's join form");
    if ((await ada.inputValue("#name")) !== "Ada") throw new Error("Ada's name is not kept for joining again");
  });
  await step("Grace sees that Ada left, and is online alone", async () => {
    await sees(grace, "#messages li.notice", "Ada left", "Grace's messages");
    await texts(grace, "#online li", ["Grace"], "Grace's online list");
    await texts(grace, "#online-count", ["1"], "Grace's online count");
  });
  await step("the live view follows: one connection, a disconnected call", async () => {
    await sees(live, "#hubs h3", "1 connection(s)", "live view hubs");
    await sees(live, "#calls td", "disconnected", "live view upstream calls");
  });
  await step("screenshot of Grace's page after: chat-after-leave.png", () =>
    grace.screenshot({ path: path.join(SHOTS, "chat-after-leave.png") }),
  );
  if (problems.length) throw new Error(`the pages reported errors:\n    ${problems.join("\n    ")}`);
} catch (error) {
  failed = `step "${current}": ${error.message}`;
  for (const [label, page] of Object.entries(pages)) {
    const file = path.join(SHOTS, `failure-${label.replace(/\W+/g, "-").toLowerCase()}.png`);
    await page.screenshot({ path: file }).then(() => console.error(`  screenshot of ${label}'s page: ${file}`), () => {});
  }
} finally {
  await browser.close().catch(() => {});
}
clearTimeout(deadline);
if (failed) fail(failed);
console.log(`chat.mjs: all steps passed; screenshots in ${SHOTS}`);
