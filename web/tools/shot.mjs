// Development aid: screenshots of the built page (target/web) for a look.
// node tools/shot.mjs OUT.png [src] [host] [region]
import { serve } from '../test/serve.mjs';
import { launch } from '../test/browser.mjs';

const [out = '/tmp/page.png', src = '', host = '', region = 'world', width = '1440'] = process.argv.slice(2);
const site = await serve(new URL('../../target/web/', import.meta.url).pathname);
const { context, close } = await launch({ width: Number(width) });
try {
  const page = await context.newPage();
  page.on('console', (m) => console.log('console:', m.type(), m.text()));
  page.on('pageerror', (e) => console.log('pageerror:', e.message));
  await page.goto(site.url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.click('#demo');
  await page.waitForSelector('#status[data-state="valid"], #status[data-state="warnings"], #status[data-state="invalid"]');
  if (src) {
    await page.fill('#src', src);
    await page.fill('#host', host);
    await page.click('#test');
  }
  if (region !== 'world') await page.click(`#zoom button[data-region="${region}"]`);
  await page.screenshot({ path: out, fullPage: true });
  await page.screenshot({ path: out.replace(/\.png$/, '-top.png') });
  for (const sel of ['.map-panel', '.tester-panel', '.report-panel', '.side']) {
    await page.locator(sel).screenshot({ path: out.replace(/\.png$/, `-${sel.slice(1)}.png`) });
  }
  console.log('requests:', site.requests.join(' '));
} finally {
  await close();
  await site.close();
}
