/**
 * What every REST handler gets: the client library (stateless: the gateway keeps no
 * file state between requests), a logger and the byte counters.
 */
import type { Counter } from 'prom-client';
import type { GfsClient } from '../../client';
import type { Logger } from '../../common/log';
import type { Clock } from '../../common/clock';

export interface RestContext {
  client: GfsClient;
  log: Logger;
  clock: Clock;
  bytesReceived: Counter;
  bytesSent: Counter;
}
