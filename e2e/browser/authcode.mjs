// Drives gatehouse's authorization-code login page and front-channel
// logout in headless Chromium, one step per line the Go test writes on
// stdin; each step prints one line on stdout. Diagnostics go to stderr.
//
//   node authcode.mjs <appOrigin> <screenshotPath>
//
// Steps (stdin line -> stdout line):
//   login <authURL> <username> <password>  -> the URL the app was sent to
//   visit <URL>                            -> the URL the browser ended at
//   form? <URL>                            -> "login-page" or "no-login-page"
import { chromium } from "playwright-core";
import readline from "node:readline";

const [appOrigin, screenshot] = process.argv.slice(2);
if (!appOrigin || !screenshot) {
  console.error("usage: node authcode.mjs <appOrigin> <screenshotPath>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await (await browser.newContext()).newPage();
  const consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  const atApp = (u) => u.origin === appOrigin;

  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [step, ...args] = line.trim().split(" ");
    console.error(`${new Date().toISOString()} ${step}`);
    if (step === "login") {
      const [authURL, username, password] = args;
      await page.goto(authURL);
      await page.fill("#username", username);
      await page.fill("#password", password);
      await Promise.all([page.waitForURL(atApp), page.click("button[type=submit]")]);
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      console.log(page.url());
    } else if (step === "visit") {
      await page.goto(args[0]);
      console.log(page.url());
    } else if (step === "form?") {
      await page.goto(args[0]);
      console.log((await page.$("#password")) ? "login-page" : "no-login-page");
    } else {
      throw new Error(`unknown step ${step}`);
    }
  }
  if (consoleErrors.length > 0) throw new Error("console errors: " + consoleErrors.join(" | "));
} finally {
  await browser.close();
}
