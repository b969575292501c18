import * as path from 'node:path';

/** Schema used on a PostgreSQL server, so the demo never touches an application's `public`. */
export const DEMO_SCHEMA = 'durox_demo';
/** Embedded store of the demo, relative to the working directory. */
export const DEFAULT_DATA_DIR = path.join('.durox-data', 'demo');
