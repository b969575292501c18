/**
 * The CLI's output decisions: colours only on a terminal (never with NO_COLOR, TERM=dumb or
 * --json), and stored text cannot smuggle control sequences into a terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { consoleOutput, fields, table } from '../../src/cli/output';

function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const fake = {
    isTTY,
    text: '',
    write(chunk: string) {
      fake.text += chunk;
      return true;
    },
  };
  return fake as unknown as NodeJS.WriteStream & { text: string };
}

function withEnv<T>(env: Record<string, string | undefined>, work: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  try {
    return work();
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

describe('CLI output', () => {
  it('colours only a terminal, and never with NO_COLOR, TERM=dumb, --no-color or --json', () => {
    withEnv({ NO_COLOR: undefined, TERM: 'xterm' }, () => {
      assert.equal(consoleOutput(false, true, stream(true)).color, true);
      assert.equal(consoleOutput(false, true, stream(false)).color, false);
      assert.equal(consoleOutput(false, false, stream(true)).color, false);
      assert.equal(consoleOutput(true, true, stream(true)).color, false);
    });
    withEnv({ NO_COLOR: '1', TERM: 'xterm' }, () =>
      assert.equal(consoleOutput(false, true, stream(true)).color, false),
    );
    withEnv({ NO_COLOR: undefined, TERM: 'dumb' }, () =>
      assert.equal(consoleOutput(false, true, stream(true)).color, false),
    );
  });

  it('paints values on a terminal but escapes control characters coming from stored data', () => {
    const tty = stream(true);
    withEnv({ NO_COLOR: undefined, TERM: 'xterm' }, () => {
      const out = consoleOutput(false, true, tty);
      fields(out, [
        ['status', 'Failed', 'red'],
        ['error', 'boom \u001b[2J\u0007 cleared'],
      ]);
      table(out, [{ id: 'a\u001b]0;title\u0007' }], [{ header: 'ID', value: (r) => r.id }]);
    });
    assert.ok(tty.text.includes('\u001b[31mFailed\u001b[0m'), 'the status is red');
    assert.ok(tty.text.includes('boom \\u001b[2J\\u0007 cleared'), 'stored escape sequences are shown, not executed');
    assert.ok(tty.text.includes('a\\u001b]0;title\\u0007'));
    const pipe = stream(false);
    fields(consoleOutput(false, true, pipe), [['status', 'Failed', 'red']]);
    assert.equal(pipe.text, 'status: Failed\n');
  });
});
