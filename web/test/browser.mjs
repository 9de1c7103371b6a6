// Launches Debian's Chromium (headless) through playwright-core, with a fresh, empty
// profile directory and no background networking. Never downloads a browser.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A browser context in a fresh profile; `close()` ends Chromium and removes the profile. */
export async function launch({ width = 1440, height = 900 } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'maps-web-chromium-'));
  // launchPersistentContext passes `profile` as Chromium's --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    viewport: { width, height },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
