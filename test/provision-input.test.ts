import { EreceiptError } from '../src/errors';
import { parseCredentialLines } from '../src/provision-input';

const good = 'client_id=d0394a9f-0607-40de-a978-2d3eb8375b04\nclient_secret=6d62315e-d65a-4e41-9112-4195ea834edf\npresharedkey=03ac674216f3e1\n';

describe('parseCredentialLines', () => {
  it('reads the three values, with comments, blank lines and CRLF', () => {
    const c = parseCredentialLines(`# from the portal\r\n\r\n${good.replace(/\n/g, '\r\n')}`);
    expect(c.clientId).toBe('d0394a9f-0607-40de-a978-2d3eb8375b04');
    expect(c.clientSecret.reveal()).toBe('6d62315e-d65a-4e41-9112-4195ea834edf');
    expect(c.presharedKey.reveal()).toBe('03ac674216f3e1');
  });

  it.each([
    ['', /lacks client_id, client_secret, presharedkey/],
    [good.replace('presharedkey=03ac674216f3e1\n', ''), /lacks presharedkey/],
    [`${good}client_id=again\n`, /client_id is given twice/],
    [`${good}password=hunter2\n`, /unknown key "password"/],
    [`${good}justAValueNoKey\n`, /line 4 of the input is not key=value/],
    [good.replace('presharedkey=03ac674216f3e1', `presharedkey=${'a'.repeat(201)}`), /presharedkey is 201 characters long; the limit is 200/],
    [good.replace('client_secret=6d62315e', 'client_secret=6d6 2315e'), /client_secret has spaces/],
    [good.replace('client_id=d0394a9f-0607-40de-a978-2d3eb8375b04', 'client_id='), /client_id is empty/],
    [good.replace('presharedkey=03ac674216f3e1', 'presharedkey=1234567'), /presharedkey is 7 characters long, too short/],
  ])('refuses input %#', (input, message) => {
    let error: unknown;
    try {
      parseCredentialLines(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EreceiptError);
    expect((error as EreceiptError).exitStatus).toBe(64);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/nothing was saved$/);
    expect((error as Error).message).not.toMatch(/hunter2|6d62315e|03ac674216f3e1/);
  });
});
