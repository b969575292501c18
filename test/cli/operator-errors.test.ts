/** Exit codes and HTTP statuses come from error codes, never from message text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, NotFoundError, TimeoutError } from '../../src/client/errors';
import { ProviderError } from '../../src/provider/errors';
import {
  exitCodeOf,
  httpStatusOf,
  usageError,
  unavailableError,
  EXIT_CONFLICT,
  EXIT_FAILURE,
  EXIT_NOT_FOUND,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
} from '../../src/operator/errors';

test('each code maps to one exit code and one HTTP status', () => {
  const cases: Array<[unknown, number, number]> = [
    [
      new InvalidArgumentError('startOrchestration', 'startOrchestration: instance id must not be empty'),
      EXIT_USAGE,
      400,
    ],
    [new NotFoundError('getInstanceInfo', 'Instance x not found', 'x'), EXIT_NOT_FOUND, 404],
    [
      new ProviderError('delete_instance', 'conflict', 'Instance x is still running', { instanceId: 'x' }),
      EXIT_CONFLICT,
      409,
    ],
    [new ProviderError('fetch_orchestration_item', 'unavailable', 'connection refused'), EXIT_UNAVAILABLE, 503],
    [unavailableError('could not open'), EXIT_UNAVAILABLE, 503],
    [usageError('--limit must be an integer'), EXIT_USAGE, 400],
    [new TimeoutError('waitForOrchestration', 'Operation timed out: …', 'x', 10, 'Running'), EXIT_FAILURE, 500],
    [new ProviderError('ack_orchestration_item', 'lock_lost', 'lock lost'), EXIT_FAILURE, 500],
  ];
  for (const [error, exit, status] of cases) {
    assert.equal(exitCodeOf(error), exit, String(error));
    assert.equal(httpStatusOf(error), status, String(error));
  }
});

test('a plain error is a failure whatever its text says', () => {
  for (const message of [
    'Instance x not found',
    'Instance x is still running',
    'limit must be positive',
    'Failed to connect to PostgreSQL: refused',
  ]) {
    assert.equal(exitCodeOf(new Error(message)), EXIT_FAILURE, message);
    assert.equal(httpStatusOf(new Error(message)), 500, message);
  }
});

test("the Client's errors keep the reference's text: String(error) still starts with 'Error: '", () => {
  const error = new NotFoundError('getInstanceInfo', 'Instance x not found', 'x');
  assert.equal(String(error), 'Error: Instance x not found');
  assert.equal(error.code, 'not_found');
  assert.ok(error instanceof Error);
});
