/**
 * StepUp's integration API for Node 18+ portals: second factors and step-up
 * confirmation of withdrawals, over `fetch`, with no runtime dependency.
 */

export { StepUp } from "./client.js";
export type { StepUpOptions } from "./client.js";
export * from "./errors.js";
export type * from "./types.js";
export { VERSION } from "./version.js";
