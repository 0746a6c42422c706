// Registers import-log-hooks.mjs (used with `node --import`).
import { register } from 'node:module';

register('./import-log-hooks.mjs', import.meta.url);
