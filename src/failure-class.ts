import { isEreceiptError, type ErrorCode } from './errors';

/**
 * What to do about a failure, decided in one place for `boot`, `token`, `run` and
 * the in-process API alike:
 * - `retry-soon`: the service or the hardware may answer in a moment (a network
 *   outage, a busy service, a UART another process holds): back off from 1 s;
 * - `retry-slowly`: something on the terminal is wrong and may mend without a
 *   person (a co-processor answering garbage while it restarts, a file that could
 *   not be read): back off from 30 s;
 * - `needs-a-person`: asking again cannot mend it (credentials refused, not
 *   provisioned, a broken configuration): ask again about every 15 minutes;
 * - `bug`: nobody classified it: reported as such, asked again about every 15 minutes.
 * `boot` retries only `retry-soon` within its `--wait`; for the rest a person is
 * at the console or in the boot log, and the exit status tells them which.
 */
export type FailureClass = 'retry-soon' | 'retry-slowly' | 'needs-a-person' | 'bug';

const CLASS_OF: Record<ErrorCode, FailureClass> = {
  ERR_SERVICE_UNAVAILABLE: 'retry-soon',
  ERR_HAL_UNAVAILABLE: 'retry-soon',
  ERR_HAL_BAD_DATA: 'retry-slowly',
  ERR_FILE_READ: 'retry-slowly',
  ERR_FILE_WRITE: 'retry-slowly',
  ERR_CREDENTIALS_REJECTED: 'needs-a-person',
  ERR_NOT_PROVISIONED: 'needs-a-person',
  ERR_CREDENTIALS_UNREADABLE: 'needs-a-person',
  ERR_CONFIG: 'needs-a-person',
  ERR_USAGE: 'needs-a-person',
  ERR_INTERRUPTED: 'needs-a-person',
  ERR_CLOSED: 'needs-a-person',
  ERR_INTERNAL: 'bug',
};

/** The class of any failure; anything that is not one of the module's errors is a bug. */
export function classifyFailure(error: unknown): FailureClass {
  if (!isEreceiptError(error)) return 'bug';
  const kind = CLASS_OF[error.code] ?? 'bug';
  // A lasting HAL failure (permission refused, driver missing) is for a person to mend.
  return error.lasting && kind !== 'bug' ? 'needs-a-person' : kind;
}
