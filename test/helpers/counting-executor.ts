/**
 * A SqlExecutor wrapper that counts round trips (statements sent), for round-trip assertions. It
 * keeps the wrapped executor's notification channel (`subscribe`), so push wake-ups work through it.
 */
import type { NotificationEvent, QueryOptions, Row, SqlExecutor, SqlSession } from '../../src/store/sql-executor';

export class CountingExecutor implements SqlExecutor {
  /** Statements sent since creation or the last {@link take}. */
  count = 0;
  /** Texts of those statements. */
  texts: string[] = [];
  /** Their parameters, in the same order. */
  params: Array<unknown[] | undefined> = [];
  readonly subscribe?: (setupText: string, onEvent: (event: NotificationEvent) => void) => () => Promise<void>;

  constructor(private readonly inner: SqlExecutor) {
    if (inner.subscribe !== undefined) this.subscribe = (setupText, onEvent) => inner.subscribe!(setupText, onEvent);
  }

  query(text: string, params?: unknown[], options?: QueryOptions): Promise<Row[]> {
    this.count += 1;
    this.texts.push(text);
    this.params.push(params);
    return this.inner.query(text, params, options);
  }

  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.inner.withSession((session) =>
      work({
        query: (text, params) => {
          this.count += 1;
          this.texts.push(text);
          this.params.push(params);
          return session.query(text, params);
        },
      }),
    );
  }

  /** Returns the statements counted so far and resets the counter. */
  take(): string[] {
    const texts = this.texts;
    this.count = 0;
    this.texts = [];
    this.params = [];
    return texts;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
