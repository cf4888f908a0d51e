// The simulator's control endpoint, `/_sim/control` (off unless asked for): what a
// test in another process or language changes while the simulator runs. A POST
// carries one JSON object; every part of it is checked before any is applied.
import { checkFault, checkLifetime } from './faults';
import { checkReceiptChances, checkReceiptFault } from './receipts';
import { isRecord } from './tokens';
import type { SimFault, SimReceiptChances, SimReceiptFault, SimTerminal } from './types';

export const CONTROL_PATH = '/_sim/control';

/** What a POST to the control endpoint may ask, all optional. */
export interface SimControl {
  /** Queued for the token endpoint (SimFault). */
  faults?: SimFault[];
  /** Lifetime of tokens issued from now on. */
  lifetimeSeconds?: number;
  /** Changes to registered terminals, each naming its `clientId`: `blocked: true` makes its logins `unauthorized_client`, a new `clientSecret` makes them `invalid_clientsecret`. */
  terminals?: (Partial<SimTerminal> & { clientId: string })[];
  /** Queued for the receipts endpoint (SimReceiptFault). */
  receiptFaults?: SimReceiptFault[];
  /** The receipts endpoint's chance misbehaviour. */
  receipts?: SimReceiptChances;
  /** Revoke every token issued so far. */
  revokeTokens?: boolean;
}

const FAULT_KINDS = new Set(['status', 'delay', 'drop', 'garbage', 'redirect', 'huge']);
const TERMINAL_TEXT = ['serial', 'modelFramework', 'osVersion', 'presharedKey', 'clientSecret', 'rin'] as const;

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new RangeError(`${what} must be an array`);
  return value;
}

/** The request as a {@link SimControl}, checked; throws a RangeError naming the first problem. */
export function parseControl(value: unknown, known: (clientId: string) => boolean): SimControl {
  if (!isRecord(value)) throw new RangeError('the body must be a JSON object');
  const control: SimControl = {};
  for (const [key, part] of Object.entries(value)) {
    switch (key) {
      case 'faults':
        control.faults = list(part, 'faults').map((fault, i) => {
          if (!isRecord(fault) || typeof fault['kind'] !== 'string' || !FAULT_KINDS.has(fault['kind'])) throw new RangeError(`faults[${i}] needs a kind: ${[...FAULT_KINDS].join(', ')}`);
          checkFault(fault as unknown as SimFault);
          return fault as unknown as SimFault;
        });
        break;
      case 'lifetimeSeconds':
        checkLifetime(part as number, 'lifetimeSeconds');
        control.lifetimeSeconds = part as number;
        break;
      case 'terminals':
        control.terminals = list(part, 'terminals').map((patch, i) => {
          if (!isRecord(patch) || typeof patch['clientId'] !== 'string' || !known(patch['clientId'])) throw new RangeError(`terminals[${i}] must name a registered clientId`);
          for (const [name, v] of Object.entries(patch)) {
            const ok =
              name === 'clientId' ||
              ((TERMINAL_TEXT as readonly string[]).includes(name) && typeof v === 'string' && v !== '') ||
              (name === 'blocked' && typeof v === 'boolean') ||
              (name === 'lifetimeSeconds' && typeof v === 'number' && Number.isFinite(v) && v >= 0) ||
              ((name === 'tags' || name === 'scopes') && ((name === 'tags' && v === null) || (Array.isArray(v) && v.every((s) => typeof s === 'string'))));
            if (!ok) throw new RangeError(`terminals[${i}].${name} is not a terminal setting of that type`);
          }
          return patch as Partial<SimTerminal> & { clientId: string };
        });
        break;
      case 'receiptFaults':
        control.receiptFaults = list(part, 'receiptFaults').map((fault, i) => {
          if (!isRecord(fault)) throw new RangeError(`receiptFaults[${i}] must be an object`);
          checkReceiptFault(fault as unknown as SimReceiptFault);
          return fault as unknown as SimReceiptFault;
        });
        break;
      case 'receipts':
        if (!isRecord(part)) throw new RangeError('receipts must be an object');
        for (const name of Object.keys(part)) if (!['throttleRate', 'revokeRate', 'retryAfter'].includes(name)) throw new RangeError(`receipts.${name} is unknown`);
        checkReceiptChances(part as SimReceiptChances);
        control.receipts = part as SimReceiptChances;
        break;
      case 'revokeTokens':
        if (typeof part !== 'boolean') throw new RangeError('revokeTokens must be true or false');
        control.revokeTokens = part;
        break;
      default:
        throw new RangeError(`${key} is not something the control endpoint sets`);
    }
  }
  return control;
}
