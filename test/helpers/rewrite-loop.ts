// Child process for the crash-safety test: rewrites the credentials file with two
// alternating values as fast as it can, until it is killed.
import { writeCredentials } from '../../src/credentials';
import { Secret } from '../../src/secret';

const [path, serial] = process.argv.slice(2) as [string, string];
const versions = ['old', 'new'].map((name) => ({
  clientId: `client-${name}`,
  clientSecret: new Secret(`secret-${name}-0123456789`),
  presharedKey: new Secret(`psk-${name}-0123456789`),
}));

async function loop(): Promise<void> {
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) await writeCredentials(path, versions[i % 2] as (typeof versions)[0], { serial });
}

void loop();
