// The identity-service simulator's HTTP server: the token endpoint, discovery and
// JWKS, the receipts endpoint a POS application submits to, faults injected from
// outside (in process, or through the control endpoint), and a record of every request.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { checkFault, checkLifetime, defaultStatusBody, guessContentType, JSON_TYPE } from './faults';
import { BODY_LIMIT, FORM_TYPE, isFormContentType, lowerCaseHeaders, parseForm, readBody, validateTokenRequest, type ReadBody } from './requests';
import { CONTROL_PATH, parseControl } from './control';
import { createReceiptsEndpoint, RECEIPTS_BODY_LIMIT, RECEIPTS_PATH } from './receipts';
import { generateSigningKey, mintAccessToken, rsaJwk } from './tokens';
import type { IdentitySim, IdentitySimOptions, SimFault, SimReceiptRecord, SimRequestRecord, SimTerminal } from './types';

const TOKEN_PATH = '/connect/token';
/** How many of the latest submissions keep their body and token in `receipts`. */
const RECEIPT_BODIES_KEPT = 1000;
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const JWKS_PATH = '/.well-known/openid-configuration/jwks';

let sharedKey: KeyObject | undefined;

function copyTerminal(t: SimTerminal): SimTerminal {
  return {
    ...t,
    ...(t.tags ? { tags: [...t.tags] } : {}),
    ...(t.scopes ? { scopes: [...t.scopes] } : {}),
  };
}


function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}


/**
 * Starts a local simulator of the eReceipt identity service (IdentityServer) with
 * the ETA's `POST /connect/token`, its discovery document and its JWKS.
 *
 * Every response carries a `Date` header from `options.now`. Tokens are RS256 JWTs
 * (see tokens.ts); check them with {@link verifySimToken}.
 */
export async function startIdentitySim(options: IdentitySimOptions): Promise<IdentitySim> {
  const now = options.now ?? Date.now;
  const invalidClientStatus = options.invalidClientStatus ?? 400;
  let lifetime = options.lifetimeSeconds ?? 3600;
  checkLifetime(lifetime, 'lifetimeSeconds');
  const terminals = new Map<string, SimTerminal>();
  const addTerminal = (t: SimTerminal): void => {
    if (terminals.has(t.clientId)) throw new Error(`a terminal with client_id ${t.clientId} is already registered`);
    if (t.lifetimeSeconds !== undefined) checkLifetime(t.lifetimeSeconds, 'lifetimeSeconds');
    terminals.set(t.clientId, copyTerminal(t));
  };
  for (const t of options.terminals) addTerminal(t);

  const signingKey = options.signingKey ?? (sharedKey ??= generateSigningKey());
  const publicKey = createPublicKey(signingKey);
  const jwk = rsaJwk(publicKey);
  const requests: SimRequestRecord[] = [];
  const receiptRecords: SimReceiptRecord[] = [];
  const receipts = createReceiptsEndpoint({ publicKey, now, random: options.random ?? Math.random, ...(options.receipts ? { chances: options.receipts } : {}) });
  let jti = 0;
  const faults: SimFault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let url = '';

  const send = (res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body = ''): void => {
    if (res.destroyed || res.headersSent) return;
    res.sendDate = false;
    res.writeHead(status, {
      Date: new Date(now()).toUTCString(),
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown, extra: OutgoingHttpHeaders = {}): void => {
    send(res, status, { 'Content-Type': JSON_TYPE, ...extra }, JSON.stringify(value));
  };

  const finish = (record: SimRequestRecord, status: number, error?: string): void => {
    record.status = status;
    if (error !== undefined) record.error = error;
    options.onRequest?.(record);
  };

  const issueToken = (res: ServerResponse, record: SimRequestRecord, terminal: SimTerminal, scopes: string[]): void => {
    const expiresIn = terminal.lifetimeSeconds ?? lifetime;
    const scope = scopes.join(' ');
    const issuedAtMs = now();
    const minted = mintAccessToken({ terminal, scopes, issuedAt: Math.floor(issuedAtMs / 1000), lifetimeSeconds: expiresIn, issuer: url, serial: (jti += 1), kid: jwk.kid, key: signingKey });
    receipts.issued(minted.jti, issuedAtMs);
    const accessToken = minted.token;
    sendJson(
      res,
      200,
      { access_token: accessToken, expires_in: expiresIn, token_type: 'Bearer', scope },
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    );
    finish(record, 200);
  };

  const answerOAuthError = (
    res: ServerResponse,
    record: SimRequestRecord,
    status: number,
    error: string,
    description?: string,
    extra: OutgoingHttpHeaders = {},
  ): void => {
    const body = description === undefined ? { error } : { error, error_description: description };
    sendJson(res, status, body, { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...extra });
    finish(record, status, error);
  };

  const answerNormally = (req: IncomingMessage, res: ServerResponse, record: SimRequestRecord, body: ReadBody): void => {
    if (body.cut && !body.tooLarge) {
      finish(record, 0);
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, { Allow: 'POST' });
      finish(record, 405);
      return;
    }
    if (body.tooLarge) {
      answerOAuthError(res, record, 400, 'invalid_request', `the request body is larger than ${BODY_LIMIT} bytes`, {
        Connection: 'close',
      });
      return;
    }
    if (!isFormContentType(record.headers['content-type'])) {
      answerOAuthError(res, record, 400, 'invalid_request', `the content type must be ${FORM_TYPE}`);
      return;
    }
    const result = validateTokenRequest(record.headers, record.form, (clientId) => terminals.get(clientId));
    if (result.ok) {
      issueToken(res, record, result.terminal, result.scopes);
      return;
    }
    const status = result.error === 'invalid_client' ? invalidClientStatus : 400;
    answerOAuthError(res, record, status, result.error, result.description);
  };

  const answerHuge = (res: ServerResponse, bytes: number): void => {
    const head = '{"padding":"';
    const tail = '"}';
    const tailStart = bytes - tail.length;
    const slice = (start: number, end: number): string =>
      bytes < head.length + tail.length
        ? ' '.repeat(end - start)
        : head.slice(start, end) +
          'A'.repeat(Math.max(0, Math.min(end, tailStart) - Math.max(start, head.length))) +
          tail.slice(Math.max(0, start - tailStart), Math.max(0, end - tailStart));
    res.sendDate = false;
    res.writeHead(200, { Date: new Date(now()).toUTCString(), 'Content-Type': JSON_TYPE });
    let offset = 0;
    const write = (): void => {
      while (offset < bytes && !res.destroyed) {
        const end = Math.min(bytes, offset + 64 * 1024);
        const chunk = slice(offset, end);
        offset = end;
        if (!res.write(chunk)) {
          res.once('drain', write);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    write();
  };

  const answerFault = (
    req: IncomingMessage,
    res: ServerResponse,
    record: SimRequestRecord,
    body: ReadBody,
    fault: SimFault,
  ): void => {
    switch (fault.kind) {
      case 'delay': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answerNormally(req, res, record, body);
        }, fault.ms);
        timers.add(timer);
        return;
      }
      case 'drop':
        req.socket.destroy();
        finish(record, 0);
        return;
      case 'garbage':
        send(res, 200, { 'Content-Type': JSON_TYPE }, '<html><body><h1>Welcome</h1><p>Please sign in to use this network.');
        finish(record, 200);
        return;
      case 'redirect':
        send(res, 302, { Location: fault.location });
        finish(record, 302);
        return;
      case 'huge':
        answerHuge(res, fault.bytes ?? 1024 * 1024);
        finish(record, 200);
        return;
      case 'status': {
        const fallback = defaultStatusBody(fault.status);
        const text = fault.body ?? fallback.body;
        const contentType = fault.contentType ?? (fault.body === undefined ? fallback.contentType : guessContentType(text));
        const noBody = fault.status === 204 || fault.status === 205 || fault.status === 304;
        send(
          res,
          fault.status,
          {
            ...(noBody ? {} : { 'Content-Type': contentType }),
            ...(fault.retryAfter === undefined ? {} : { 'Retry-After': fault.retryAfter }),
          },
          noBody ? '' : text,
        );
        finish(record, fault.status);
        return;
      }
    }
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const fault = faults.shift();
    const headers = lowerCaseHeaders(req);
    const record: SimRequestRecord = { at: now(), method: req.method ?? '', path, headers, form: {}, status: 0 };
    if (fault) record.fault = fault;
    requests.push(record);
    const body = await readBody(req);
    if (isFormContentType(headers['content-type'])) record.form = parseForm(body.text);
    if (fault) answerFault(req, res, record, body, fault);
    else answerNormally(req, res, record, body);
  };

  const handleReceipts = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const record: SimReceiptRecord = { at: now(), status: 0, body: Buffer.alloc(0) };
    receiptRecords.push(record);
    // A simulator that runs for days keeps every record, but only the latest bodies and tokens.
    const old = receiptRecords[receiptRecords.length - 1 - RECEIPT_BODIES_KEPT];
    if (old) {
      old.body = Buffer.alloc(0);
      delete old.token;
    }
    const body = await readBody(req, RECEIPTS_BODY_LIMIT);
    record.body = body.bytes;
    let answer;
    if (body.cut && !body.tooLarge) answer = undefined;
    else if (req.method !== 'POST') answer = { status: 405, headers: { Allow: 'POST' }, body: '' };
    else if (body.tooLarge) answer = { status: 413, headers: { Connection: 'close' }, body: '' };
    else answer = receipts.answer(record, req.headers.authorization, req.headers['content-type']);
    if (answer) send(res, answer.status, answer.headers, answer.body);
    record.status = answer?.status ?? 0;
    options.onReceipt?.(record);
  };

  const controlState = () => {
    const byStatus: Record<string, number> = {};
    for (const r of receiptRecords) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    return {
      lifetimeSeconds: lifetime,
      tokenRequests: requests.length,
      queuedFaults: faults.length,
      receipts: { submissions: receiptRecords.length, byStatus, queuedFaults: receipts.queued(), revokedTokens: receipts.revokedOneByOne(), ...receipts.chances() },
    };
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'GET') {
      sendJson(res, 200, controlState());
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, { Allow: 'GET, POST' });
      return;
    }
    const body = await readBody(req);
    let control;
    try {
      if (body.tooLarge) throw new RangeError(`the body is larger than ${BODY_LIMIT} bytes`);
      let value: unknown;
      try {
        value = JSON.parse(body.text);
      } catch {
        throw new RangeError('the body is not JSON');
      }
      control = parseControl(value, (clientId) => terminals.has(clientId));
    } catch (error) {
      sendJson(res, 400, { error: (error as Error).message });
      return;
    }
    // Checked whole above: from here nothing throws, so a request is applied whole or not at all.
    if (control.faults) faults.push(...control.faults);
    if (control.lifetimeSeconds !== undefined) lifetime = control.lifetimeSeconds;
    for (const { clientId, ...patch } of control.terminals ?? []) {
      const current = terminals.get(clientId) as SimTerminal;
      terminals.set(clientId, copyTerminal({ ...current, ...patch }));
    }
    if (control.receiptFaults) receipts.inject(control.receiptFaults);
    if (control.receipts) receipts.setChances(control.receipts);
    if (control.revokeTokens) receipts.revokeAll();
    sendJson(res, 200, controlState());
  };

  const handleMetadata = (req: IncomingMessage, res: ServerResponse, value: unknown): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') send(res, 405, { Allow: 'GET, HEAD' });
    else sendJson(res, 200, value);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    // IdentityServer's endpoint router compares paths ignoring case.
    const route = path.toLowerCase();
    // Whatever a handler meets, the simulator answers 500 and stays up.
    const failed = (): void => {
      if (!res.headersSent) send(res, 500, {});
      else res.destroy();
    };
    if (route === TOKEN_PATH) {
      handleToken(req, res, path).catch(failed);
    } else if (route === RECEIPTS_PATH) {
      handleReceipts(req, res).catch(failed);
    } else if (route === CONTROL_PATH && options.control) {
      // JSON only: a web page can post a form here, but not JSON without asking first.
      if (req.method === 'POST' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
        req.resume();
        sendJson(res, 415, { error: 'the control endpoint takes application/json' });
      } else handleControl(req, res).catch(failed);
    } else if (route === DISCOVERY_PATH) {
      handleMetadata(req, res, {
        issuer: url,
        jwks_uri: `${url}${JWKS_PATH}`,
        token_endpoint: `${url}${TOKEN_PATH}`,
        scopes_supported: [...new Set([...terminals.values()].flatMap((t) => t.scopes ?? ['InvoicingAPI']))],
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
      });
    } else if (route === JWKS_PATH) {
      handleMetadata(req, res, {
        keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid: jwk.kid, n: jwk.n, e: jwk.e }],
      });
    } else {
      send(res, 404, {});
    }
  };
  // Over TLS when given a key and certificate, as the real service is (the proxy tests tunnel to it).
  const server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);

  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const date = new Date(now()).toUTCString();
    socket.end(`HTTP/1.1 ${status}\r\nDate: ${date}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  url = `${options.tls ? 'https' : 'http'}://${formatHost(host)}:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;

  return {
    url,
    requests,
    publicKey,
    receipts: receiptRecords,
    tokenRequestCount: () => requests.length,
    injectReceiptFaults: (...added) => receipts.inject(added),
    setReceiptChances: (chances) => receipts.setChances(chances),
    revokeTokens: () => receipts.revokeAll(),
    injectFaults(...added) {
      added.forEach(checkFault);
      faults.push(...added);
    },
    setLifetime(seconds) {
      checkLifetime(seconds, 'lifetime');
      lifetime = seconds;
    },
    addTerminal,
    updateTerminal(clientId, patch) {
      const current = terminals.get(clientId);
      if (!current) throw new Error(`no terminal with client_id ${clientId} is registered`);
      const next = copyTerminal({ ...current, ...patch });
      if (next.clientId !== clientId && terminals.has(next.clientId)) {
        throw new Error(`a terminal with client_id ${next.clientId} is already registered`);
      }
      if (next.lifetimeSeconds !== undefined) checkLifetime(next.lifetimeSeconds, 'lifetimeSeconds');
      terminals.delete(clientId);
      terminals.set(next.clientId, next);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        // Node 18's server.close() waits for idle keep-alive connections to time out.
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

