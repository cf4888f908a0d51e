import { decodeClaims, hasB2c } from '../src/jwt';

const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (payload: unknown) => `${part({ alg: 'RS256', typ: 'at+jwt' })}.${part(payload)}.c2ln`;

/** The claims of a public production sample (SPEC), with the RIN and ids replaced. */
const REAL_SHAPE = {
  nbf: 1_700_000_000,
  exp: 1_700_003_600,
  iss: 'https://id.eta.gov.eg',
  aud: 'InvoicingAPI',
  scope: ['InvoicingAPI'],
  client_id: 'c0ffee00-0000-4000-8000-000000000001',
  name: '100200300:c0ffee00-0000-4000-8000-000000000001',
  TaxRin: '100200300',
  TaxId: '12345',
  ProfId: '0',
  IsSystem: 'true',
  IsTaxRepres: 'false',
  IsIntermediary: 'false',
  TaxProfTags: ['B2B', 'B2C', 'SignatureRequired', 'DenyPortalSubmission'],
};

describe('decodeClaims', () => {
  it('reads a token of the real shape: nbf, exp, scope as an array, TaxRin, TaxProfTags', () => {
    expect(decodeClaims(jwt(REAL_SHAPE))).toEqual({
      nbf: 1_700_000_000,
      exp: 1_700_003_600,
      scope: 'InvoicingAPI',
      taxpayerRin: '100200300',
      taxpayerTags: ['B2B', 'B2C', 'SignatureRequired', 'DenyPortalSubmission'],
    });
  });

  it.each([
    ['an array in another order', ['B2C', 'B2B'], ['B2C', 'B2B']],
    ['duplicates, once each', ['B2C', 'B2C', 'B2B'], ['B2C', 'B2B']],
    ['a single value written as a string', 'B2C', ['B2C']],
    ['an empty array', [], []],
    ['non-strings and unprintable entries dropped', ['B2B', 7, null, 'B\u001b[2J', 'B2C x', 'B2C'], ['B2B', 'B2C']],
  ])('TaxProfTags as %s', (_name, value, tags) => {
    expect(decodeClaims(jwt({ TaxProfTags: value }))?.taxpayerTags).toEqual(tags);
  });

  it('reads no other claim as the tag list, and no iat', () => {
    const claims = decodeClaims(jwt({ iat: 1, taxpayer_tags: ['B2C'], tags: ['B2C'], TaxpayerTags: ['B2C'], taxpayerTags: 'B2C' }));
    expect(claims).toEqual({});
  });

  it.each([
    ['a number', 100200300, '100200300'],
    ['with control characters', '100\n200', undefined],
    ['too long', '1'.repeat(65), undefined],
    ['an object', { rin: 1 }, undefined],
  ])('TaxRin as %s', (_name, value, rin) => {
    expect(decodeClaims(jwt({ TaxRin: value }))?.taxpayerRin).toBe(rin);
  });

  it.each(['', 'abc', 'a.b', 'a.b.c.d', `x.${Buffer.from('not json').toString('base64url')}.y`, 'a b.c.d', `x.${part([1, 2])}.y`])('refuses %p', (token) => {
    expect(decodeClaims(token)).toBeUndefined();
  });
});

describe('hasB2c', () => {
  it.each([
    [['SignatureRequired', 'B2C', 'B2B'], true],
    [['B2C'], true],
    [['b2c'], true],
    [['B2B'], false],
    [[], false],
    [undefined, undefined],
  ])('%j -> %p', (tags, expected) => {
    expect(hasB2c(tags)).toBe(expected);
  });
});
