// The Authenticate POS request through simple-oauth2 (benchmark only: `npm run bench`).
// BENCH_REQUEST holds { url, clientId, clientSecret, headers }.
const { ClientCredentials } = require('simple-oauth2');

const { url, clientId, clientSecret, headers } = JSON.parse(process.env.BENCH_REQUEST);
const oauth = new ClientCredentials({
  client: { id: clientId, secret: clientSecret },
  auth: { tokenHost: url, tokenPath: '/connect/token' },
  options: { authorizationMethod: 'body' },
  http: { headers },
});
oauth.getToken({}).then(
  (token) => process.exit(token.token.access_token ? 0 : 1),
  () => process.exit(1),
);
