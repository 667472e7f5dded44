// Signs in to the gatehouse portal in headless Chromium, checks the profile
// panel, clicks Copy and prints the renewable token read back from the
// clipboard (the one line on stdout). Diagnostics go to stderr.
//
//   node portal.mjs <baseURL> <username> <password> <screenshotPath>
import { chromium } from "playwright-core";

const [baseURL, username, password, screenshot] = process.argv.slice(2);
if (!baseURL || !username || !password || !screenshot) {
  console.error("usage: node portal.mjs <baseURL> <username> <password> <screenshotPath>");
  process.exit(2);
}

function fail(msg) {
  throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const origin = new URL(baseURL).origin;
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  const cspErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") cspErrors.push(m.text());
  });

  await page.goto(new URL("/portal/", baseURL).href);
  await page.fill("#username", username);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);

  if (!(await page.$("dd#username"))) {
    await page.screenshot({ path: screenshot, fullPage: true });
    fail("no profile panel after signing in: " + (await page.textContent("main")).replace(/\s+/g, " ").trim());
  }
  const shown = (await page.textContent("dd#username"))?.trim();
  if (shown !== username) fail(`panel shows username ${JSON.stringify(shown)}`);
  const memberships = (await page.$$eval("code.membership", (els) => els.map((e) => e.textContent.trim())));
  if (memberships.length === 0) fail("no membership ids on the panel");
  console.error("memberships: " + memberships.join(" "));

  await page.click("#copy");
  await page.waitForFunction(() => document.getElementById("copied").textContent.length > 0);
  const status = await page.textContent("#copied");
  if (!status.startsWith("Copied")) fail(`copy failed: ${status}; console: ${cspErrors.join(" | ")}`);
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const onPage = (await page.textContent("#renewable-token")).trim();
  if (copied !== onPage) fail("clipboard does not hold the token shown");
  if (cspErrors.length > 0) fail("console errors: " + cspErrors.join(" | "));

  await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(copied + "\n");
} finally {
  await browser.close();
}
