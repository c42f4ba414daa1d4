// check_report.js: opens a `clens compare` report.html in headless Debian
// chromium (rulings R16: playwright-core, executablePath /usr/bin/chromium, no
// browser download, a fresh user-data-dir), takes a full-page screenshot, and
// checks that every model of comparison.json (beside the report) has its curve
// in the relative-depth plot, its profile table and its summary row, that the
// page logs no console error and throws nothing, and that it makes no request
// other than loading the report file itself.
//
// usage: node check_report.js REPORT_HTML SCREENSHOT_PNG  (also writes SCREENSHOT-full.png, the whole page)
// prints one JSON line {ok, models, requests, console_errors, problems}; exit 0 ok, 1 failed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

async function main() {
  const [reportArg, shotArg] = process.argv.slice(2);
  if (!reportArg || !shotArg) {
    console.error('usage: node check_report.js REPORT_HTML SCREENSHOT_PNG');
    process.exit(2);
  }
  const report = path.resolve(reportArg);
  const cmp = JSON.parse(fs.readFileSync(path.join(path.dirname(report), 'comparison.json'), 'utf8'));
  const models = cmp.models.map((m) => ({ label: m.label, points: m.profile.length }));
  const url = 'file://' + report;
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clens-chromium-'));
  const problems = [];
  const requests = [];
  const consoleErrors = [];
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
    page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForTimeout(300);
    const found = await page.evaluate((ms) => {
      const byModel = (sel, label) => [...document.querySelectorAll(sel)].filter((e) => e.getAttribute('data-model') === label);
      return ms.map((m) => {
        const curves = byModel('svg.plot-profiles polyline.curve', m.label);
        const tables = byModel('table.profile', m.label);
        const rows = tables.length ? tables[0].querySelectorAll('tr').length - 1 : 0;
        const npts = curves.length ? curves[0].getAttribute('points').trim().split(/\s+/).filter(Boolean).length : 0;
        const box = curves.length ? curves[0].getBoundingClientRect() : null;
        return {
          label: m.label, curves: curves.length, curve_points: npts, curve_visible: !!box && (box.width > 0 || box.height > 0),
          tables: tables.length, table_rows: rows, summary_rows: byModel('table.summary tr', m.label).length,
          sections: byModel('section.model', m.label).length,
        };
      });
    }, models);
    for (let i = 0; i < models.length; i++) {
      const f = found[i];
      const want = models[i].points;
      if (f.curves < 2) problems.push(`${f.label}: ${f.curves} curves (want one per profile plot, 2)`);
      if (f.curve_points !== want) problems.push(`${f.label}: curve has ${f.curve_points} points, want ${want}`);
      if (!f.curve_visible) problems.push(`${f.label}: curve not rendered`);
      if (f.tables !== 1 || f.table_rows !== want) problems.push(`${f.label}: ${f.tables} tables with ${f.table_rows} rows, want 1 with ${want}`);
      if (f.summary_rows !== 1) problems.push(`${f.label}: ${f.summary_rows} summary rows`);
      if (f.sections !== 1) problems.push(`${f.label}: ${f.sections} sections`);
    }
    await page.screenshot({ path: shotArg }); // the first screen: title, summary table, profile plot
    await page.screenshot({ path: shotArg.replace(/\.png$/, '') + '-full.png', fullPage: true });
    const extra = requests.filter((u) => u !== url);
    if (extra.length) problems.push(`network requests: ${extra.join(', ')}`);
    if (consoleErrors.length) problems.push(`console errors: ${consoleErrors.join(' | ')}`);
    const out = { ok: problems.length === 0, models: found, requests, console_errors: consoleErrors, problems };
    console.log(JSON.stringify(out));
    process.exitCode = out.ok ? 0 : 1;
  } finally {
    await ctx.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error('check_report: ' + (e && e.stack || e)); process.exit(1); });
