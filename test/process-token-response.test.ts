// processTokenResponse is pure: an HTTP answer in, a token or a coded error out.
// Row by row over what the real service sends and what a hostile one could.
import { EreceiptError } from '../src/errors';
import { processTokenResponse, type TokenGrant, type TokenSet } from '../src/identity-client';
import { Secret } from '../src/secret';

const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (payload: unknown) => `${part({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' })}.${part(payload)}.c2lnbmF0dXJl`;
const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const nbf = NOW / 1000;
const REAL = jwt({
  nbf,
  exp: nbf + 3600,
  iss: 'https://id.eta.gov.eg',
  aud: 'InvoicingAPI',
  scope: ['InvoicingAPI'],
  client_id: 'client-ptr-0001',
  name: '100200300:client-ptr-0001',
  TaxRin: '100200300',
  TaxProfTags: ['SignatureRequired', 'B2C', 'B2B'],
  IsSystem: 'true',
});

const grant: TokenGrant = {
  identityUrl: 'https://id.preprod.eta.gov.eg',
  identity: { serial: 'POS-PTR-0001', modelFramework: '1' },
  osVersion: 'Debian 12',
  credentials: { clientId: 'client-ptr-0001', clientSecret: new Secret('ptr-secret-0123456789'), presharedKey: new Secret('ptr-psk-0123456789') },
  scope: 'InvoicingAPI',
};

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return [{ status, headers: { get: (name: string) => lower.get(name.toLowerCase()) ?? null }, text: async () => text }, text] as const;
}

function run(status: number, body: unknown, headers: Record<string, string> = {}): TokenSet | EreceiptError {
  const [response, text] = answer(status, body, headers);
  try {
    return processTokenResponse(grant, response, text, () => NOW);
  } catch (error) {
    if (error instanceof EreceiptError) return error;
    throw error;
  }
}

const ok = (extra: Record<string, unknown> = {}) => ({ access_token: REAL, token_type: 'Bearer', expires_in: 3600, scope: 'InvoicingAPI', ...extra });

describe('200: a token', () => {
  it('of the real shape: lifetime from expires_in, scope, taxpayer RIN and tags, the server date', () => {
    const token = run(200, ok(), { date: new Date(NOW + 7000).toUTCString() }) as TokenSet;
    expect(token).toEqual({
      accessToken: REAL,
      tokenType: 'Bearer',
      expiresIn: 3600,
      scope: 'InvoicingAPI',
      claims: { nbf, exp: nbf + 3600, scope: 'InvoicingAPI', taxpayerRin: '100200300', taxpayerTags: ['SignatureRequired', 'B2C', 'B2B'] },
      serverDate: NOW + 7000,
    });
  });

  it.each([
    ['expires_in, when exp - nbf agrees', 3600, { nbf, exp: nbf + 3600 }, 3600],
    ['exp - nbf, when it is shorter', 3600, { nbf, exp: nbf + 600 }, 600],
    ['expires_in, when it is shorter', 300, { nbf, exp: nbf + 3600 }, 300],
    ['expires_in, when the token has no nbf', 3600, { exp: nbf + 600 }, 3600],
    ['expires_in, never iat', 3600, { iat: nbf, exp: nbf + 600 }, 3600],
    ['expires_in, when the token has no claims at all', 1800, {}, 1800],
    ['a fractional expires_in as stated', 7.5, {}, 7.5],
    ['the shortest usable lifetime', 5, {}, 5],
  ])('lifetime: %s', (_name, expiresIn, claims, expected) => {
    expect((run(200, ok({ access_token: jwt(claims), expires_in: expiresIn })) as TokenSet).expiresIn).toBe(expected);
  });

  it.each([
    ['scope from the answer', ok({ scope: 'ReceiptsAPI' }), 'ReceiptsAPI'],
    ['scope from the token when the answer has none', ok({ scope: undefined }), 'InvoicingAPI'],
    ['no scope anywhere', ok({ scope: undefined, access_token: jwt({ nbf, exp: nbf + 3600 }) }), undefined],
    ['token_type in lower case', ok({ token_type: 'bearer' }), 'InvoicingAPI'],
  ])('%s', (_name, body, scope) => {
    const token = run(200, body) as TokenSet;
    expect(token).toMatchObject({ tokenType: 'Bearer' });
    expect(token.scope).toBe(scope);
  });
});

describe('200 without a usable token: transient (75), never held as a token', () => {
  it.each([
    ['a captive portal page', '<html><body>Sign in</body></html>', 'the body is not JSON'],
    ['a JSON array', [ok()], 'the body is not JSON'],
    ['an empty body', '', 'the body is not JSON'],
    ['no access_token', ok({ access_token: undefined }), 'access_token is not a JWT'],
    ['an opaque access_token', ok({ access_token: 'abcdef0123456789' }), 'access_token is not a JWT'],
    ['an access_token with a space', ok({ access_token: `${REAL} x` }), 'access_token is not a JWT'],
    ['token_type MAC', ok({ token_type: 'MAC' }), 'token_type is not Bearer'],
    ['no token_type', ok({ token_type: undefined }), 'token_type is not Bearer'],
    ['expires_in as a string', ok({ expires_in: '3600' }), 'expires_in is not a positive number'],
    ['expires_in 0', ok({ expires_in: 0 }), 'expires_in is not a positive number'],
    ['expires_in negative', ok({ expires_in: -5 }), 'expires_in is not a positive number'],
    ['no expires_in', ok({ expires_in: undefined }), 'expires_in is not a positive number'],
    ['expires_in of a year', ok({ expires_in: 365 * 86_400 }), 'expires_in is over 7 days'],
    ['exp before nbf', ok({ access_token: jwt({ nbf, exp: nbf - 1 }) }), 'its exp is not after its nbf'],
    ['exp equal to nbf', ok({ access_token: jwt({ nbf, exp: nbf }) }), 'its exp is not after its nbf'],
    ['a lifetime of 1 ms', ok({ expires_in: 0.001 }), 'it lasts 0.001 s, under the 5 s a terminal can use'],
    ['a lifetime just under the floor', ok({ expires_in: 4.999 }), 'it lasts 4.999 s, under the 5 s a terminal can use'],
    ['exp one second past nbf, expires_in an hour', ok({ access_token: jwt({ nbf, exp: nbf + 1 }) }), 'it lasts 1 s, under the 5 s a terminal can use'],
  ])('%s', (_name, body, problem) => {
    const error = run(200, body) as EreceiptError;
    expect(error).toBeInstanceOf(EreceiptError);
    expect(error).toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE', httpStatus: 200 });
    expect(error.message).toBe(`identity service answered without a usable token (${problem}): try again later`);
  });
});

describe('an OAuth error from 400, 401 or 403: the credentials are rejected (77)', () => {
  it.each([
    [400, 'invalid_posserial', 'serial number POS-PTR-0001 rejected by the identity service (invalid_posserial): check that the terminal is registered with this serial number on the taxpayer portal'],
    [400, 'invalid_pososversion', 'OS version "Debian 12" rejected by the identity service (invalid_pososversion): set osVersion in the configuration to the registered value'],
    [400, 'invalid_posmodelframework', "model framework 1 rejected by the identity service (invalid_posmodelframework): check the terminal's registration on the taxpayer portal"],
    [400, 'invalid_presharedkey', 'presharedkey rejected by the identity service (invalid_presharedkey): re-run provisioning'],
    [400, 'invalid_clientsecret', 'client_secret rejected by the identity service (invalid_clientsecret): re-run provisioning'],
    [400, 'invalid_client', 'client_id ...0001 rejected by the identity service (invalid_client): check the client_id on the taxpayer portal and re-run provisioning'],
    [401, 'invalid_client', 'client_id ...0001 rejected by the identity service (invalid_client): check the client_id on the taxpayer portal and re-run provisioning'],
    [400, 'unauthorized_client', 'client_id ...0001 is not allowed to sign in (unauthorized_client): the POS system user may be blocked or expired: check it on the taxpayer portal'],
    [403, 'unauthorized_client', 'client_id ...0001 is not allowed to sign in (unauthorized_client): the POS system user may be blocked or expired: check it on the taxpayer portal'],
    [400, 'invalid_scope', 'scope "InvoicingAPI" rejected by the identity service (invalid_scope): fix or remove scope in the configuration'],
    [400, 'unsupported_grant_type', 'identity service refused the client_credentials grant (unsupported_grant_type): check that identityUrl is the eReceipt identity service'],
    [400, 'invalid_request', 'identity service refused the request as malformed (invalid_request): check identityUrl and osVersion in the configuration'],
    [400, 'invalid_grant', 'identity service refused the request (HTTP 400, invalid_grant): check identityUrl and re-run provisioning'],
  ])('%i %s', (status, code, message) => {
    const error = run(status, { error: code }) as EreceiptError;
    expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED', oauthError: code, httpStatus: status });
    expect(error.message).toBe(message);
  });

  it('an error_description is shown on one line, secrets redacted, control characters gone, at most 120 characters', () => {
    const description = `bad\r\n\u001b[2J key ${grant.credentials.presharedKey.reveal()} ${'x'.repeat(200)}`;
    const error = run(400, { error: 'invalid_presharedkey', error_description: description }) as EreceiptError;
    expect(error.message).toMatch(/^presharedkey rejected by the identity service \(invalid_presharedkey - bad \[2J key \[redacted\] x+\.\.\.\): re-run provisioning$/);
    expect(error.message).not.toMatch(/[\r\n\u001b]/);
  });

  it('an unknown error code is cleaned too', () => {
    const error = run(400, { error: 'evil\r\nline\u0007' }) as EreceiptError;
    expect(error.message).toBe('identity service refused the request (HTTP 400, evil line): check identityUrl and re-run provisioning');
  });
});

describe('anything else: transient (75), with Retry-After honoured', () => {
  const later = (s: number) => new Date(NOW + s * 1000).toUTCString();
  it.each([
    ['429 with seconds', 429, { error: 'Too many requests', message: 'slow down', code: 429 }, { 'retry-after': '30' }, 30_000, 'identity service is busy (HTTP 429, asks to wait 30 s): try again later'],
    ['503 with an HTTP date, against the server clock', 503, '<html></html>', { 'retry-after': later(100), date: later(40) }, 60_000, 'identity service is busy (HTTP 503, asks to wait 60 s): try again later'],
    ['503 with a date already past', 503, '', { 'retry-after': later(-10) }, 0, 'identity service is busy (HTTP 503, asks to wait 0 s): try again later'],
    ['429 asking for a day, capped at an hour', 429, '', { 'retry-after': '86400' }, 3_600_000, 'identity service is busy (HTTP 429, asks to wait 3600 s): try again later'],
    ['429 with a Retry-After that is neither', 429, '', { 'retry-after': 'soon' }, undefined, 'identity service is busy (HTTP 429): try again later'],
    ['500 with an HTML page', 500, '<html><h1>500</h1></html>', {}, undefined, 'identity service is failing (HTTP 500): try again later'],
    ['502', 502, '', {}, undefined, 'identity service is failing (HTTP 502): try again later'],
    ['408', 408, '', {}, undefined, 'identity service is failing (HTTP 408): try again later'],
    ['400 without an OAuth error (a proxy page)', 400, '<html>Bad Request</html>', {}, undefined, 'identity service answered HTTP 400 without an OAuth error at https://id.preprod.eta.gov.eg/connect/token: check identityUrl and the network (a proxy?); try again later'],
    ['401 with a non-string error', 401, { error: 42 }, {}, undefined, 'identity service answered HTTP 401 without an OAuth error at https://id.preprod.eta.gov.eg/connect/token: check identityUrl and the network (a proxy?); try again later'],
    ['404 with an OAuth error body', 404, { error: 'invalid_client' }, {}, undefined, 'identity service answered HTTP 404 without an OAuth error at https://id.preprod.eta.gov.eg/connect/token: check identityUrl and the network (a proxy?); try again later'],
    ['302, never followed', 302, '', { location: 'https://evil.example/\r\nx' }, undefined, 'identity service redirected the request to https://evil.example/ x, which is never followed: check identityUrl'],
    ['301 without a Location', 301, '', {}, undefined, 'identity service redirected the request, which is never followed: check identityUrl'],
    ['204', 204, '', {}, undefined, 'identity service answered HTTP 204 at https://id.preprod.eta.gov.eg/connect/token: check identityUrl'],
  ])('%s', (_name, status, body, headers, retryAfterMs, message) => {
    const error = run(status, body, headers) as EreceiptError;
    expect(error).toBeInstanceOf(EreceiptError);
    expect(error).toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE', httpStatus: status });
    expect(error.retryAfterMs).toBe(retryAfterMs);
    expect(error.message).toBe(message);
  });
});
