import { rmSync } from 'node:fs';
import type { DeviceIdentity } from '../hal/types';
import type { CommandContext } from './commands/context';
import { resolveOsVersion } from './config';
import { writeCredentials, type Credentials, type DeviceBinding } from './credentials';
import { requestToken, type TokenSet } from './identity-client';
import { holdToken, type HeldToken } from './token-manager';
import { createTokenSink } from './token-sink';

/** The terminal being provisioned: what the HAL reads, and what binds the file to it. */
export interface Device {
  identity: DeviceIdentity;
  binding: DeviceBinding;
  osVersion: string;
}

export async function readDevice(ctx: Pick<CommandContext, 'hal' | 'config'>): Promise<Device> {
  const hal = await ctx.hal();
  const identity = await hal.identity();
  const deviceSecret = hal.deviceSecret ? await hal.deviceSecret() : undefined;
  return { identity, binding: { serial: identity.serial, ...(deviceSecret ? { deviceSecret } : {}) }, osVersion: resolveOsVersion(ctx.config) };
}

/** The token the identity service gave for the credentials being provisioned. */
export type Verified = HeldToken;

/**
 * "taxpayer RIN 100200300 (tags B2B, B2C)": whose credentials were typed, shown at
 * once, since a receipt's issuer must be the taxpayer the token was issued to.
 */
export function taxpayerOf(token: TokenSet): string {
  const { taxpayerRin, taxpayerTags } = token.claims;
  const tags = taxpayerTags === undefined ? 'tags not stated' : `tags ${taxpayerTags.join(', ') || 'none'}`;
  return taxpayerRin === undefined ? `a taxpayer the token does not name (${tags})` : `taxpayer RIN ${taxpayerRin} (${tags})`;
}

/** One Authenticate POS request with the candidate credentials. */
export async function verifyCredentials(
  ctx: Pick<CommandContext, 'config' | 'transport' | 'clocks'>,
  device: Device,
  credentials: Credentials,
  signal?: AbortSignal,
): Promise<Verified> {
  const obtainedAt = ctx.clocks.now();
  const startedMono = ctx.clocks.monotonic();
  const token = await requestToken(
    { identityUrl: ctx.config.identityUrl, identity: device.identity, osVersion: device.osVersion, credentials, ...(ctx.config.scope ? { scope: ctx.config.scope } : {}) },
    { transport: ctx.transport, timeoutMs: ctx.config.timeoutSeconds * 1000, now: ctx.clocks.now, monotonic: ctx.clocks.monotonic, ...(signal ? { signal } : {}) },
  );
  return holdToken(token, obtainedAt, startedMono);
}

/**
 * Replaces the credentials file, then makes the token file match: the verified
 * token, or none (never a token of the credentials just replaced).
 */
export async function saveCredentials(ctx: Pick<CommandContext, 'config' | 'log' | 'clocks'>, device: Device, credentials: Credentials, verified: Verified | undefined): Promise<void> {
  await writeCredentials(ctx.config.credentialsFile, credentials, device.binding);
  try {
    if (verified) await createTokenSink({ tokenFile: () => ctx.config.tokenFile, clocks: ctx.clocks, log: ctx.log }).accept(verified);
    else rmSync(ctx.config.tokenFile, { force: true });
  } catch (error) {
    ctx.log.warn(`the credentials are saved, but the token file was not updated (${(error as Error).message})`);
  }
}
