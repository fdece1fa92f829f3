import { inspect } from 'node:util';
import { InvalidArgumentError, XRedisError, hasCode } from '../src';

class NotHeldError extends XRedisError {
  constructor(detail: string) {
    super('NOT_HELD', `not held: ${detail}`);
  }
}
class TimeoutError extends XRedisError {
  constructor(ms: number) {
    super('TIMEOUT', `not within ${ms} ms`);
  }
}
class ShortTimeoutError extends TimeoutError {}

describe('XRedisError.isInstance', () => {
  it('is true for the class and its subclasses only, and XRedisError for every error of ours', () => {
    const notHeld = new NotHeldError('gone');
    const timeout = new ShortTimeoutError(5);
    expect([NotHeldError.isInstance(notHeld), NotHeldError.isInstance(timeout)]).toEqual([true, false]);
    expect([TimeoutError.isInstance(timeout), ShortTimeoutError.isInstance(timeout), ShortTimeoutError.isInstance(new TimeoutError(1))]).toEqual([
      true,
      true,
      false,
    ]);
    expect([XRedisError.isInstance(notHeld), XRedisError.isInstance(new InvalidArgumentError('x'))]).toEqual([true, true]);
    expect(InvalidArgumentError.isInstance(notHeld)).toBe(false);
    expect([XRedisError.isInstance(new Error('plain')), XRedisError.isInstance(null), XRedisError.isInstance('NOT_HELD')]).toEqual([false, false, false]);
  });

  it('recognises an error built by another copy of the package (markers are global symbols)', () => {
    // What another copy's NotHeldError looks like from here: not an instance of this copy's classes.
    const foreign = Object.assign(Object.create(Error.prototype) as object, { code: 'NOT_HELD' });
    expect(NotHeldError.isInstance(foreign)).toBe(false);
    Object.defineProperty(foreign, Symbol.for('x.redis.error'), { value: true });
    Object.defineProperty(foreign, Symbol.for('x.redis.error:NotHeldError'), { value: true });
    expect([XRedisError.isInstance(foreign), NotHeldError.isInstance(foreign), TimeoutError.isInstance(foreign)]).toEqual([true, true, false]);
  });

  it('keeps the markers out of what an error prints', () => {
    const printed = inspect(new NotHeldError('x'));
    expect(printed).toContain('not held: x');
    expect(printed).not.toContain('x.redis.error:');
  });
});

describe('hasCode', () => {
  it('checks the code of an error of ours', () => {
    expect([hasCode(new TimeoutError(1), 'TIMEOUT'), hasCode(new TimeoutError(1), 'NOT_HELD')]).toEqual([true, false]);
    expect(hasCode(Object.assign(new Error('raw'), { code: 'TIMEOUT' }), 'TIMEOUT')).toBe(false);
  });
});
