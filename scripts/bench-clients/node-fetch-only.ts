// The same POST by node-fetch and nothing else, bundled as the product is: the floor
// that the design card's HTTP client sets under `boot`. With BENCH_IDLE, it then
// idles like a resident service, for the memory comparison.
import fetch from 'node-fetch';

const { url, clientId, clientSecret, headers } = JSON.parse(process.env['BENCH_REQUEST'] ?? '{}') as {
  url: string;
  clientId: string;
  clientSecret: string;
  headers: Record<string, string>;
};
const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString();
fetch(`${url}/connect/token`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, compress: false })
  .then(async (response) => {
    await response.text();
    if (response.status !== 200) process.exitCode = 1;
    else if (process.env['BENCH_IDLE']) {
      process.stderr.write('token renewed\n');
      setInterval(() => {}, 1000);
    }
  })
  .catch(() => {
    process.exitCode = 1;
  });
