// The Authenticate POS request through openid-client (benchmark only: `npm run bench`).
// BENCH_REQUEST holds { url, clientId, clientSecret, headers }.
import * as client from 'openid-client';

const { url, clientId, clientSecret, headers } = JSON.parse(process.env.BENCH_REQUEST);
const config = new client.Configuration({ issuer: url, token_endpoint: `${url}/connect/token` }, clientId, clientSecret);
client.allowInsecureRequests(config);
config[client.customFetch] = (target, options) => fetch(target, { ...options, headers: { ...Object.fromEntries(new Headers(options.headers)), ...headers } });
const tokens = await client.clientCredentialsGrant(config);
if (!tokens.access_token) process.exit(1);
