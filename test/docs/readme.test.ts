/**
 * The README's runnable examples, run as a user would: every ```js block right after a line
 * `<!-- runnable -->` (or `<!-- runnable: prints "<text>" -->`) is saved as a file and run with
 * `node`, in a folder of its own, with `require('durox')` resolving to this package. Each must
 * exit 0 by itself (no hanging handles) within the limit, and print the promised text.
 * PostgreSQL blocks get their schema renamed to a unique one, dropped afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client as PgClient } from 'pg';

const ROOT = join(__dirname, '..', '..', '..');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
/** Seconds a first example may take on a busy 2-core machine, first PGlite start included. */
const LIMIT_MS = 60_000;

export interface RunnableBlock {
  line: number;
  code: string;
  prints?: string;
}

/** The runnable blocks of a Markdown text. */
export function runnableBlocks(markdown: string): RunnableBlock[] {
  const lines = markdown.split('\n');
  const blocks: RunnableBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- runnable(?:: prints "(.*)")? -->$/.exec(lines[i].trim());
    if (marker === null) continue;
    if (!/^```(js|javascript)$/.test(lines[i + 1] ?? ''))
      throw new Error(`README.md:${i + 1}: a runnable marker must be followed by a \`\`\`js block`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`README.md:${i + 2}: unterminated code block`);
    blocks.push({ line: i + 2, code: lines.slice(i + 2, end).join('\n') + '\n', prints: marker[1] });
    i = end;
  }
  return blocks;
}

function run(
  file: string,
  cwd: string,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, DATABASE_URL } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('README runnable examples', () => {
  const blocks = runnableBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  // Inside the package folder, so `require('durox')` is the package itself (exports self-reference).
  const work = join(ROOT, 'test-output', `readme-${process.pid}`);
  const schemas: string[] = [];
  after(async () => {
    rmSync(work, { recursive: true, force: true });
    if (schemas.length === 0) return;
    const pg = new PgClient({ connectionString: DATABASE_URL });
    await pg.connect();
    for (const schema of schemas) await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pg.end();
  });

  it('finds the first example (embedded) and the PostgreSQL one', () => {
    assert.ok(blocks.length >= 2, `runnable blocks: ${blocks.length}`);
    assert.match(blocks[0].code, /PGliteProvider/);
    assert.ok(blocks.some((b) => /PostgresProvider/.test(b.code)));
  });

  for (const [index, block] of blocks.entries()) {
    it(`README.md line ${block.line} runs with node and exits by itself`, async () => {
      const dir = join(work, `block-${index + 1}`);
      mkdirSync(dir, { recursive: true });
      let code = block.code;
      for (const match of block.code.matchAll(/connectWithSchema\([^,]+,\s*'([a-z_][a-z0-9_]*)'\)/g)) {
        const unique = `${match[1]}_${randomBytes(4).toString('hex')}`;
        schemas.push(unique);
        code = code.split(`'${match[1]}'`).join(`'${unique}'`);
      }
      const file = join(dir, 'example.js');
      writeFileSync(file, code);
      const result = await run(file, dir);
      assert.equal(result.code, 0, `exit ${result.code} after ${result.ms} ms\n${result.stdout}\n${result.stderr}`);
      if (block.prints !== undefined) assert.ok(result.stdout.includes(block.prints), result.stdout);
      console.log(`README.md line ${block.line}: exited by itself in ${result.ms} ms`);
      if (index === 0) {
        // The CLI quick start works on the store the first example left behind.
        const listed = await run(join(ROOT, 'dist', 'src', 'bin', 'durox.js'), dir, [
          '--data-dir',
          './durox-data',
          'list',
        ]);
        assert.equal(listed.code, 0, listed.stderr);
        assert.match(listed.stdout, /hello-\d+\s+HelloWorld\s+1\.0\.0\s+Completed/);
      }
    });
  }
});
