// `gatehouse deny NAME [--reason TEXT]`: refuses a held statement; one denial is final. Same flags
// and targets as approve (approve.ts).
import { decisionCommand } from './approve.js';

export const denyCommand = decisionCommand('deny');
