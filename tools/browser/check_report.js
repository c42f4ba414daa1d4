// check_report.js: opens a `clens compare` report.html in headless Debian
// chromium (rulings R16: playwright-core, executablePath /usr/bin/chromium, no
// browser download, a fresh user-data-dir), takes a full-page screenshot, and
// checks that every model of comparison.json (beside the report) has its curve
// in the relative-depth plot, its profile table and its summary row, that the
// page logs no console error and throws nothing, and that it makes no request
// other than loading the report file itself. Where comparison.json has them:
// the final prompt tokens of a model's first pairs (has_final_tokens: a clean
// and a corrupted row, a marked differing token), the probe/cause/control
// table and plot (evidence.layers: one table row per layer, the recovery and
// probe curves and the steering points with their counts) and the AtP
// correlation table and scatter (one point per site).
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
  const models = cmp.models.map((m) => {
    const ev = m.evidence || null;
    const layers = ev ? ev.layers : [];
    return {
      label: m.label, points: m.profile.length, tokens: !!m.has_final_tokens, evidence: !!(ev && layers.length),
      ev_rows: layers.length, ev_rec: layers.filter((r) => r.recovery && r.recovery.mean !== null).length,
      ev_probe: layers.filter((r) => r.probe && r.probe.auroc !== null).length,
      ev_steer: layers.filter((r) => r.steer && r.steer.effect !== null).length,
      atp: !!(ev && ev.atp), atp_types: ev && ev.atp ? ev.atp.site_types.length : 0,
      atp_sites: ev && ev.atp ? ev.atp.site_types.reduce((a, t) => a + t.sites.length, 0) : 0,
    };
  });
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
          token_rows: byModel('section.model', m.label).reduce((a, sec) => a + sec.querySelectorAll('td.final-tokens').length, 0),
          token_diffs: byModel('section.model', m.label).reduce((a, sec) => a + sec.querySelectorAll('td.final-tokens .tok.diff').length, 0),
          ev_tables: byModel('table.evidence', m.label).length,
          ev_table_rows: byModel('table.evidence', m.label).reduce((a, t) => a + t.querySelectorAll('tr').length - 1, 0),
          ev_plots: byModel('svg.plot-evidence', m.label).length,
          ev_rec_points: byModel('svg.plot-evidence polyline.ev-recovery', m.label).reduce((a, e) => a + e.getAttribute('points').trim().split(/\s+/).filter(Boolean).length, 0),
          ev_probe_points: byModel('svg.plot-evidence polyline.ev-probe', m.label).reduce((a, e) => a + e.getAttribute('points').trim().split(/\s+/).filter(Boolean).length, 0),
          ev_steer_points: byModel('svg.plot-evidence circle.ev-steer', m.label).length,
          ev_control_points: byModel('svg.plot-evidence circle.ev-control', m.label).length,
          atp_tables: byModel('table.atp-types', m.label).reduce((a, t) => a + t.querySelectorAll('tr').length - 1, 0),
          atp_points: byModel('svg.plot-atp', m.label).reduce((a, e) => a + e.querySelectorAll('circle.atp-point').length, 0),
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
      const m = models[i];
      if (m.tokens && (f.token_rows < 2 || f.token_diffs < 1))
        problems.push(`${f.label}: final prompt tokens missing (${f.token_rows} token rows, ${f.token_diffs} marked differences)`);
      if (m.evidence) {
        if (f.ev_tables !== 1 || f.ev_table_rows !== m.ev_rows) problems.push(`${f.label}: ${f.ev_tables} evidence tables with ${f.ev_table_rows} rows, want 1 with ${m.ev_rows}`);
        if (f.ev_plots !== 1) problems.push(`${f.label}: ${f.ev_plots} evidence plots, want 1`);
        if (f.ev_rec_points !== m.ev_rec) problems.push(`${f.label}: evidence recovery curve has ${f.ev_rec_points} points, want ${m.ev_rec}`);
        if (f.ev_probe_points !== m.ev_probe) problems.push(`${f.label}: probe curve has ${f.ev_probe_points} points, want ${m.ev_probe}`);
        if (f.ev_steer_points !== m.ev_steer || f.ev_control_points !== m.ev_steer)
          problems.push(`${f.label}: ${f.ev_steer_points} steering and ${f.ev_control_points} control points, want ${m.ev_steer}`);
      }
      if (m.atp) {
        if (f.atp_tables !== m.atp_types) problems.push(`${f.label}: AtP table has ${f.atp_tables} site types, want ${m.atp_types}`);
        if (f.atp_points !== m.atp_sites) problems.push(`${f.label}: AtP scatter has ${f.atp_points} points, want ${m.atp_sites}`);
      }
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
