/**
 * xxHash64 through xxhash-wasm. The module must be initialised once (async) before
 * the synchronous helpers are used: call `await initChecksums()` at process start.
 */
import xxhash from 'xxhash-wasm';
import assert from 'node:assert/strict';

type Api = Awaited<ReturnType<typeof xxhash>>;
let api: Api | undefined;

export async function initChecksums(): Promise<void> {
  api ??= await xxhash();
}

function get(): Api {
  assert(api, 'initChecksums() must be awaited before hashing');
  return api;
}

/** xxHash64 (seed 0) of the bytes. */
export function xxh64(data: Uint8Array): bigint {
  return get().h64Raw(data);
}

export interface Hasher64 {
  update(data: Uint8Array): Hasher64;
  digest(): bigint;
}

/** Streaming xxHash64 (seed 0), for whole-file checksums. */
export function createXxh64(): Hasher64 {
  return get().create64() as unknown as Hasher64;
}

export function hex64(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}
