import { decodeClaims, lacksB2c } from '../src/jwt';

const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (payload: unknown) => `${part({ alg: 'EdDSA' })}.${part(payload)}.c2ln`;

describe('decodeClaims', () => {
  it('reads exp, scope and the taxpayer tags', () => {
    expect(decodeClaims(jwt({ exp: 100, scope: 'InvoicingAPI', taxpayer_tags: ['B2B', 'B2C'] }))).toEqual({
      exp: 100,
      scope: 'InvoicingAPI',
      tags: ['B2B', 'B2C'],
    });
    expect(decodeClaims(jwt({ scope: ['a', 'b'], tags: 'B2B, B2C' }))).toEqual({ scope: 'a b', tags: ['B2B', 'B2C'] });
  });

  it.each(['', 'abc', 'a.b', 'a.b.c.d', `x.${Buffer.from('not json').toString('base64url')}.y`, 'a b.c.d'])('refuses %p', (token) => {
    expect(decodeClaims(token)).toBeUndefined();
  });
});

describe('lacksB2c', () => {
  it.each([
    [{ tags: ['B2B'] }, true],
    [{ tags: [] }, true],
    [{ tags: ['b2c'] }, false],
    [{}, false],
    [undefined, false],
  ])('%j -> %p', (claims, expected) => {
    expect(lacksB2c(claims)).toBe(expected);
  });
});
