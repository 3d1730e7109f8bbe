import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stderr (stdout stays free for command output such as `gfs dev`'s ready line). */
export function createLogger(name: string, level: string = process.env.GFS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid, name } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for library use and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
