#!/usr/bin/env node
/**
 * The `durox` executable: the command line (src/cli) with the dashboard's command
 * (src/dashboard). It is the only module that knows both, so neither imports the other.
 */
import { main } from '../cli/main';
import { registerDashboardCommand } from '../dashboard/command';

void main(process.argv.slice(2), [registerDashboardCommand]).then((code) => {
  process.exitCode = code;
});
