// One way for the identity tests to say "this must be refused with CODE": the promise rejects with
// a GatehouseError of that code, and no secret given (the token, the operator's token) is in it.
import { expect } from '@jest/globals';
import { isGatehouseError, type ErrorCode, type GatehouseError } from '../../../api/errors.js';

export async function expectRefusal(promise: Promise<unknown>, code: ErrorCode, secrets: readonly string[] = []): Promise<GatehouseError> {
  const error = await promise.then(
    () => { throw new Error(`expected a refusal with ${code}, but it was accepted`); },
    (caught: unknown) => caught,
  );
  if (!isGatehouseError(error)) throw error;
  expect(error.code).toBe(code);
  // A token in an error message ends up in logs: not the whole token, and not its signature either.
  for (const secret of secrets.filter((value) => value.length > 0)) {
    const signature = secret.split('.')[2] ?? '';
    for (const text of [error.message, JSON.stringify(error.details)]) {
      expect(text).not.toContain(secret);
      if (signature.length >= 16) expect(text).not.toContain(signature);
    }
  }
  return error;
}
