/**
 * What every REST handler gets: the client library (stateless: the gateway keeps no
 * file state between requests), a logger and the byte counters.
 */
import type { Counter } from 'prom-client';
import type { GfsClient } from '../../client';
import type { Logger } from '../../common/log';
import type { Clock } from '../../common/clock';
import type { Slots } from './slots';

export interface RestContext {
  client: GfsClient;
  log: Logger;
  clock: Clock;
  bytesReceived: Counter;
  bytesSent: Counter;
  /** Uploads and downloads running at once (limits.restUploadsMax, restDownloadsMax). */
  uploads: Slots;
  downloads: Slots;
}
