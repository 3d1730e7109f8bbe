/** Test helper: `fn` must throw a GfsError with `code` (any other error is rethrown). */
import type t from 'tap';
import { GfsError, type ErrorCode } from '../../src/common/errors';

export function throwsCode(tt: Pick<typeof t, 'fail' | 'equal'>, fn: () => unknown, code: ErrorCode, what?: string): void {
  try {
    fn();
    tt.fail(`${what ?? 'call'}: expected ${code}, but it succeeded`);
  } catch (e) {
    if (!(e instanceof GfsError)) throw e;
    tt.equal(e.code, code, what ?? e.message);
  }
}
