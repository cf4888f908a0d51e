import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundle } from './bundle';

/** A terminal as the simulator knows it, and as the configuration and provisioning name it. */
export interface TestTerminal {
  serial: string;
  modelFramework: string;
  osVersion?: string;
  clientId: string;
  clientSecret: string;
  presharedKey: string;
}

/**
 * A configuration in `dir` for a simulated terminal against `identityUrl` (credentials
 * in dir/lib, the token in dir/run), provisioned with `provision --stdin --offline`
 * through the built bundle. `overrides` are configuration keys.
 */
export async function provisionedIn(
  dir: string,
  identityUrl: string,
  terminal: TestTerminal,
  overrides: Record<string, unknown> = {},
): Promise<{ dir: string; config: string; tokenFile: string }> {
  const config = join(dir, 'config.json');
  const tokenFile = join(dir, 'run', 'token.json');
  writeFileSync(
    config,
    JSON.stringify({
      identityUrl,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework },
      osVersion: terminal.osVersion ?? 'Debian 12',
      credentialsFile: join(dir, 'lib', 'credentials'),
      tokenFile,
      ...overrides,
    }),
  );
  const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
  const run = await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input });
  if (run.status !== 0) throw new Error(`provisioning for the test failed (${run.status}): ${run.stderr.trim()}`);
  return { dir, config, tokenFile };
}
