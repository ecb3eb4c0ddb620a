/**
 * The one place that loads uWebSockets.js. The redistribution we depend on silently falls
 * back to a slow pure-JS implementation when its native binary does not load (any Node but
 * 16/18/20, or UWS_USE_FALLBACK=1); sluice refuses to start on it rather than run 10x slower
 * without saying so.
 */
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { SluiceError } from '../../engine/errors.ts';

const require = createRequire(import.meta.url);

export type Uws = typeof UWS;

export class UwsNotNativeError extends SluiceError<'UNAVAILABLE'> {
  constructor() {
    super('UNAVAILABLE', 'uWebSockets.js did not load its native binding (it fell back to JavaScript); sluice needs Node 20 on glibc Linux x64/arm64', 'UWS_NOT_NATIVE');
    this.name = 'UwsNotNativeError';
  }
}

export function isNative(uws: Uws): boolean {
  return /native code/.test(uws.App.toString());
}

export function loadUws(): Uws {
  const uws = require('uWebSockets.js') as Uws;
  if (!isNative(uws)) throw new UwsNotNativeError();
  return uws;
}
