/** The S3 API of the gateway: its listener, and the key mapping tools and tests use. */
export { S3Server, type S3ServerOptions } from './s3-server';
export { keyToPath, pathToKey } from './keys';
export type { LookupSecret } from './sigv4';
