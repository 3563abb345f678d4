#!/usr/bin/env node
// Entry point of the container image and the `readygate` bin: wiring only.
import { main } from './cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
